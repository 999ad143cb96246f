/** Public surface of the world geometry: camera model, ground plane, ego-motion, road calibration. */
export * from './camera-model.js';
export * from './ground-plane.js';
export * from './ego-motion.js';
export * from './road-calibration.js';
export * from './pandaset-mounting.js';
export * from './mounting-file.js';
export * from './adas-objects.js';
