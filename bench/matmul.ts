// matmul throughput: wgrad's `matmul` (the GEMM body this adapter uses; on lavapipe also the portable blocked
// body) against a naive one-invocation-per-output WGSL kernel on the same device in the same run, with a
// cross-check of the results; and, where installed, tfjs-backend-webgpu on the same adapter
// (npm i --no-save @tensorflow/tfjs-core @tensorflow/tfjs-backend-webgpu) and PyTorch on the CPU (Debian's
// python3-torch, 2 threads; as installed and tuned, see torchEnv in common.ts).
//
//   npm run bench [-- --shapes 128x784x400,1024x1024x1024] [--torch auto|off] [--quick] [--json out.json]
//
// Shapes are M×K×N (A is M×K, B is K×N); GFLOP/s = 2·M·N·K / time.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gemmBody, matmul, rand, scope, setGemmBody, setGemmTexture, Tensor } from '@wgrad/tensor';
// The raw kernel/dispatch API is not exported by @wgrad/tensor's public API; the bench reaches into the
// runtime module (same module instance as the package's under `--conditions=source`).
import { dispatch, kernel } from '../packages/tensor/src/gpu.js';
import { gemmUsesTexture as usesTexture } from '../packages/tensor/src/ops/gemm.js';
import {
  benchMeta,
  envWords,
  findTorchPython,
  fmt,
  formatHeader,
  markdownTable,
  maxRelErr,
  measureAll,
  parseBenchArgs,
  runPythonJson,
  spread,
  type Timing,
  torchBlas,
  torchEnv,
  writeJson,
} from './common.js';

// The MLP VAE's layers, the conv VAE's encoder dense layer and its Conv2d(64,128) forward as a GEMM (im2col
// rows × weight), and 1024³.
const DEFAULT_SHAPES = '128x784x400,128x400x784,128x400x20,256x3136x128,6272x1024x128,1024x1024x1024';

const NAIVE_WG = 8;
const NAIVE_SRC = `
struct U { M: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(${NAIVE_WG}, ${NAIVE_WG}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let m = gid.y;
  if (m >= u.M || n >= u.N) { return; }
  var acc = 0.0;
  for (var k = 0u; k < u.K; k = k + 1u) {
    acc = acc + a[m * u.K + k] * b[k * u.N + n];
  }
  c[m * u.N + n] = acc;
}`;

/** Encodes C = A·B with the naive kernel into `c` (contiguous row-major M×K, K×N, M×N). */
function naiveMatmul(a: Tensor, b: Tensor, c: Tensor, M: number, K: number, N: number): void {
  dispatch(
    kernel('bench_naive_matmul', NAIVE_SRC),
    [M, N, K],
    [a.buffer(), b.buffer(), c.buffer()],
    [Math.ceil(N / NAIVE_WG), Math.ceil(M / NAIVE_WG)],
  );
}

// ---------------------------------------------------------------------------------------------------------
// tfjs-backend-webgpu (optional): its own device on the same Dawn adapter.
interface Tfjs {
  version: string;
  // biome-ignore lint/suspicious/noExplicitAny: tfjs is an optional, untyped-here dependency
  tf: any;
}

async function loadTfjs(): Promise<Tfjs | null> {
  try {
    const core = '@tensorflow/tfjs-core';
    const backend = '@tensorflow/tfjs-backend-webgpu';
    const tf = await import(core);
    const { create } = await import('webgpu');
    // tfjs finds WebGPU through navigator.gpu; keep the create() result alive (Dawn segfaults otherwise).
    const gpu = create(['backend=vulkan']);
    (globalThis as { __benchGpu?: unknown }).__benchGpu = gpu;
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
    await import(backend);
    if (!(await tf.setBackend('webgpu'))) return null;
    await tf.ready();
    return { version: tf.version_core as string, tf };
  } catch {
    return null;
  }
}

async function timeTfjs(
  t: Tfjs,
  M: number,
  K: number,
  N: number,
  opts: { targetSeconds: number; reps: number },
) {
  const tf = t.tf;
  const a = tf.randomUniform([M, K], -1, 1);
  const b = tf.randomUniform([K, N], -1, 1);
  const batch = async (n: number) => {
    const t0 = performance.now();
    let last = null;
    for (let i = 0; i < n; i++) {
      last?.dispose();
      last = tf.matMul(a, b);
    }
    await last.data();
    last.dispose();
    return (performance.now() - t0) / 1000;
  };
  await batch(2);
  let iters = 1;
  let secs = await batch(iters);
  while (secs < opts.targetSeconds * 0.4 && iters < 100000) {
    iters *= 2;
    secs = await batch(iters);
  }
  iters = Math.max(1, Math.ceil((iters * opts.targetSeconds) / secs));
  const samples: number[] = [];
  for (let r = 0; r < opts.reps; r++) samples.push(((await batch(iters)) * 1000) / iters);
  a.dispose();
  b.dispose();
  const sorted = [...samples].sort((x, y) => x - y);
  return { ms: sorted[Math.floor(sorted.length / 2)]!, samples, iters, warmupSeconds: 0 };
}

interface Shape3 {
  M: number;
  K: number;
  N: number;
}

function parseShapes(spec: string): Shape3[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length)
    .map((s) => {
      const parts = s.split(/[x×]/).map(Number);
      if (parts.length !== 3 || parts.some((d) => !Number.isInteger(d) || d <= 0))
        throw new Error(`--shapes: '${s}' is not MxKxN with positive integers`);
      const [M, K, N] = parts as [number, number, number];
      return { M, K, N };
    });
}

interface Result {
  shape: string;
  M: number;
  K: number;
  N: number;
  gflop: number;
  ours: Timing & { gflops: number };
  blocked?: Timing & { gflops: number };
  /** subgroup body with B from storage (no texture pack), where the default packs it. */
  storageB?: Timing & { gflops: number };
  naive: Timing & { gflops: number };
  tfjs?: Timing & { gflops: number };
  ratio: number;
  maxRelErr: number;
  cpuRelErr: { ours: number; naive: number; samples: number };
}

const CPU_SAMPLES = 512;

/** Max rel err (as `maxRelErr`) of each GPU result against float64 dot products at sampled output positions. */
function cpuSpotCheck(
  a: Float32Array,
  b: Float32Array,
  M: number,
  K: number,
  N: number,
  gpu: readonly Float32Array[],
): number[] {
  const total = M * N;
  const count = Math.min(total, CPU_SAMPLES);
  const ref = new Float64Array(count);
  const got = gpu.map(() => new Float64Array(count));
  let seed = 12345;
  for (let s = 0; s < count; s++) {
    // Every element when there are few; else a fixed LCG sample that always includes both corners.
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const idx = count === total ? s : s === 0 ? 0 : s === 1 ? total - 1 : seed % total;
    const m = Math.floor(idx / N);
    const n = idx % N;
    let acc = 0;
    for (let k = 0; k < K; k++) acc += a[m * K + k]! * b[k * N + n]!;
    ref[s] = acc;
    gpu.forEach((g, j) => {
      got[j]![s] = g[idx]!;
    });
  }
  return got.map((g) => maxRelErr(g, ref));
}

async function benchShape(
  { M, K, N }: Shape3,
  opts: { targetSeconds: number; reps: number },
): Promise<Result> {
  return scope(async () => {
    const a = rand([M, K], { low: -1, high: 1 });
    const b = rand([K, N], { low: -1, high: 1 });
    const c = new Tensor([M, N], 'float32');
    const flop = 2 * M * N * K;

    // Correctness first (this also compiles both pipelines): ours vs naive on every element, and both vs a
    // float64 CPU dot product on a sample of elements (so that agreement cannot hide a shared mistake).
    const ours0 = matmul(a, b);
    naiveMatmul(a, b, c, M, K, N);
    const [oursC, naiveC, hostA, hostB] = await Promise.all([ours0, c, a, b].map((t) => t.toArray()));
    ours0.dispose();
    const err = maxRelErr(oursC!, naiveC!);
    const cpu = cpuSpotCheck(hostA!, hostB!, M, K, N, [oursC!, naiveC!]);

    const runs: Record<string, (iters: number) => void> = {
      ours: (iters) => {
        for (let i = 0; i < iters; i++) matmul(a, b).dispose();
      },
      naive: (iters) => {
        for (let i = 0; i < iters; i++) naiveMatmul(a, b, c, M, K, N);
      },
    };
    if (auto !== 'blocked')
      runs.blocked = (iters) => {
        setGemmBody('blocked');
        for (let i = 0; i < iters; i++) matmul(a, b).dispose();
        setGemmBody(null);
      };
    if (auto === 'subgroup' && usesTexture(M, K, N))
      runs.storageB = (iters) => {
        setGemmTexture('never');
        for (let i = 0; i < iters; i++) matmul(a, b).dispose();
        setGemmTexture('auto');
      };
    const t = await measureAll(runs, opts);
    const tOurs = t.ours!;
    const tNaive = t.naive!;
    const gflops = (t: Timing) => flop / (t.ms * 1e-3) / 1e9;
    const tf = tfjs ? await timeTfjs(tfjs, M, K, N, opts) : undefined;
    return {
      shape: `${M}x${K}x${N}`,
      M,
      K,
      N,
      gflop: flop / 1e9,
      ours: { ...tOurs, gflops: gflops(tOurs) },
      blocked: t.blocked && { ...t.blocked, gflops: gflops(t.blocked) },
      storageB: t.storageB && { ...t.storageB, gflops: gflops(t.storageB) },
      naive: { ...tNaive, gflops: gflops(tNaive) },
      tfjs: tf && { ...tf, gflops: gflops(tf) },
      ratio: tNaive.ms / tOurs.ms,
      maxRelErr: err,
      cpuRelErr: { ours: cpu[0]!, naive: cpu[1]!, samples: CPU_SAMPLES },
    };
  });
}

const opts = parseBenchArgs('usage: npm run bench -- [options]', {
  shapes: { default: DEFAULT_SHAPES, help: `comma-separated MxKxN list (default ${DEFAULT_SHAPES})` },
  torch: { default: 'auto', help: "'auto' (also time torch.mm when python3-torch is installed) or 'off'" },
});
const auto = gemmBody();
const torchPy = findTorchPython(opts.torch);
const tfjs = await loadTfjs();
let shapes: Shape3[];
try {
  shapes = parseShapes(opts.shapes ?? DEFAULT_SHAPES);
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}

const meta = benchMeta('matmul', opts);
console.log(
  formatHeader('matmul GFLOP/s: wgrad `matmul` vs naive WGSL, tfjs-backend-webgpu and PyTorch', meta),
);
console.log(`- wgrad GEMM body on this adapter: ${auto}`);
console.log(
  `- tfjs-backend-webgpu: ${tfjs ? `${tfjs.version} on the same adapter (its own device)` : 'not installed (npm i --no-save @tensorflow/tfjs-core @tensorflow/tfjs-backend-webgpu)'}`,
);
console.log(
  `- PyTorch: ${torchPy ? `${torchPy}, torch.mm, 2 threads, BLAS: ${torchBlas(torchPy)}; tuned: ${envWords(torchEnv(true)).join(' ')}` : 'not run (python3-torch not installed, or --torch off)'}`,
);
console.log('');

const results: Result[] = [];
const x2 = (v: number) => `${v.toFixed(2)}×`;
/** PyTorch's ms per shape: as installed, then tuned (torchEnv in common.ts). */
const torchMs = [new Map<string, number>(), new Map<string, number>()] as const;
const rowOf = (r: Result) => [
  r.shape,
  fmt(r.gflop, 3),
  fmt(r.ours.ms, 3),
  fmt(r.ours.gflops, 3),
  r.blocked ? fmt(r.blocked.gflops, 3) : '–',
  r.storageB ? fmt(r.storageB.gflops, 3) : '–',
  fmt(r.naive.gflops, 3),
  `${r.ratio.toFixed(2)}×`,
  r.tfjs ? fmt(r.tfjs.gflops, 3) : '–',
  r.tfjs ? x2(r.tfjs.ms / r.ours.ms) : '–',
  ...torchMs.flatMap((m) =>
    m.has(r.shape)
      ? [fmt((r.gflop / m.get(r.shape)!) * 1e3, 3), x2(m.get(r.shape)! / r.ours.ms)]
      : ['–', '–'],
  ),
  r.maxRelErr.toExponential(1),
  `${r.cpuRelErr.ours.toExponential(1)} / ${r.cpuRelErr.naive.toExponential(1)}`,
  r.ours.samples.length > 1 ? `${Math.round(100 * Math.max(spread(r.ours), spread(r.naive)))}%` : '–',
];
const headers = [
  'M×K×N',
  'GFLOP',
  'ours ms',
  'ours GFLOP/s',
  'blocked body GFLOP/s',
  'B from storage GFLOP/s',
  'naive GFLOP/s',
  'ours/naive',
  'tfjs-webgpu GFLOP/s',
  'ours/tfjs',
  'PyTorch GFLOP/s',
  'ours/PyTorch',
  'PyTorch tuned GFLOP/s',
  'ours/tuned',
  'max rel err',
  'vs CPU: ours / naive',
  'spread',
];
for (const s of shapes) {
  process.stderr.write(`  ${s.M}x${s.K}x${s.N} … `);
  const r = await benchShape(s, opts);
  process.stderr.write(
    `ours ${fmt(r.ours.gflops)} GFLOP/s (${r.ours.iters} it), naive ${fmt(r.naive.gflops)} GFLOP/s (${r.naive.iters} it)\n`,
  );
  results.push(r);
}
if (torchPy)
  for (const tuned of [false, true]) {
    type TorchMm = { results: { shape: string; ms: number }[] };
    const tm = runPythonJson<TorchMm>(
      torchPy,
      join(dirname(fileURLToPath(import.meta.url)), 'torch_kernels.py'),
      [
        'matmul',
        '--shapes',
        shapes.map((s) => `${s.M}x${s.K}x${s.N}`).join(','),
        '--target',
        String(opts.targetSeconds),
        '--reps',
        String(opts.reps),
      ],
      torchEnv(tuned),
    );
    if (typeof tm === 'string') console.log(`PyTorch ${tuned ? 'tuned' : 'as installed'} ${tm}\n`);
    else for (const r of tm.results) torchMs[tuned ? 1 : 0].set(r.shape, r.ms);
  }
console.log(markdownTable(headers, results.map(rowOf)));
console.log('');
console.log(
  'ours/X = X time / ours time (>1: ours is faster). max rel err = max|ours − naive| / max|naive| over ' +
    `all outputs; vs CPU: the same measure against float64 dot products at ${CPU_SAMPLES} sampled outputs; ` +
    'spread: (max − min) / median of the measurements, the worse of the two kernels (noise indicator).',
);
const TOL = 1e-4;
const bad = results.filter((r) => !(r.maxRelErr < TOL && r.cpuRelErr.ours < TOL && r.cpuRelErr.naive < TOL));
if (bad.length) console.log(`\nWARNING: results disagree on ${bad.map((r) => r.shape).join(', ')}`);
if (opts.json) {
  writeJson(opts.json, { meta, results });
  console.log(`\nwrote ${opts.json}`);
}
process.exit(bad.length ? 1 : 0);
