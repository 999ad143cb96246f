/**
 * Reflecting surfaces of the HUD light path, for the ray tracer in `hud-optics-simulator.ts`.
 *
 * Each surface has a local frame (`localFromVehicle`, rows = local x, y, z written in the vehicle
 * frame: x forward, y left, z up): local z is the surface normal at the vertex, pointing to the side
 * the light comes from; local x and y are tangents. The surface is z = sag(x, y) with
 *   sag = (1 - sqrt(1 - cx^2 x^2)) / cx + (1 - sqrt(1 - cy^2 y^2)) / cy + c11 x y + sum c_ab x^a y^b (a + b = 3)
 * i.e. an anamorphic surface whose principal sections are circles of radius 1 / cx and 1 / cy (equal
 * to a torus to fourth order) plus a twist term and cubic freeform terms. Positive curvature = concave towards the light.
 *
 * A ray is a Float64Array(6): origin x, y, z then unit direction x, y, z, in the vehicle frame.
 */

/** Newton iterations for the ray / sag intersection (converges in 3-4 for these gentle surfaces). */
const MAX_INTERSECTION_ITERATIONS = 12;
/** Ray-parameter change below which the intersection has converged, metres. */
const INTERSECTION_TOLERANCE_M = 1e-13;

/** Number of freeform coefficients: c11 (x y, 1/m), c30, c21, c12, c03 (x^3, x^2 y, x y^2, y^3, 1/m^2). */
export const FREEFORM_TERMS = 5;

/** A reflecting surface; `reflect` updates a ray in place and allocates nothing. */
export class MirrorSurface {
  /** Vertex (local origin), vehicle frame, metres. */
  readonly originM: Float64Array;
  /** localFromVehicle rotation, row-major 3x3 (rows: local x, local y, local z = normal towards the light). */
  readonly localFromVehicle: Float64Array;
  /** Curvature of the local-x section, 1/m (1 / radius; 0 = flat). */
  readonly curvatureXPerM: number;
  /** Curvature of the local-y section, 1/m. */
  readonly curvatureYPerM: number;
  /** Freeform coefficients c11 (1/m), c30, c21, c12, c03 (1/m^2). */
  readonly freeform: Float64Array;

  constructor(originM: Float64Array, localFromVehicle: Float64Array, curvatureXPerM: number, curvatureYPerM: number, freeform: Float64Array = new Float64Array(FREEFORM_TERMS)) {
    if (originM.length !== 3) throw new RangeError(`MirrorSurface: 'originM' must have 3 values, got ${originM.length}`);
    if (localFromVehicle.length !== 9) throw new RangeError(`MirrorSurface: 'localFromVehicle' must have 9 values, got ${localFromVehicle.length}`);
    if (freeform.length !== FREEFORM_TERMS) throw new RangeError(`MirrorSurface: 'freeform' must have ${FREEFORM_TERMS} values, got ${freeform.length}`);
    this.originM = Float64Array.from(originM);
    this.localFromVehicle = Float64Array.from(localFromVehicle);
    this.curvatureXPerM = curvatureXPerM;
    this.curvatureYPerM = curvatureYPerM;
    this.freeform = Float64Array.from(freeform);
  }

  /** Sag z(x, y) in the local frame, metres. */
  sagM(x: number, y: number): number {
    const f = this.freeform;
    return circleSag(this.curvatureXPerM, x) + circleSag(this.curvatureYPerM, y) + f[0]! * x * y + f[1]! * x * x * x + f[2]! * x * x * y + f[3]! * x * y * y + f[4]! * y * y * y;
  }

  /**
   * Intersects `ray` with the surface and reflects it: on return the ray starts at the hit point and
   * points along the reflected direction. Returns false (ray unchanged) when the ray misses or
   * arrives from behind. Allocates nothing.
   */
  reflect(ray: Float64Array): boolean {
    const r = this.localFromVehicle;
    const o = this.originM;
    const px = ray[0]! - o[0]!, py = ray[1]! - o[1]!, pz = ray[2]! - o[2]!;
    const lx = r[0]! * px + r[1]! * py + r[2]! * pz;
    const ly = r[3]! * px + r[4]! * py + r[5]! * pz;
    const lz = r[6]! * px + r[7]! * py + r[8]! * pz;
    const dx = r[0]! * ray[3]! + r[1]! * ray[4]! + r[2]! * ray[5]!;
    const dy = r[3]! * ray[3]! + r[4]! * ray[4]! + r[5]! * ray[5]!;
    const dz = r[6]! * ray[3]! + r[7]! * ray[4]! + r[8]! * ray[5]!;
    if (!(dz < 0)) return false;
    const cx = this.curvatureXPerM, cy = this.curvatureYPerM, f = this.freeform;
    const c11 = f[0]!, c30 = f[1]!, c21 = f[2]!, c12 = f[3]!, c03 = f[4]!;
    let t = -lz / dz;
    let x = 0, y = 0, gx = 0, gy = 0;
    let converged = false;
    for (let k = 0; k < MAX_INTERSECTION_ITERATIONS; k++) {
      x = lx + t * dx;
      y = ly + t * dy;
      const rx = 1 - cx * cx * x * x;
      const ry = 1 - cy * cy * y * y;
      if (!(rx > 0 && ry > 0)) return false;
      const sx = Math.sqrt(rx), sy = Math.sqrt(ry);
      const sag = (cx === 0 ? 0 : (1 - sx) / cx) + (cy === 0 ? 0 : (1 - sy) / cy) + c11 * x * y + c30 * x * x * x + c21 * x * x * y + c12 * x * y * y + c03 * y * y * y;
      gx = (cx * x) / sx + c11 * y + 3 * c30 * x * x + 2 * c21 * x * y + c12 * y * y;
      gy = (cy * y) / sy + c11 * x + c21 * x * x + 2 * c12 * x * y + 3 * c03 * y * y;
      const g = lz + t * dz - sag;
      const slope = dz - gx * dx - gy * dy;
      const step = g / slope;
      t -= step;
      if (Math.abs(step) < INTERSECTION_TOLERANCE_M) {
        converged = true;
        break;
      }
    }
    if (!converged || !(t > 0)) return false;
    x = lx + t * dx;
    y = ly + t * dy;
    const z = lz + t * dz;
    // Unit normal (-gx, -gy, 1) / |.|, reflected direction d - 2 (d . n) n, both local.
    const inv = 1 / Math.sqrt(gx * gx + gy * gy + 1);
    const nx = -gx * inv, ny = -gy * inv, nz = inv;
    const dn = 2 * (dx * nx + dy * ny + dz * nz);
    const ex = dx - dn * nx, ey = dy - dn * ny, ez = dz - dn * nz;
    // vehicleFromLocal = transpose(localFromVehicle).
    ray[0] = o[0]! + r[0]! * x + r[3]! * y + r[6]! * z;
    ray[1] = o[1]! + r[1]! * x + r[4]! * y + r[7]! * z;
    ray[2] = o[2]! + r[2]! * x + r[5]! * y + r[8]! * z;
    ray[3] = r[0]! * ex + r[3]! * ey + r[6]! * ez;
    ray[4] = r[1]! * ex + r[4]! * ey + r[7]! * ez;
    ray[5] = r[2]! * ex + r[5]! * ey + r[8]! * ez;
    return true;
  }
}

/** Sag of a circular section of curvature c at height h: (1 - sqrt(1 - c^2 h^2)) / c (0 when flat). */
function circleSag(c: number, h: number): number {
  return c === 0 ? 0 : (1 - Math.sqrt(1 - c * c * h * h)) / c;
}

// ---- small vector helpers for the (non per-ray) design code; plain arrays of 3 ----

/** A 3-vector as a plain tuple (design-time code only; the per-ray path uses typed arrays). */
export type V3 = [number, number, number];

export const add = (a: V3, b: V3): V3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const sub = (a: V3, b: V3): V3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const scale = (a: V3, s: number): V3 => [a[0] * s, a[1] * s, a[2] * s];
export const dot = (a: V3, b: V3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const cross = (a: V3, b: V3): V3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
export const norm = (a: V3): number => Math.hypot(a[0], a[1], a[2]);
export const normalize = (a: V3): V3 => scale(a, 1 / norm(a));

/** Rodrigues rotation of `v` about the unit `axis` by `angleRad` (right-handed). */
export function rotate(v: V3, axis: V3, angleRad: number): V3 {
  const c = Math.cos(angleRad), s = Math.sin(angleRad);
  const k = dot(axis, v) * (1 - c);
  const x = cross(axis, v);
  return [v[0] * c + x[0] * s + axis[0] * k, v[1] * c + x[1] * s + axis[1] * k, v[2] * c + x[2] * s + axis[2] * k];
}

/**
 * A local frame (rows x, y, z) with z = `normal` and x = `lateralHint` made orthogonal to it;
 * y = z cross x, right-handed.
 */
export function frameFromNormal(normal: V3, lateralHint: V3): Float64Array {
  const z = normalize(normal);
  const x = normalize(sub(lateralHint, scale(z, dot(lateralHint, z))));
  const y = cross(z, x);
  return Float64Array.of(...x, ...y, ...z);
}

/** Rotates every row of a frame about `axis` by `angleRad` (tilts the surface). */
export function rotateFrame(frame: Float64Array, axis: V3, angleRad: number): Float64Array {
  const out = new Float64Array(9);
  for (let r = 0; r < 3; r++) out.set(rotate([frame[r * 3]!, frame[r * 3 + 1]!, frame[r * 3 + 2]!], axis, angleRad), r * 3);
  return out;
}

/** Row `r` of a 3x3 row-major frame as a vector. */
export function frameRow(frame: Float64Array, r: number): V3 {
  return [frame[r * 3]!, frame[r * 3 + 1]!, frame[r * 3 + 2]!];
}
