// The roofline: the adapter's measured peak arithmetic rate (an FMA-bound WGSL kernel) and memory bandwidth (a
// streaming vec4 copy), and each profiled kernel's achieved GFLOP/s and GB/s against them.
// Platform-independent: only WebGPU through gpu.ts, timed by the wall clock over many back-to-back dispatches.
//
// The peaks are what a WGSL kernel can reach on this adapter, not the hardware's datasheet figures: on a CPU
// adapter (lavapipe) they include its per-invocation overheads, which is the limit our kernels live under.
import {
  allocBuffer,
  dispatch,
  FLAT_INDEX,
  freeBuffer,
  grid,
  kernelFor,
  MAIN_1D,
  onDeviceChange,
  type ProfileEntry,
  sync,
} from './gpu.js';

export interface Peaks {
  /** GFLOP/s of the FMA kernel (a multiply-add counts 2 FLOPs). */
  gflops: number;
  /** GB/s of the streaming copy (bytes read + bytes written). */
  gbps: number;
  /** FLOPs per byte where the two roofs meet: kernels below it are bandwidth-bound. */
  ridge: number;
  /** How they were measured (sizes, repetitions), for reports. */
  method: string;
}

const WG = 64;
// FMA kernel: ACC independent vec4 accumulators per invocation, each updated INNER times per loop trip
// (written out: lavapipe spills loop-carried values every iteration, so the body must be straight-line).
// On the 2-core EPYC (lavapipe): 16 × 4 131–133 GFLOP/s, 8 × 4, 32 × 2 and 16 × 8 122–131; 8 × 8 and 4 × 8
// gave 51–57, but in a busier moment.
const ACC = 16;
const INNER = 4;

function fmaSource(): string {
  const decl = Array.from({ length: ACC }, (_, a) => `var a${a} = vec4<f32>(f32(i) * 1e-9 + ${a}.0 * 1e-3);`);
  const body: string[] = [];
  for (let r = 0; r < INNER; r++) for (let a = 0; a < ACC; a++) body.push(`a${a} = fma(a${a}, m, c);`);
  const sum = Array.from({ length: ACC }, (_, a) => `a${a}`).join(' + ');
  return `
struct U { iters: u32, n: u32, m: f32, c: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  if (i >= u.n) { return; }
  let m = vec4<f32>(u.m);
  let c = vec4<f32>(u.c);
  ${decl.join('\n  ')}
  for (var t = 0u; t < u.iters; t = t + 1u) {
    ${body.join('\n    ')}
  }
  out[i] = ${sum};
}`;
}

// Streaming copy: 4 vec4 per invocation (the elementwise ops' layout), 32 bytes of traffic per vec4.
const COPY_PER = 4;
function copySource(): string {
  return `
struct U { n: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  for (var q = 0u; q < ${COPY_PER}u; q = q + 1u) {
    let j = i * ${COPY_PER}u + q;
    if (j < u.n) { dst[j] = src[j]; }
  }
}`;
}

/** Best (shortest) wall-clock seconds of `reps` measurements of `n` back-to-back `run()`s and one sync. */
async function best(run: () => void, n: number, reps: number): Promise<number> {
  run();
  await sync(); // compile + first use
  let t = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) run();
    await sync();
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return t;
}

let peaks: Promise<Peaks> | null = null;
onDeviceChange(() => {
  peaks = null;
});

/**
 * Measures the adapter's peak GFLOP/s and GB/s once per process (later calls return the same promise).
 * Takes about a second on lavapipe. Run it with nothing else queued: it times whole submits.
 * `{ again: true }` measures once more and keeps the better of the two for each peak (on a machine shared
 * with other work, a peak measured in a busy moment comes out low: measure before and after the work).
 */
export function measurePeaks(opts: { again?: boolean } = {}): Promise<Peaks> {
  if (peaks && opts.again) {
    const before = peaks;
    peaks = (async () => {
      const a = await before;
      const b = await measureOnce();
      const gflops = Math.max(a.gflops, b.gflops);
      const gbps = Math.max(a.gbps, b.gbps);
      return { gflops, gbps, ridge: gflops / gbps, method: `${b.method}; best of several measurements` };
    })();
  }
  peaks ??= measureOnce();
  return peaks;
}

function measureOnce(): Promise<Peaks> {
  return (async () => {
    // FMA: 16,384 invocations × ITERS × ACC·INNER vec4 FMAs (8 FLOPs each) ≈ 2.1 GFLOP per dispatch.
    const threads = 16384;
    const iters = 256;
    const out = allocBuffer(threads * 16);
    const fk = kernelFor('roofline_fma', fmaSource);
    const fmaRun = () =>
      dispatch(
        fk,
        [iters, threads, { f: 0.999 }, { f: 1e-4 }],
        [out],
        grid(Math.ceil(threads / WG)),
        'roofline fma',
      );
    // Copy: 32 MiB → 32 MiB (far beyond the caches), 64 MiB of traffic per dispatch.
    const bytes = 32 << 20;
    const vec4s = bytes / 16;
    const src = allocBuffer(bytes);
    const dst = allocBuffer(bytes);
    const ck = kernelFor('roofline_copy', copySource);
    const copyRun = () =>
      dispatch(ck, [vec4s, 0, 0, 0], [src, dst], grid(Math.ceil(vec4s / COPY_PER / WG)), 'roofline copy');
    try {
      const flops = threads * iters * ACC * INNER * 8;
      // Short timings, many of them: the best one is the least disturbed by other work on the machine.
      const fmaSeconds = await best(fmaRun, 2, 9);
      const copySeconds = await best(copyRun, 4, 9);
      const gflops = (flops * 2) / fmaSeconds / 1e9;
      const gbps = (2 * bytes * 4) / copySeconds / 1e9;
      return {
        gflops,
        gbps,
        ridge: gflops / gbps,
        method: `FMA: ${threads} invocations × ${iters} × ${ACC * INNER} vec4 fma, 2 dispatches per timing; copy: 32 MiB vec4 copy, 4 dispatches per timing; best of 9 wall-clock timings each`,
      };
    } finally {
      freeBuffer(out);
      freeBuffer(src);
      freeBuffer(dst);
    }
  })();
}

/** A profiled kernel against the peaks. */
export interface RooflineRow extends ProfileEntry {
  /** FLOPs per byte (0 when the kernel declared no FLOPs). */
  intensity: number;
  /** Achieved GFLOP/s and GB/s as fractions of the peaks. */
  flopsFraction: number;
  bytesFraction: number;
  /** The roof at this intensity, min(peak GFLOP/s, intensity · peak GB/s), and the share of it reached. */
  bound: 'compute' | 'memory';
  ofRoof: number;
}

/** Each profiled kernel's achieved rates against the peaks (`profileReport()` rows, largest time first). */
export function roofline(entries: readonly ProfileEntry[], p: Peaks): RooflineRow[] {
  return entries.map((e) => {
    const intensity = e.bytes > 0 ? e.flops / e.bytes : 0;
    const computeBound = e.flops > 0 && intensity >= p.ridge;
    return {
      ...e,
      intensity,
      flopsFraction: e.gflops / p.gflops,
      bytesFraction: e.gbps / p.gbps,
      bound: computeBound ? 'compute' : 'memory',
      ofRoof: computeBound ? e.gflops / p.gflops : e.gbps / p.gbps,
    };
  });
}
