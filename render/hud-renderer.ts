// Headless HUD renderer: three.js WebGPURenderer on Dawn.
//   pass 1: overlay scene -> overlay target (clear black = no light on a HUD)
//   pass 2: WarpMesh textured with the overlay target -> panel target (orthographic, panel resolution)
//   readback: panel target -> caller's RGBA buffer, row 0 = top of the panel.
import type * as THREE_NS from 'three/webgpu';
import { installHeadlessWebGpu, type HeadlessBackend, type HeadlessWebGpuInfo } from './headless-gpu.js';
import type { WarpMesh } from './warp-mesh.js';

type Three = typeof THREE_NS;

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
  readonly #warpMaterial: THREE_NS.MeshBasicMaterial;
  #warpMesh: THREE_NS.Mesh | undefined;
  #warpGrid = '';
  readonly #readBuffer: GPUBuffer | undefined;
  readonly #paddedRowBytes: number;
  #busy = false;
  #disposed = false;

  private constructor(three: Three, renderer: THREE_NS.WebGPURenderer, gpu: HeadlessWebGpuInfo, widthPx: number, heightPx: number) {
    this.#three = three;
    this.#renderer = renderer;
    this.gpu = gpu;
    this.widthPx = widthPx;
    this.heightPx = heightPx;
    const targetOptions = { depthBuffer: true, generateMipmaps: false, magFilter: three.LinearFilter, minFilter: three.LinearFilter };
    this.#overlayTarget = new three.RenderTarget(widthPx, heightPx, targetOptions);
    this.#panelTarget = new three.RenderTarget(widthPx, heightPx, { ...targetOptions, depthBuffer: false });
    this.#warpScene = new three.Scene();
    // Warp geometry lives in panel units with y up: x in [0, 1], y in [0, 1] (converted from the mesh's y down).
    this.#warpCamera = new three.OrthographicCamera(0, 1, 1, 0, -1, 1);
    this.#warpMaterial = new three.MeshBasicMaterial({ map: this.#overlayTarget.texture, depthTest: false, depthWrite: false });
    this.#warpMaterial.toneMapped = false;
    // Copy the overlay's alpha through as is (an opaque material would write alpha 1 everywhere).
    this.#warpMaterial.transparent = true;
    this.#warpMaterial.blending = three.NoBlending;

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
    // No DOM: a plain object stands in for the canvas; we only ever render into render targets.
    const canvas = { width: widthPx, height: heightPx, style: {} } as unknown as HTMLCanvasElement;
    const renderer = new three.WebGPURenderer({ canvas, antialias: false, alpha: true });
    await renderer.init();
    renderer.setClearColor(0x000000, 0);
    return new HudRenderer(three, renderer, gpu, widthPx, heightPx);
  }

  /**
   * Renders `scene` from `camera` into the overlay target, warps it through `warp` into the panel
   * target and reads it back as RGBA8, row 0 = top of the panel. Writes into `into` when given
   * (length widthPx * heightPx * 4), else allocates. One render at a time per renderer.
   */
  async render(scene: THREE_NS.Scene, camera: THREE_NS.Camera, warp: WarpMesh, into?: Uint8Array): Promise<Uint8Array> {
    if (this.#disposed) throw new Error('HudRenderer.render: renderer is disposed');
    const bytes = this.widthPx * this.heightPx * BYTES_PER_PIXEL;
    if (into !== undefined && (!(into instanceof Uint8Array) || into.length !== bytes)) {
      throw new RangeError(`HudRenderer.render: 'into' must be a Uint8Array of ${bytes} bytes, got ${into?.length}`);
    }
    if (this.#busy) throw new Error('HudRenderer.render: a render is still in flight (await the previous one)');
    this.#busy = true;
    try {
      const out = into ?? new Uint8Array(bytes);
      this.#updateWarp(warp);
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
    this.#warpMesh?.geometry.dispose();
    this.#warpMaterial.dispose();
    this.#overlayTarget.dispose();
    this.#panelTarget.dispose();
    this.#readBuffer?.destroy();
    void this.#renderer.dispose(); // typed as returning a promise in @types/three; nothing to wait for
  }

  /** Copies the mesh into the warp geometry (rebuilt only when the grid size changes). */
  #updateWarp(warp: WarpMesh): void {
    const three = this.#three;
    const grid = `${warp.cols}x${warp.rows}`;
    if (this.#warpMesh === undefined || this.#warpGrid !== grid) {
      if (this.#warpMesh !== undefined) {
        this.#warpScene.remove(this.#warpMesh);
        this.#warpMesh.geometry.dispose();
      }
      const geometry = new three.BufferGeometry();
      geometry.setAttribute('position', new three.BufferAttribute(new Float32Array(warp.vertexCount * 3), 3));
      geometry.setAttribute('uv', new three.BufferAttribute(new Float32Array(warp.vertexCount * 2), 2));
      geometry.setIndex(new three.BufferAttribute(warp.indices.slice(), 1));
      this.#warpMesh = new three.Mesh(geometry, this.#warpMaterial);
      this.#warpMesh.frustumCulled = false;
      this.#warpScene.add(this.#warpMesh);
      this.#warpGrid = grid;
    }
    const geometry = this.#warpMesh.geometry;
    const pos = geometry.getAttribute('position') as THREE_NS.BufferAttribute;
    const uv = geometry.getAttribute('uv') as THREE_NS.BufferAttribute;
    const p = pos.array as Float32Array;
    const t = uv.array as Float32Array;
    const src = warp.positions;
    const srcUv = warp.uvs;
    for (let k = 0, n = warp.vertexCount; k < n; k++) {
      // Positions: mesh is y-down, the warp camera y-up. UVs: sampling a render-target texture on
      // Dawn addresses texture memory, whose row 0 is the top of the image (same top-down
      // orientation as the readback), so the mesh's top-down v is passed through unflipped.
      p[3 * k] = src[2 * k] ?? 0;
      p[3 * k + 1] = 1 - (src[2 * k + 1] ?? 0);
      p[3 * k + 2] = 0;
      t[2 * k] = srcUv[2 * k] ?? 0;
      t[2 * k + 1] = srcUv[2 * k + 1] ?? 0;
    }
    pos.needsUpdate = true;
    uv.needsUpdate = true;
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
