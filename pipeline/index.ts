/** Public surface of the pipeline core, for perception/, render/, hud/, calibration/ and bin/. */
export { BoundedQueue } from './bounded-queue.js';
export { BufferPool, PooledBuffer, type BufferPoolOptions, type BufferPoolStats } from './buffer-pool.js';
export { RealClock, SimulatedClock, type Clock } from './clock.js';
export { measureExposure, type ExposureStats } from './exposure.js';
export { Frame, type CameraIntrinsics, type FrameInit, type FrameOrigin, type StageStamp, type VehicleState } from './frame.js';
export { ImageView, channelsOf, packedLength, type ImageViewInit, type PixelFormat, type PixelStorage } from './image.js';
export { decodeImageInto, type DecodedImage } from './jpeg.js';
export { LatencyHistogram, PipelineMetrics, formatLatencyTable, type LatencySummary, type MetricsSummary } from './metrics.js';
export { queuedMap, type QueuedMapOptions } from './queued-map.js';
export { stage, type StageOptions } from './stage.js';
export * from './time.js';
export { RecordingError, firstLine } from './recording/errors.js';
export { RecordingReader, type RecordedMessage, type TopicSummary } from './recording/reader.js';
export { RecordingWriter, type RecordingWriterOptions } from './recording/writer.js';
export * from './recording/topics.js';
export { readJsonFile } from './json-file.js';
export { schemaError, shownValue, valueAtPath } from './schema-error.js';
