// Run-time verification of the GEMM bodies this adapter would use: each body (the subgroup one with B read
// through a texture and from storage, and the portable blocked one) runs small problems that cover every
// operand mode the kernels specialise on — vec4 and scalar reads of A and B, transposed operands, a K tail,
// bias along n and m, relu, broadcast batches, NCHW row splits, outer sums with split-K, and a long K that
// GPUs split into chunks — against a
// float64 reference that walks the same strided descriptors. A body that fails is switched off for the
// rest of the process (subgroup → storage B → blocked), so that a driver bug costs speed, not results.
import { tensor } from '../creation.js';
import { onDeviceChange } from '../gpu.js';
import { precompile, recordKernels } from '../precompile.js';
import { randomRef } from '../reference.js';
import { Tensor } from '../tensor.js';
import {
  type Body,
  disableGemmPath,
  forcedGemmBody,
  type GemmProblem,
  gemm,
  gemmTexture,
  type MatDesc,
  pickConfig,
  resetGemmPaths,
  setGemmBody,
  setGemmTexture,
  splitKOf,
  splitSlices,
  storageTextureReads,
  subgroup8,
  type TextureMode,
} from './gemm.js';

const LONG_K = 'long K (split-K on GPUs)';
// The long-K case's layout (also for asking splitKOf whether gemm() split it).
const LONG_K_CASE = {
  M: 6,
  N: 8,
  K: 2048,
  a: { off: 0, rs: 2048, cs: 1 },
  b: { off: 0, rs: 8, cs: 1 },
  c: { off: 2, rs: 9, cs: 1 },
};

/** One problem: sizes and descriptors; buffers are filled from a seeded generator. */
interface Case {
  name: string;
  M: number;
  N: number;
  K: number;
  batch?: number[];
  a: MatDesc;
  b: MatDesc;
  c: MatDesc;
  /** Elements of each buffer. */
  sizes: [number, number, number];
  bias?: 'n' | 'm';
  relu?: boolean;
  outer?: GemmProblem['outer'];
  split?: { S: number; zsC: number };
}

function cases(): Case[] {
  const out: Case[] = [];
  const add = (c: Case) => out.push(c);
  // Row-major A (k4), B (f4), C (f4), with bias and relu.
  add({
    name: 'row-major',
    M: 37,
    N: 36,
    K: 20,
    a: { off: 0, rs: 20, cs: 1 },
    b: { off: 0, rs: 36, cs: 1 },
    c: { off: 0, rs: 36, cs: 1 },
    sizes: [740, 720, 1332],
    bias: 'n',
    relu: true,
  });
  // K tail, scalar A, B, C (odd sizes).
  add({
    name: 'K tail',
    M: 19,
    N: 5,
    K: 7,
    a: { off: 0, rs: 7, cs: 1 },
    b: { off: 0, rs: 5, cs: 1 },
    c: { off: 0, rs: 5, cs: 1 },
    sizes: [133, 35, 95],
  });
  // Bᵀ read along k (k4), as linear's weight; bias along m.
  add({
    name: 'B transposed',
    M: 40,
    N: 12,
    K: 16,
    a: { off: 0, rs: 16, cs: 1 },
    b: { off: 0, rs: 1, cs: 16 },
    c: { off: 0, rs: 12, cs: 1 },
    sizes: [640, 192, 480],
    bias: 'm',
  });
  // Bᵀ again with N ≥ 32 (no narrow-output swap), bias along m and relu.
  add({
    name: 'B transposed, bias along m',
    M: 24,
    N: 36,
    K: 12,
    a: { off: 0, rs: 12, cs: 1 },
    b: { off: 0, rs: 1, cs: 12 },
    c: { off: 0, rs: 36, cs: 1 },
    sizes: [288, 432, 864],
    bias: 'm',
    relu: true,
  });
  // Aᵀ (scalar, strided along k), and an offset C.
  add({
    name: 'A transposed',
    M: 33,
    N: 40,
    K: 9,
    a: { off: 0, rs: 1, cs: 33 },
    b: { off: 0, rs: 40, cs: 1 },
    c: { off: 8, rs: 40, cs: 1 },
    sizes: [297, 360, 1328],
  });
  // Aᵀ with aligned columns (subgroup body: vec4 reads along m, 4 rows per lane), a K tail, bias along m;
  // 40 rows leave a partial row tile whose loads are clamped.
  add({
    name: 'A transposed, vec4 along m',
    M: 40,
    N: 36,
    K: 9,
    a: { off: 4, rs: 1, cs: 44 },
    b: { off: 0, rs: 36, cs: 1 },
    c: { off: 0, rs: 36, cs: 1 },
    sizes: [400, 324, 1440],
    bias: 'm',
  });
  // The same as an outer sum of 3 terms (a weight gradient over images), K tail of 2.
  add({
    name: 'A transposed outer sum, vec4 along m',
    M: 32,
    N: 32,
    K: 6,
    a: { off: 0, rs: 1, cs: 32 },
    b: { off: 0, rs: 32, cs: 1 },
    c: { off: 0, rs: 32, cs: 1 },
    sizes: [576, 576, 1024],
    outer: { n: 3, as: 192, bs: 192 },
  });
  // An outer sum whose B terms are row-major with 256-byte rows, starting 16 bytes into the buffer: the
  // texture path copies each term into the texture (buffer-to-texture copies) instead of running the pack.
  add({
    name: 'outer sum, B copied into the texture',
    M: 8,
    N: 64,
    K: 8,
    a: { off: 0, rs: 8, cs: 1 },
    b: { off: 4, rs: 64, cs: 1 },
    c: { off: 0, rs: 64, cs: 1 },
    sizes: [192, 1540, 512],
    outer: { n: 3, as: 64, bs: 512 },
  });
  // Broadcast batch: A per entry, B shared.
  add({
    name: 'batch',
    M: 17,
    N: 32,
    K: 12,
    batch: [3],
    a: { off: 0, rs: 12, cs: 1, bs: [204] },
    b: { off: 0, rs: 32, cs: 1, bs: [0] },
    c: { off: 0, rs: 32, cs: 1, bs: [544] },
    sizes: [612, 384, 1632],
  });
  // NCHW row splits on A and C (m = (image, pixel), P = 9 pixels per image, 4 channels).
  add({
    name: 'row split',
    M: 27,
    N: 4,
    K: 8,
    a: { off: 0, rs: 8, cs: 1, split: { P: 9, ro: 80 } },
    b: { off: 0, rs: 4, cs: 1 },
    c: { off: 0, rs: 1, cs: 9, split: { P: 9, ro: 36 } },
    sizes: [240, 32, 108],
  });
  // Outer sum over 5 terms split into 2 slices (a weight gradient's form).
  add({
    name: 'outer split-K',
    M: 8,
    N: 12,
    K: 6,
    a: { off: 0, rs: 6, cs: 1 },
    b: { off: 0, rs: 12, cs: 1 },
    c: { off: 0, rs: 12, cs: 1 },
    sizes: [240, 360, 192],
    outer: { n: 5, as: 48, bs: 72 },
    split: { S: 2, zsC: 96 },
  });
  // A narrow product with an NCHW-split A (conv's input gradient on the col2im path, N = Cin·kH·kW small):
  // the subgroup body swaps it, so A's row split becomes B's column split, read as vec4s (P % 4 = 0) and
  // as scalars (P = 9). A[m = (image, pixel), k = channel] = a[image·ro + k·P + pixel].
  add({
    name: 'narrow, split A (B column split, vec4)',
    M: 36,
    N: 6,
    K: 8,
    a: { off: 4, rs: 1, cs: 12, split: { P: 12, ro: 100 } },
    b: { off: 0, rs: 6, cs: 1 },
    c: { off: 0, rs: 6, cs: 1 },
    sizes: [304, 48, 216],
  });
  add({
    name: 'narrow, split A (B column split, scalar)',
    M: 27,
    N: 5,
    K: 7,
    a: { off: 1, rs: 1, cs: 9, split: { P: 9, ro: 70 } },
    b: { off: 0, rs: 5, cs: 1 },
    c: { off: 0, rs: 5, cs: 1 },
    sizes: [211, 35, 135],
    bias: 'n',
    relu: true,
  });
  // A narrow outer sum (N < 32, M ≥ 2N): the subgroup body computes it as Cᵀ = Bᵀ·Aᵀ term by term, as a
  // 1-channel convolution's weight gradient (M = 64 channels, N = 16 taps). A read along k (k4), B's rows
  // strided (f4 unaligned: scalar), C with a row offset; 7 terms in 3 slices.
  add({
    name: 'narrow outer sum',
    M: 40,
    N: 6,
    K: 8,
    a: { off: 0, rs: 8, cs: 1 },
    b: { off: 1, rs: 7, cs: 1 },
    c: { off: 2, rs: 6, cs: 1 },
    sizes: [7 * 320, 7 * 56 + 1, 3 * 240 + 2],
    outer: { n: 7, as: 320, bs: 56 },
    split: { S: 3, zsC: 240 },
  });
  // An implicit convolution's form (conv.ts, input gradient of one stride phase): two-level row splits of A
  // (k4) and C (scalar), and a 2-D outer sum over 2×2 taps with negative A offsets and scalar B.
  // A: (2 images, 4×4 padded pixels, 8 channels); m = (image, i < 2, j < 3); C: (2, 5 channels, 4×6) at
  // rows 1 + 2i, columns 1 + 2j.
  add({
    name: 'implicit conv phase',
    M: 12,
    N: 5,
    K: 8,
    a: { off: (1 * 4 + 1) * 8, rs: 8, cs: 1, split: { P: 6, ro: 128, Q: 3, rq: 32 } },
    b: { off: 1, rs: 5 * 16, cs: 16 },
    c: { off: 1 * 6 + 1, rs: 2, cs: 24, split: { P: 6, ro: 120, Q: 3, rq: 12 } },
    sizes: [256, 640, 240],
    outer: { n: 4, cols: 2, as: -8, as1: -32, bs: 2, bs1: 8 },
    bias: 'n',
    relu: true,
  });
  // A long K with one output tile: on GPUs gemm() splits it (8 chunks of 256, summed by a second kernel that
  // adds the bias along m, applies relu and writes C with a row stride); CPU adapters run it in one pass.
  add({
    name: LONG_K,
    ...LONG_K_CASE,
    sizes: [6 * 2048, 2048 * 8, 56],
    bias: 'm',
    relu: true,
  });
  return out;
}

/** float64 reference over the same descriptors; returns the expected C buffer (untouched elements stay 0). */
function reference(c: Case, A: Float32Array, B: Float32Array, bias: Float32Array): Float64Array {
  const C = new Float64Array(c.sizes[2]);
  const row = (d: MatDesc, r: number) => {
    if (!d.split) return r * d.rs;
    const { P, ro, Q, rq = 0 } = d.split;
    const rp = r % P;
    return Math.floor(r / P) * ro + (Q ? Math.floor(rp / Q) * rq + (rp % Q) * d.rs : rp * d.rs);
  };
  const o = c.outer;
  const term = (j: number, s: number, s1 = 0) =>
    o?.cols ? Math.floor(j / o.cols) * s1 + (j % o.cols) * s : j * s;
  const nb = (c.batch ?? []).reduce((x, y) => x * y, 1);
  const On = c.outer?.n ?? 1;
  const S = c.split ? splitSlices(On, c.split.S) : 1;
  const chunk = Math.ceil(On / S);
  for (let z = 0; z < nb; z++)
    for (let s = 0; s < S; s++)
      for (let m = 0; m < c.M; m++)
        for (let n = 0; n < c.N; n++) {
          let acc = 0;
          for (let j = s * chunk; j < Math.min(On, (s + 1) * chunk); j++)
            for (let k = 0; k < c.K; k++) {
              const ia =
                c.a.off + (c.a.bs?.[0] ?? 0) * z + term(j, o?.as ?? 0, o?.as1) + row(c.a, m) + k * c.a.cs;
              const ib =
                c.b.off + (c.b.bs?.[0] ?? 0) * z + term(j, o?.bs ?? 0, o?.bs1) + k * c.b.rs + n * c.b.cs;
              acc += A[ia]! * B[ib]!;
            }
          if (c.bias === 'n') acc += bias[n]!;
          if (c.bias === 'm') acc += bias[m]!;
          if (c.relu) acc = Math.max(acc, 0);
          C[c.c.off + (c.c.bs?.[0] ?? 0) * z + s * (c.split?.zsC ?? 0) + row(c.c, m) + n * c.c.cs] = acc;
        }
  return C;
}

export interface GemmCheck {
  body: Body;
  texture: TextureMode;
  /** Problems run and the largest error, |got − expected| / (1 + |expected|). */
  cases: number;
  maxErr: number;
  failed: string[];
}

/** The GEMM problem of case `c` on these tensors' buffers. */
function problem(c: Case, ta: Tensor, tb: Tensor, tc: Tensor, tbias: Tensor): GemmProblem {
  const buf = (t: Tensor) => t.buffer('verifyGemm');
  return {
    op: `verifyGemm ${c.name}`,
    M: c.M,
    N: c.N,
    K: c.K,
    batch: c.batch,
    a: c.a,
    b: c.b,
    c: c.c,
    bufA: buf(ta),
    bufB: buf(tb),
    bufC: buf(tc),
    bias: c.bias ? { buf: buf(tbias), along: c.bias } : undefined,
    act: c.relu ? 'relu' : undefined,
    outer: c.outer,
    split: c.split,
  };
}

/** Runs `fn` with the GEMM body and texture mode forced, restoring the previous choice. */
function withPath<T>(body: Body, texture: TextureMode, fn: () => T): T {
  const prev = { body: forcedGemmBody(), texture: gemmTexture() };
  setGemmBody(body);
  setGemmTexture(texture);
  try {
    return fn();
  } finally {
    setGemmBody(prev.body);
    setGemmTexture(prev.texture);
  }
}

/**
 * Compiles the pipelines that the checks of these paths will dispatch, all at once (precompile.ts: in parallel
 * on a GPU's driver threads, or with warm-up dispatches spread over spare devices on lavapipe, which compiles at
 * the first dispatch): on a cold shader cache the checks' ≈ 30 large GEMM variants otherwise compile one by one.
 */
async function compileChecks(paths: readonly (readonly [Body, TextureMode])[]): Promise<void> {
  const tensors = cases().map((c) => c.sizes.map((n) => new Tensor([n], 'float32')));
  try {
    const sources = recordKernels(() => {
      for (const [body, texture] of paths)
        withPath(body, texture, () => {
          for (const [i, c] of cases().entries()) {
            const [ta, tb, tc] = tensors[i]!;
            gemm(problem(c, ta!, tb!, tc!, ta!));
          }
        });
    });
    if (sources.length) await precompile(sources);
  } finally {
    for (const ts of tensors) for (const t of ts) t.dispose();
  }
}

async function runBody(body: Body, texture: TextureMode): Promise<GemmCheck> {
  const prev = { body: forcedGemmBody(), texture: gemmTexture() };
  setGemmBody(body);
  setGemmTexture(texture);
  const result: GemmCheck = { body, texture, cases: 0, maxErr: 0, failed: [] };
  try {
    for (const [i, c] of cases().entries()) {
      const fill = (n: number, seed: number) => Float32Array.from(randomRef([n], seed, -0.5, 0.5).data);
      const A = fill(c.sizes[0], 3 * i + 1000);
      const B = fill(c.sizes[1], 3 * i + 1001);
      const bias = fill(Math.max(c.M, c.N), 3 * i + 1002);
      const ta = tensor(A);
      const tb = tensor(B);
      const tbias = tensor(bias);
      const tc = tensor(new Float32Array(c.sizes[2]));
      try {
        gemm(problem(c, ta, tb, tc, tbias));
        const got = await tc.toArray();
        const want = reference(c, A, B, bias);
        let err = 0;
        for (let j = 0; j < want.length; j++) {
          const e = Math.abs(got[j]! - want[j]!) / (1 + Math.abs(want[j]!));
          err = Number.isNaN(e) ? Number.POSITIVE_INFINITY : Math.max(err, e);
        }
        result.cases++;
        result.maxErr = Math.max(result.maxErr, err);
        if (!(err < 1e-4)) result.failed.push(`${c.name} (error ${err.toExponential(2)})`);
      } catch (e) {
        result.failed.push(`${c.name} (${(e as Error).message.split('\n')[0]})`);
      } finally {
        for (const t of [ta, tb, tbias, tc]) t.dispose();
      }
    }
  } finally {
    setGemmBody(prev.body);
    setGemmTexture(prev.texture);
  }
  return result;
}

/**
 * Verifies every GEMM body and B path this adapter would use (see the top of this file) and switches off any
 * that fails: the subgroup body's texture path read as a storage texture → read sampled → B from storage → the
 * blocked body; split-K (GPUs) when only
 * the long-K case fails. Throws when even the
 * blocked body fails (no GEMM to trust on this adapter). Returns what was run, for reports.
 */
export async function verifyGemm(): Promise<GemmCheck[]> {
  const checks: GemmCheck[] = [];
  await compileChecks([
    ['blocked', 'auto'],
    ...(subgroup8()
      ? ([
          ['subgroup', 'never'],
          ['subgroup', 'always'],
        ] as const)
      : []),
  ]);
  let blocked = await runBody('blocked', 'auto');
  // Only the long-K case failing where it ran split (GPUs): switch split-K off and check the body again.
  if (
    blocked.failed.length &&
    blocked.failed.every((f) => f.startsWith(LONG_K)) &&
    withPath('blocked', 'auto', () => splitKOf(LONG_K_CASE, pickConfig(LONG_K_CASE.M, LONG_K_CASE.N))) > 1
  ) {
    disableGemmPath('splitK', blocked.failed.join('; '));
    blocked = await runBody('blocked', 'auto');
  }
  checks.push(blocked);
  if (blocked.failed.length)
    throw new Error(`verifyGemm: the blocked GEMM body fails on this adapter: ${blocked.failed.join('; ')}`);
  if (subgroup8()) {
    const storage = await runBody('subgroup', 'never');
    const texture = await runBody('subgroup', 'always');
    checks.push(storage, texture);
    if (storage.failed.length) disableGemmPath('subgroup', storage.failed.join('; '));
    else if (texture.failed.length) {
      let failed = texture.failed;
      if (storageTextureReads()) {
        // The texture read as a storage texture failed: try the sampled read before giving up the texture.
        disableGemmPath('storageTexture', failed.join('; '));
        const sampled = await runBody('subgroup', 'always');
        checks.push(sampled);
        failed = sampled.failed;
      }
      if (failed.length) disableGemmPath('texture', failed.join('; '));
    }
  }
  return checks;
}

let once: Promise<GemmCheck[]> | null = null;
// A new device is checked anew, with every path switched on again.
onDeviceChange(() => {
  once = null;
  resetGemmPaths();
});
/** verifyGemm the first time it is called on this device; later calls return the same result. */
export function verifyGemmOnce(): Promise<GemmCheck[]> {
  once ??= verifyGemm();
  return once;
}
