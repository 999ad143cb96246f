/** Public surface of hud/: topics and payloads, the frame codec, the embedded broker, the link and its replay stage. */
export * from './topics.js';
export * from './frame-codec.js';
export * from './broker.js';
export * from './link.js';
export * from './link-stage.js';
export * from './mqtt-tls.js';
