// Headless WebGPU for Node: Dawn (npm `webgpu`) behind `navigator.gpu`, plus the few browser globals
// three.js (`three/webgpu`) touches. This is the only module in arhud that writes globals; it must run
// before `three/webgpu` is imported (HudRenderer.create imports three dynamically after calling it).

/** Dawn backend to use: 'opengles' (EGL surfaceless, runs on CPU via Mesa llvmpipe), 'vulkan' (GPU driver), 'auto' (vulkan, then opengles). */
export type HeadlessBackend = 'opengles' | 'vulkan' | 'auto';

/** Options of installHeadlessWebGpu. */
export interface HeadlessWebGpuOptions {
  /** Dawn backend; default 'auto'. */
  backend?: HeadlessBackend;
}

/** What installHeadlessWebGpu found. */
export interface HeadlessWebGpuInfo {
  /** Backend that gave an adapter. */
  readonly backend: 'opengles' | 'vulkan';
  /** Adapter description, e.g. 'OpenGL ES 3.2 Mesa 22.3.6'. */
  readonly adapterDescription: string;
}

/** Environment each backend needs, quoted in the no-adapter error. */
export const BACKEND_REQUIREMENTS: Readonly<Record<'opengles' | 'vulkan', string>> = {
  opengles:
    'EGL + OpenGL ES 3.1+ (Debian: libegl-mesa0 libgles2 libgl1-mesa-dri; Mesa llvmpipe works on CPU) ' +
    'and EGL_PLATFORM=surfaceless (set automatically when unset before Dawn loads)',
  vulkan: 'a Vulkan driver and loader (Debian: libvulkan1 plus mesa-vulkan-drivers or the GPU vendor driver)',
};

const VALID_BACKENDS: readonly HeadlessBackend[] = ['opengles', 'vulkan', 'auto'];

let installed: HeadlessWebGpuInfo | undefined;
let installing: Promise<HeadlessWebGpuInfo> | undefined;

/** Message for "no adapter" on the given backends; exported so tests can check it without a broken machine. */
export function noAdapterMessage(requested: HeadlessBackend, tried: readonly ('opengles' | 'vulkan')[], causes: readonly string[] = []): string {
  const needs = tried.map((b) => `${b} needs ${BACKEND_REQUIREMENTS[b]}`).join('; ');
  const why = causes.length > 0 ? ` (${causes.join('; ')})` : '';
  return `installHeadlessWebGpu: no WebGPU adapter for backend '${requested}' (tried ${tried.join(', ')})${why}. ${needs}.`;
}

type DawnModule = { create: (flags: string[]) => GPU; globals: object };

async function probe(dawn: DawnModule, backend: 'opengles' | 'vulkan'): Promise<{ gpu: GPU; adapter: GPUAdapter } | string> {
  try {
    const gpu = dawn.create([`backend=${backend}`]);
    // The GLES backend only offers compatibility-mode adapters; ask for core first, then compatibility.
    const adapter =
      (await gpu.requestAdapter()) ??
      (await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions));
    return adapter === null ? `${backend}: requestAdapter returned null` : { gpu, adapter };
  } catch (err) {
    return `${backend}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

async function install(backend: HeadlessBackend): Promise<HeadlessWebGpuInfo> {
  // Mesa reads EGL_PLATFORM when Dawn opens EGL, i.e. after this import; only fill it in when unset.
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const dawn = (await import('webgpu')) as unknown as DawnModule;
  const tried: ('opengles' | 'vulkan')[] = backend === 'auto' ? ['vulkan', 'opengles'] : [backend];
  const causes: string[] = [];
  for (const b of tried) {
    const found = await probe(dawn, b);
    if (typeof found === 'string') {
      causes.push(found);
      continue;
    }
    const g = globalThis as Record<string, unknown>;
    Object.assign(globalThis, dawn.globals);
    // navigator is a getter-only global on Node >= 21; define our own property so this works on 20 and 22.
    const nav = (g.navigator ?? {}) as Record<string, unknown>;
    Object.defineProperty(globalThis, 'navigator', {
      value: { ...nav, gpu: found.gpu },
      configurable: true,
      writable: true,
    });
    g.self ??= globalThis;
    if (typeof g.requestAnimationFrame !== 'function') {
      g.requestAnimationFrame = (cb: (t: number) => void): ReturnType<typeof setTimeout> => {
        const id = setTimeout(() => cb(performance.now()), 16);
        id.unref(); // three's animation loop must not keep the process alive
        return id;
      };
      g.cancelAnimationFrame = (id: ReturnType<typeof setTimeout>): void => clearTimeout(id);
    }
    return { backend: b, adapterDescription: found.adapter.info?.description ?? '' };
  }
  throw new Error(noAdapterMessage(backend, tried, causes));
}

/**
 * Installs Dawn as `navigator.gpu` and the `self` / `requestAnimationFrame` shims three.js needs,
 * then checks that an adapter exists. Idempotent: later calls return the first result (the backend
 * cannot change once Dawn is installed). Throws an Error naming the backend and the environment it
 * needs when no adapter is found.
 */
export async function installHeadlessWebGpu(options: HeadlessWebGpuOptions = {}): Promise<HeadlessWebGpuInfo> {
  const backend = options.backend ?? 'auto';
  if (!VALID_BACKENDS.includes(backend)) {
    throw new RangeError(`installHeadlessWebGpu: 'backend' must be one of ${VALID_BACKENDS.join(', ')}, got '${String(backend)}'`);
  }
  if (installed !== undefined) return installed;
  installing ??= install(backend).then(
    (info) => (installed = info),
    (err: unknown) => {
      installing = undefined; // allow a retry with another backend
      throw err;
    },
  );
  return installing;
}
