/**
 * Gains between and around the named sensor gain levels: the denoiser is trained on a continuum of
 * gains and the ISP may meet any, so a gain is a position on SENSOR_GAIN_LEVELS (0 = first level,
 * 1 = second, ...), log-interpolated between neighbours and extrapolated past the ends.
 */
import { SENSOR_GAIN_LEVELS, type SensorGainLevel } from './noise-model.js';

/** The gain at `position` on SENSOR_GAIN_LEVELS. */
export function gainAtPosition(position: number): SensorGainLevel {
  if (!Number.isFinite(position)) throw new RangeError(`gainAtPosition: 'position' must be finite, got ${position}`);
  const last = SENSOR_GAIN_LEVELS.length - 1;
  const i = Math.min(Math.max(Math.floor(position), 0), last - 1);
  const t = position - i;
  const a = SENSOR_GAIN_LEVELS[i]!;
  const b = SENSOR_GAIN_LEVELS[i + 1]!;
  const lerpLog = (u: number, v: number) => Math.exp(Math.log(u) + t * (Math.log(v) - Math.log(u)));
  return { name: `gain@${position.toFixed(3)}`, iso: lerpLog(a.iso, b.iso), shotGain: lerpLog(a.shotGain, b.shotGain), readNoiseStd: lerpLog(a.readNoiseStd, b.readNoiseStd) };
}
