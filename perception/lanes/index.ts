/** Lane detection (issue #7): ego and adjacent lane boundaries as cubics in the vehicle frame. */
export * from './types.js';
export { LaneDetector, DEFAULT_GRID, MIN_RIDGE_CONTRAST, COEFFICIENT_TAU_S, CONFIDENCE_TAU_S, REPORT_MIN_CONFIDENCE, NOMINAL_FRAME_S } from './detector.js';
export type { LaneDetectorOptions } from './detector.js';
export { BirdsEyeView, type BirdsEyeGrid } from './birdseye.js';
export { drawLaneOverlay } from './overlay.js';
export * from './assumed-cameras.js';
export { lanesStage, LANES_STAGE_NAME } from './stage.js';
