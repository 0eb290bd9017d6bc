// Acquires a WebGPU device under Node through Dawn (npm `webgpu`): Vulkan first, then Dawn's OpenGL backend in
// compatibility mode. WGRAD_BACKEND=vulkan|opengl|auto overrides the choice. This is the only tensor module
// that touches Node APIs.
import { create, globals } from 'webgpu';
import { type AdapterSummary, setDevice, setWaitHook } from './gpu.js';

type Attempt = { backend: 'vulkan' | 'opengl'; result: string };

// Dawn segfaults if the object returned by create() is garbage collected: keep it for the process lifetime.
const keepAlive: GPU[] = [];

function describe(info: GPUAdapterInfo | undefined): string {
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s?.length);
  return parts.join(' / ') || 'unnamed adapter';
}

async function tryBackend(
  backend: 'vulkan' | 'opengl',
): Promise<{ adapter: GPUAdapter; summary: AdapterSummary } | string> {
  try {
    if (backend === 'opengl') process.env.EGL_PLATFORM ??= 'surfaceless';
    const gpu = create(backend === 'opengl' ? ['backend=opengl'] : ['backend=vulkan']);
    keepAlive.push(gpu);
    const options: GPURequestAdapterOptions = backend === 'opengl' ? { featureLevel: 'compatibility' } : {};
    const adapter = await gpu.requestAdapter(options);
    if (!adapter) return 'no adapter';
    const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
    const sgMin = info?.subgroupMinSize;
    const isFallback = Boolean(
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? adapter.info?.isFallbackAdapter,
    );
    return {
      adapter,
      summary: {
        backend,
        description: describe(adapter.info),
        isFallback,
        featureLevel: backend === 'opengl' ? 'compatibility' : 'core',
        subgroupSize: sgMin && sgMin === info.subgroupMaxSize ? sgMin : undefined,
      },
    };
  } catch (e) {
    return (e as Error).message;
  }
}

const INSTALL_HINT = [
  'Install a WebGPU-capable driver. On Debian bookworm without a GPU, run `npm run setup` (it installs',
  "Mesa's lavapipe Vulkan driver from bookworm-backports), or by hand as root:",
  '  apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1',
  'For the OpenGL fallback: apt-get install libegl1 libgles2 libegl-mesa0 (and WGRAD_BACKEND=opengl).',
].join('\n');

// While a mapAsync / onSubmittedWorkDone is pending, Dawn's Node binding polls by re-arming
// `globalThis.setImmediate` (looked up on every tick), which spins the main thread at 100%. On a CPU adapter
// (lavapipe) that is one of the cores the kernels run on: measured on 2 cores, a 1024³ matmul took 250 ms with
// the spin and 151 ms without it. So while we wait, setImmediate is swapped for a version that passes ticks
// through for the first WGRAD_SPIN_MS (default 0.5 ms; short waits stay fast) and then defers each tick by
// 1 ms (setTimeout sleeps in the event loop). Other setImmediate users are delayed by at most 1 ms meanwhile.
const SPIN_MS = Number(process.env.WGRAD_SPIN_MS ?? 0.5);
let waiting = 0;
let waitStart = 0;
const realSetImmediate = globalThis.setImmediate;
const politeSetImmediate = ((fn: (...args: unknown[]) => void, ...args: unknown[]) =>
  performance.now() - waitStart < SPIN_MS
    ? realSetImmediate(fn, ...args)
    : setTimeout(fn, 1, ...args)) as unknown as typeof setImmediate;

async function politeWait<T>(work: Promise<T>): Promise<T> {
  if (waiting++ === 0) {
    waitStart = performance.now();
    globalThis.setImmediate = politeSetImmediate;
  }
  try {
    return await work;
  } finally {
    if (--waiting === 0) globalThis.setImmediate = realSetImmediate;
  }
}

export async function acquireDevice(): Promise<AdapterSummary> {
  Object.assign(globalThis, globals);
  const choice = (process.env.WGRAD_BACKEND ?? 'auto').toLowerCase();
  if (!['auto', 'vulkan', 'opengl'].includes(choice))
    throw new Error(`WGRAD_BACKEND must be auto, vulkan or opengl, got '${choice}'`);
  const order: ('vulkan' | 'opengl')[] =
    choice === 'auto' ? ['vulkan', 'opengl'] : [choice as 'vulkan' | 'opengl'];
  const attempts: Attempt[] = [];
  for (const backend of order) {
    const r = await tryBackend(backend);
    if (typeof r === 'string') {
      attempts.push({ backend, result: r });
      continue;
    }
    const { adapter, summary } = r;
    const wanted: GPUFeatureName[] = (
      ['timestamp-query', 'shader-f16', 'subgroups'] as GPUFeatureName[]
    ).filter((f) => adapter.features.has(f));
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: wanted,
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      },
    });
    setDevice(device, summary);
    if (Number.isFinite(SPIN_MS)) setWaitHook(politeWait);
    return summary;
  }
  const tried = attempts.map((a) => `  - ${a.backend}: ${a.result}`).join('\n');
  throw new Error(`wgrad: no WebGPU adapter found. Tried:\n${tried}\n${INSTALL_HINT}`);
}
