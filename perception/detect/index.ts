/** Public surface of the detector runtime, for tracking, evaluation, bin/ and tests. */
export * from './types.js';
export * from './model-card.js';
export * from './preprocess.js';
export * from './decoders.js';
export * from './nms.js';
export * from './detector.js';
export * from './ground-truth.js';
export { averagePrecision, evalGroundTruthOf, meanAveragePrecision, type ClassAveragePrecision } from './average-precision.js';
