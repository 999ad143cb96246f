// Headless HUD renderer: three.js WebGPURenderer on Dawn.
//   pass 1: overlay scene -> overlay target (clear black = no light on a HUD)
//   pass 2: WarpMesh textured with the overlay target -> panel target (orthographic, panel resolution)
//   readback: panel target -> caller's RGBA buffer, row 0 = top of the panel.
import type * as THREE_NS from 'three/webgpu';
import { installHeadlessWebGpu, type HeadlessBackend, type HeadlessWebGpuInfo } from './headless-gpu.js';
import { WarpMesh } from './warp-mesh.js';

type Three = typeof THREE_NS;
type Tsl = typeof import('three/tsl');

/** A panel region in pixels (e.g. the far or near plane's). */
export interface PanelRegion {
  xPx: number;
  yPx: number;
  widthPx: number;
  heightPx: number;
}

/**
 * One plane's own warp: `mesh` positions and UVs are region-local ([0, 1] over `region`), so the far
 * AR plane and the near status plane each get their windshield pre-distortion, and content never
 * crosses from one region into the other.
 */
export interface RegionWarp {
  region: PanelRegion;
  mesh: WarpMesh;
}

/** Options of HudRenderer.create. */
export interface HudRendererOptions {
  /** Panel width in pixels; default 1280. */
  widthPx?: number;
  /** Panel height in pixels; default 480. */
  heightPx?: number;
  /** Dawn backend; default 'auto' (vulkan, then opengles). */
  backend?: HeadlessBackend;
}

const DEFAULTS = { widthPx: 1280, heightPx: 480, backend: 'auto' as HeadlessBackend };
const MAX_PANEL_PX = 8192;
const BYTES_PER_PIXEL = 4;
const COPY_ROW_ALIGN = 256; // WebGPU copyTextureToBuffer bytesPerRow alignment

/** The slice of three's WebGPUBackend internals the pooled readback uses (three 0.187). */
interface BackendInternals {
  device?: GPUDevice;
  get?: (o: object) => { texture?: GPUTexture };
}

/** Renders HUD overlay scenes through a warp mesh into an RGBA panel image, headless. */
export class HudRenderer {
  /** Panel width in pixels. */
  readonly widthPx: number;
  /** Panel height in pixels. */
  readonly heightPx: number;
  /** Backend and adapter in use. */
  readonly gpu: HeadlessWebGpuInfo;
  /** 'pooled' when readback reuses one GPU buffer (three internals), 'three' when it uses readRenderTargetPixelsAsync. */
  readonly readbackPath: 'pooled' | 'three';

  readonly #three: Three;
  readonly #renderer: THREE_NS.WebGPURenderer;
  readonly #overlayTarget: THREE_NS.RenderTarget;
  readonly #panelTarget: THREE_NS.RenderTarget;
  readonly #warpScene: THREE_NS.Scene;
  readonly #warpCamera: THREE_NS.OrthographicCamera;
  readonly #tsl: Tsl;
  /** One material per region: samples the overlay only inside the region's own part of it. */
  #warpMaterials: THREE_NS.MeshBasicNodeMaterial[] = [];
  #regionBounds: THREE_NS.Vector4[] = [];
  /** One warp mesh per region, rebuilt only when the region count or a grid size changes. */
  #warpMeshes: THREE_NS.Mesh[] = [];
  #warpLayout = '';
  readonly #wholePanel: PanelRegion;
  readonly #readBuffer: GPUBuffer | undefined;
  readonly #paddedRowBytes: number;
  #busy = false;
  #disposed = false;

  private constructor(three: Three, tsl: Tsl, renderer: THREE_NS.WebGPURenderer, gpu: HeadlessWebGpuInfo, widthPx: number, heightPx: number) {
    this.#three = three;
    this.#tsl = tsl;
    this.#renderer = renderer;
    this.gpu = gpu;
    this.widthPx = widthPx;
    this.heightPx = heightPx;
    this.#wholePanel = { xPx: 0, yPx: 0, widthPx, heightPx };
    const targetOptions = { depthBuffer: true, generateMipmaps: false, magFilter: three.LinearFilter, minFilter: three.LinearFilter };
    this.#overlayTarget = new three.RenderTarget(widthPx, heightPx, targetOptions);
    this.#panelTarget = new three.RenderTarget(widthPx, heightPx, { ...targetOptions, depthBuffer: false });
    this.#warpScene = new three.Scene();
    // Warp geometry lives in panel units with y up: x in [0, 1], y in [0, 1] (converted from the mesh's y down).
    this.#warpCamera = new three.OrthographicCamera(0, 1, 1, 0, -1, 1);
    const backend = renderer.backend as unknown as BackendInternals;
    this.#paddedRowBytes = Math.ceil((widthPx * BYTES_PER_PIXEL) / COPY_ROW_ALIGN) * COPY_ROW_ALIGN;
    if (backend.device !== undefined && typeof backend.get === 'function') {
      this.#readBuffer = backend.device.createBuffer({
        size: this.#paddedRowBytes * heightPx,
        usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
      });
      this.readbackPath = 'pooled';
    } else {
      this.readbackPath = 'three';
    }
  }

  /** Installs headless WebGPU (if needed), imports three/webgpu and initialises the renderer. */
  static async create(options: HudRendererOptions = {}): Promise<HudRenderer> {
    const widthPx = options.widthPx ?? DEFAULTS.widthPx;
    const heightPx = options.heightPx ?? DEFAULTS.heightPx;
    for (const [name, value] of [['widthPx', widthPx], ['heightPx', heightPx]] as const) {
      if (!Number.isInteger(value) || value < 1 || value > MAX_PANEL_PX) {
        throw new RangeError(`HudRenderer.create: '${name}' must be an integer in [1, ${MAX_PANEL_PX}], got ${value}`);
      }
    }
    const gpu = await installHeadlessWebGpu({ backend: options.backend ?? DEFAULTS.backend });
    const three = await import('three/webgpu'); // after the globals above exist
    const tsl = await import('three/tsl');
    // No DOM: a plain object stands in for the canvas; we only ever render into render targets.
    const canvas = { width: widthPx, height: heightPx, style: {} } as unknown as HTMLCanvasElement;
    const renderer = new three.WebGPURenderer({ canvas, antialias: false, alpha: true });
    await renderer.init();
    renderer.setClearColor(0x000000, 0);
    const hud = new HudRenderer(three, tsl, renderer, gpu, widthPx, heightPx);
    // The first render compiles the overlay, warp and readback pipelines (~110 ms on the CPU path);
    // done here, it cannot make the first live frame overrun its deadline and blank the HUD.
    await hud.render(new three.Scene(), new three.PerspectiveCamera(), WarpMesh.identity());
    return hud;
  }

  /**
   * Renders `scene` from `camera` into the overlay target, warps it through `warp` (one mesh over the
   * whole panel, or one per plane region) into the panel target and reads it back as RGBA8, row 0 =
   * top of the panel. Writes into `into` when given (length widthPx * heightPx * 4), else allocates.
   * One render at a time per renderer.
   */
  async render(scene: THREE_NS.Scene, camera: THREE_NS.Camera, warp: WarpMesh | readonly RegionWarp[], into?: Uint8Array): Promise<Uint8Array> {
    if (this.#disposed) throw new Error('HudRenderer.render: renderer is disposed');
    const bytes = this.widthPx * this.heightPx * BYTES_PER_PIXEL;
    if (into !== undefined && (!(into instanceof Uint8Array) || into.length !== bytes)) {
      throw new RangeError(`HudRenderer.render: 'into' must be a Uint8Array of ${bytes} bytes, got ${into?.length}`);
    }
    if (this.#busy) throw new Error('HudRenderer.render: a render is still in flight (await the previous one)');
    this.#busy = true;
    try {
      const out = into ?? new Uint8Array(bytes);
      this.#updateWarp(Array.isArray(warp) ? (warp as readonly RegionWarp[]) : [{ region: this.#wholePanel, mesh: warp as WarpMesh }]);
      const r = this.#renderer;
      r.setRenderTarget(this.#overlayTarget);
      r.clear();
      r.render(scene, camera);
      r.setRenderTarget(this.#panelTarget);
      r.clear();
      r.render(this.#warpScene, this.#warpCamera);
      r.setRenderTarget(null);
      await this.#readback(out);
      return out;
    } finally {
      this.#busy = false;
    }
  }

  /** Releases GPU resources; the renderer cannot be used afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const mesh of this.#warpMeshes) mesh.geometry.dispose();
    for (const material of this.#warpMaterials) material.dispose();
    this.#overlayTarget.dispose();
    this.#panelTarget.dispose();
    this.#readBuffer?.destroy();
    void this.#renderer.dispose(); // typed as returning a promise in @types/three; nothing to wait for
  }

  /** Copies each region's mesh into its warp geometry (rebuilt only when the layout changes). */
  #updateWarp(warps: readonly RegionWarp[]): void {
    const three = this.#three;
    if (warps.length === 0) throw new RangeError('HudRenderer.render: \'warp\' needs at least one region');
    for (const [i, { region }] of warps.entries()) {
      const inside = region.xPx >= 0 && region.yPx >= 0 && region.widthPx > 0 && region.heightPx > 0 && region.xPx + region.widthPx <= this.widthPx && region.yPx + region.heightPx <= this.heightPx;
      if (!inside) throw new RangeError(`HudRenderer.render: 'warp[${i}].region' must lie inside the ${this.widthPx}x${this.heightPx} panel`);
    }
    const layout = warps.map((w) => `${w.mesh.cols}x${w.mesh.rows}`).join(',');
    if (layout !== this.#warpLayout) {
      for (const mesh of this.#warpMeshes) {
        this.#warpScene.remove(mesh);
        mesh.geometry.dispose();
      }
      for (const material of this.#warpMaterials) material.dispose();
      this.#regionBounds = warps.map(() => new three.Vector4());
      this.#warpMaterials = this.#regionBounds.map((bounds) => this.#regionMaterial(bounds));
      this.#warpMeshes = warps.map(({ mesh: warp }, i) => {
        const geometry = new three.BufferGeometry();
        geometry.setAttribute('position', new three.BufferAttribute(new Float32Array(warp.vertexCount * 3), 3));
        geometry.setAttribute('uv', new three.BufferAttribute(new Float32Array(warp.vertexCount * 2), 2));
        geometry.setIndex(new three.BufferAttribute(warp.indices.slice(), 1));
        const mesh = new three.Mesh(geometry, this.#warpMaterials[i]!);
        mesh.frustumCulled = false;
        this.#warpScene.add(mesh);
        return mesh;
      });
      this.#warpLayout = layout;
    }
    const panelW = this.widthPx;
    const panelH = this.heightPx;
    for (const [i, { region, mesh: warp }] of warps.entries()) {
      const geometry = this.#warpMeshes[i]!.geometry;
      const pos = geometry.getAttribute('position') as THREE_NS.BufferAttribute;
      const uv = geometry.getAttribute('uv') as THREE_NS.BufferAttribute;
      const p = pos.array as Float32Array;
      const t = uv.array as Float32Array;
      const src = warp.positions;
      const srcUv = warp.uvs;
      // Region-local [0, 1] -> panel [0, 1], for both where a vertex sits and what it samples.
      const x0 = region.xPx / panelW;
      const y0 = region.yPx / panelH;
      const sx = region.widthPx / panelW;
      const sy = region.heightPx / panelH;
      this.#regionBounds[i]!.set(x0, y0, x0 + sx, y0 + sy);
      for (let k = 0, n = warp.vertexCount; k < n; k++) {
        // Positions: mesh is y-down, the warp camera y-up. UVs: sampling a render-target texture on
        // Dawn addresses texture memory, whose row 0 is the top of the image (same top-down
        // orientation as the readback), so the mesh's top-down v is passed through unflipped.
        p[3 * k] = x0 + sx * (src[2 * k] ?? 0);
        p[3 * k + 1] = 1 - (y0 + sy * (src[2 * k + 1] ?? 0));
        p[3 * k + 2] = 0;
        t[2 * k] = x0 + sx * (srcUv[2 * k] ?? 0);
        t[2 * k + 1] = y0 + sy * (srcUv[2 * k + 1] ?? 0);
      }
      pos.needsUpdate = true;
      uv.needsUpdate = true;
    }
  }

  /**
   * The warp material of one region: the overlay texture where the uv lies inside the region's
   * bounds (u0, v0, u1, v1 in overlay uv), black (no light) elsewhere. A calibrated mesh reaches past
   * its region at the panel's edges; without the mask it would smear edge pixels there, or show the
   * other plane's content (the near plane's status text in the far plane's corner).
   */
  #regionMaterial(bounds: THREE_NS.Vector4): THREE_NS.MeshBasicNodeMaterial {
    const { texture, uniform, uv, step } = this.#tsl;
    const b = uniform(bounds);
    const st = uv();
    const inside = step(b.x, st.x).mul(step(st.x, b.z)).mul(step(b.y, st.y)).mul(step(st.y, b.w));
    const material = new this.#three.MeshBasicNodeMaterial({ depthTest: false, depthWrite: false });
    material.colorNode = texture(this.#overlayTarget.texture, st).mul(inside);
    material.toneMapped = false;
    // Copy the overlay's alpha through as is (an opaque material would write alpha 1 everywhere).
    material.transparent = true;
    material.blending = this.#three.NoBlending;
    return material;
  }

  async #readback(out: Uint8Array): Promise<void> {
    const w = this.widthPx;
    const h = this.heightPx;
    const rowBytes = w * BYTES_PER_PIXEL;
    const backend = this.#renderer.backend as unknown as BackendInternals;
    const gpuTexture = backend.get?.(this.#panelTarget.texture).texture;
    if (this.#readBuffer === undefined || backend.device === undefined || gpuTexture === undefined) {
      // Public path: allocates a staging buffer and an array per call.
      const px = (await this.#renderer.readRenderTargetPixelsAsync(this.#panelTarget, 0, 0, w, h)) as Uint8Array;
      out.set(px.subarray(0, out.length));
      return;
    }
    const device = backend.device;
    const encoder = device.createCommandEncoder();
    encoder.copyTextureToBuffer(
      { texture: gpuTexture, mipLevel: 0, origin: { x: 0, y: 0, z: 0 } },
      { buffer: this.#readBuffer, bytesPerRow: this.#paddedRowBytes },
      { width: w, height: h, depthOrArrayLayers: 1 },
    );
    device.queue.submit([encoder.finish()]);
    await this.#readBuffer.mapAsync(GPUMapMode.READ);
    try {
      const mapped = new Uint8Array(this.#readBuffer.getMappedRange());
      if (this.#paddedRowBytes === rowBytes) {
        out.set(mapped);
      } else {
        for (let y = 0; y < h; y++) out.set(mapped.subarray(y * this.#paddedRowBytes, y * this.#paddedRowBytes + rowBytes), y * rowBytes);
      }
    } finally {
      this.#readBuffer.unmap();
    }
  }
}
