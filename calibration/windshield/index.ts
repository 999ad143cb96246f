/** Windshield calibration: dot-grid captures across the eyebox -> calibrated warp map. */
export * from './capture-manifest.js';
export * from './dot-detection.js';
export * from './dot-grid-index.js';
export * from './eyebox-model.js';
export * from './calibrate.js';
export * from './evaluate.js';
export * from './report.js';
