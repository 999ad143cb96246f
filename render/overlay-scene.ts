/**
 * `HudOverlayScene`: the three.js scene that draws a `HudScene` for the HUD, in PANEL PIXEL space.
 *
 * Every overlay vertex is placed where the optics model puts it: world-registered content (lane
 * ribbons, ground brackets, ACC marker, navigation arrow) is built as flat polygons on the road
 * (z = 0) in the vehicle frame at display time, and each corner goes through
 * `VirtualImagePlane.vehicleToPanel` (eye ray -> far virtual image -> ideal panel pixel). A straight
 * edge on the road stays straight through that central projection, so a projected convex road polygon
 * is exactly the image a pinhole at the eye, looking along the HUD axis with the far plane's FOV, sees.
 * Status content (speed, limit, degraded indicator) is laid out directly in the near plane's panel
 * region. Polygons are clipped on the CPU to their plane's region (the FOV), so nothing of the far
 * plane spills into the near region or into the unused black panel area.
 *
 * Camera: orthographic over the panel, x = u (right), y = v (down), 1 unit = 1 panel pixel; the
 * overlay image is the ideal (undistorted) panel image, the windshield warp comes later (HudRenderer).
 *
 * Drawing: one mesh, non-indexed triangles with per-vertex colours in preallocated typed arrays,
 * rewritten in place each frame (no geometry allocation per frame); later triangles paint over
 * earlier ones (no depth test). HUD convention: black = no light, so the scene clears to black and
 * draws light colours; night brightness scales every colour through the material colour.
 */
import * as THREE from 'three/webgpu';
import { compensateForLatency, createPanelPoint, type HudOptics } from './optics.js';
import type { PanelRegionPx, Vec3M } from './optics-config.js';
import type { HudPrimitive, HudScene, LaneRibbon, ObjectMarker, WarningLevel } from './hud-scene.js';

/** Lane ribbons are drawn from this distance ahead of the rear axle (display-time vehicle frame), metres. */
export const LANE_MIN_AHEAD_M = 5;
/** ... up to this distance ahead, metres. */
export const LANE_MAX_AHEAD_M = 100;
/** Width of a lane-boundary ribbon on the road, metres. */
export const LANE_RIBBON_WIDTH_M = 0.15;
/** Width of the ego-path ribbon (role 'path') on the road, metres. */
export const PATH_RIBBON_WIDTH_M = 0.5;
/** Longest ribbon piece between two tessellation points along the lane, metres. */
export const LANE_STEP_M = 2;
/** Dash and gap lengths of a dashed lane ribbon, along the lane, metres. */
export const LANE_DASH_M = 3;
export const LANE_GAP_M = 3;
/** Distance from the rear axle to the front bumper, used to place an ACC marker from its gap alone, metres. */
export const EGO_FRONT_OVERHANG_M = 3.8;
/**
 * Ground markers (brackets, ACC chevron) get deeper along the road with distance so they stay a few
 * panel rows tall (foreshortening shrinks a road length as 1/distance^2): depth = max(min, k x^2).
 */
export const MARKER_MIN_DEPTH_M = 0.3;
export const MARKER_DEPTH_PER_M2 = 0.001;
/** The navigation arrow stands at its manoeuvre distance clamped to this range ahead, metres. */
export const NAV_ARROW_MIN_M = 20;
export const NAV_ARROW_MAX_M = 60;
/** Colour scale of every overlay by ambient brightness (1 = full panel luminance). */
export const DAY_BRIGHTNESS = 1;
export const NIGHT_BRIGHTNESS = 0.35;
/** Vertex capacity of the overlay mesh (triangles beyond it are dropped and counted). */
export const MAX_OVERLAY_VERTICES = 3 * 20_000;
/** Meters per second to km/h, for the speed read-out. */
const MPS_TO_KMH = 3.6;

/** An RGB colour in display values, each in [0, 1]. */
export type Rgb = readonly [number, number, number];

/** Bracket colours by warning level: none cyan, caution yellow, warning orange, critical red. */
export const WARNING_COLORS: Readonly<Record<WarningLevel, Rgb>> = Object.freeze({
  none: [0, 0.9, 1],
  caution: [1, 0.9, 0],
  warning: [1, 0.5, 0],
  critical: [1, 0.1, 0.1],
});
const LANE_COLORS: Readonly<Record<LaneRibbon['role'], Rgb>> = {
  'ego-left': [0.55, 0.85, 1],
  'ego-right': [0.55, 0.85, 1],
  'adjacent-left': [0.3, 0.45, 0.7],
  'adjacent-right': [0.3, 0.45, 0.7],
  path: [0.1, 0.8, 0.55],
};
const NAV_COLOR: Rgb = [0.2, 0.65, 1];
const ACC_COLOR: Rgb = [0.2, 1, 0.35];
const DEPARTURE_COLOR: Rgb = [1, 0.6, 0];
const TEXT_COLOR: Rgb = [1, 1, 1];
const LIMIT_RING_COLOR: Rgb = [1, 0.15, 0.15];
const DEGRADED_COLOR: Rgb = [1, 0.7, 0];
const BLACK: Rgb = [0, 0, 0];

/** Motion between capture and display used for latency compensation (constant speed and yaw rate). */
export interface HudMotion {
  /** Vehicle speed, m/s. */
  speedMps: number;
  /** Yaw rate, rad/s (positive = turning left). */
  yawRateRps: number;
  /** Capture-to-display interval to extrapolate over, seconds. */
  dtS: number;
}

// ---------------------------------------------------------------------------------------------
// Stroke font: glyphs as line segments on a 4 x 6 grid (x right, y down); no canvas exists in Node.

const GLYPH_WIDTH = 4;
const GLYPH_HEIGHT = 6;
const GLYPH_ADVANCE = 6;
// prettier-ignore
const GLYPHS: Readonly<Record<string, readonly number[]>> = {
  '0': [0, 0, 4, 0, 4, 0, 4, 6, 4, 6, 0, 6, 0, 6, 0, 0],
  '1': [2, 0, 2, 6, 0.8, 1.2, 2, 0],
  '2': [0, 0, 4, 0, 4, 0, 4, 3, 4, 3, 0, 3, 0, 3, 0, 6, 0, 6, 4, 6],
  '3': [0, 0, 4, 0, 4, 0, 4, 6, 4, 6, 0, 6, 1, 3, 4, 3],
  '4': [0, 0, 0, 3, 0, 3, 4, 3, 4, 0, 4, 6],
  '5': [4, 0, 0, 0, 0, 0, 0, 3, 0, 3, 4, 3, 4, 3, 4, 6, 4, 6, 0, 6],
  '6': [4, 0, 0, 0, 0, 0, 0, 6, 0, 6, 4, 6, 4, 6, 4, 3, 4, 3, 0, 3],
  '7': [0, 0, 4, 0, 4, 0, 1.5, 6],
  '8': [0, 0, 4, 0, 4, 0, 4, 6, 4, 6, 0, 6, 0, 6, 0, 0, 0, 3, 4, 3],
  '9': [4, 3, 0, 3, 0, 3, 0, 0, 0, 0, 4, 0, 4, 0, 4, 6, 4, 6, 0, 6],
  A: [0, 6, 2, 0, 2, 0, 4, 6, 1, 3.5, 3, 3.5],
  B: [0, 0, 0, 6, 0, 0, 3, 0, 3, 0, 4, 1.2, 4, 1.2, 3, 3, 0, 3, 3, 3, 3, 3, 4, 4.5, 4, 4.5, 3, 6, 3, 6, 0, 6],
  E: [4, 0, 0, 0, 0, 0, 0, 6, 0, 6, 4, 6, 0, 3, 3, 3],
  H: [0, 0, 0, 6, 4, 0, 4, 6, 0, 3, 4, 3],
  K: [0, 0, 0, 6, 0, 3.5, 4, 0, 1.3, 2.5, 4, 6],
  M: [0, 6, 0, 0, 0, 0, 2, 3, 2, 3, 4, 0, 4, 0, 4, 6],
  R: [0, 6, 0, 0, 0, 0, 4, 0, 4, 0, 4, 3, 4, 3, 0, 3, 1.5, 3, 4, 6],
  '/': [0, 6, 4, 0],
  '!': [2, 0, 2, 3.8, 2, 5.2, 2, 6],
  ' ': [],
};

/** Width of `text` in pixels at `scalePx` pixels per glyph grid unit. */
function textWidthPx(text: string, scalePx: number): number {
  return text.length === 0 ? 0 : ((text.length - 1) * GLYPH_ADVANCE + GLYPH_WIDTH) * scalePx;
}

// ---------------------------------------------------------------------------------------------
// Module-level scratch (the per-frame path allocates nothing).

const MAX_POLYGON = 24; // a convex polygon clipped by 4 edges gains at most 4 vertices
const _polyA = new Float64Array(MAX_POLYGON * 2);
const _polyB = new Float64Array(MAX_POLYGON * 2);
const _groundX = new Float64Array(MAX_POLYGON);
const _groundY = new Float64Array(MAX_POLYGON);
const _v: Vec3M = { x: 0, y: 0, z: 0 };
const _a: Vec3M = { x: 0, y: 0, z: 0 };
const _b: Vec3M = { x: 0, y: 0, z: 0 };
const _pp = createPanelPoint();

/** Depth along the road of a ground marker at `xM` ahead (see MARKER_DEPTH_PER_M2). */
function markerDepthM(xM: number): number {
  return Math.max(MARKER_MIN_DEPTH_M, MARKER_DEPTH_PER_M2 * xM * xM);
}

function checkFinite(where: string, field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RangeError(`${where}: '${field}' must be a finite number, got ${String(value)}`);
  }
}

/** Draws a `HudScene` as panel-pixel overlay geometry (see the top of this file). */
export class HudOverlayScene {
  /** The three.js scene to render (one dynamic mesh). */
  readonly scene: THREE.Scene;
  /** Orthographic camera over the panel: x = u right, y = v down, in panel pixels. */
  readonly camera: THREE.OrthographicCamera;
  /** The optics model every position comes from. */
  readonly optics: HudOptics;
  /** Triangles written by the last `update`. */
  triangleCount = 0;
  /** Triangles the last `update` dropped because the vertex capacity (MAX_OVERLAY_VERTICES) was full. */
  droppedTriangles = 0;

  readonly #geometry: THREE.BufferGeometry;
  readonly #material: THREE.MeshBasicMaterial;
  readonly #mesh: THREE.Mesh;
  readonly #positions: Float32Array;
  readonly #colors: Float32Array;
  #vertexCount = 0;
  #compensate = false;
  #speedMps = 0;
  #yawRateRps = 0;
  #dtS = 0;

  constructor(optics: HudOptics) {
    if (optics === null || typeof optics !== 'object' || !('far' in optics) || !('near' in optics)) {
      throw new TypeError(`HudOverlayScene: 'optics' must be a HudOptics`);
    }
    this.optics = optics;
    const { widthPx, heightPx } = optics.panel;
    this.camera = new THREE.OrthographicCamera(0, widthPx, 0, heightPx, -10, 10);
    this.#positions = new Float32Array(MAX_OVERLAY_VERTICES * 3);
    this.#colors = new Float32Array(MAX_OVERLAY_VERTICES * 3);
    this.#geometry = new THREE.BufferGeometry();
    const position = new THREE.BufferAttribute(this.#positions, 3).setUsage(THREE.DynamicDrawUsage);
    const color = new THREE.BufferAttribute(this.#colors, 3).setUsage(THREE.DynamicDrawUsage);
    this.#geometry.setAttribute('position', position);
    this.#geometry.setAttribute('color', color);
    this.#geometry.setDrawRange(0, 0);
    this.#material = new THREE.MeshBasicMaterial({ vertexColors: true, side: THREE.DoubleSide, depthTest: false, depthWrite: false });
    this.#material.toneMapped = false;
    this.#mesh = new THREE.Mesh(this.#geometry, this.#material);
    this.#mesh.frustumCulled = false; // the bounding sphere would be stale after in-place updates
    this.scene = new THREE.Scene();
    this.scene.add(this.#mesh);
  }

  /**
   * Rebuilds the overlay for `scene` as shown at `displayTimeNs`: only primitives still valid then
   * (`displayTimeNs < validUntilNs`, the rule of `validPrimitives`) are drawn; world-registered
   * content is moved into the vehicle frame at display time with `compensateForLatency` when `motion`
   * is given. Returns `this`.
   */
  update(scene: HudScene, displayTimeNs: bigint, motion?: Readonly<HudMotion>): this {
    const where = 'HudOverlayScene.update';
    if (typeof displayTimeNs !== 'bigint') throw new TypeError(`${where}: 'displayTimeNs' must be a bigint, got ${typeof displayTimeNs}`);
    if (scene === null || typeof scene !== 'object' || !Array.isArray(scene.primitives)) {
      throw new TypeError(`${where}: 'scene.primitives' must be an array`);
    }
    if (motion !== undefined) {
      checkFinite(where, 'motion.speedMps', motion.speedMps);
      checkFinite(where, 'motion.yawRateRps', motion.yawRateRps);
      checkFinite(where, 'motion.dtS', motion.dtS);
      this.#speedMps = motion.speedMps;
      this.#yawRateRps = motion.yawRateRps;
      this.#dtS = motion.dtS;
    }
    this.#compensate = motion !== undefined && motion.dtS !== 0;
    this.#vertexCount = 0;
    this.droppedTriangles = 0;
    this.#material.color.setScalar(scene.brightness === 'night' ? NIGHT_BRIGHTNESS : DAY_BRIGHTNESS);

    if (scene.degraded) {
      this.#drawDegradedIndicator();
    } else {
      // Road content first (later triangles paint over earlier ones), then banners and status.
      for (const p of scene.primitives) {
        if (!(displayTimeNs < p.validUntilNs)) continue;
        if (p.kind === 'lane') this.#drawLane(p);
        else if (p.kind === 'navigation') this.#drawNavigationArrow(p.distanceM, p.turn);
      }
      for (const p of scene.primitives) {
        if (!(displayTimeNs < p.validUntilNs)) continue;
        if (p.kind === 'object') this.#drawBracket(p);
        else if (p.kind === 'acc-lead') this.#drawAccLead(scene.primitives, displayTimeNs, p.trackId, p.gapM);
      }
      for (const p of scene.primitives) {
        if (!(displayTimeNs < p.validUntilNs)) continue;
        if (p.kind === 'forward-collision') this.#drawCollisionBanner(p.level);
        else if (p.kind === 'lane-departure') this.#drawDepartureEdge(p.side);
        else if (p.kind === 'speed') this.#drawSpeed(p.speedMps, p.limitMps);
      }
    }

    this.triangleCount = this.#vertexCount / 3;
    this.#geometry.setDrawRange(0, this.#vertexCount);
    this.#mesh.visible = this.#vertexCount > 0; // an empty draw is skipped, not issued
    const position = this.#geometry.getAttribute('position') as THREE.BufferAttribute;
    const color = this.#geometry.getAttribute('color') as THREE.BufferAttribute;
    position.clearUpdateRanges();
    color.clearUpdateRanges();
    position.addUpdateRange(0, Math.max(3, this.#vertexCount * 3));
    color.addUpdateRange(0, Math.max(3, this.#vertexCount * 3));
    position.needsUpdate = true;
    color.needsUpdate = true;
    return this;
  }

  /** Releases the geometry and material. */
  dispose(): void {
    this.#geometry.dispose();
    this.#material.dispose();
  }

  // -------------------------------------------------------------------------------------------
  // World-registered content (far plane)

  /** Vehicle frame at capture -> vehicle frame at display (latency compensation), into `out`. */
  #toDisplay(xM: number, yM: number, out: Vec3M): Vec3M {
    out.x = xM;
    out.y = yM;
    out.z = 0;
    return this.#compensate ? compensateForLatency(out, this.#speedMps, this.#yawRateRps, this.#dtS, out) : out;
  }

  /** A lane ribbon: compensated, clipped to LANE_MIN..MAX_AHEAD_M, tessellated every LANE_STEP_M, dashed if asked. */
  #drawLane(lane: LaneRibbon): void {
    const halfWidthM = (lane.role === 'path' ? PATH_RIBBON_WIDTH_M : LANE_RIBBON_WIDTH_M) / 2;
    const base = LANE_COLORS[lane.role];
    const k = 0.4 + 0.6 * Math.min(1, Math.max(0, lane.confidence)); // low confidence draws dimmer
    const r = base[0] * k, g = base[1] * k, b = base[2] * k;
    const dashed = lane.lineType === 'dashed';
    const period = LANE_DASH_M + LANE_GAP_M;
    const pts = lane.pointsM;
    let arcM = 0; // along the lane from its first point (capture frame = display frame lengths)
    for (let i = 0; i + 1 < pts.length; i++) {
      const p0 = pts[i]!;
      const p1 = pts[i + 1]!;
      this.#toDisplay(p0[0], p0[1], _a);
      this.#toDisplay(p1[0], p1[1], _b);
      const dx = _b.x - _a.x;
      const dy = _b.y - _a.y;
      const lengthM = Math.hypot(dx, dy);
      if (!(lengthM > 0)) continue;
      // Clip the segment's parameter range to LANE_MIN_AHEAD_M <= x <= LANE_MAX_AHEAD_M.
      let t0 = 0;
      let t1 = 1;
      if (dx === 0) {
        if (_a.x < LANE_MIN_AHEAD_M || _a.x > LANE_MAX_AHEAD_M) t1 = -1;
      } else {
        const ta = (LANE_MIN_AHEAD_M - _a.x) / dx;
        const tb = (LANE_MAX_AHEAD_M - _a.x) / dx;
        t0 = Math.max(t0, Math.min(ta, tb));
        t1 = Math.min(t1, Math.max(ta, tb));
      }
      if (t1 > t0) {
        const ux = dx / lengthM;
        const uy = dy / lengthM;
        const nx = -uy * halfWidthM; // left normal
        const ny = ux * halfWidthM;
        let s = t0 * lengthM;
        const sEnd = t1 * lengthM;
        while (s < sEnd - 1e-9) {
          let next = Math.min(sEnd, s + LANE_STEP_M);
          let on = true;
          if (dashed) {
            const phase = (((arcM + s) % period) + period) % period;
            on = phase < LANE_DASH_M;
            next = Math.min(next, s + (on ? LANE_DASH_M - phase : period - phase));
          }
          if (on) {
            const x0 = _a.x + ux * s, y0 = _a.y + uy * s;
            const x1 = _a.x + ux * next, y1 = _a.y + uy * next;
            _groundX[0] = x0 - nx; _groundY[0] = y0 - ny;
            _groundX[1] = x1 - nx; _groundY[1] = y1 - ny;
            _groundX[2] = x1 + nx; _groundY[2] = y1 + ny;
            _groundX[3] = x0 + nx; _groundY[3] = y0 + ny;
            this.#groundPolygon(4, false, r, g, b);
          }
          s = next;
        }
      }
      arcM += lengthM;
    }
  }

  /** Ground bracket at the object's rear face: a bar across its width and two legs under it. */
  #drawBracket(o: ObjectMarker): void {
    const [r, g, b] = WARNING_COLORS[o.warning];
    const x = o.positionM.x;
    const y = o.positionM.y;
    const half = Math.max(0.3, o.widthM / 2);
    const barM = markerDepthM(x); // bar depth along x
    const legM = 3 * barM; // legs run forward under the object
    const legWidthM = Math.min(0.25, half / 2);
    this.#groundBox(x - barM, x, y - half, y + half, r, g, b);
    this.#groundBox(x, x + legM, y + half - legWidthM, y + half, r, g, b);
    this.#groundBox(x, x + legM, y - half, y - half + legWidthM, r, g, b);
  }

  /** ACC lead marker: a chevron on the road 3 m behind the lead object (or at the gap ahead of the bumper). */
  #drawAccLead(primitives: readonly HudPrimitive[], displayTimeNs: bigint, trackId: string, gapM: number): void {
    let x = EGO_FRONT_OVERHANG_M + gapM;
    let y = 0;
    for (const p of primitives) {
      if (p.kind === 'object' && p.trackId === trackId && displayTimeNs < p.validUntilNs) {
        x = p.positionM.x;
        y = p.positionM.y;
        break;
      }
    }
    const [r, g, b] = ACC_COLOR;
    const thickM = markerDepthM(x); // arm thickness along x
    const depthM = 2 * thickM; // how far back the arms go
    const tipX = x - 1.5 - 2 * thickM;
    const armM = 0.7; // lateral reach of each arm
    for (let side = 1; side >= -1; side -= 2) {
      _groundX[0] = tipX - depthM; _groundY[0] = y + side * armM;
      _groundX[1] = tipX; _groundY[1] = y;
      _groundX[2] = tipX + thickM; _groundY[2] = y;
      _groundX[3] = tipX - depthM + thickM; _groundY[3] = y + side * armM;
      this.#groundPolygon(4, true, r, g, b);
    }
  }

  /** Navigation arrow on the road at the manoeuvre distance (clamped to NAV_ARROW_MIN..MAX_M ahead). */
  #drawNavigationArrow(distanceM: number, turn: 'left' | 'right' | 'straight' | 'u-turn'): void {
    const [r, g, b] = NAV_COLOR;
    const xA = Math.min(NAV_ARROW_MAX_M, Math.max(NAV_ARROW_MIN_M, distanceM));
    const halfShaft = 0.3;
    const shaftM = 8;
    const headHalfM = 0.9;
    const depth = 2 * markerDepthM(xA); // depth along x of the lateral bar
    if (turn === 'straight') {
      this.#groundBox(xA - shaftM, xA, -halfShaft, halfShaft, r, g, b);
      this.#groundTriangle(xA, -headHalfM, xA, headHalfM, xA + 3 * depth, 0, r, g, b);
      return;
    }
    const side = turn === 'right' ? -1 : 1; // u-turn turns left (right-hand traffic)
    this.#groundBox(xA - shaftM, xA + depth, -halfShaft, halfShaft, r, g, b);
    if (turn === 'u-turn') {
      const yBack = side * 2;
      this.#groundBox(xA, xA + depth, Math.min(0, yBack), Math.max(0, yBack), r, g, b);
      this.#groundBox(xA - shaftM / 2, xA + depth, yBack - halfShaft, yBack + halfShaft, r, g, b);
      this.#groundTriangle(xA - shaftM / 2, yBack - headHalfM, xA - shaftM / 2, yBack + headHalfM, xA - shaftM / 2 - 3 * depth, yBack, r, g, b);
      return;
    }
    const yEnd = side * 1.2;
    this.#groundBox(xA, xA + depth, Math.min(0, yEnd), Math.max(0, yEnd), r, g, b);
    this.#groundTriangle(xA + depth / 2 - 2 * depth, yEnd, xA + depth / 2 + 2 * depth, yEnd, xA + depth / 2, yEnd + side * 1.2, r, g, b);
  }

  /** Axis-aligned rectangle on the road in the capture frame (compensated). */
  #groundBox(x0: number, x1: number, y0: number, y1: number, r: number, g: number, b: number): void {
    _groundX[0] = x0; _groundY[0] = y0;
    _groundX[1] = x1; _groundY[1] = y0;
    _groundX[2] = x1; _groundY[2] = y1;
    _groundX[3] = x0; _groundY[3] = y1;
    this.#groundPolygon(4, true, r, g, b);
  }

  #groundTriangle(x0: number, y0: number, x1: number, y1: number, x2: number, y2: number, r: number, g: number, b: number): void {
    _groundX[0] = x0; _groundY[0] = y0;
    _groundX[1] = x1; _groundY[1] = y1;
    _groundX[2] = x2; _groundY[2] = y2;
    this.#groundPolygon(3, true, r, g, b);
  }

  /**
   * Convex road polygon in _groundX/_groundY (capture frame when `compensate`, else display frame) ->
   * far-plane panel pixels -> clipped to the far region. Skipped if a corner is not in front of the eye.
   */
  #groundPolygon(n: number, compensate: boolean, r: number, g: number, b: number): void {
    const plane = this.optics.far;
    for (let i = 0; i < n; i++) {
      if (compensate) this.#toDisplay(_groundX[i]!, _groundY[i]!, _v);
      else {
        _v.x = _groundX[i]!;
        _v.y = _groundY[i]!;
        _v.z = 0;
      }
      this.optics.vehicleToPanel(_v, _pp);
      if (_pp.behindEye) return;
      _polyA[2 * i] = _pp.uPx;
      _polyA[2 * i + 1] = _pp.vPx;
    }
    this.#fillPolygon(n, plane.region, r, g, b);
  }

  // -------------------------------------------------------------------------------------------
  // Panel-fixed content

  /** Forward-collision banner across the top of the far region, with BRAKE cut out of it. */
  #drawCollisionBanner(level: 'caution' | 'warning' | 'critical'): void {
    const reg = this.optics.far.region;
    const [r, g, b] = WARNING_COLORS[level];
    const h = Math.round(reg.heightPx * 0.14);
    const w = Math.round(reg.widthPx * 0.36);
    const x0 = reg.xPx + (reg.widthPx - w) / 2;
    const y0 = reg.yPx + Math.round(reg.heightPx * 0.04);
    this.#rect(reg, x0, y0, w, h, r, g, b);
    const scale = (h * 0.6) / GLYPH_HEIGHT;
    const text = 'BRAKE';
    this.#text(reg, text, x0 + (w - textWidthPx(text, scale)) / 2, y0 + (h - GLYPH_HEIGHT * scale) / 2, scale, BLACK);
  }

  /** Lane-departure highlight: a bar along the left or right edge of the far region. */
  #drawDepartureEdge(side: 'left' | 'right'): void {
    const reg = this.optics.far.region;
    const [r, g, b] = DEPARTURE_COLOR;
    const w = Math.max(4, Math.round(reg.widthPx * 0.016));
    const y0 = reg.yPx + reg.heightPx * 0.12;
    const x0 = side === 'left' ? reg.xPx : reg.xPx + reg.widthPx - w;
    this.#rect(reg, x0, y0, w, reg.heightPx * 0.76, r, g, b);
  }

  /** Speed (km/h) and, when known, the limit sign, in the near region. */
  #drawSpeed(speedMps: number, limitMps: number | undefined): void {
    const reg = this.optics.near.region;
    const scale = reg.heightPx / 12; // digits half the region's height
    const digitsH = GLYPH_HEIGHT * scale;
    const top = reg.yPx + (reg.heightPx - digitsH) / 2;
    const speed = this.#digits(Math.round(speedMps * MPS_TO_KMH));
    const right = reg.xPx + reg.widthPx * 0.42;
    this.#text(reg, speed, right - textWidthPx(speed, scale), top, scale, TEXT_COLOR);
    const unitScale = scale * 0.3;
    this.#text(reg, 'KM/H', right + scale, top + digitsH - GLYPH_HEIGHT * unitScale, unitScale, TEXT_COLOR);
    if (limitMps === undefined) return;
    const radius = Math.min(reg.heightPx / 2 - 6, reg.widthPx / 8);
    const cx = reg.xPx + reg.widthPx - radius - reg.widthPx * 0.03;
    const cy = reg.yPx + reg.heightPx / 2;
    this.#ring(reg, cx, cy, radius - radius * 0.18, radius, LIMIT_RING_COLOR);
    const limit = this.#digits(Math.round(limitMps * MPS_TO_KMH));
    const limitScale = (radius * 0.6) / GLYPH_HEIGHT;
    this.#text(reg, limit, cx - textWidthPx(limit, limitScale) / 2, cy - (GLYPH_HEIGHT * limitScale) / 2, limitScale, TEXT_COLOR);
  }

  /** Degraded state: a small amber warning triangle with '!' in the near region, nothing else. */
  #drawDegradedIndicator(): void {
    const reg = this.optics.near.region;
    const size = reg.heightPx * 0.6;
    const cx = reg.xPx + reg.widthPx / 2;
    const top = reg.yPx + (reg.heightPx - size) / 2;
    const thick = size * 0.08;
    const left = cx - size * 0.58;
    const right = cx + size * 0.58;
    this.#stroke(reg, cx, top, right, top + size, thick, DEGRADED_COLOR);
    this.#stroke(reg, right, top + size, left, top + size, thick, DEGRADED_COLOR);
    this.#stroke(reg, left, top + size, cx, top, thick, DEGRADED_COLOR);
    const scale = (size * 0.5) / GLYPH_HEIGHT;
    this.#text(reg, '!', cx - (GLYPH_WIDTH * scale) / 2, top + size * 0.35, scale, DEGRADED_COLOR);
  }

  /** Non-negative integer as decimal text; small values come from a fixed table (no allocation). */
  #digits(value: number): string {
    const v = Math.max(0, Math.min(999, value));
    return DIGIT_STRINGS[v] ?? String(v);
  }

  #rect(reg: Readonly<PanelRegionPx>, x: number, y: number, w: number, h: number, r: number, g: number, b: number): void {
    _polyA[0] = x; _polyA[1] = y;
    _polyA[2] = x + w; _polyA[3] = y;
    _polyA[4] = x + w; _polyA[5] = y + h;
    _polyA[6] = x; _polyA[7] = y + h;
    this.#fillPolygon(4, reg, r, g, b);
  }

  /** Annulus between radii, tessellated into quads. */
  #ring(reg: Readonly<PanelRegionPx>, cx: number, cy: number, innerPx: number, outerPx: number, color: Rgb): void {
    const segments = 48;
    for (let i = 0; i < segments; i++) {
      const a0 = (i / segments) * 2 * Math.PI;
      const a1 = ((i + 1) / segments) * 2 * Math.PI;
      _polyA[0] = cx + innerPx * Math.cos(a0); _polyA[1] = cy + innerPx * Math.sin(a0);
      _polyA[2] = cx + outerPx * Math.cos(a0); _polyA[3] = cy + outerPx * Math.sin(a0);
      _polyA[4] = cx + outerPx * Math.cos(a1); _polyA[5] = cy + outerPx * Math.sin(a1);
      _polyA[6] = cx + innerPx * Math.cos(a1); _polyA[7] = cy + innerPx * Math.sin(a1);
      this.#fillPolygon(4, reg, color[0], color[1], color[2]);
    }
  }

  /** Stroke-font text with its top-left corner at (x, y), `scalePx` pixels per glyph unit. */
  #text(reg: Readonly<PanelRegionPx>, text: string, x: number, y: number, scalePx: number, color: Rgb): void {
    const thick = scalePx * 0.75;
    for (let c = 0; c < text.length; c++) {
      const glyph = GLYPHS[text[c]!];
      if (glyph === undefined) continue;
      const ox = x + c * GLYPH_ADVANCE * scalePx;
      for (let k = 0; k + 3 < glyph.length; k += 4) {
        this.#stroke(reg, ox + glyph[k]! * scalePx, y + glyph[k + 1]! * scalePx, ox + glyph[k + 2]! * scalePx, y + glyph[k + 3]! * scalePx, thick, color);
      }
    }
  }

  /** A thick line segment with square caps (half the thickness beyond each end, so strokes join). */
  #stroke(reg: Readonly<PanelRegionPx>, x0: number, y0: number, x1: number, y1: number, thick: number, color: Rgb): void {
    const len = Math.hypot(x1 - x0, y1 - y0);
    if (!(len > 0)) return;
    const h = thick / 2;
    const ux = ((x1 - x0) / len) * h;
    const uy = ((y1 - y0) / len) * h;
    _polyA[0] = x0 - ux + uy; _polyA[1] = y0 - uy - ux;
    _polyA[2] = x1 + ux + uy; _polyA[3] = y1 + uy - ux;
    _polyA[4] = x1 + ux - uy; _polyA[5] = y1 + uy + ux;
    _polyA[6] = x0 - ux - uy; _polyA[7] = y0 - uy + ux;
    this.#fillPolygon(4, reg, color[0], color[1], color[2]);
  }

  // -------------------------------------------------------------------------------------------
  // Triangle output

  /** Clips the convex polygon in _polyA (n vertices, panel pixels) to `reg` and fans it into triangles. */
  #fillPolygon(n: number, reg: Readonly<PanelRegionPx>, r: number, g: number, b: number): void {
    // Sutherland-Hodgman against x >= x0, x <= x1, y >= y0, y <= y1, ping-ponging A <-> B.
    let src = _polyA;
    let dst = _polyB;
    let count = n;
    for (let edge = 0; edge < 4 && count > 0; edge++) {
      const axis = edge >> 1; // 0: x, 1: y
      const sign = edge & 1 ? -1 : 1; // keep sign * (c - limit) >= 0
      const limit = axis === 0 ? (sign > 0 ? reg.xPx : reg.xPx + reg.widthPx) : sign > 0 ? reg.yPx : reg.yPx + reg.heightPx;
      let out = 0;
      for (let i = 0; i < count; i++) {
        const j = (i + 1) % count;
        const ci = src[2 * i + axis]!;
        const cj = src[2 * j + axis]!;
        const di = sign * (ci - limit);
        const dj = sign * (cj - limit);
        if (di >= 0) {
          dst[2 * out] = src[2 * i]!;
          dst[2 * out + 1] = src[2 * i + 1]!;
          out++;
        }
        if ((di >= 0) !== (dj >= 0) && out < MAX_POLYGON) {
          const t = di / (di - dj);
          dst[2 * out] = src[2 * i]! + t * (src[2 * j]! - src[2 * i]!);
          dst[2 * out + 1] = src[2 * i + 1]! + t * (src[2 * j + 1]! - src[2 * i + 1]!);
          out++;
        }
      }
      count = out;
      const swap = src;
      src = dst;
      dst = swap;
    }
    for (let i = 1; i + 1 < count; i++) {
      if (this.#vertexCount + 3 > MAX_OVERLAY_VERTICES) {
        this.droppedTriangles++;
        continue;
      }
      this.#vertex(src[0]!, src[1]!, r, g, b);
      this.#vertex(src[2 * i]!, src[2 * i + 1]!, r, g, b);
      this.#vertex(src[2 * i + 2]!, src[2 * i + 3]!, r, g, b);
    }
  }

  #vertex(u: number, v: number, r: number, g: number, b: number): void {
    const k = 3 * this.#vertexCount++;
    this.#positions[k] = u;
    this.#positions[k + 1] = v;
    this.#positions[k + 2] = 0;
    this.#colors[k] = r;
    this.#colors[k + 1] = g;
    this.#colors[k + 2] = b;
  }
}

const DIGIT_STRINGS: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i));
