/** ADAS decisions (collision, vulnerable road users, lane departure, ACC lead) and the HudScene they produce. */
export * from './adas.js';
export * from './scene.js';
