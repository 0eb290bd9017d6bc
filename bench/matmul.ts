// matmul throughput: wgrad's register-blocked `matmul` against a naive one-invocation-per-output WGSL kernel,
// on the same device in the same run, with a cross-check of the two results.
//
//   npm run bench [-- --shapes 128x784x400,1024x1024x1024] [--quick] [--json out.json]
//
// Shapes are M×K×N (A is M×K, B is K×N); GFLOP/s = 2·M·N·K / time.

import { matmul, rand, scope, Tensor } from '@wgrad/tensor';
// The raw kernel/dispatch API is not exported by @wgrad/tensor's public API; the bench reaches into the
// runtime module (same module instance as the package's under `--conditions=source`).
import { dispatch, kernel } from '../packages/tensor/src/gpu.js';
import {
  benchMeta,
  fmt,
  formatHeader,
  markdownTable,
  maxRelErr,
  measureAll,
  parseBenchArgs,
  spread,
  type Timing,
  writeJson,
} from './common.js';

const DEFAULT_SHAPES = '128x784x400,128x400x784,128x400x20,256x3136x128,1024x1024x1024';

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
  naive: Timing & { gflops: number };
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

    const { ours: tOurs, naive: tNaive } = await measureAll(
      {
        ours: (iters) => {
          for (let i = 0; i < iters; i++) matmul(a, b).dispose();
        },
        naive: (iters) => {
          for (let i = 0; i < iters; i++) naiveMatmul(a, b, c, M, K, N);
        },
      },
      opts,
    );
    const gflops = (t: Timing) => flop / (t.ms * 1e-3) / 1e9;
    return {
      shape: `${M}x${K}x${N}`,
      M,
      K,
      N,
      gflop: flop / 1e9,
      ours: { ...tOurs, gflops: gflops(tOurs) },
      naive: { ...tNaive, gflops: gflops(tNaive) },
      ratio: tNaive.ms / tOurs.ms,
      maxRelErr: err,
      cpuRelErr: { ours: cpu[0]!, naive: cpu[1]!, samples: CPU_SAMPLES },
    };
  });
}

const opts = parseBenchArgs('usage: npm run bench -- [options]', {
  shapes: { default: DEFAULT_SHAPES, help: `comma-separated MxKxN list (default ${DEFAULT_SHAPES})` },
});
let shapes: Shape3[];
try {
  shapes = parseShapes(opts.shapes ?? DEFAULT_SHAPES);
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}

const meta = benchMeta('matmul', opts);
console.log(formatHeader('matmul GFLOP/s: wgrad `matmul` vs naive WGSL (one invocation per output)', meta));
console.log('');

const results: Result[] = [];
const rowOf = (r: Result) => [
  r.shape,
  fmt(r.gflop, 3),
  fmt(r.ours.ms, 3),
  fmt(r.ours.gflops, 3),
  fmt(r.naive.ms, 3),
  fmt(r.naive.gflops, 3),
  `${r.ratio.toFixed(2)}×`,
  r.maxRelErr.toExponential(1),
  `${r.cpuRelErr.ours.toExponential(1)} / ${r.cpuRelErr.naive.toExponential(1)}`,
  r.ours.samples.length > 1 ? `${Math.round(100 * Math.max(spread(r.ours), spread(r.naive)))}%` : '–',
];
const headers = [
  'M×K×N',
  'GFLOP',
  'ours ms',
  'ours GFLOP/s',
  'naive ms',
  'naive GFLOP/s',
  'ours/naive',
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
console.log(markdownTable(headers, results.map(rowOf)));
console.log('');
console.log(
  'ours/naive = naive time / ours time (>1: ours is faster). max rel err = max|ours − naive| / max|naive| over ' +
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
