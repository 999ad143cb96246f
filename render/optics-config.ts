/**
 * HUD optics configuration: the driver's eye point (eyebox centre), the display panel and the two
 * virtual image planes (`far` AR plane registered to the road, `near` status plane), each with its
 * own optics and its own region of the panel.
 *
 * The file is JSON validated by JSON Schema (ajv). Every field is optional: what a file leaves out
 * comes from `HUD_OPTICS_DEFAULTS` (the one place defaults live). An invalid file is refused with the
 * file and the failing field: `hud-optics.json: field 'far.vidM' must be <= 15, got 20`.
 *
 * Frames and units: the eye point is in the vehicle frame (ISO 8855: origin rear-axle centre on the
 * ground, x forward, y left, z up; metres). Panel pixels: u right, v down, origin at the panel's
 * top-left corner, pixel (i, j) has its centre at (i + 0.5, j + 0.5).
 */
import { readJsonFile, schemaError } from '../pipeline/index.js';
import { Ajv } from 'ajv';

/** A point or vector in the vehicle frame (x forward, y left, z up), metres. */
export interface Vec3M {
  x: number;
  y: number;
  z: number;
}

/** A rectangle of panel pixels: top-left corner (xPx right, yPx down) and size. */
export interface PanelRegionPx {
  xPx: number;
  yPx: number;
  widthPx: number;
  heightPx: number;
}

/** Optics of one virtual image plane. */
export interface VirtualImagePlaneConfig {
  /** Virtual image distance: eyebox centre to plane centre along the HUD axis, metres. */
  vidM: number;
  /** Full horizontal field of view seen from the eyebox centre, degrees. */
  fovHorizontalDeg: number;
  /** Full vertical field of view seen from the eyebox centre, degrees. */
  fovVerticalDeg: number;
  /** Look-down angle: HUD axis below the horizontal, degrees (positive = down). */
  lookDownDeg: number;
  /** Panel pixels that this plane's image comes from. */
  panelRegion: PanelRegionPx;
}

/** A complete, validated HUD optics configuration. */
export interface HudOpticsConfig {
  /** Eyebox centre (design eye point) in the vehicle frame, metres. */
  eyeM: Vec3M;
  /** Display panel resolution, pixels. */
  panel: { widthPx: number; heightPx: number };
  /** AR plane, content registered to the world. */
  far: VirtualImagePlaneConfig;
  /** Status plane (speed, limit, warning text). */
  near: VirtualImagePlaneConfig;
}

/** Allowed VID range of the far (AR) plane, metres. */
export const FAR_VID_MIN_M = 7;
export const FAR_VID_MAX_M = 15;
/** Allowed VID range of the near (status) plane, metres. */
export const NEAR_VID_MIN_M = 1.5;
export const NEAR_VID_MAX_M = 5;
/** Largest field of view accepted on either axis, degrees. */
export const FOV_MAX_DEG = 60;
/** Allowed look-down range, degrees (negative = HUD axis above the horizontal). */
export const LOOK_DOWN_MIN_DEG = -10;
export const LOOK_DOWN_MAX_DEG = 20;
/** Largest panel side accepted, pixels. */
export const PANEL_MAX_PX = 8192;

/**
 * Defaults, in one place.
 * - Eye: a mid-size passenger car driver, 1.60 m ahead of the rear axle, 0.37 m left of the
 *   centreline (left-hand drive), 1.20 m above the ground.
 * - Panel 1280x480. The far plane uses the top 1280x360 (10 x 4 deg: 128 px/deg horizontally,
 *   90 px/deg vertically; the relay optics stretch), the near plane a 400x120 strip centred below it
 *   (5 x 1.5 deg: 80 px/deg on both axes); the 440 px either side of it stay black.
 * - Far: VID 10 m, FOV 10 x 4 deg, look-down 2.5 deg (its view meets the road from about 15 m to
 *   137 m ahead of the eye). Near: VID 2.5 m, FOV 5 x 1.5 deg, look-down 5.5 deg (just below far).
 */
export const HUD_OPTICS_DEFAULTS: Readonly<HudOpticsConfig> = deepFreeze({
  eyeM: { x: 1.6, y: 0.37, z: 1.2 },
  panel: { widthPx: 1280, heightPx: 480 },
  far: {
    vidM: 10,
    fovHorizontalDeg: 10,
    fovVerticalDeg: 4,
    lookDownDeg: 2.5,
    panelRegion: { xPx: 0, yPx: 0, widthPx: 1280, heightPx: 360 },
  },
  near: {
    vidM: 2.5,
    fovHorizontalDeg: 5,
    fovVerticalDeg: 1.5,
    lookDownDeg: 5.5,
    panelRegion: { xPx: 440, yPx: 360, widthPx: 400, heightPx: 120 },
  },
});

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) if (typeof child === 'object' && child !== null) deepFreeze(child as object);
  return Object.freeze(value);
}

const REGION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    xPx: { type: 'integer', minimum: 0, maximum: PANEL_MAX_PX },
    yPx: { type: 'integer', minimum: 0, maximum: PANEL_MAX_PX },
    widthPx: { type: 'integer', minimum: 1, maximum: PANEL_MAX_PX },
    heightPx: { type: 'integer', minimum: 1, maximum: PANEL_MAX_PX },
  },
} as const;

function planeSchema(vidMinM: number, vidMaxM: number) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      vidM: { type: 'number', minimum: vidMinM, maximum: vidMaxM },
      fovHorizontalDeg: { type: 'number', exclusiveMinimum: 0, maximum: FOV_MAX_DEG },
      fovVerticalDeg: { type: 'number', exclusiveMinimum: 0, maximum: FOV_MAX_DEG },
      lookDownDeg: { type: 'number', minimum: LOOK_DOWN_MIN_DEG, maximum: LOOK_DOWN_MAX_DEG },
      panelRegion: REGION_SCHEMA,
    },
  } as const;
}

/** JSON Schema of the HUD optics file (every field optional; defaults from `HUD_OPTICS_DEFAULTS`). */
export const HUD_OPTICS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    eyeM: {
      type: 'object',
      additionalProperties: false,
      properties: {
        x: { type: 'number', minimum: -5, maximum: 10 },
        y: { type: 'number', minimum: -2, maximum: 2 },
        z: { type: 'number', exclusiveMinimum: 0, maximum: 4 },
      },
    },
    panel: {
      type: 'object',
      additionalProperties: false,
      properties: {
        widthPx: { type: 'integer', minimum: 1, maximum: PANEL_MAX_PX },
        heightPx: { type: 'integer', minimum: 1, maximum: PANEL_MAX_PX },
      },
    },
    far: planeSchema(FAR_VID_MIN_M, FAR_VID_MAX_M),
    near: planeSchema(NEAR_VID_MIN_M, NEAR_VID_MAX_M),
  },
} as const;

const ajv = new Ajv({ strict: true, allErrors: false });
const validateOptics = ajv.compile(HUD_OPTICS_SCHEMA);

type PartialDeep<T> = { [K in keyof T]?: T[K] extends object ? PartialDeep<T[K]> : T[K] };

function resolvePlane(raw: PartialDeep<VirtualImagePlaneConfig> | undefined, defaults: VirtualImagePlaneConfig): VirtualImagePlaneConfig {
  return {
    vidM: raw?.vidM ?? defaults.vidM,
    fovHorizontalDeg: raw?.fovHorizontalDeg ?? defaults.fovHorizontalDeg,
    fovVerticalDeg: raw?.fovVerticalDeg ?? defaults.fovVerticalDeg,
    lookDownDeg: raw?.lookDownDeg ?? defaults.lookDownDeg,
    panelRegion: { ...defaults.panelRegion, ...raw?.panelRegion },
  };
}

function regionText(r: PanelRegionPx): string {
  return `${r.widthPx}x${r.heightPx} at (${r.xPx}, ${r.yPx})`;
}

/**
 * Validates a parsed HUD optics file and fills in defaults. `source` names the file in errors.
 * Throws TypeError (wrong kind, unknown field) or RangeError (value out of range, regions outside the
 * panel or overlapping), the message starting `<source>: field '<path>' ...`.
 */
export function parseHudOpticsConfig(json: unknown, source = '(in-memory HUD optics config)'): HudOpticsConfig {
  if (!validateOptics(json)) throw schemaError(source, validateOptics.errors![0]!, json);
  const raw = json as PartialDeep<HudOpticsConfig>;
  const d = HUD_OPTICS_DEFAULTS;
  const config: HudOpticsConfig = {
    eyeM: { ...d.eyeM, ...raw.eyeM },
    panel: { ...d.panel, ...raw.panel },
    far: resolvePlane(raw.far, d.far),
    near: resolvePlane(raw.near, d.near),
  };
  const { widthPx, heightPx } = config.panel;
  for (const name of ['far', 'near'] as const) {
    const r = config[name].panelRegion;
    if (r.xPx + r.widthPx > widthPx || r.yPx + r.heightPx > heightPx) {
      throw new RangeError(`${source}: field '${name}.panelRegion' must lie inside the ${widthPx}x${heightPx} panel, got ${regionText(r)}`);
    }
  }
  const f = config.far.panelRegion;
  const n = config.near.panelRegion;
  const overlap = n.xPx < f.xPx + f.widthPx && f.xPx < n.xPx + n.widthPx && n.yPx < f.yPx + f.heightPx && f.yPx < n.yPx + n.heightPx;
  if (overlap) {
    throw new RangeError(`${source}: field 'near.panelRegion' must not overlap 'far.panelRegion' (${regionText(f)}), got ${regionText(n)}`);
  }
  return config;
}

/** Reads and validates a HUD optics file; errors name the file (and the field, see `parseHudOpticsConfig`). */
export async function loadHudOpticsConfig(path: string): Promise<HudOpticsConfig> {
  const json = await readJsonFile(path, 'loadHudOpticsConfig');
  return parseHudOpticsConfig(json, path);
}
