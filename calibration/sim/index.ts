/** HUD optics simulator: the forward model of the HUD light path and simulated calibration captures. */
export * from './hud-optics-simulator.js';
export * from './captures.js';
export { MirrorSurface, FREEFORM_TERMS } from './surfaces.js';
