// The GPU runtime: the device, a pipeline cache, a size-class buffer pool, command batching and readback.
// No Node APIs here: `device-node.ts` acquires a device under Node and hands it to `setDevice`.

export interface AdapterSummary {
  backend: string; // 'vulkan' | 'opengl' | 'browser' | …
  description: string; // vendor / architecture / device / description, as the adapter reports them
  isFallback: boolean;
  featureLevel: 'core' | 'compatibility';
  /** The subgroup size when the adapter has exactly one (min = max), else undefined. */
  subgroupSize?: number;
  /**
   * WGSL can read storage textures (`texture_storage_2d<rgba32float, read>`: the language feature
   * readonly_and_readwrite_storage_textures, as `navigator.gpu.wgslLanguageFeatures` reports it).
   */
  storageTextureReads?: boolean;
}

interface Runtime {
  device: GPUDevice;
  adapter: AdapterSummary;
  uniformAlign: number;
  maxWorkgroupsPerDim: number;
  /** Explicit-layout kernels bind their uniform block at a static offset (see `UniformBinding`). */
  staticUniforms: boolean;
}

let rt: Runtime | null = null;
/** The op whose WebGPU calls are running (set by kernel() and dispatch()), for error messages. */
let currentOp: string | null = null;
let lostReason: string | null = null;
let pendingError: string | null = null;

/**
 * Installs the device every later op runs on (Node: done by `device-node.ts` when the package loads). Installing
 * another device (e.g. `acquireDevice()` again after a device loss) drops everything made on the previous one:
 * pipelines, pooled buffers, bind groups, per-device checks (`onDeviceChange`); tensors made on it can only be
 * disposed (any other use names the op and says so), and memory() counts the new device from zero.
 */
export function setDevice(device: GPUDevice, adapter: AdapterSummary): void {
  if (rt && rt.device !== device) dropDeviceState();
  rt = {
    device,
    adapter,
    uniformAlign: device.limits.minUniformBufferOffsetAlignment,
    maxWorkgroupsPerDim: device.limits.maxComputeWorkgroupsPerDimension,
    staticUniforms: uniformBinding === 'static' || (uniformBinding === 'auto' && cpuAdapter(adapter)),
  };
  selectKernelMaps();
  lostReason = null;
  device.lost.then((info) => {
    if (rt?.device === device) lostReason = `${info.reason}: ${info.message}`;
  });
  device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
    // Dawn reports errors of createBindGroup/createComputePipeline while the call runs: `currentOp` names it.
    const ops = currentOp ?? (batch.ops.length ? batch.ops.join(', ') : lastOps.join(', '));
    pendingError ??= `WebGPU error in op(s) [${ops}]: ${ev.error.message}`;
  };
}

// Per-device caches in other modules (kernel tables, the GEMM self-check, measured peaks) register their reset.
const deviceHooks: (() => void)[] = [];
/** Calls `reset` whenever setDevice installs a different device (for module-level caches of GPU objects). */
export function onDeviceChange(reset: () => void): void {
  deviceHooks.push(reset);
}
/** Bumped by every device change; buffers and scratch textures carry the generation they were made in. */
let generation = 0;

function dropDeviceState(): void {
  // Work already encoded for the old device is submitted if it still can be (a pending readback then resolves).
  if (!lostReason)
    try {
      flush();
    } catch {
      // the old device is gone: its batch is dropped below
    }
  try {
    batch.pass?.end();
  } catch {
    // an encoder of a destroyed device
  }
  batch.pass = null;
  batch.encoder = null;
  batch.uniformBytes = 0;
  if (batch.uniformBuffer) destroyQuietly(batch.uniformBuffer);
  batch.uniformBuffer = null;
  if (heap.buffer) destroyQuietly(heap.buffer);
  heap.buffer = null;
  resetHeap();
  batch.ops = [];
  batch.afterSubmit = [];
  dropPooled();
  for (const m of kernelMaps) {
    m.pipelines.clear();
    m.byKey.clear();
  }
  prof = null;
  Object.assign(stats, { buffersInUse: 0, bytesInUse: 0, peakBytes: 0 });
  generation++;
  pendingError = null;
  for (const f of deviceHooks) f();
}

export function runtime(): Runtime {
  if (!rt) throw new Error('wgrad: no WebGPU device; import @wgrad/tensor (Node) or call setDevice() first');
  if (lostReason) throw new Error(`wgrad: the WebGPU device was lost (${lostReason})`);
  return rt;
}

/** The installed device, even after it was lost (a test hook: tests simulate a loss with `destroy()`). */
export function currentDevice(): GPUDevice | null {
  return rt?.device ?? null;
}

export function adapterSummary(): AdapterSummary {
  return runtime().adapter;
}

/** Whether the adapter runs shaders on the CPU (lavapipe / llvmpipe, SwiftShader, a fallback adapter). */
export function cpuAdapter(a: AdapterSummary = adapterSummary()): boolean {
  if (cpuSeen?.a !== a)
    cpuSeen = { a, cpu: a.isFallback || /llvmpipe|lavapipe|swiftshader|software/i.test(a.description) };
  return cpuSeen.cpu;
}
let cpuSeen: { a: AdapterSummary; cpu: boolean } | null = null;

/**
 * How explicit-layout kernels bind their uniform block: at a dynamic offset into the submit's uniform buffer
 * ('dynamic': one cached bind group per kernel and resources), or at a static offset into a heap of blocks
 * ('static': one bind group per distinct block; see `staticBindGroup`). 'auto' (the default): static on CPU
 * adapters, where a dynamic offset costs ≈ 40–60 µs of GPU time per dispatch, dynamic elsewhere.
 */
export type UniformBinding = 'auto' | 'dynamic' | 'static';
let uniformBinding: UniformBinding = 'auto';
/**
 * Tests and benches: sets the uniform binding (kernels compiled from now on use it; earlier ones keep theirs).
 * Returns the previous mode.
 */
export function setUniformBinding(mode: UniformBinding): UniformBinding {
  if (mode !== 'auto' && mode !== 'dynamic' && mode !== 'static')
    throw new Error(
      `setUniformBinding: unknown mode '${String(mode)}' (expected 'auto', 'dynamic' or 'static')`,
    );
  const old = uniformBinding;
  if (rt) flush(); // encoded work keeps the bindings it was encoded with (and a failed flush changes nothing)
  uniformBinding = mode;
  if (rt) {
    rt.staticUniforms = mode === 'static' || (mode === 'auto' && cpuAdapter(rt.adapter));
    selectKernelMaps();
  }
  return old;
}
/** Whether kernels compiled now bind their uniform block statically. */
export function staticUniforms(): boolean {
  return runtime().staticUniforms;
}

export function limits(): GPUSupportedLimits {
  return runtime().device.limits;
}

// ---------------------------------------------------------------------------------------------------------
// Debug mode: one op per submit inside error scopes, so a validation error names exactly the op.
let debugMode = false;
export function setDebug(on: boolean): void {
  debugMode = on;
}
export function isDebug(): boolean {
  return debugMode;
}

function throwPending(): void {
  if (pendingError) {
    const e = pendingError;
    pendingError = null;
    throw new Error(e);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Buffer pool. Sizes are rounded up to a size class (4 classes per power of two, ≤ 25% waste), freed
// buffers go back to their class list and are reused by the next allocation of that class.
// GPUBufferUsage / GPUMapMode bits (numeric, so this module does not need the WebGPU globals installed).
const USAGE_MAP_READ = 0x0001;
const USAGE_COPY_SRC = 0x0004;
const USAGE_COPY_DST = 0x0008;
const USAGE_UNIFORM = 0x0040;
const USAGE_STORAGE = 0x0080;
const STORAGE_USAGE = USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST;
const MAP_MODE_READ = 0x0001;

export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 4) * 4);
  if (b <= 1024) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

const pool = new Map<number, GPUBuffer[]>();
const stats = { buffersInUse: 0, bytesInUse: 0, buffersPooled: 0, bytesPooled: 0, peakBytes: 0, created: 0 };

/** Takes a free item of `key` from `lists` (or makes one) and counts its `bytes` as in use. */
function take<K, T>(lists: Map<K, T[]>, key: K, bytes: number, make: () => T): T {
  let item = lists.get(key)?.pop();
  if (item !== undefined) {
    stats.buffersPooled--;
    stats.bytesPooled -= bytes;
  } else {
    item = make();
    stats.created++;
  }
  stats.buffersInUse++;
  stats.bytesInUse += bytes;
  stats.peakBytes = Math.max(stats.peakBytes, stats.bytesInUse + stats.bytesPooled);
  return item;
}

/**
 * Returns an item to the free list of `key`, counting its `bytes` as pooled. The list is kept sorted by the
 * items' ids, highest first, so that `take` pops the lowest-numbered free item: which buffer an allocation
 * gets depends on the set of free buffers, not on the order they were freed in, so a training step binds the
 * same buffers step after step and its bind groups come from the cache (conv VAE: 62 of 178 bind groups
 * per step were created anew with a LIFO list, bench/train.ts's step anatomy).
 */
function give<K, T extends object>(lists: Map<K, T[]>, key: K, bytes: number, item: T): void {
  stats.buffersInUse--;
  stats.bytesInUse -= bytes;
  stats.buffersPooled++;
  stats.bytesPooled += bytes;
  let list = lists.get(key);
  if (!list) lists.set(key, (list = []));
  const id = resourceId(item);
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (resourceId(list[mid]!) > id) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, item);
}

/**
 * A storage buffer of at least `bytes` from the pool. Kernels bind buffers whole, so one larger than the
 * adapter's maxStorageBufferBindingSize could never be used: that is an error here, naming `what` (e.g. the
 * tensor's shape), instead of a WebGPU validation error at some later dispatch.
 */
export function allocBuffer(bytes: number, what?: () => string): GPUBuffer {
  const { device } = runtime();
  const limit = device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    throw new Error(
      `wgrad: ${what?.() ?? 'a buffer'} needs ${mib(bytes)}, more than this adapter's largest storage binding (maxStorageBufferBindingSize ${mib(limit)}), and kernels bind a tensor whole: use smaller batches (e.g. score or train in chunks)`,
    );
  }
  const cls = Math.min(sizeClass(bytes), Math.max(bytes, limit - (limit % 4)));
  return take(pool, cls, cls, () => {
    const b = device.createBuffer({ size: cls, usage: STORAGE_USAGE }) as SizedBuffer;
    if (Object.isExtensible(b)) {
      b[BUFFER_SIZE] = cls; // else freeBuffer asks b.size
      b[BUFFER_GEN] = generation;
    }
    return b;
  });
}

// A pooled buffer's size, kept on the object: Dawn's `size` getter is a native call (0.074 µs in a loop, bench:host;
// in a training step's profile ≈ 60 µs per MLP VAE step sat in native code under freeBuffer, gone since).
const BUFFER_SIZE = Symbol('wgrad.bufferSize');
const BUFFER_GEN = Symbol('wgrad.bufferGeneration');
type SizedBuffer = GPUBuffer & { [BUFFER_SIZE]?: number; [BUFFER_GEN]?: number };

/** Whether a pooled buffer belongs to the device installed now (false once setDevice installed another). */
export function onCurrentDevice(buf: GPUBuffer): boolean {
  const g = (buf as SizedBuffer)[BUFFER_GEN];
  return g === undefined || g === generation;
}

/** Destroys a buffer or texture whose device may already be gone (then there is nothing left to free). */
function destroyQuietly(o: { destroy(): void }): void {
  try {
    o.destroy();
  } catch {
    // destroyed with its device
  }
}

export function freeBuffer(buf: GPUBuffer): void {
  // Made on a device that setDevice has replaced: not pooled, not counted.
  if (!onCurrentDevice(buf)) destroyQuietly(buf);
  else {
    const size = (buf as SizedBuffer)[BUFFER_SIZE] ?? buf.size;
    give(pool, size, size, buf);
  }
}

// Scratch textures (rgba32float, sampled + storage) for kernels that repack an operand to read it through
// texture loads (the GEMM's B on lavapipe). Pooled by size like buffers and counted with them: a kernel takes
// one, packs, reads and returns it while encoding; the queue orders any later reuse after those dispatches.
export interface ScratchTexture {
  texture: GPUTexture;
  binding: TextureBinding;
  bytes: number;
  key: string;
  generation: number;
}
/** A texture view as a `dispatch` binding (in place of a storage buffer). */
export class TextureBinding {
  constructor(readonly view: GPUTextureView) {}
}
// COPY_DST | TEXTURE_BINDING | STORAGE_BINDING: filled by buffer-to-texture copies, read as a sampled texture
// or, where WGSL can, as a read-only storage texture (see the GEMM's texture kinds).
const TEXTURE_USAGE = 0x02 | 0x04 | 0x08;
const texPool = new Map<string, ScratchTexture[]>();

export function allocTexture(width: number, height: number): ScratchTexture {
  const key = `${width}x${height}`;
  const bytes = width * height * 16;
  return take(texPool, key, bytes, () => {
    const texture = runtime().device.createTexture({
      size: [width, height],
      format: 'rgba32float',
      usage: TEXTURE_USAGE,
    });
    return { texture, binding: new TextureBinding(texture.createView()), bytes, key, generation };
  });
}

export function freeTexture(t: ScratchTexture): void {
  if (t.generation !== generation) destroyQuietly(t.texture);
  else give(texPool, t.key, t.bytes, t);
}

/** Destroys every pooled (free) buffer and scratch texture; buffers held by live tensors are untouched. */
export function emptyCache(): void {
  flush();
  dropPooled();
}

/** Destroys the pools (buffers, scratch textures, readback staging) and the bind groups that name them. */
function dropPooled(): void {
  for (const list of pool.values()) list.forEach(destroyQuietly);
  pool.clear();
  for (const list of texPool.values()) for (const t of list) destroyQuietly(t.texture);
  texPool.clear();
  bindGroups = newBindGroupNode();
  bindGroupCount = 0;
  resetHeap(); // the slots belonged to the dropped bind groups (callers flushed first)
  // Idle readback staging buffers too (one as large as the largest tensor ever read stays otherwise).
  readPool.splice(0).forEach(destroyQuietly);
  stats.buffersPooled = 0;
  stats.bytesPooled = 0;
}

export function bufferStats(): Readonly<typeof stats> {
  return { ...stats };
}

/** Starts a new peak: `memory().peakBytes` counts from the bytes held (in use + pooled) now. */
export function resetPeakMemory(): void {
  stats.peakBytes = stats.bytesInUse + stats.bytesPooled;
}

// ---------------------------------------------------------------------------------------------------------
// Kernels and dispatch batching.
export interface Kernel {
  name: string;
  code: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** The layout is explicit: bind groups are cached (see `dispatch`). */
  cached: boolean;
  /** Its uniform block is bound at a static offset into the uniform heap (explicit layouts on CPU adapters). */
  staticUniforms: boolean;
  id: number;
}
// Pipelines by source, and by kernelFor's key: one pair of maps per uniform binding (a layout has it built in).
const kernelMaps = [0, 1].map(() => ({
  pipelines: new Map<string, Kernel>(),
  byKey: new Map<string, Kernel>(),
}));
/** The maps of kernels whose layouts bind the uniform block statically (or at a dynamic offset). */
const kernelMapsFor = (staticUniform: boolean) => kernelMaps[staticUniform ? 1 : 0]!;
let pipelines = kernelMapsFor(false).pipelines;
let byKey = kernelMapsFor(false).byKey;
function selectKernelMaps(): void {
  const m = kernelMapsFor(rt?.staticUniforms ?? false);
  pipelines = m.pipelines;
  byKey = m.byKey;
}
let kernelIds = 0;

// The group-0 bindings a WGSL source declares, as layout entries: binding 0 a uniform block (read at a dynamic
// offset unless the device binds uniforms statically, see `UniformBinding`), storage buffers, sampled and
// read-only rgba32float storage textures. Null when a declaration is not one of those (the pipeline then gets an 'auto'
// layout and uncached bind groups).
const BINDING_RE = /@group\(0\)\s*@binding\((\d+)\)\s*var(?:<([^>]*)>)?\s+\w+\s*:\s*([^;]+);/g;
const COMPUTE_STAGE = 0x4;
export function layoutEntries(
  code: string,
  dynamicUniform = !runtime().staticUniforms,
): GPUBindGroupLayoutEntry[] | null {
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (const m of code.matchAll(BINDING_RE)) {
    const binding = Number(m[1]);
    const space = (m[2] ?? '').replace(/\s/g, '');
    const type = m[3]!.replace(/\s/g, '');
    const e: GPUBindGroupLayoutEntry = { binding, visibility: COMPUTE_STAGE };
    if (space === 'uniform') e.buffer = { type: 'uniform', hasDynamicOffset: dynamicUniform };
    else if (space === 'storage,read' || space === 'storage') e.buffer = { type: 'read-only-storage' };
    else if (space === 'storage,read_write') e.buffer = { type: 'storage' };
    else if (space === '' && type === 'texture_2d<f32>')
      e.texture = { sampleType: 'unfilterable-float', viewDimension: '2d' };
    else if (space === '' && type === 'texture_storage_2d<rgba32float,read>')
      e.storageTexture = { access: 'read-only', format: 'rgba32float', viewDimension: '2d' };
    else return null;
    entries.push(e);
  }
  return entries;
}

// While a recorder is set (see precompile.ts), kernel() reports each source it has no pipeline for and
// returns a stand-in without compiling, and dispatch() and the copies encode nothing: running a step this way
// lists the pipelines it needs without running it.
let recorder: ((name: string, code: string) => void) | null = null;
export function setRecorder(r: ((name: string, code: string) => void) | null): void {
  recorder = r;
}

/**
 * The pipeline descriptor for `code` on `device`: its explicit layout when the bindings allow one, else 'auto'.
 * `staticUniform`: the layout binds the uniform block at a static offset (see `UniformBinding`).
 */
export function describePipeline(device: GPUDevice, name: string, code: string, staticUniform: boolean) {
  const module = device.createShaderModule({ code, label: name });
  const entries = layoutEntries(code, !staticUniform);
  const explicit = entries && device.createBindGroupLayout({ entries, label: name });
  const desc: GPUComputePipelineDescriptor = {
    layout: explicit ? device.createPipelineLayout({ bindGroupLayouts: [explicit] }) : 'auto',
    compute: { module, entryPoint: 'main' },
    label: name,
  };
  return { desc, explicit };
}

function addKernel(
  name: string,
  code: string,
  pipeline: GPUComputePipeline,
  explicit: GPUBindGroupLayout | null,
  staticUniform: boolean,
) {
  const k = {
    name,
    code,
    pipeline,
    layout: explicit ?? pipeline.getBindGroupLayout(0),
    cached: explicit !== null,
    staticUniforms: explicit !== null && staticUniform,
    id: kernelIds++,
  };
  kernelMapsFor(staticUniform).pipelines.set(code, k);
  return k;
}

/** Returns the compiled pipeline for `code` (cached by source text: one pipeline serves every shape). */
export function kernel(name: string, code: string): Kernel {
  const k = pipelines.get(code);
  if (k) return k;
  if (recorder) {
    recorder(name, code);
    return { name, code, pipeline: null!, layout: null!, cached: false, staticUniforms: false, id: -1 };
  }
  const { device, staticUniforms } = runtime();
  currentOp = name;
  try {
    const { desc, explicit } = describePipeline(device, name, code, staticUniforms);
    return addKernel(name, code, device.createComputePipeline(desc), explicit, staticUniforms);
  } finally {
    currentOp = null;
  }
}

/**
 * kernel() through createComputePipelineAsync, for compiling many pipelines at once (precompile.ts). On a
 * GPU the driver compiles here, on other threads; lavapipe compiles at the first dispatch instead.
 */
export async function kernelAsync(name: string, code: string): Promise<Kernel> {
  // The uniform binding is read once: setUniformBinding() during the await must not mix a layout of one mode
  // into the other mode's map.
  const { device, staticUniforms } = runtime();
  const map = kernelMapsFor(staticUniforms).pipelines;
  const have = map.get(code);
  if (have) return have;
  const { desc, explicit } = describePipeline(device, name, code, staticUniforms);
  const pipeline = await device.createComputePipelineAsync(desc);
  if (runtime().device !== device) throw new Error(`${name}: the device changed while its pipeline compiled`);
  return map.get(code) ?? addKernel(name, code, pipeline, explicit, staticUniforms);
}

/**
 * The pipeline for the kernel variant named `key`, generating its source with `make()` only the first time
 * (ops with templated kernels call this on every dispatch; `key` must encode every template argument).
 */
export function kernelFor(key: string, make: () => string): Kernel {
  let k = byKey.get(key);
  if (!k) {
    k = kernel(key.split('|')[0]!, make());
    if (k.id < 0) return k; // a recording stand-in (see setRecorder): not cached
    byKey.set(key, k);
  }
  return k;
}

export function pipelineCount(): number {
  return kernelMaps[0]!.pipelines.size + kernelMaps[1]!.pipelines.size;
}

const UNIFORM_CAPACITY = 1 << 18; // bytes of uniforms per submit
const MAX_OPS_PER_SUBMIT = 512;

interface Batch {
  encoder: GPUCommandEncoder | null;
  pass: GPUComputePassEncoder | null;
  uniforms: ArrayBuffer;
  uniformBytes: number;
  uniformBuffer: GPUBuffer | null;
  ops: string[];
  afterSubmit: (() => void)[];
}
const batch: Batch = {
  encoder: null,
  pass: null,
  uniforms: new ArrayBuffer(UNIFORM_CAPACITY),
  uniformBytes: 0,
  uniformBuffer: null,
  ops: [],
  afterSubmit: [],
};
const uniformU32 = new Uint32Array(batch.uniforms);
const uniformF32 = new Float32Array(batch.uniforms);
const uniformI32 = new Int32Array(batch.uniforms);
/**
 * The one dynamic offset of a cached bind group: a reused plain array (setBindGroup copies it). Dawn's Node
 * binding takes it faster than a Uint32Array with start and length (1.07 vs 1.24 µs per call, bench:host).
 */
const dynamicOffset = [0];
let lastOps: string[] = [];
let submits = 0;
let dispatches = 0;
/** Milliseconds of host time spent inside dispatch() (uniform packing, bind group, encoding) and in submits. */
let encodeMs = 0;
let submitMs = 0;
/** Bind groups created (cache misses and uncached kernels): each costs ≈ 19 µs in Dawn's Node binding. */
let bindGroupsCreated = 0;

/**
 * What one dispatch does, for the profiler's roofline columns: floating-point operations (a multiply-add
 * counts 2) and bytes of global memory it must move at least (each input read once, each output written
 * once). Dispatches without one are counted with `bytes` = the sizes of their bound storage buffers and no
 * FLOPs.
 */
export interface DispatchCost {
  flops: number;
  bytes: number;
}

function encoder(): GPUCommandEncoder {
  batch.encoder ??= runtime().device.createCommandEncoder();
  return batch.encoder;
}

function computePass(): GPUComputePassEncoder {
  batch.pass ??= encoder().beginComputePass();
  return batch.pass;
}

function endPass(): void {
  batch.pass?.end();
  batch.pass = null;
}

function uniformBuffer(): GPUBuffer {
  batch.uniformBuffer ??= runtime().device.createBuffer({
    size: UNIFORM_CAPACITY,
    usage: USAGE_UNIFORM | USAGE_COPY_DST,
  });
  return batch.uniformBuffer;
}

/** Uniform words: every entry is written as u32 unless it is wrapped by `f32()`/`i32()`. */
export type UWord = number | { f: number } | { i: number };
export const f32 = (v: number): UWord => ({ f: v });
export const i32 = (v: number): UWord => ({ i: v });

/**
 * Encodes one compute dispatch. Binding 0 is the uniform block (when `uniforms` is non-empty), then the
 * storage buffers (or texture views) in the order given. The uniform words are packed into this submit's
 * uniform buffer (bound at a dynamic offset) or, for kernels with static uniform binding, into a slot of the
 * uniform heap.
 */
export function dispatch(
  k: Kernel,
  uniforms: readonly UWord[],
  buffers: readonly (GPUBuffer | TextureBinding)[],
  groups: readonly [number, number?, number?],
  label?: string | (() => string),
  cost?: DispatchCost,
): void {
  const t0 = performance.now();
  if (recorder) return;
  const r = runtime();
  throwPending();
  const bytes = Math.max(16, Math.ceil((uniforms.length * 4) / 16) * 16);
  let offset = Math.ceil(batch.uniformBytes / r.uniformAlign) * r.uniformAlign;
  if (offset + bytes > UNIFORM_CAPACITY || batch.ops.length >= MAX_OPS_PER_SUBMIT) {
    flush();
    offset = 0;
  }
  // Typed-array stores (offset is a multiple of 16; WebGPU hosts are little-endian, as uniforms are).
  const base = offset >> 2;
  for (let i = 0; i < uniforms.length; i++) {
    const w = uniforms[i]!;
    if (typeof w === 'number') uniformU32[base + i] = w;
    else if ('f' in w) uniformF32[base + i] = w.f;
    else uniformI32[base + i] = w.i;
  }
  if (!k.staticUniforms) batch.uniformBytes = offset + bytes; // static blocks are copied to the heap
  const x = groups[0];
  const y = groups[1] ?? 1;
  const z = groups[2] ?? 1;
  if (x > r.maxWorkgroupsPerDim || y > r.maxWorkgroupsPerDim || z > r.maxWorkgroupsPerDim)
    throw new Error(
      `${k.name}: dispatch of [${x}, ${y}, ${z}] workgroups exceeds the adapter limit ${r.maxWorkgroupsPerDim}`,
    );
  currentOp = k.name;
  try {
    const bindGroup =
      k.staticUniforms && uniforms.length
        ? staticBindGroup(k, bytes, base, uniforms.length, buffers)
        : bindGroupFor(k, uniforms.length ? bytes : 0, offset, buffers);
    // The label (e.g. a GEMM's problem size) only names the profiler's row: made only when profiling.
    const name = prof ? (typeof label === 'function' ? label() : label) : undefined;
    const timed = prof
      ? profiledPass(name ?? k.name, cost ?? (name ? gemmLabelCost(name) : null) ?? boundBytes(buffers))
      : null;
    const pass = timed ?? computePass();
    pass.setPipeline(k.pipeline);
    if (k.cached && uniforms.length && !k.staticUniforms) {
      dynamicOffset[0] = offset;
      pass.setBindGroup(0, bindGroup, dynamicOffset);
    } else pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    timed?.end();
  } finally {
    currentOp = null;
  }
  batch.ops.push(k.name);
  dispatches++;
  encodeMs += performance.now() - t0;
  if (debugMode) flush();
}

// Bind groups of kernels with explicit layouts are cached by (kernel, uniform size, resources): a training
// step binds the same pooled buffers step after step, and createBindGroup costs ≈ 19 µs in Dawn's Node
// binding (≈ 0.1 µs for the lookup). The uniform block is bound at a dynamic offset into the submit's uniform
// buffer, or (static uniform binding) each block has a slot and a bind group of its own in the node's `slots`,
// see `staticBindGroup`. `emptyCache` (which destroys pooled buffers) clears the cache; it is also bounded.
// The cache is a trie keyed by numbers (kernel id, uniform bytes, then each resource's id): a lookup allocates
// nothing, where a string key cost a few hundred bytes and a hash of a fresh string per dispatch.
interface BindGroupNode {
  next: Map<number, BindGroupNode> | null;
  group: GPUBindGroup | null;
  /** Static uniforms: the heap slots of these resources, each with its words and bind group. */
  slots: UniformSlot[] | null;
}
interface UniformSlot {
  words: Uint32Array;
  group: GPUBindGroup;
  /** Byte offset in the heap, the words' hash, and `submits` when last encoded (= submits: unsubmitted). */
  at: number;
  hash: number;
  used: number;
}
const newBindGroupNode = (): BindGroupNode => ({ next: null, group: null, slots: null });
let bindGroups = newBindGroupNode();
let bindGroupCount = 0;
const BIND_GROUP_CACHE_MAX = 16384;
function bindGroupChild(node: BindGroupNode, id: number): BindGroupNode {
  node.next ??= new Map();
  let child = node.next.get(id);
  if (!child) node.next.set(id, (child = newBindGroupNode()));
  return child;
}
// Ids live on the objects themselves (a symbol-keyed property: one inline-cached load and no weak table for the
// GC to process; Dawn's wrappers are ordinary extensible JS objects).
const RESOURCE_ID = Symbol('wgrad.resourceId');
let resourceCount = 0;
const resourceIdsFallback = new WeakMap<object, number>(); // objects that take no new properties (frozen mocks)
const resourceId = (o: object): number => {
  const r = o as { [RESOURCE_ID]?: number };
  const id = r[RESOURCE_ID];
  if (id !== undefined) return id;
  if (Object.isExtensible(o)) return (r[RESOURCE_ID] = resourceCount++);
  let f = resourceIdsFallback.get(o);
  if (f === undefined) resourceIdsFallback.set(o, (f = resourceCount++));
  return f;
};

function createBindGroup(
  k: Kernel,
  uniformBytes: number,
  at: number,
  buffers: readonly (GPUBuffer | TextureBinding)[],
): GPUBindGroup {
  // The uniform block at `at` (0 for a cached group: its offset is given at setBindGroup), then the rest.
  const entries: GPUBindGroupEntry[] = [];
  if (uniformBytes)
    entries.push({ binding: 0, resource: { buffer: uniformBuffer(), offset: at, size: uniformBytes } });
  for (const b of buffers)
    entries.push({
      binding: entries.length,
      resource: b instanceof TextureBinding ? b.view : { buffer: b },
    });
  bindGroupsCreated++;
  return runtime().device.createBindGroup({ layout: k.layout, entries });
}

/** The trie node of (kernel, uniform bytes, resources). */
function bindGroupNode(k: Kernel, uniformBytes: number, buffers: readonly (GPUBuffer | TextureBinding)[]) {
  let node = bindGroupChild(bindGroupChild(bindGroups, k.id), uniformBytes);
  for (let i = 0; i < buffers.length; i++) {
    const b = buffers[i]!;
    node = bindGroupChild(node, resourceId(b instanceof TextureBinding ? b.view : b));
  }
  return node;
}

// Static uniform binding. Binding a uniform block at a dynamic offset costs lavapipe ≈ 40–60 µs of GPU time
// per dispatch, several times what the dispatch itself costs when it is small (a 256-element add took 90 µs
// per dispatch with a dynamic offset, 45 µs bound statically; a bare dispatch ≈ 20–30 µs). So on CPU adapters
// explicit-layout kernels bind their block at a static offset: each (kernel, resources) keeps slots in a
// persistent uniform heap, each with its words and a bind group of its own, found again by the words' hash.
// A training step repeats its dispatches with the same words step after step, so from the second step on
// they find their bind groups; words that change every step (Adam's step count, the RNG's counter) rewrite,
// once the node has SLOTS_PER_NODE slots, the least recently used slot that no unsubmitted work reads (the
// write reaches the GPU at the next flush, after the work submitted before it), keeping its bind group: no
// growth, no new bind group. A node grows past SLOTS_PER_NODE only while all its slots are read by
// unsubmitted work (the same kernel and resources dispatched with different words within one submit: at most
// MAX_OPS_PER_SUBMIT). A full heap or cache is flushed, then emptied.
const SLOTS_PER_NODE = 4;
const heap = {
  bytes: 1 << 21,
  buffer: null as GPUBuffer | null,
  /** The heap's contents on the host (allocated at the first static dispatch: GPUs never need it). */
  mirror: null as Uint32Array | null,
  /** Bytes in use; new slots in [dirty, top) are written at the next flush, rewritten ones from `rewritten`. */
  top: 0,
  dirty: 0,
  rewritten: [] as UniformSlot[],
};
function heapBuffer(): GPUBuffer {
  heap.buffer ??= runtime().device.createBuffer({ size: heap.bytes, usage: USAGE_UNIFORM | USAGE_COPY_DST });
  return heap.buffer;
}
function resetHeap(): void {
  heap.top = heap.dirty = 0;
  heap.rewritten = [];
}
/** Tests: resizes the uniform heap (2 MiB by default), emptying it and the bind-group cache. */
export function setUniformHeapBytes(bytes: number): void {
  if (!Number.isInteger(bytes) || bytes < 256 || bytes % 256 || bytes > 1 << 28)
    throw new Error(`setUniformHeapBytes: ${bytes} is not a multiple of 256 bytes in [256, 2^28]`);
  flush();
  if (heap.buffer) destroyQuietly(heap.buffer);
  heap.buffer = null;
  heap.bytes = bytes;
  heap.mirror = null;
  resetHeap();
  bindGroups = newBindGroupNode();
  bindGroupCount = 0;
}
/** Writes the new and rewritten slots (before the submit that reads them). */
function writeHeap(device: GPUDevice): void {
  const mirror = heap.mirror;
  if (!mirror) return; // no static dispatch yet
  if (heap.top > heap.dirty)
    device.queue.writeBuffer(heapBuffer(), heap.dirty, mirror.buffer, heap.dirty, heap.top - heap.dirty);
  heap.dirty = heap.top;
  for (const slot of heap.rewritten)
    device.queue.writeBuffer(heapBuffer(), slot.at, mirror.buffer, slot.at, slot.words.length * 4);
  heap.rewritten = [];
}

/** The bind group of `k` with the uniform words at uniformU32[base, base + n) in a heap slot of `bytes`. */
function staticBindGroup(
  k: Kernel,
  bytes: number,
  base: number,
  n: number,
  buffers: readonly (GPUBuffer | TextureBinding)[],
): GPUBindGroup {
  // FNV-1a over the words (their bit patterns), then an exact comparison.
  let h = 0x811c9dc5 ^ n;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ uniformU32[base + i]!, 0x01000193);
  const mirror = (heap.mirror ??= new Uint32Array(heap.bytes / 4));
  let node = bindGroupNode(k, bytes, buffers);
  const slots = (node.slots ??= []);
  let victim: UniformSlot | null = null;
  for (const slot of slots) {
    if (slot.hash === h && slot.words.length === n) {
      let same = true;
      for (let i = 0; i < n && same; i++) same = slot.words[i] === uniformU32[base + i];
      if (same) {
        slot.used = submits;
        return slot.group;
      }
    }
    if (slot.used < submits && (!victim || slot.used < victim.used)) victim = slot;
  }
  if (victim && slots.length >= SLOTS_PER_NODE) {
    // Rewrite a slot that no unsubmitted work reads; its bind group stays valid. (Nodes are keyed by the
    // block's padded size, so a slot may hold a different number of words: reallocated then.)
    if (victim.words.length !== n) victim.words = new Uint32Array(n);
    for (let i = 0; i < n; i++) victim.words[i] = uniformU32[base + i]!;
    mirror.set(victim.words, victim.at / 4);
    if (victim.at < heap.dirty) heap.rewritten.push(victim);
    victim.hash = h;
    victim.used = submits;
    return victim.group;
  }
  const align = runtime().uniformAlign;
  let at = Math.ceil(heap.top / align) * align;
  if (at + bytes > heap.bytes || bindGroupCount >= BIND_GROUP_CACHE_MAX) {
    flush(); // the unsubmitted work's slots are written and submitted before any slot is reused
    bindGroups = newBindGroupNode();
    bindGroupCount = 0;
    resetHeap();
    at = 0;
    node = bindGroupNode(k, bytes, buffers);
    node.slots = [];
  }
  const words = uniformU32.slice(base, base + n);
  mirror.set(words, at / 4);
  heap.top = at + bytes;
  bindGroupsCreated++;
  bindGroupCount++;
  const entries: GPUBindGroupEntry[] = [
    { binding: 0, resource: { buffer: heapBuffer(), offset: at, size: bytes } },
  ];
  for (const b of buffers)
    entries.push({ binding: entries.length, resource: b instanceof TextureBinding ? b.view : { buffer: b } });
  const group = runtime().device.createBindGroup({ layout: k.layout, entries });
  node.slots!.push({ words, group, at, hash: h, used: submits });
  return group;
}

function bindGroupFor(
  k: Kernel,
  uniformBytes: number,
  offset: number,
  buffers: readonly (GPUBuffer | TextureBinding)[],
): GPUBindGroup {
  if (!k.cached) return createBindGroup(k, uniformBytes, offset, buffers);
  const node = bindGroupNode(k, uniformBytes, buffers);
  if (!node.group) {
    if (bindGroupCount >= BIND_GROUP_CACHE_MAX) {
      bindGroups = newBindGroupNode();
      bindGroupCount = 0;
      return bindGroupFor(k, uniformBytes, offset, buffers);
    }
    node.group = createBindGroup(k, uniformBytes, 0, buffers);
    bindGroupCount++;
  }
  return node.group;
}

/** Encodes a buffer-to-buffer copy in the current submit (ordered after earlier dispatches). */
export function copyBuffer(
  src: GPUBuffer,
  srcOffset: number,
  dst: GPUBuffer,
  dstOffset: number,
  bytes: number,
): void {
  if (recorder) return;
  endPass();
  encoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  batch.ops.push('copy');
}

/**
 * Encodes a copy of `rows` rows of `texelsPerRow` rgba32float texels from a buffer (rows `bytesPerRow` apart,
 * a multiple of 256; `srcOffset` a multiple of 16) into a scratch texture at row `y`. On lavapipe this is a
 * memcpy per row: a 6272×128 matrix took 0.09 ms against 2.2–4.2 ms for a compute pass that textureStores it.
 */
export function copyBufferToTexture(
  src: GPUBuffer,
  srcOffset: number,
  bytesPerRow: number,
  dst: ScratchTexture,
  y: number,
  texelsPerRow: number,
  rows: number,
): void {
  if (recorder) return;
  endPass();
  encoder().copyBufferToTexture(
    { buffer: src, offset: srcOffset, bytesPerRow },
    { texture: dst.texture, origin: [0, y] },
    [texelsPerRow, rows],
  );
  batch.ops.push('copy:texture');
}

// ---------------------------------------------------------------------------------------------------------
// Profiling (developer tool): with `setProfiling(true)` every dispatch runs in its own compute pass with
// timestamp queries, and `profileReport()` returns GPU time per kernel name. Needs 'timestamp-query'.
interface Profiler {
  set: GPUQuerySet;
  resolve: GPUBuffer;
  names: string[];
  costs: { flops: number; bytes: number; known: boolean }[];
  totals: Map<string, ProfileEntry>;
  pending: Promise<void>[];
}

/** One row of `profileReport()`: a kernel name's GPU time and work, summed over its dispatches. */
export interface ProfileEntry {
  name: string;
  /** GPU milliseconds (timestamp queries around each dispatch). */
  ms: number;
  count: number;
  /** FLOPs (multiply-add = 2) of the dispatches that declared a cost; 0 when none did. */
  flops: number;
  /** Bytes moved: the declared minimum, or the bound storage-buffer sizes for dispatches without a cost. */
  bytes: number;
  /** Whether every dispatch of this name declared its cost (false: bytes are the bound-buffer estimate). */
  costKnown: boolean;
  /** Achieved GFLOP/s and GB/s (flops / ms, bytes / ms). */
  gflops: number;
  gbps: number;
}

// GEMM dispatches name their problem in the label (`gemm:OP MxNxK[xOUTER][ bNB]`, see ops/gemm.ts):
// 2·M·N·K FLOPs per product and the operands read and the result written once each.
const GEMM_LABEL = /^gemm:\S+ (\d+)x(\d+)x(\d+)(?:x(\d+))?(?: b(\d+))?$/;
function gemmLabelCost(label: string): DispatchCost | null {
  const m = GEMM_LABEL.exec(label);
  if (!m) return null;
  const [M, N, K, outer, nb] = [m[1], m[2], m[3], m[4] ?? '1', m[5] ?? '1'].map(Number) as number[];
  const products = outer! * nb!;
  return {
    flops: 2 * M! * N! * K! * products,
    bytes: 4 * products * (M! * K! + K! * N!) + 4 * nb! * M! * N!,
  };
}

/** Bytes of the storage buffers a dispatch binds: its traffic when the kernel reads or writes each once. */
function boundBytes(buffers: readonly (GPUBuffer | TextureBinding)[]): {
  flops: number;
  bytes: number;
  known: boolean;
} {
  let bytes = 0;
  for (const b of buffers) if (!(b instanceof TextureBinding)) bytes += b.size;
  return { flops: 0, bytes, known: false };
}
let prof: Profiler | null = null;
const PROF_QUERIES = 2 * MAX_OPS_PER_SUBMIT;

export function setProfiling(on: boolean): void {
  flush();
  if (!on) {
    prof = null;
    return;
  }
  const { device } = runtime();
  if (!device.features.has('timestamp-query' as GPUFeatureName))
    throw new Error('setProfiling: this device has no timestamp-query feature');
  prof = {
    set: device.createQuerySet({ type: 'timestamp', count: PROF_QUERIES }),
    resolve: device.createBuffer({ size: PROF_QUERIES * 8, usage: 0x0200 | USAGE_COPY_SRC }), // QUERY_RESOLVE
    names: [],
    costs: [],
    totals: new Map(),
    pending: [],
  };
}

function profiledPass(
  name: string,
  cost: DispatchCost | { flops: number; bytes: number; known: boolean },
): GPUComputePassEncoder {
  const p = prof!;
  endPass();
  const i = p.names.length;
  p.names.push(name);
  p.costs.push({ flops: cost.flops, bytes: cost.bytes, known: 'known' in cost ? cost.known : true });
  return encoder().beginComputePass({
    timestampWrites: { querySet: p.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
  });
}

function collectProfile(): void {
  const p = prof;
  if (!p?.names.length || !batch.encoder) return;
  const n = p.names.length;
  const { device } = runtime();
  const read = device.createBuffer({ size: n * 16, usage: USAGE_MAP_READ | USAGE_COPY_DST });
  batch.encoder.resolveQuerySet(p.set, 0, 2 * n, p.resolve, 0);
  batch.encoder.copyBufferToBuffer(p.resolve, 0, read, 0, n * 16);
  const names = p.names;
  const costs = p.costs;
  p.names = [];
  p.costs = [];
  batch.afterSubmit.push(() => {
    p.pending.push(
      read.mapAsync(MAP_MODE_READ).then(() => {
        const t = new BigUint64Array(read.getMappedRange());
        names.forEach((name, i) => {
          const e = p.totals.get(name) ?? {
            name,
            ms: 0,
            count: 0,
            flops: 0,
            bytes: 0,
            costKnown: true,
            gflops: 0,
            gbps: 0,
          };
          const c = costs[i]!;
          e.ms += Number(t[2 * i + 1]! - t[2 * i]!) / 1e6;
          e.count++;
          e.flops += c.flops;
          e.bytes += c.bytes;
          e.costKnown &&= c.known;
          p.totals.set(name, e);
        });
        read.destroy();
      }),
    );
  });
}

/**
 * GPU milliseconds per kernel name since profiling was switched on (sorted, largest first), with the work
 * done and the achieved GFLOP/s and GB/s (see `rooflineReport` for the same against measured peaks).
 */
export async function profileReport(): Promise<ProfileEntry[]> {
  if (!prof) throw new Error('profileReport: profiling is off (setProfiling(true))');
  await sync();
  await Promise.all(prof.pending);
  prof.pending = [];
  return [...prof.totals.values()]
    .map((e) => ({
      ...e,
      gflops: e.ms > 0 ? e.flops / e.ms / 1e6 : 0,
      gbps: e.ms > 0 ? e.bytes / e.ms / 1e6 : 0,
    }))
    .sort((a, b) => b.ms - a.ms);
}

/** Submits everything encoded so far. Cheap when nothing is pending. */
export function flush(): void {
  if (!batch.encoder) return;
  const t0 = performance.now();
  const { device } = runtime();
  endPass();
  collectProfile();
  const ops = batch.ops;
  if (debugMode) device.pushErrorScope('validation');
  if (batch.uniformBytes) device.queue.writeBuffer(uniformBuffer(), 0, batch.uniforms, 0, batch.uniformBytes);
  writeHeap(device);
  device.queue.submit([batch.encoder.finish()]);
  submits++;
  submitMs += performance.now() - t0;
  if (debugMode)
    device.popErrorScope().then((err) => {
      if (err) pendingError ??= `WebGPU validation error in op(s) [${ops.join(', ')}]: ${err.message}`;
    });
  lastOps = ops;
  batch.encoder = null;
  if (prof) {
    prof.names = [];
    prof.costs = [];
  }
  batch.uniformBytes = 0;
  batch.ops = [];
  const after = batch.afterSubmit;
  batch.afterSubmit = [];
  for (const f of after) f();
}

/**
 * Writes host data into a buffer. Pending work is submitted first, because `queue.writeBuffer` runs before
 * any command buffer submitted after it, and the buffer may be a pooled one still read by encoded work.
 */
export function writeBuffer(buf: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
  flush();
  runtime().device.queue.writeBuffer(buf, byteOffset, data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------------------------------------------------
// Waiting. Every await on the GPU (readback, sync) goes through `waitFor`, so that the host can choose how to
// wait: under Node, Dawn's binding busy-polls while a map/work-done is pending, and device-node.ts installs a
// hook that lets that poll sleep once a wait grows long (on a CPU adapter the spinning thread takes a core
// from the rasteriser).
export type WaitHook = <T>(work: Promise<T>) => Promise<T>;
let waitHook: WaitHook = (work) => work;
export function setWaitHook(hook: WaitHook): void {
  waitHook = hook;
}
export const waitFor = <T>(work: Promise<T>): Promise<T> => waitHook(work);

const readPool: GPUBuffer[] = [];

/** Copies `bytes` bytes of `buf` to the host. */
export async function readBuffer(buf: GPUBuffer, bytes: number, byteOffset = 0): Promise<ArrayBuffer> {
  const { device } = runtime();
  const size = Math.max(16, Math.ceil(bytes / 16) * 16);
  const idx = readPool.findIndex((b) => b.size >= size);
  const staging =
    idx >= 0
      ? readPool.splice(idx, 1)[0]!
      : device.createBuffer({ size: sizeClass(size), usage: USAGE_MAP_READ | USAGE_COPY_DST });
  copyBuffer(buf, byteOffset, staging, 0, Math.ceil(bytes / 4) * 4);
  flush();
  try {
    await waitFor(staging.mapAsync(MAP_MODE_READ, 0, size));
  } catch (e) {
    throwPending();
    if (lostReason) throw new Error(`wgrad: the WebGPU device was lost (${lostReason})`);
    throw e;
  }
  throwPending();
  const out = staging.getMappedRange(0, size).slice(0, bytes);
  staging.unmap();
  readPool.push(staging);
  return out;
}

/** Waits until the GPU has finished everything submitted so far, and reports any pending error. */
export async function sync(): Promise<void> {
  flush();
  await waitFor(runtime().device.queue.onSubmittedWorkDone());
  throwPending();
}

/**
 * Counters since the process started: submits (command buffers), dispatches, compiled pipelines, and host
 * milliseconds spent inside `dispatch()` (packing uniforms, finding the bind group, encoding: `encodeMs`) and
 * inside submits (`submitMs`: finishing the command buffer, writing the uniforms, queue.submit), and bind
 * groups created (`bindGroupsCreated`: cache misses, and every dispatch of an uncached kernel). Take the
 * difference of two readings to cost a piece of work.
 */
export function dispatchStats(): {
  submits: number;
  dispatches: number;
  pipelines: number;
  encodeMs: number;
  submitMs: number;
  bindGroupsCreated: number;
} {
  return { submits, dispatches, pipelines: pipelineCount(), encodeMs, submitMs, bindGroupsCreated };
}

/** Splits `n` workgroups over x and y so that neither exceeds the per-dimension limit. */
export function grid(n: number): [number, number] {
  const max = runtime().maxWorkgroupsPerDim;
  if (n <= max) return [Math.max(1, n), 1];
  const y = Math.ceil(n / max);
  return [Math.ceil(n / y), y];
}

// NaN through max/min/clamp: WGSL leaves max(NaN, x) to the implementation and lavapipe returns x, where PyTorch
// keeps the NaN (relu, clamp, maximum). The test is on the bits: lavapipe folds \`v != v\` to false.
/** WGSL bool expression: whether the f32 `v` is NaN (on its bits). */
export const nanBits = (v: string) => `(bitcast<u32>(${v}) & 0x7fffffffu) > 0x7f800000u`;
/** WGSL expression: `e`, or the f32 `v` itself where `v` is NaN (e.g. keepNan('v0', 'max(v0, 0.0)')). */
export const keepNan = (v: string, e: string) => `select(${e}, ${v}, ${nanBits(v)})`;
/** keepNan for vec4<f32> values, lane by lane. */
export const keepNan4 = (v: string, e: string) =>
  `select(${e}, ${v}, (bitcast<vec4<u32>>(${v}) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u))`;
/** WGSL expression: `e`, or NaN where either f32 `a` or `b` is NaN (a + b is NaN then). */
export const keepNan2 = (a: string, b: string, e: string) =>
  `select(${e}, ${a} + ${b}, ${nanBits(a)} || ${nanBits(b)})`;

/** WGSL snippet: the flat invocation index for a 1-D grid laid out by `grid()` with `wg` threads per group. */
export const FLAT_INDEX = (wg: number) => `let i = gid.x + gid.y * nwg.x * ${wg}u;`;
export const MAIN_1D = (wg: number) =>
  `@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>)`;
