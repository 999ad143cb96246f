/**
 * Where a rejected calibration is written instead of its output path: `camera.json` ->
 * `camera.rejected.json`. The failure stays on record, a consumer asking for the output path never
 * finds it, and a good calibration already at the output path is never overwritten by a bad one.
 */
export function rejectedCalibrationPath(outputPath: string): string {
  return outputPath.replace(/(\.json)?$/i, '.rejected.json');
}
