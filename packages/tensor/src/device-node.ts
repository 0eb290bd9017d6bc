// Acquires a WebGPU device under Node through Dawn (npm `webgpu`): Vulkan first, then Dawn's OpenGL backend in
// compatibility mode. WGRAD_BACKEND=vulkan|opengl|auto overrides the choice. This is the only tensor module
// that touches Node APIs.
import { create, globals } from 'webgpu';
import { type AdapterSummary, setDevice } from './gpu.js';

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
    const wanted: GPUFeatureName[] = (['timestamp-query', 'shader-f16'] as GPUFeatureName[]).filter((f) =>
      adapter.features.has(f),
    );
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
    return summary;
  }
  const tried = attempts.map((a) => `  - ${a.backend}: ${a.result}`).join('\n');
  throw new Error(`wgrad: no WebGPU adapter found. Tried:\n${tried}\n${INSTALL_HINT}`);
}
