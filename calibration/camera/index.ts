/** Camera calibration from chessboard images: detection, sub-pixel corners, Zhang + LM, calibration files. */
export { calibrateCamera, calibrateCameraFromImages, DEFAULT_MAX_RMS_PX, MIN_VIEWS, OUTLIER_MEDIAN_FACTOR, OUTLIER_MIN_RMS_PX } from './calibrate.js';
export type { CalibrateCameraOptions, CalibrateFromImagesOptions, CalibratedView, CalibrationImageView, CalibrationView, CameraCalibration, CameraModelFit } from './calibrate.js';
export {
  CAMERA_CALIBRATION_SCHEMA,
  CAMERA_CALIBRATION_VERSION,
  cameraCalibrationToJson,
  loadCameraCalibration,
  parseCameraCalibration,
  viewPose,
  type CameraCalibrationFile,
  type CameraCalibrationFileView,
  type LoadCameraCalibrationOptions,
} from './camera-calibration-file.js';
export { boardObjectPoints, distortNormalized, matrixToRodrigues, NO_DISTORTION, projectPoints, rodriguesToMatrix, type CameraIntrinsics, type Distortion, type Pose } from './camera-model.js';
export { BLUR_LIMIT_PX, detectChessboard, estimateEdgeBlurPx, type BoardSize, type ChessboardDetection, type ChessboardFound, type ChessboardNotFound, type DetectChessboardOptions } from './chessboard.js';
export { gaussianBlur, loadGrayImage, sampleBilinear, type GrayImage } from './image.js';
export { refineCorners, SUBPIXEL_EPSILON_PX, SUBPIXEL_HALF_WINDOW_PX, SUBPIXEL_MAX_ITERATIONS, type SubpixelOptions } from './subpixel.js';
export { fitHomography, focalFromHomographies, orthonormalise, poseFromHomography, zhangIntrinsics } from './zhang.js';
export { cameraResidualGrid, REPORT_GRID_COLS, REPORT_GRID_ROWS, writeCameraReport, type CameraResidualGrid } from './report.js';
