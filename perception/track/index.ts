/** Multi-object tracking: Kalman filters, assignment, the ByteTrack-style tracker and MOT metrics. */
export * from './kalman.js';
export * from './assignment.js';
export * from './tracker.js';
export * from './mot-metrics.js';
export * from './vehicle-duplicates.js';
