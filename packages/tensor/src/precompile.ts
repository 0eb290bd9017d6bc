// Compiling the pipelines a piece of work needs before it runs.
//
// `recordKernels(fn)` runs `fn` (typically one training step on a batch of the real shape) with recording on
// (gpu.ts `setRecorder`): every op builds its kernel source exactly as in a real run, but no pipeline is
// compiled and nothing is encoded, so `fn` must not depend on GPU results. It returns the sources of the
// pipelines that do not exist yet. `precompile(sources)` then compiles them: createComputePipelineAsync for
// all of them at once (on a GPU the driver compiles there, on its own threads), and on adapters that compile
// at the first dispatch instead (lavapipe, measured: `createComputePipelineAsync` of 12 new pipelines returned
// in tens of ms and each first dispatch still took 24–197 ms) one warm-up dispatch per pipeline on dummy
// resources with all-zero uniforms (every kernel's loops are bounded by uniforms, so zeros run no iterations).
// Warm-up dispatches run on the main device and, where the host can open more devices on the same adapter
// (`setWarmupDevices`, Node: device-node.ts), on those in parallel: a pipeline compiled on another device
// lands in Mesa's on-disk shader cache, so the main device's warm-up of it afterwards is a cache hit.
// No Node APIs here.
import {
  type AdapterSummary,
  adapterSummary,
  cpuAdapter,
  describePipeline,
  type Kernel,
  kernelAsync,
  layoutEntries,
  runtime,
  setRecorder,
  waitFor,
} from './gpu.js';

export interface KernelSource {
  name: string;
  code: string;
}

/** Runs `fn` with recording on and returns the kernel sources it asked for that have no pipeline yet. */
export function recordKernels(fn: () => void): KernelSource[] {
  const seen = new Map<string, string>();
  setRecorder((name, code) => {
    if (!seen.has(code)) seen.set(code, name);
  });
  try {
    fn();
  } finally {
    setRecorder(null);
  }
  return [...seen].map(([code, name]) => ({ name, code }));
}

export interface PrecompileOptions {
  /** Called after each pipeline is ready, with how many are done of how many. */
  onProgress?: (done: number, total: number) => void;
  /** Warm-up dispatches on CPU adapters: 'auto' (default: when the adapter is a CPU/fallback one), or forced. */
  warmup?: 'auto' | 'always' | 'never';
  /** Extra devices used for warm-up in parallel ('auto': as many as `setWarmupDevices` allows). */
  parallel?: number;
}

export interface PrecompileResult {
  pipelines: number;
  ms: number;
  /** Devices that ran warm-up dispatches (0: none were needed). */
  warmupDevices: number;
}

type DeviceFactory = () => Promise<GPUDevice | null>;
let extraDevices: { make: DeviceFactory; max: number } | null = null;
const spare: GPUDevice[] = [];

/**
 * Lets `precompile` open up to `max` more devices on the main device's adapter for parallel warm-up (Node:
 * device-node.ts, one per spare CPU core, at most 3, on adapters it requested at start-up). The devices are
 * kept for later calls.
 */
export function setWarmupDevices(make: DeviceFactory, max: number): void {
  extraDevices = { make, max };
}

/** Whether the adapter compiles shaders at the first dispatch (lavapipe / llvmpipe, SwiftShader). */
export function compilesAtFirstDispatch(a: AdapterSummary = adapterSummary()): boolean {
  return cpuAdapter(a);
}

export async function precompile(
  sources: readonly KernelSource[],
  opts: PrecompileOptions = {},
): Promise<PrecompileResult> {
  const t0 = performance.now();
  const total = sources.length;
  if (!total) return { pipelines: 0, ms: 0, warmupDevices: 0 };
  const warm = opts.warmup === 'always' || (opts.warmup !== 'never' && compilesAtFirstDispatch());
  let done = 0;
  const tick = () => opts.onProgress?.(++done, total);
  const kernels = await Promise.all(
    sources.map(async (s) => {
      const k = await kernelAsync(s.name, s.code);
      if (!warm) tick();
      return k;
    }),
  );
  if (!warm) return { pipelines: total, ms: performance.now() - t0, warmupDevices: 0 };

  const { device } = runtime();
  const wanted = Math.min(opts.parallel ?? Number.POSITIVE_INFINITY, extraDevices?.max ?? 0, total - 1);
  while (spare.length < wanted && extraDevices) {
    const d = await extraDevices.make().catch(() => null);
    if (!d) break;
    spare.push(d);
  }
  const helpers = spare.slice(0, Math.max(0, wanted));
  // Work queue shared by the main device and the helpers: each takes the next pipeline not yet compiled.
  // The main device warms what it takes directly; a helper's pipelines are warmed again on the main device at
  // the end (then cheap: Mesa's disk cache).
  let next = 0;
  const byHelper: Kernel[] = [];
  // Warm-up is only an optimisation: a dispatch that fails (a lost helper device, validation) is counted and
  // the pipeline then compiles at its first real dispatch, as without precompile.
  const warmed = (work: Promise<void>) =>
    work.catch(() => {
      warmupErrors++;
    });
  const worker = async (d: GPUDevice, own: boolean) => {
    for (let i = next++; i < kernels.length; i = next++) {
      const k = kernels[i]!;
      if (own) {
        await warmed(warmOn(d, k.pipeline, k, k.layout));
        tick();
      } else {
        byHelper.push(k);
        await warmed(
          (async () => {
            const { desc } = describePipeline(d, k.name, k.code, k.staticUniforms);
            await warmOn(d, await d.createComputePipelineAsync(desc), k, null);
          })(),
        );
      }
    }
  };
  await Promise.all([worker(device, true), ...helpers.map((d) => worker(d, false))]);
  for (const k of byHelper) {
    await warmed(warmOn(device, k.pipeline, k, k.layout));
    tick();
  }
  return { pipelines: total, ms: performance.now() - t0, warmupDevices: 1 + helpers.length };
}

// Dummy resources per device: a zero uniform block, zero storage buffers (one per binding: a writable binding
// may not alias another), 1×1 rgba32float textures.
interface Dummies {
  uniform: GPUBuffer;
  storage: GPUBuffer[];
  sampled: GPUTextureView;
  store: GPUTextureView;
}
const dummies = new WeakMap<GPUDevice, Dummies>();
const DUMMY_BYTES = 16384;
function dummiesOf(d: GPUDevice): Dummies {
  let r = dummies.get(d);
  if (!r) {
    const tex = (usage: number) =>
      d.createTexture({ size: [1, 1], format: 'rgba32float', usage }).createView();
    r = {
      uniform: d.createBuffer({ size: DUMMY_BYTES, usage: 0x0040 }), // UNIFORM
      storage: [],
      sampled: tex(0x04), // TEXTURE_BINDING
      store: tex(0x08), // STORAGE_BINDING
    };
    dummies.set(d, r);
  }
  return r;
}
const storageDummy = (d: GPUDevice, r: Dummies, i: number) =>
  (r.storage[i] ??= d.createBuffer({ size: DUMMY_BYTES, usage: 0x0080 })); // STORAGE

/**
 * One dispatch of one workgroup on dummy resources, waited for: makes the adapter compile the pipeline. Any
 * validation error stays inside its error scope (the pipeline then compiles at its first real dispatch).
 */
async function warmOn(
  d: GPUDevice,
  pipeline: GPUComputePipeline,
  k: Kernel,
  layout: GPUBindGroupLayout | null,
) {
  const entries = layoutEntries(k.code, !k.staticUniforms); // the kernel's own uniform binding
  if (!entries) return; // 'auto' layout: bindings unknown here; it compiles at its first real dispatch
  const r = dummiesOf(d);
  d.pushErrorScope('validation');
  const bindGroup = d.createBindGroup({
    layout: layout ?? pipeline.getBindGroupLayout(0),
    entries: entries.map((e, i) => ({
      binding: e.binding,
      resource: e.buffer
        ? { buffer: e.buffer.type === 'uniform' ? r.uniform : storageDummy(d, r, i) }
        : e.texture
          ? r.sampled
          : r.store,
    })),
  });
  const enc = d.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  if (entries.some((e) => e.buffer?.hasDynamicOffset)) pass.setBindGroup(0, bindGroup, [0]);
  else pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(1);
  pass.end();
  d.queue.submit([enc.finish()]);
  const error = await d.popErrorScope();
  if (error) warmupErrors++;
  await waitFor(d.queue.onSubmittedWorkDone());
}
let warmupErrors = 0;
/** Warm-up dispatches rejected by validation so far (their pipelines compile at the first real dispatch). */
export const precompileErrors = () => warmupErrors;
