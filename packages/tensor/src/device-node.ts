// Acquires a WebGPU device under Node through Dawn (npm `webgpu`): Vulkan first, then Dawn's OpenGL backend in
// compatibility mode. WGRAD_BACKEND=vulkan|opengl|auto overrides the choice. This is the only tensor module
// that touches Node APIs.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { requestWgradDevice, summarize } from './adapter.js';
import { type AdapterSummary, setDevice, setWaitHook } from './gpu.js';
import { setWarmupDevices } from './precompile.js';

type Attempt = { backend: 'vulkan' | 'opengl'; result: string };

// Dawn segfaults if the object returned by create() is garbage collected: keep it for the process lifetime.
const keepAlive: GPU[] = [];

async function tryBackend(
  backend: 'vulkan' | 'opengl',
): Promise<
  { adapter: GPUAdapter; summary: AdapterSummary; another: () => Promise<GPUAdapter | null> } | string
> {
  try {
    if (backend === 'opengl') process.env.EGL_PLATFORM ??= 'surfaceless';
    // Dawn rounds timestamp-query results down to multiples of 2^16 ns (65.5 µs) unless this toggle is off:
    // the profiler would then read most kernels as 0 ms on a real GPU (seen on an H200) and whole multiples
    // of 65.5 µs on lavapipe.
    const gpu = create([`backend=${backend}`, 'disable-dawn-features=timestamp_quantization']);
    keepAlive.push(gpu);
    const options: GPURequestAdapterOptions = backend === 'opengl' ? { featureLevel: 'compatibility' } : {};
    const adapter = await gpu.requestAdapter(options);
    if (!adapter) return 'no adapter';
    return {
      adapter,
      another: () => gpu.requestAdapter(options),
      summary: summarize(
        adapter,
        backend,
        backend === 'opengl' ? 'compatibility' : 'core',
        gpu.wgslLanguageFeatures,
      ),
    };
  } catch (e) {
    return (e as Error).message;
  }
}

// Dawn's native code writes a few warnings straight to file descriptor 2 while it enumerates adapters, e.g.
// "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic
// offset allocation limit." (lavapipe reports 10⁶ dynamic buffers; Dawn caps them at 16; we use 1). They are
// harmless and say nothing to a wgrad user, and no Dawn option turns them off. So while Dawn starts up, fd 2
// points at a temporary file; afterwards it points back at the original stderr and whatever was written there
// is replayed minus these known lines. Node has no dup(): fd 2 is re-opened through /proc/self/fd, which is
// only safe where the file has no offset to share, so this is done only when stderr is a pipe or a terminal
// (a stderr redirected to a regular file keeps Dawn's lines). WGRAD_DAWN_LOG=1 leaves stderr alone.
const MAX_WARMUP_DEVICES = 3;

const DAWN_NOISE = [
  /^Warning: maxDynamic\w+PerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/,
];

async function filterDawnStderr<T>(work: () => Promise<T>): Promise<T> {
  if (process.platform !== 'linux' || process.env.WGRAD_DAWN_LOG === '1') return work();
  let saved = -1;
  let captured = '';
  try {
    const st = fstatSync(2);
    // Closing fd 2 hands the next open() the lowest free descriptor: that is 2 only while 0 and 1 are open.
    if ((!st.isFIFO() && !st.isCharacterDevice()) || !isOpen(0) || !isOpen(1)) return await work();
    saved = openSync('/proc/self/fd/2', 'a');
    const name = join(tmpdir(), `wgrad-dawn-${process.pid}-${randomBytes(6).toString('hex')}.log`);
    closeSync(2);
    try {
      openSync(name, 'wx', 0o600); // fd 2
      captured = name;
    } catch {
      openSync(`/proc/self/fd/${saved}`, 'a'); // no temp file (TMPDIR missing, full…): stderr back, unfiltered
    }
    return await work();
  } finally {
    if (captured) {
      closeSync(2);
      openSync(`/proc/self/fd/${saved}`, 'a'); // back on fd 2
      let text = '';
      try {
        text = readFileSync(captured, 'utf8');
      } finally {
        rmSync(captured, { force: true });
      }
      const kept = text.split('\n').filter((line) => line && !DAWN_NOISE.some((re) => re.test(line)));
      if (kept.length) process.stderr.write(`${kept.join('\n')}\n`);
    }
    if (saved >= 0) closeSync(saved);
  }
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
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

/** Finds an adapter (see the top of this file), requests its device and installs it for every later op. */
export function acquireDevice(): Promise<AdapterSummary> {
  return filterDawnStderr(acquire);
}

async function acquire(): Promise<AdapterSummary> {
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
    const { adapter, summary, another } = r;
    const device = await requestWgradDevice(adapter);
    // Parallel pipeline warm-up (precompile.ts) uses more devices on the same adapter, one per spare core (at
    // most 3). Their adapters are requested now, while Dawn's start-up warnings are filtered (each
    // requestAdapter prints them again); a device is only opened on one when precompile first needs it.
    const spare: GPUAdapter[] = [];
    for (let i = Math.min(availableParallelism() - 1, MAX_WARMUP_DEVICES); i > 0; i--) {
      const a = await another().catch(() => null);
      if (a) spare.push(a);
    }
    setWarmupDevices(async () => {
      const a = spare.shift();
      return a ? requestWgradDevice(a) : null;
    }, spare.length);
    setDevice(device, summary);
    if (Number.isFinite(SPIN_MS)) setWaitHook(politeWait);
    return summary;
  }
  const tried = attempts.map((a) => `  - ${a.backend}: ${a.result}`).join('\n');
  throw new Error(`wgrad: no WebGPU adapter found. Tried:\n${tried}\n${INSTALL_HINT}`);
}
