// One GEMM for matmul, linear and every convolution pass: C[z, m, n] = Σ_k A(z, m, k) · B(z, k, n) (+ bias).
//
// Operands are matrices inside buffers described by strides (`MatDesc`), so transposes, batch broadcasting and
// the NCHW layouts of convolutions are read and written in place: element (z, r, c) of a matrix lies at
//   off + zoff(z) + rowOff(r) + c·cs,   rowOff(r) = r·rs, or with a row split of period P
//   (rows = (outer, inner), e.g. m = (b, oh·OW + ow) of an NCHW image) (r / P)·ro + (r % P)·rs.
// Row offsets are computed once per row outside the K loop; the loop only adds k·cs. Operands are read as
// vec4 where the layout allows (`k4`: 4 consecutive k of one A row or B column; `f4`: 4 consecutive columns
// of one B row; `m4`, subgroup body: 4 consecutive rows of one A column, i.e. a row-major Aᵀ such as a
// weight gradient's im2col(x)ᵀ or a Linear's gyᵀ), else as scalars; the K loop walks 4 k per step (a guarded
// tail step when K % 4 ≠ 0).
//
// Two bodies share these hooks:
//  • `subgroup` — for CPU adapters with 8-wide subgroups (Mesa lavapipe): one workgroup = one subgroup of 8
//    lanes. Lane l loads row m0 + 8g + l of A (a vec4 along k) and the 8 rows of the group are broadcast from
//    lane r with subgroupBroadcast (a register shuffle); lane l owns 4·H consecutive columns. Lavapipe loads
//    storage values one lane at a time (≈ 6 ns per value per 8 lanes) while a multiply-add costs ≈ 0.2 ns, so
//    the speed is set by how many multiply-adds each loaded value feeds: here 8·G per B value and 4·H per
//    A value, with each A load serving 8 rows. Measured (bench, 2-core EPYC): 25–37 GFLOP/s vs 10–14 for the
//    blocked body on the same adapter. A 4-k step's multiply-adds go row by row (see `step`), so LLVM keeps
//    one row's accumulators in registers; tiles are 32 rows × 32 columns (G = 4) from M > 16 on.
//    lavapipe's machine code for a 32×32 step (GALLIVM_DEBUG=asm, MESA_SHADER_CACHE_DISABLE=true): ≈ 5,100
//    instructions, of which 1,024 multiplies and adds, ≈ 270 spill moves and ≈ 3,000 for the 8 vec4 loads per
//    lane (each component of each lane: exec-mask test, bounds compare, branch, scalar load, insert).
//    Texture loads cost lavapipe less than storage loads (an 8×8 block per lane: 109 vs 183 ns per k step in a
//    microbench), so by default this body first packs B into a scratch rgba32float texture (texel (n/4, k) =
//    B[k, n..n+3], zero-padded to K % 4 = 0) and reads it with textureLoad (as a read-only storage texture
//    where WGSL allows, see setGemmTextureRead), for problems large enough to repay the pack (see texFits).
//    A row-major B is copied in (buffer-to-texture copies); any other layout goes through a small kernel into
//    a staging buffer, then one copy (see packB):
//    1.44–1.54× on 1024³ and the seed conv GEMM 6272×1024×128 (npm run bench, "B from storage" column).
//  • `blocked` — portable: each invocation owns a TM×(4·H) block of C and loads its own A rows and B columns;
//    used on every other adapter (GPUs, OpenGL compat without subgroups).
//
// Split-K (GPUs only): a problem with few output tiles and a long K, e.g. a weight gradient (1024×128, K =
// B·OH·OW = 6272) or a Linear's input gradient to a 2-wide latent (128×2, K = 6272), would run on a few dozen
// workgroups of a GPU with a hundred-odd cores, each walking all of K. `gemm()` then cuts K into S chunks
// (an outer sum of S terms, one per z slice, into a scratch buffer) and sums the slices in a second kernel that
// also applies the bias and activation. CPU adapters keep one pass: two cores are busy with a few tiles already,
// and their results stay bit-identical to earlier releases.
import {
  allocBuffer,
  allocTexture,
  copyBufferToTexture,
  cpuAdapter,
  dispatch,
  FLAT_INDEX,
  freeBuffer,
  freeTexture,
  grid,
  keepNan,
  keepNan4,
  kernelFor,
  MAIN_1D,
  runtime,
} from '../gpu.js';

/** A matrix in a buffer (element units). `bs`: strides of up to 4 broadcast batch dims (0: broadcast). */
export interface MatDesc {
  off: number;
  rs: number;
  cs: number;
  /**
   * Row split (for B: a one-level column split, column n → (n / P)·ro + (n % P)·cs): row r → (r / P)·ro + (r % P)·rs, or with Q (two levels, e.g. r = (image, row, column) of a
   * convolution's stride phase) (r / P)·ro + ((r % P) / Q)·rq + ((r % P) % Q)·rs.
   */
  split?: { P: number; ro: number; Q?: number; rq?: number };
  bs?: readonly number[];
}

export type AMode = 'k4' | 'm4' | 'scalar';
export type BMode = 'f4' | 'k4' | 'scalar';
export type CMode = 'f4' | 'scalar';
export type Body = 'subgroup' | 'blocked';

export interface GemmConfig {
  body: Body;
  /** subgroup: row groups of 8 (rows per workgroup = 8·g); blocked: rows per invocation. */
  rows: number;
  /** vec4 column groups per invocation. */
  h: number;
  /** blocked only: workgroup size along N and M. */
  wgx: number;
  wgy: number;
  /** subgroup only: read B through a packed scratch texture (used when the problem allows it). */
  btex?: boolean;
  /**
   * subgroup only: the order of a 4-k step's multiply-adds, row by row ('row', the default: one row's
   * accumulators are live at a time) or k by k across all rows ('q', the order before 2026-12-06; kept for
   * bench/gemm-variants.ts). Each accumulator sums its products in the same order either way.
   */
  order?: 'row' | 'q';
}

export interface GemmProblem {
  op: string;
  M: number;
  N: number;
  K: number;
  /** Batch dims (broadcast, ≤ 4 after collapsing), empty for a single matrix. */
  batch?: readonly number[];
  a: MatDesc;
  b: MatDesc;
  c: MatDesc;
  bufA: GPUBuffer;
  bufB: GPUBuffer;
  bufC: GPUBuffer;
  /** Bias added in the epilogue: bias[off + n] (`along: 'n'`) or bias[off + m] (`'m'`). */
  bias?: { buf: GPUBuffer; along: 'n' | 'm'; off?: number };
  /** Activation applied in the epilogue, after the bias. */
  act?: 'relu';
  /**
   * An outer sum: C = Σ_{j < n} A_j·B_j with A_j = A + j·as and B_j = B + j·bs (element offsets), e.g. over the
   * images of a batch for a convolution's weight gradient, with K the inner (per-image) length. With `cols`,
   * j is a 2-D index (j / cols, j % cols) and A_j = A + (j / cols)·as1 + (j % cols)·as (B alike), e.g. over
   * the kH×kW taps of an implicit convolution; offsets may be negative (u32 wrap-around).
   */
  outer?: { n: number; as: number; bs: number; cols?: number; as1?: number; bs1?: number };
  /** Split the outer sum into S slices (z-major): slice s sums j ∈ [s·⌈n/S⌉, …) into C + s·zsC. */
  split?: { S: number; zsC: number };
  config?: GemmConfig;
}

// ---------------------------------------------------------------------------------------------------------
// Kernel choice

let forced: Body | null = null;
/** The setters' check: `v` is one of `allowed`, else "gemm: unknown <what> 'v' (expected 'a', 'b' or 'c')". */
function expectOneOf(what: string, v: unknown, allowed: readonly (string | null)[]): void {
  if (allowed.includes(v as string | null)) return;
  const q = allowed.map((a) => (a === null ? 'null' : `'${a}'`));
  throw new Error(
    `gemm: unknown ${what} '${String(v)}' (expected ${q.slice(0, -1).join(', ')} or ${q.at(-1)})`,
  );
}

/** Tests/benches: force one GEMM body ('subgroup' needs an adapter with 8-wide subgroups), or null for auto. */
export function setGemmBody(body: Body | null): void {
  expectOneOf('body', body, ['subgroup', 'blocked', null]);
  if (body === 'subgroup' && !subgroup8()) throw new Error('gemm: this adapter has no 8-wide subgroups');
  forced = body;
}
export function subgroup8(): boolean {
  const r = runtime();
  // Asked on every GEMM; features.has is a native call (≈ 0.2 µs), so the answer is kept per runtime.
  if (sg8?.r !== r)
    sg8 = { r, yes: r.device.features.has('subgroups' as GPUFeatureName) && r.adapter.subgroupSize === 8 };
  return sg8.yes;
}
let sg8: { r: object; yes: boolean } | null = null;

export type TextureMode = 'auto' | 'always' | 'never';
let texMode: TextureMode = 'auto';
/**
 * When the subgroup body reads B through a packed texture: 'auto' (default) for problems with enough rows to
 * repay the pack, 'always' wherever it fits (tests), 'never'.
 */
export function setGemmTexture(mode: TextureMode): void {
  expectOneOf('texture mode', mode, ['auto', 'always', 'never']);
  texMode = mode;
}
export function gemmTexture(): TextureMode {
  return texMode;
}

export type TextureRead = 'auto' | 'storage' | 'sampled';
let texRead: TextureRead = 'auto';
/**
 * How the subgroup body reads its B texture: 'auto' (default) as a read-only storage texture where WGSL can
 * (the language feature readonly_and_readwrite_storage_textures), else as a sampled texture; 'storage' or
 * 'sampled' to force one (tests, benches). lavapipe compiles a sampled textureLoad into a call that works out
 * every lane's mip level and row pitch (≈ 160 instructions for 8 lanes' vec4s) and a storage-texture load into
 * one of ≈ 50 (bounds, 8 row loads, a transpose). Both are calls, so live vector registers are saved around
 * each. Conv2d(64,128,4,2,1) fwd+bwd 135 → 119 and 139 → 132 ms, ConvTranspose2d(128,64) 146 → 126 and
 * 141 → 122 ms (two runs, medians of 7 and 9 alternating rounds, 2-core Zen 5 EPYC, 2026-12-06).
 */
export function setGemmTextureRead(mode: TextureRead): void {
  expectOneOf('texture read', mode, ['auto', 'storage', 'sampled']);
  texRead = mode;
}
export function gemmTextureRead(): TextureRead {
  return texRead;
}
/** Whether the texture path reads B as a storage texture now (setting, adapter and verifyGemm's verdict). */
export function storageTextureReads(): boolean {
  if (texRead !== 'auto') return texRead === 'storage';
  return runtime().adapter.storageTextureReads === true && !disabled.has('storageTexture');
}

/** The body forced by setGemmBody, or null when the choice is automatic. */
export function forcedGemmBody(): Body | null {
  return forced;
}

// Paths switched off by the run-time check (gemm-check.ts): automatic choices avoid them; forcing still works.
export type GemmPath = 'subgroup' | 'texture' | 'storageTexture' | 'splitK';
const disabled = new Map<GemmPath, string>();
/** Switches a path off for automatic choices (verifyGemm does this when it fails), with the reason. */
export function disableGemmPath(path: GemmPath, reason: string): void {
  disabled.set(path, reason);
}
/** Tests: switches every path back on. */
export function resetGemmPaths(): void {
  disabled.clear();
}
/** Paths switched off by verifyGemm, with why. */
export function disabledGemmPaths(): Record<string, string> {
  return Object.fromEntries(disabled);
}

/** The GEMM body matmul/linear/conv use on this adapter now. */
export function gemmBody(): Body {
  return forced ?? (subgroup8() && !disabled.has('subgroup') ? 'subgroup' : 'blocked');
}

export function pickConfig(M: number, N: number): GemmConfig {
  const body = gemmBody();
  // subgroup: up to 32 rows (4 groups of 8) per workgroup. With row-by-row multiply-adds (order 'row') 32×32
  // tiles beat 16×32 (bench/gemm-variants.ts, lavapipe, 2-core EPYC, 2026-12-06, worker CPU time per call):
  // 128×784×400 1.3–1.6×, 1568×2048×64 1.2×, 128×40×400 1.3×; at M = 16 rows 2 stays best. Short outputs
  // take the fewest row groups that cover them: a VAE's 20-wide latent layers (M = 20 after the narrow swap)
  // ran 1.2–1.4× faster in 24-row tiles than in 32 (worker CPU time; 20×400×128, 20×128×400 and its
  // transposed-A form; Zen 5 EPYC, 2026-12-06).
  if (body === 'subgroup') return { body, rows: rowGroups(M), h: 1, wgx: 8, wgy: 1 };
  // blocked: 8×8 per invocation and 4×8 invocations (64×32 tiles); narrow outputs get fewer columns.
  if (N <= 4) return { body, rows: 8, h: 1, wgx: 1, wgy: 64 };
  if (N <= 32) return { body, rows: 8, h: 1, wgx: 8, wgy: 8 };
  return { body, rows: 8, h: 2, wgx: 4, wgy: 8 };
}

/** Subgroup body: row groups of 8 per tile, the fewest that cover M, at most 4 (see pickConfig). */
const rowGroups = (M: number) => Math.min(4, Math.max(1, Math.ceil(M / 8)));
const tileM = (c: GemmConfig) => (c.body === 'subgroup' ? 8 * c.rows : c.rows * c.wgy);
const tileN = (c: GemmConfig) => (c.body === 'subgroup' ? 32 * c.h : 4 * c.h * c.wgx);

// ---------------------------------------------------------------------------------------------------------
// Operand modes

// Alignment checks run on every GEMM: plain loops, no rest arguments or spreads (no allocation per call).
const al = (x: number) => x % 4 === 0;
const alAll = (xs: readonly number[] | undefined) => {
  if (xs) for (let i = 0; i < xs.length; i++) if (xs[i]! % 4 !== 0) return false;
  return true;
};
const ro = (d: MatDesc) => d.split?.ro ?? 0;
const rq = (d: MatDesc) => d.split?.rq ?? 0;
const splitLevels = (d: MatDesc) => (d.split ? (d.split.Q === undefined ? 1 : 2) : 0);

function aMode(p: GemmProblem, body: Body): AMode {
  const a = p.a;
  const o = p.outer;
  const common = al(a.off) && al(o?.as ?? 0) && al(o?.as1 ?? 0) && alAll(a.bs);
  if (a.cs === 1 && p.K % 4 === 0 && common && al(a.rs) && al(ro(a)) && al(rq(a))) return 'k4';
  // Aᵀ stored row-major (rows of A contiguous, e.g. a weight gradient's im2col(x)ᵀ): 4 rows per vec4. Up to 16
  // rows (unless a config asks), half of the lanes' m4 loads would go unused: 16×25088×64 (B with a column
  // split) took 3.3–3.6 ms with m4 against 2.8–2.9 with scalar A, 16×64×196×128 the same (3 pairs).
  if (
    body === 'subgroup' &&
    a.rs === 1 &&
    !a.split &&
    p.M % 4 === 0 &&
    (p.M > 16 || p.config) &&
    common &&
    al(a.cs)
  )
    return 'm4';
  return 'scalar';
}
function bMode(p: GemmProblem): BMode {
  const b = p.b;
  const common = al(b.off) && al(p.outer?.bs ?? 0) && al(p.outer?.bs1 ?? 0) && alAll(b.bs) && al(ro(b));
  // f4 with a column split: 4 consecutive columns stay in one block of P.
  if (b.cs === 1 && p.N % 4 === 0 && common && al(b.rs) && al(b.split?.P ?? 0)) return 'f4';
  if (b.rs === 1 && p.K % 4 === 0 && common && al(b.cs)) return 'k4';
  return 'scalar';
}
function cMode(p: GemmProblem): CMode {
  const c = p.c;
  return c.cs === 1 &&
    p.N % 4 === 0 &&
    al(c.off) &&
    al(c.rs) &&
    al(ro(c)) &&
    al(rq(c)) &&
    alAll(c.bs) &&
    al(p.split?.zsC ?? 0)
    ? 'f4'
    : 'scalar';
}

// ---------------------------------------------------------------------------------------------------------
// WGSL

const R = (n: number) => Array.from({ length: n }, (_, i) => i);

// Uniform block: problem sizes, then one Mat per operand.
// Outer term j starts at (j / kw)·ks1 + (j % kw)·ks; two-level row splits use Q and rq.
const MAT =
  'struct Mat { off: u32, rs: u32, cs: u32, P: u32, ro: u32, zs: u32, ks: u32, Q: u32, rq: u32, ks1: u32, kw: u32, p1: u32, bs: vec4<u32> }';
const UNIFORM = `${MAT}
struct U { M: u32, N: u32, K: u32, ochunk: u32, S: u32, brank: u32, biasOff: u32, On: u32, bshape: vec4<u32>, a: Mat, b: Mat, c: Mat, ry: u32, gy: u32, texK: u32, g1: u32 }
@group(0) @binding(0) var<uniform> u: U;`;

interface Variant {
  cfg: GemmConfig;
  am: AMode;
  /** B packed into a texture (subgroup body), read as a sampled texture ('tex') or a read-only storage one ('stex'). */
  bm: BMode | 'tex' | 'stex';
  cm: CMode;
  /** Row split levels of A and C (0, 1 or 2). */
  splitA: number;
  splitC: number;
  /** B's column split (one level): column n at (n / P)·ro + (n % P)·cs (a row-split A after the narrow swap). */
  splitB: boolean;
  batched: boolean;
  /** No outer sum (one term, j = 0): the kernel has no loop over terms. */
  single: boolean;
  tail: boolean;
  bias: 'n' | 'm' | null;
  relu: boolean;
}

/** Whether B is read from its packed texture (either kind of read). */
const texturedB = (bm: Variant['bm']) => bm === 'tex' || bm === 'stex';
const variantKey = (v: Variant) =>
  `${v.cfg.body}.${v.cfg.rows}.${v.cfg.h}.${v.cfg.wgx}.${v.cfg.wgy}.${v.cfg.order ?? 'row'}.${v.am}.${v.bm}.${v.cm}.${+v.splitA}.${+v.splitB}.${+v.splitC}.${+v.batched}.${+v.single}.${+v.tail}.${v.bias ?? '-'}.${+v.relu}`;

function source(v: Variant): string {
  const { am, bm, cm } = v;
  const tex = texturedB(bm);
  const sub = v.cfg.body === 'subgroup';
  const H = v.cfg.h;
  // A vec4s loaded per k (m4: lane l holds rows 32t + 4l … 4l + 3 of load t) or per 4 k (k4, scalar: subgroup
  // body one per group of 8 rows, by lane; blocked body one per row).
  const m4 = am === 'm4';
  const nRowLoads = m4 ? Math.ceil(v.cfg.rows / 4) : v.cfg.rows;
  const rowsC = sub ? 8 * v.cfg.rows : v.cfg.rows; // rows of C per invocation
  const hs = R(H);
  const qs = R(4);
  const rowOff = (d: 'a' | 'c', m: string, split: number) =>
    split === 2
      ? `((${m}) / u.${d}.P) * u.${d}.ro + (((${m}) % u.${d}.P) / u.${d}.Q) * u.${d}.rq + (((${m}) % u.${d}.P) % u.${d}.Q) * u.${d}.rs`
      : split === 1
        ? `((${m}) / u.${d}.P) * u.${d}.ro + ((${m}) % u.${d}.P) * u.${d}.rs`
        : `(${m}) * u.${d}.rs`;

  // B's column offset; with a column split (computed once per column, outside the K loop).
  const colOff = (n: string) =>
    v.splitB ? `((${n}) / u.b.P) * u.b.ro + ((${n}) % u.b.P) * u.b.cs` : `(${n}) * u.b.cs`;

  // A: one vec4 (4 consecutive k) of row pointer pa at k; guarded variant for the tail.
  const aLoad = (i: number, guard: boolean) => {
    if (am === 'k4') return `a4[(qa${i} + k) >> 2u]`;
    if (m4)
      return qs.map((q) => {
        const ld = `a4[(qa${i} + (k + ${q}u) * u.a.cs) >> 2u]`;
        return guard ? `select(vec4<f32>(0.0), ${ld}, k + ${q}u < u.K)` : ld;
      });
    const el = (q: number) => {
      const idx = `qa${i} + (k + ${q}u) * u.a.cs`;
      return guard ? `select(0.0, a[${idx}], k + ${q}u < u.K)` : `a[${idx}]`;
    };
    return `vec4<f32>(${qs.map(el).join(', ')})`;
  };
  // B: the 4×4 block B[k..k+3, n..n+3] of column pointer pb (= offset of column n) as 4 rows.
  // k4: the 4 columns are read along k and transposed (free in lavapipe's SoA registers).
  const bRows = (h: number, guard: boolean): string[] => {
    // Rows ≥ K of the texture are zeros: no guard.
    if (tex)
      return qs.map((q) => `textureLoad(tb, vec2<u32>(cb${h}, tk + k + ${q}u)${bm === 'tex' ? ', 0' : ''})`);
    if (bm === 'f4')
      return qs.map((q) => {
        const ld = `b4[(qb${h} + (k + ${q}u) * u.b.rs) >> 2u]`;
        return guard ? `select(vec4<f32>(0.0), ${ld}, k + ${q}u < u.K)` : ld;
      });
    if (bm === 'k4') return qs.map((q) => `bt${h}[${q}]`);
    return qs.map(
      (q) =>
        `vec4<f32>(${qs
          .map((j) => {
            const idx = `qb${h}_${j} + (k + ${q}u) * u.b.rs`;
            return guard ? `select(0.0, b[${idx}], k + ${q}u < u.K)` : `b[${idx}]`;
          })
          .join(', ')})`,
    );
  };

  // One 4-k step: loads then multiply-adds. The subgroup body goes row by row (order 'row'): lavapipe's
  // LLVM keeps one row's 4·H accumulators in registers and spills the rest once per step, where k by k
  // ('q') every accumulator was live at once and products were spilled too (bench/gemm-variants.ts sgG.Hq).
  const step = (guard: boolean) => {
    const out: string[] = [];
    for (const i of R(nRowLoads)) {
      const ld = aLoad(i, guard);
      if (Array.isArray(ld)) for (const q of qs) out.push(`let av${i}_${q} = ${ld[q]};`);
      else out.push(`let av${i} = ${ld};`);
    }
    for (const h of hs) {
      if (bm === 'k4')
        out.push(
          `let bt${h} = transpose(mat4x4<f32>(${qs.map((j) => `b4[(qb${h}_${j} + k) >> 2u]`).join(', ')}));`,
        );
      const rows = bRows(h, guard);
      for (const q of qs) out.push(`let b${h}_${q} = ${rows[q]};`);
    }
    if (!sub) {
      for (const q of qs)
        for (const i of R(rowsC))
          for (const h of hs) out.push(`acc${i}_${h} = acc${i}_${h} + av${i}[${q}] * b${h}_${q};`);
      return out.join('\n      ');
    }
    // Row 8g + r is lane r's A value of group g; m4: row 32t + 4l + c is component c of lane l's load t.
    const src = (g: number, r: number, q: number) => {
      const row = 8 * g + r;
      return m4 ? `av${row >> 5}_${q}[${row & 3}], ${(row >> 2) & 7}u` : `av${g}[${q}], ${r}u`;
    };
    const fma = (row: number, h: number, s: string, q: number) =>
      `acc${row}_${h} = acc${row}_${h} + ${s} * b${h}_${q};`;
    if ((v.cfg.order ?? 'row') === 'row')
      for (const g of R(v.cfg.rows))
        for (const r of R(8)) {
          out.push(`{ ${qs.map((q) => `let s${q} = subgroupBroadcast(${src(g, r, q)});`).join(' ')}`);
          for (const h of hs) for (const q of qs) out.push(`  ${fma(8 * g + r, h, `s${q}`, q)}`);
          out.push('}');
        }
    else
      for (const q of qs)
        for (const g of R(v.cfg.rows))
          for (const r of R(8)) {
            out.push(`{ let s = subgroupBroadcast(${src(g, r, q)});`);
            for (const h of hs) out.push(`  ${fma(8 * g + r, h, 's', q)}`);
            out.push('}');
          }
    return out.join('\n      ');
  };

  const bindA = am === 'scalar' ? 'a: array<f32>' : 'a4: array<vec4<f32>>';
  const bindB =
    bm === 'stex'
      ? 'var tb: texture_storage_2d<rgba32float, read>'
      : bm === 'tex'
        ? 'var tb: texture_2d<f32>'
        : bm === 'scalar'
          ? 'b: array<f32>'
          : 'b4: array<vec4<f32>>';
  const bindC = cm === 'f4' ? 'c4: array<vec4<f32>>' : 'c: array<f32>';

  // Rows and columns this invocation touches.
  const rowsSetup = m4
    ? R(nRowLoads).map(
        (t) => `let pa${t} = za + ${rowOff('a', `min(m0 + ${32 * t}u + 4u * lid.x, u.M - 4u)`, 0)};`,
      )
    : sub
      ? R(v.cfg.rows).map(
          (g) => `let pa${g} = za + ${rowOff('a', `min(m0 + ${8 * g}u + lid.x, u.M - 1u)`, v.splitA)};`,
        )
      : R(v.cfg.rows).map((i) => `let pa${i} = za + ${rowOff('a', `min(m0 + ${i}u, u.M - 1u)`, v.splitA)};`);
  const colOf = (h: number) =>
    sub ? `nw + ${32 * h}u + 4u * lid.x` : `nw + ${4 * h * v.cfg.wgx}u + 4u * lid.x`;
  const colsSetup = hs.flatMap((h) => {
    const n = `n${h}`;
    const lines = [`let ${n} = ${colOf(h)};`];
    if (tex) lines.push(`let cb${h} = min(${n}, u.N - 1u) >> 2u;`);
    else if (bm === 'f4') lines.push(`let pb${h} = zb + ${colOff(`min(${n}, u.N - 4u)`)};`);
    else lines.push(...qs.map((j) => `let pb${h}_${j} = zb + ${colOff(`min(${n} + ${j}u, u.N - 1u)`)};`));
    return lines;
  });

  const rowsPtr = R(nRowLoads).map((i) => `let qa${i} = pa${i} + oa;`);
  const colsPtr = hs.flatMap((h) =>
    tex
      ? []
      : bm === 'f4'
        ? [`let qb${h} = pb${h} + ob;`]
        : qs.map((j) => `let qb${h}_${j} = pb${h}_${j} + ob;`),
  );
  // The bias is loaded once per tile (along n: one vec4 per column group, clamped to the last column) or once
  // per row (along m), not once per written value: lavapipe pays every load lane by lane, and reloading it for
  // each of 32 rows cost Conv2d(1,64)'s forward GEMM (25088×64×16) a third of its time.
  const biasN =
    v.bias === 'n'
      ? hs.map(
          (h) =>
            `let bn${h} = vec4<f32>(${qs.map((j) => `bias[u.biasOff + min(n${h} + ${j}u, u.N - 1u)]`).join(', ')});`,
        )
      : [];
  const writes = R(rowsC).flatMap((i) => {
    const m = `m0 + ${i}u`;
    return [
      `if (${m} < u.M) {`,
      `  let pc = zc + ${rowOff('c', m, v.splitC)};`,
      ...(v.bias === 'm' ? [`  let bm = bias[u.biasOff + ${m}];`] : []),
      ...hs.flatMap((h) => {
        const n = `n${h}`;
        const acc = `acc${i}_${h}`;
        // Bias and relu on the whole vec4 before the guarded stores: with the relu inside each scalar store's
        // guard, lavapipe's code for ConvTranspose2d(128,64)'s forward GEMM ran ≈ 18% slower (32.5–36 against
        // 27.2–28.8 ms without the relu; 27.5–29.6 with it here).
        const b = v.bias === 'n' ? ` + bn${h}` : v.bias === 'm' ? ' + vec4<f32>(bm)' : '';
        const v4 = `${acc}${b}`;
        const r = v.relu || b ? `r${i}_${h}` : acc;
        const value =
          v.relu || b
            ? [`  let ${r} = ${v.relu ? keepNan4(`(${v4})`, `max(${v4}, vec4<f32>(0.0))`) : v4};`]
            : [];
        if (cm === 'f4') return [...value, `  if (${n} < u.N) { c4[(pc + ${n}) >> 2u] = ${r}; }`];
        return [
          ...value,
          ...qs.map((j) => `  if (${n} + ${j}u < u.N) { c[pc + (${n} + ${j}u) * u.c.cs] = ${r}[${j}]; }`),
        ];
      }),
      '}',
    ];
  });

  const zSetup = v.batched
    ? `var rem = zi;
  var za = u.a.off;
  var zb = u.b.off;
  var zc0 = u.c.off;
  for (var d = i32(u.brank) - 1; d >= 0; d = d - 1) {
    let s = u.bshape[d];
    let q = rem % s;
    rem = rem / s;
    za = za + q * u.a.bs[d];
    zb = zb + q * u.b.bs[d];
    zc0 = zc0 + q * u.c.bs[d];
  }`
    : 'let za = u.a.off;\n  let zb = u.b.off;\n  let zc0 = u.c.off;';

  return `${sub ? 'enable subgroups;\n' : ''}${UNIFORM}
@group(0) @binding(1) var<storage, read> ${bindA};
@group(0) @binding(2) ${tex ? '' : 'var<storage, read> '}${bindB};
@group(0) @binding(3) var<storage, read_write> ${bindC};
${v.bias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}
@compute @workgroup_size(${sub ? 8 : v.cfg.wgx}, ${sub ? 1 : v.cfg.wgy}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // z = (batch entry, K slice, row-tile group): more row tiles than a grid dimension allows go to z.
  let zr = wid.z % u.ry;
  let zq = wid.z / u.ry;
  let zi = zq / u.S;        // batch entry
  let zs = zq % u.S;        // K slice
  ${zSetup}
  let zc = zc0 + zs * u.c.zs;
  let jBegin = zs * u.ochunk;
  let jEnd = min(u.On, jBegin + u.ochunk);
  let m0 = (wid.y + zr * u.gy) * ${tileM(v.cfg)}u${sub ? '' : ` + lid.y * ${v.cfg.rows}u`};
  let nw = wid.x * ${tileN(v.cfg)}u;
  ${rowsSetup.join('\n  ')}
  ${colsSetup.join('\n  ')}
  ${R(rowsC)
    .flatMap((i) => hs.map((h) => `var acc${i}_${h} = vec4<f32>(0.0);`))
    .join('\n  ')}
  let kFull = u.K & ~3u;
  // Term j = (jq, jr) = (j / kw, j % kw), kept as counters (A and B share kw): divisions inside the loop
  // cost lavapipe 8 scalar divl per term. One term (single): j = jq = jr = 0, no loop.
  ${
    v.single
      ? '{\n    let j = 0u;\n    let jq = 0u;\n    let jr = 0u;'
      : 'var jq = jBegin / u.a.kw;\n  var jr = jBegin % u.a.kw;\n  for (var j = jBegin; j < jEnd; j = j + 1u) {'
  }
    let oa = jq * u.a.ks1 + jr * u.a.ks;
    let ob = jq * u.b.ks1 + jr * u.b.ks;${tex ? '\n    let tk = j * u.texK; // B texture rows of term j' : ''}
    ${rowsPtr.join('\n    ')}
    ${colsPtr.join('\n    ')}
    var k = 0u;
    loop {
      if (k >= kFull) { break; }
      {
        ${step(false)}
      }
      k = k + 4u;
    }${
      v.tail
        ? `
    if (k < u.K) {
        ${step(true)}
    }`
        : ''
    }
${
  v.single
    ? ''
    : `
    let wrap = jr + 1u == u.a.kw;
    jr = select(jr + 1u, 0u, wrap);
    jq = jq + select(0u, 1u, wrap);`
}
  }
  ${[...biasN, ...writes].join('\n  ')}
}`;
}

// ---------------------------------------------------------------------------------------------------------
// Dispatch

/** Appends the 16 uniform words of one operand to `w`. */
const matWords = (w: number[], d: MatDesc, zs = 0, ks = 0, ks1 = 0, kw = 1): void => {
  const P = d.split?.P ?? 1;
  w.push(d.off, d.rs, d.cs, P, d.split?.ro ?? 0, zs, ks, d.split?.Q ?? P, d.split?.rq ?? 0, ks1, kw, 0);
  const bs = d.bs;
  for (let i = 0; i < 4; i++) w.push(bs?.[i] ?? 0);
};

/** The number of slices `split: { S }` really makes of an outer sum of n terms (slices of ⌈n/S⌉). */
export function splitSlices(n: number, S: number): number {
  return Math.ceil(n / Math.ceil(n / Math.max(1, Math.min(S, n))));
}

// Swapping rows and columns; a row split becomes a column split (B only: gemm() swaps a split A into B).
const swapRC = (d: MatDesc): MatDesc => ({ off: d.off, rs: d.cs, cs: d.rs, bs: d.bs, split: d.split });

/**
 * Encodes C = A·B (+ bias) as described by `p`. A narrow output (N < 32, M ≥ 2N) on the subgroup body is
 * computed as Cᵀ = Bᵀ·Aᵀ (same buffers, swapped strides), since that body's columns come in tiles of 32.
 * Outer sums swap too: a 1-channel convolution's weight gradient (64×16, K = 196, 128 images) took 2.7–3.0 ms
 * with half of each 32-column tile idle, 1.4–1.65 ms swapped (lavapipe, 2-core EPYC, 2026-12-05). So does an A
 * with a one-level row split (NCHW read in place), which becomes B's column split: ConvTranspose2d(64,1)'s
 * forward GEMM 25088×16×64 with its texture pack 4.3–5.7 → 2.0–3.9 ms per step (3 A/B pairs, same day).
 */
export function gemm(p0: GemmProblem): void {
  // A row split with ro = P·rs is no split ((r / P)·P·rs + (r % P)·rs = r·rs), e.g. NCHW with one channel.
  const plain = (d: MatDesc): MatDesc =>
    d.split && d.split.Q === undefined && d.split.ro === d.split.P * d.rs
      ? { off: d.off, rs: d.rs, cs: d.cs, bs: d.bs }
      : d;
  const p = { ...p0, a: plain(p0.a), c: plain(p0.c) };
  if (swapsNarrow(p)) {
    const t: GemmProblem = {
      ...p,
      M: p.N,
      N: p.M,
      a: swapRC(p.b),
      b: swapRC(p.a),
      c: swapRC(p.c),
      bufA: p.bufB,
      bufB: p.bufA,
      bias: p.bias && { ...p.bias, along: p.bias.along === 'n' ? 'm' : 'n' },
      // Each outer term swaps its operands too: A'_j = B_j, B'_j = A_j.
      outer: p.outer && {
        n: p.outer.n,
        cols: p.outer.cols,
        as: p.outer.bs,
        bs: p.outer.as,
        as1: p.outer.bs1,
        bs1: p.outer.as1,
      },
    };
    gemmNoSwap(t);
    return;
  }
  gemmNoSwap(p);
}

/** The layout fields of a problem: what the kernel choice depends on (no buffers). */
type Layout = Pick<GemmProblem, 'M' | 'N' | 'K' | 'a' | 'b' | 'c' | 'outer' | 'config'>;

/** Whether gemm() computes this problem as Cᵀ = Bᵀ·Aᵀ (narrow outputs on the subgroup body, outer sums too). */
function swapsNarrow(p: Layout): boolean {
  return (
    !p.config &&
    gemmBody() === 'subgroup' &&
    p.N < 32 &&
    p.M >= 2 * p.N &&
    p.a.split?.Q === undefined && // a one-level row split of A becomes B's column split
    !p.c.split
  );
}

/** Workgroups a GEMM should have to fill the adapter: a few per core on a GPU, a few dozen on a CPU. */
export function gemmParallelism(): number {
  return cpuAdapter() && splitK !== 'always' ? 32 : 512;
}

export type SplitKMode = 'auto' | 'always' | 'never';
let splitK: SplitKMode = 'auto';
/**
 * Tests and benches: split-K as on a GPU ('auto': on GPUs only), on every adapter ('always', so that CPU
 * adapters test the GPU path), or never. Returns the previous mode.
 */
export function setGemmSplitK(mode: SplitKMode): SplitKMode {
  expectOneOf('split-K mode', mode, ['auto', 'always', 'never']);
  const old = splitK;
  splitK = mode;
  return old;
}

// Only a long K is split. On an H200 the conv VAE's K = 6272 GEMMs took a training step's GPU time from
// 10.7 to 4.17 ms. A first version that also split the MLP VAE's K = 784 GEMMs ran that model at 41k samples/s
// against 67k before, but on another machine whose host was up to 2× slower, so that loss is not proven; short
// K keeps one pass until a clean A/B says otherwise.
const SPLIT_K_MIN = 2048;
const SPLIT_K_CHUNK = 256;
/**
 * The number of K chunks split-K uses for a problem (1: none): only on GPUs, for single (unbatched) products
 * with no outer sum of their own and K ≥ 2048, when the output has fewer tiles than gemmParallelism(); each
 * chunk keeps at least 256 k (a multiple of 4, so vec4 reads stay aligned).
 */
export function splitKOf(p: Layout & { batch?: readonly number[] }, cfg: GemmConfig): number {
  if (splitK === 'never' || (splitK === 'auto' && (cpuAdapter() || disabled.has('splitK')))) return 1;
  if (p.outer || p.config || (p.batch ?? []).length) return 1;
  const tiles = Math.ceil(p.M / tileM(cfg)) * Math.ceil(p.N / tileN(cfg));
  if (p.K < SPLIT_K_MIN) return 1;
  let S = 1;
  while (tiles * S * 2 <= gemmParallelism() && p.K % (8 * S) === 0 && p.K / (2 * S) >= SPLIT_K_CHUNK) S *= 2;
  return S;
}

function gemmNoSwap(p: GemmProblem): void {
  const { M, N, K } = p;
  if (M === 0 || N === 0) return;
  const batch = p.batch ?? [];
  if (batch.length > 4) throw new Error(`${p.op}: more than 4 broadcast batch dims`);
  if (p.b.split?.Q !== undefined) throw new Error(`${p.op}: B takes a one-level column split only`);
  const v = variantOf(p);
  if (!p.split && !p.outer && !p.config && !batch.length && (splitK === 'always' || !cpuAdapter())) {
    const S = splitKOf(p, v.cfg);
    if (S > 1) {
      gemmSplitK(p, S);
      return;
    }
  }
  const nb = batch.reduce((x, y) => x * y, 1);
  const On = p.outer?.n ?? 1;
  const S = splitSlices(On, p.split?.S ?? 1);
  const ochunk = Math.ceil(On / S);
  if (p.split && !p.outer) throw new Error(`${p.op}: split-K needs an outer sum to split`);
  if (On < 1) throw new Error(`${p.op}: an outer sum needs at least one term, got n = ${On}`);
  const kw = p.outer?.cols ?? On; // j / kw = 0 for a 1-D outer sum
  const cfg = v.cfg;
  const words = [M, N, K, ochunk, S, batch.length, p.bias?.off ?? 0, On];
  for (let i = 0; i < 4; i++) words.push(batch[i] ?? 1);
  matWords(words, p.a, 0, p.outer?.as ?? 0, p.outer?.as1 ?? 0, kw);
  matWords(words, p.b, 0, p.outer?.bs ?? 0, p.outer?.bs1 ?? 0, kw);
  matWords(words, p.c, p.split?.zsC ?? 0);
  // Row tiles beyond the per-dimension limit (e.g. conv with M = B·OH·OW in the millions) are folded into z.
  const maxDim = runtime().maxWorkgroupsPerDim;
  const tilesY = Math.ceil(M / tileM(cfg));
  const ry = Math.ceil(tilesY / maxDim);
  const gy = Math.ceil(tilesY / ry);
  words.push(ry, gy, texRows(K), 0);
  const tex = texturedB(v.bm) ? packB(p) : null;
  const bufs = [p.bufA, tex ? tex.binding : p.bufB, p.bufC, ...(p.bias ? [p.bias.buf] : [])];
  const gz = nb * S * ry;
  try {
    dispatch(
      kernelFor(`gemm|${variantKey(v)}`, () => source(v)),
      words,
      bufs,
      [Math.ceil(N / tileN(cfg)), gy, gz],
      () => `gemm:${p.op} ${M}x${N}x${K}${p.outer ? `x${p.outer.n}` : ''}${batch.length ? ` b${nb}` : ''}`,
    );
  } finally {
    if (tex) freeTexture(tex);
  }
}

/** Split-K (see the top of the file): S partial products of K/S each into scratch, then their sum into C. */
function gemmSplitK(p: GemmProblem, S: number): void {
  const { M, N } = p;
  const Kc = p.K / S;
  const part = allocBuffer(S * M * N * 4, () => `${p.op}: split-K partial sums (${S}, ${M}, ${N})`); // (S, M, N)
  try {
    gemmNoSwap({
      ...p,
      K: Kc,
      c: { off: 0, rs: N, cs: 1 },
      bufC: part,
      bias: undefined,
      act: undefined,
      outer: { n: S, as: Kc * p.a.cs, bs: Kc * p.b.rs },
      split: { S, zsC: M * N },
    });
    const splitC = splitLevels(p.c);
    const bias = p.bias?.along ?? null;
    const relu = p.act === 'relu';
    const c = p.c;
    dispatch(
      kernelFor(`gemm_splitk_sum|${splitC}.${bias ?? '-'}.${+relu}`, () =>
        splitSumSource(splitC, bias, relu),
      ),
      [M, N, S, p.bias?.off ?? 0, c.off, c.rs, c.cs, c.split?.P ?? 1, ro(c), c.split?.Q ?? 1, rq(c), 0],
      [part, p.bufC, ...(p.bias ? [p.bias.buf] : [])],
      grid(Math.ceil((M * N) / 64)),
      () => `gemm_splitk_sum ${p.op} ${S}x${M}x${N}`,
      { flops: (S - 1) * M * N, bytes: 4 * (S + 1) * M * N },
    );
  } finally {
    freeBuffer(part);
  }
}

// C[m, n] (C's layout, row splits included) = Σ_s part[s, m, n] (+ bias[m or n]) (relu).
const splitSumSource = (splitC: number, bias: 'n' | 'm' | null, relu: boolean) => {
  const row =
    splitC === 2
      ? '(m / u.P) * u.ro + ((m % u.P) / u.Q) * u.rq + ((m % u.P) % u.Q) * u.rs'
      : splitC === 1
        ? '(m / u.P) * u.ro + (m % u.P) * u.rs'
        : 'm * u.rs';
  return `struct U { M: u32, N: u32, S: u32, biasOff: u32, off: u32, rs: u32, cs: u32, P: u32, ro: u32, Q: u32, rq: u32, p: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
${bias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;' : ''}
${MAIN_1D(64)} {
  ${FLAT_INDEX(64)}
  let mn = u.M * u.N;
  if (i >= mn) { return; }
  let m = i / u.N;
  let n = i % u.N;
  var acc = 0.0;
  for (var s = 0u; s < u.S; s = s + 1u) { acc = acc + part[s * mn + i]; }
  ${bias ? `acc = acc + bias[u.biasOff + ${bias}];` : ''}
  c[u.off + ${row} + n * u.cs] = ${relu ? keepNan('acc', 'max(acc, 0.0)') : 'acc'};
}`;
};

// B through a texture: the problem must have one B for all batch entries and no outer sum, and fit the
// adapter's 2-D texture size (⌈N/4⌉ texels wide, K rounded up to 4 high). The pack costs about as much per
// B value as 100–400 rows of multiply-adds, and its dispatch is not free, so only large problems with many
// rows use it (bench/gemm-variants.ts: 128×784×400 and 784×128×32 are slower with it, 6272×1024×128 1.35×
// faster). Since the row-order step (2026-12-06) storage B caught up below 1024 rows: a Linear's weight
// gradient 784×128×400 (A transposed) 1.69–2.46 ms from storage against 1.94–2.75 through the texture, and
// 512×128×512 1.71–1.94 against 1.98–2.28; at 1024 rows and more the texture still wins or ties (1024×6272×128
// with A transposed 52.7 against 72.0 ms, 25088×16×64 1.89 against 2.19, 1024×256×1024 a tie).
const TEX_MIN_ROWS = 1024;
const TEX_MIN_MACS = 1 << 24;
/** Benches: whether the default choice reads B of a plain row-major M×K · K×N problem through a texture. */
export function gemmUsesTexture(M: number, K: number, N: number): boolean {
  const p: Layout = {
    M,
    N,
    K,
    a: { off: 0, rs: K, cs: 1 },
    b: { off: 0, rs: N, cs: 1 },
    c: { off: 0, rs: N, cs: 1 },
  };
  return textureB(swapsNarrow(p) ? { ...p, M: N, N: M, b: swapRC(p.a) } : p, gemmBody());
}

/** Whether a problem on `body` reads B through a packed texture (config, texture mode, size thresholds). */
function textureB(p: Layout, body: Body): boolean {
  if (body !== 'subgroup') return false;
  if (p.config) return !!p.config.btex && texFits(p, 1);
  if (texMode === 'never' || (texMode === 'auto' && disabled.has('texture'))) return false;
  return texMode === 'always' ? texFits(p, 1) : texFits(p, TEX_MIN_ROWS) && p.M * p.N * p.K >= TEX_MIN_MACS;
}

/** Texture rows per outer term: K rounded up to 4 (the K loop reads 4 rows per step, zeros past K). */
const texRows = (K: number) => Math.ceil(K / 4) * 4;

function texFits(p: Layout, minRows: number): boolean {
  const max = runtime().device.limits.maxTextureDimension2D;
  return (
    p.M >= minRows &&
    p.K > 0 &&
    !p.b.split &&
    (p.b.bs ?? []).every((s) => s === 0) &&
    Math.ceil(p.N / 4) <= max &&
    (p.outer?.n ?? 1) * texRows(p.K) <= max
  );
}

// Texel (c, j·Kp + k) = B_j[k, 4c..4c+3] (zeros past K and N) for outer term j (one term without an outer
// sum), B_j at off + (j / kw)·ks1 + (j % kw)·ks. `f4`: B row-major with aligned rows, read as vec4. The kernel
// writes the texels into a staging buffer (rows of Wp texels, 256-byte aligned) that one buffer-to-texture copy
// moves into the texture: lavapipe runs a textureStore lane by lane (four 128×64×4 packs: 1.16–1.57 ms with
// textureStore, 0.78–1.36 ms through the staging buffer; their strided scalar loads are most of what is left).
const packSource = (
  f4: boolean,
) => `struct P { K: u32, N: u32, off: u32, rs: u32, cs: u32, W: u32, Kp: u32, kw: u32, ks: u32, ks1: u32, Wp: u32 }
@group(0) @binding(0) var<uniform> u: P;
@group(0) @binding(1) var<storage, read> ${f4 ? 'b4: array<vec4<f32>>' : 'b: array<f32>'};
@group(0) @binding(2) var<storage, read_write> t: array<vec4<f32>>; // (H, Wp) texels
@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  // (texel column, row k of term j, term j = workgroup z): the row is not divided back into (j, k).
  let c = g.x;
  let k = g.y;
  let j = wid.z;
  if (c >= u.W || k >= u.Kp) { return; }
  var v = vec4<f32>(0.0);
  if (k < u.K) {
    let base = u.off + (j / u.kw) * u.ks1 + (j % u.kw) * u.ks + k * u.rs;
    ${
      f4
        ? 'v = b4[(base >> 2u) + c];'
        : `let n = 4u * c;
    v = select(vec4<f32>(0.0), vec4<f32>(${[0, 1, 2, 3].map((q) => `b[base + min(n + ${q}u, u.N - 1u) * u.cs]`).join(', ')}), n + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(u.N));`
    }
  }
  t[(j * u.Kp + k) * u.Wp + c] = v;
}`;

/** Packs the problem's B into a scratch texture (the caller frees it after encoding the GEMM). */
function packB(p: GemmProblem) {
  const W = Math.ceil(p.N / 4);
  const n = p.outer?.n ?? 1;
  const Kp = texRows(p.K);
  const H = n * Kp; // (n·Kp, N/4) texels
  const tex = allocTexture(W, H);
  const o = p.outer;
  const f4 = p.b.cs === 1 && al(p.N) && al(p.b.off) && al(p.b.rs) && al(o?.bs ?? 0) && al(o?.bs1 ?? 0);
  // Row-major B with rows 256 bytes apart and no zero rows to add (K % 4 = 0): one buffer-to-texture copy per
  // term, which lavapipe does as a memcpy per row (6272×128: 0.09 ms against 2.2–4.2 ms for the pack kernel,
  // whose textureStores it runs lane by lane).
  if (f4 && Kp === p.K && p.b.rs >= p.N && (p.b.rs * 4) % 256 === 0) {
    const kw = o?.cols ?? n;
    for (let j = 0; j < n; j++) {
      const off = p.b.off + Math.floor(j / kw) * (o?.bs1 ?? 0) + (j % kw) * (o?.bs ?? 0);
      copyBufferToTexture(p.bufB, off * 4, p.b.rs * 4, tex, j * Kp, W, p.K);
    }
    return tex;
  }
  const Wp = Math.ceil(W / 16) * 16; // texels per staging row: 256-byte rows for the copy
  const staging = allocBuffer(H * Wp * 16, () => `${p.op}: B staging for its texture (${H}×${Wp} texels)`);
  dispatch(
    kernelFor(`gemm_pack_b|${+f4}`, () => packSource(f4)),
    [p.K, p.N, p.b.off, p.b.rs, p.b.cs, W, Kp, o?.cols ?? n, o?.bs ?? 0, o?.bs1 ?? 0, Wp],
    [p.bufB, staging],
    [Math.ceil(W / 8), Math.ceil(Kp / 8), n],
    () => `gemm:${p.op} pack B ${p.K}x${p.N}`,
  );
  copyBufferToTexture(staging, 0, Wp * 16, tex, 0, W, H);
  freeBuffer(staging); // later users of the pooled buffer come after the copy in the same queue
  return tex;
}

/** The kernel variant a problem needs: its config and operand modes (what the pipeline is specialised on). */
function variantOf(p: GemmProblem): Variant {
  const base = p.config ?? pickConfig(p.M, p.N);
  const bt = textureB(p, base.body);
  // With cheap B loads, larger tiles win: 24 rows × 64 columns (bench/gemm-variants.ts st3.2 vs st2.1/2.2;
  // the two big seed conv layers, fwd+bwd: 268–288 ms vs 276–298 with st2.2).
  const tcfg =
    bt && !p.config ? { ...base, rows: 3, h: p.N > 32 ? 2 : 1, btex: true } : { ...base, btex: bt };
  const am = aMode(p, tcfg.body);
  // A read 4 rows per lane (m4) fills all 8 lanes' loads with 32 rows × 32 columns (rows 4, h 1). Measured
  // (lavapipe, 2-core EPYC, 2026-12-05, medians of 7): 400×784×128 (B from storage) 2.05–2.2 ms against
  // 3.3–4.9 with rows 2, whose lanes 4–7 load rows the tile does not use; 1024×128×6272 (B texture) 35.2–35.5
  // against 37.1–38.9 with 32×64 tiles and 37.8–41.9 with 24×64; 784×400×128 (texture) 2.06–2.18 against
  // 2.42–2.48 and 2.08.
  const cfg = am === 'm4' && !p.config ? { ...tcfg, rows: rowGroups(p.M), h: 1 } : tcfg;
  return {
    cfg,
    am,
    bm: bt ? (storageTextureReads() ? 'stex' : 'tex') : bMode(p),
    cm: cMode(p),
    splitA: splitLevels(p.a),
    splitB: !!p.b.split,
    splitC: splitLevels(p.c),
    batched: (p.batch ?? []).length > 0,
    single: !p.outer && !p.split,
    tail: p.K % 4 !== 0,
    bias: p.bias?.along ?? null,
    relu: p.act === 'relu',
  };
}

/** The WGSL of one variant (to read or print the kernel a problem gets). */
export function gemmVariantSource(p: GemmProblem): string {
  return source(variantOf(p));
}
