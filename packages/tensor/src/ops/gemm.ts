// One GEMM generator for matmul and every convolution pass: C[z, m, n] = Σ_k A(z, m, k) · B(z, k, n).
// Operand layouts are hooks (WGSL functions), so the same register-blocked loop serves plain strided matrices,
// implicit-im2col convolution inputs and the weight gradient, with a fused epilogue.
//
// The K axis is walked as two nested loops, k = (t, c): an outer loop over t ∈ [t0, t1) (from `setup`, which is
// how split-K restricts a batch entry to a slice) and an inner loop over c ∈ [0, KI). Per t, every row and
// column of the invocation's block gets a "pointer" from aPtr/bPtr (for a matrix: the element offset of the
// row; for im2col: the input offset of one kernel tap, or an invalid marker in the padding); the inner loop
// then only does `aAt(p, c)` / `bAt(p, c)` — for a strided matrix `a[p + c·stride]`. Index math per row/tap
// is thus hoisted out of the hot loop (matmul: one t; conv: t = kernel tap, c = channel).
//
// Register blocking: each invocation owns a TM×TN block of C; every loaded A value feeds TN multiply-adds
// and every B value TM. Lavapipe (software Vulkan, 8 invocations per SIMD register) loads storage values one
// lane at a time, so loads/FMA is what sets the speed. Operands may be read as vec4 (`k4`: 4 consecutive c;
// `f4`: 4 consecutive rows of A / columns of B), which cuts the number of loads 4×. The inner loop is
// unrolled 4× (k4 requires KI % 4 == 0; f4 requires M resp. N % 4 == 0). Edge rows/columns are clamped on
// read and skipped on write, so the inner loop has no bounds branches.

/** How an operand is loaded: one f32 per read, or a vec4 along K (`k4`) or along its free dim (`f4`). */
export type OperandMode = 'scalar' | 'k4' | 'f4';

export interface GemmConfig {
  /** Rows of C per invocation (multiple of 4 when A is f4). */
  tm: number;
  /** Columns of C per invocation (1, 2 or a multiple of 4; multiple of 4 when B is f4 or k4 with tn ≥ 4). */
  tn: number;
  /** Workgroup size (x: along N, y: along M). */
  wgx: number;
  wgy: number;
  a: OperandMode;
  b: OperandMode;
}

export interface GemmHooks {
  /**
   * Bindings (1.. in the order given by the caller) and helper declarations; must declare the pointer types
   * `APtr` and `BPtr` (e.g. `alias APtr = u32;`).
   */
  decls: string;
  /**
   * fn setup(z: u32) -> vec4<u32>: per-batch values computed once; .x/.y are free for the hooks (e.g.
   * operand offsets), .z/.w are the outer K range [t0, t1) this batch entry sums over (split-K uses it).
   */
  setup: string;
  /** fn aPtr(base: vec4<u32>, m: u32, t: u32) -> APtr (m < M; f4: m is the first of 4 rows). */
  aPtr: string;
  /** fn aAt(p: APtr, c: u32) -> f32 (scalar) | vec4<f32> (k4: c..c+3; f4: rows m..m+3 at c). c < KI. */
  aAt: string;
  /** fn bPtr(base: vec4<u32>, t: u32, n: u32) -> BPtr (n < N; f4: n is the first of 4 columns). */
  bPtr: string;
  /** fn bAt(p: BPtr, c: u32) -> f32 (scalar) | vec4<f32> (k4: c..c+3; f4: columns n..n+3 at c). */
  bAt: string;
  /** fn write(z: u32, base: vec4<u32>, m: u32, n: u32, v: f32) (only called for m < M, n < N). */
  write: string;
}

/**
 * The default block: 8×8 per invocation, 4×8 invocations → 64×32 tiles. Measured on lavapipe (2-vCPU EPYC,
 * bench/gemm-variants.ts, worker-CPU time): with vec4 operands 8×8 blocks beat 4×4 / 4×8 / 8×4 by 1.2–1.6×;
 * 4×4, 8×4 and 8×8 workgroups were within noise of each other.
 */
export const GEMM_DEFAULT: GemmConfig = { tm: 8, tn: 8, wgx: 4, wgy: 8, a: 'scalar', b: 'scalar' };

export const tileM = (c: GemmConfig) => c.tm * c.wgy;
export const tileN = (c: GemmConfig) => c.tn * c.wgx;

/** Stable cache-key fragment for a config. */
export const configKey = (c: GemmConfig) => `${c.tm}x${c.tn}w${c.wgx}x${c.wgy}${c.a}${c.b}`;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * WGSL of the GEMM. The uniform struct starts with `M: u32, N: u32, KI: u32` (KI: inner K length); callers
 * append their fields via `uniformFields`.
 */
export function gemmSource(hooks: GemmHooks, uniformFields: string, cfg: GemmConfig): string {
  const { tm, tn, wgx, wgy, a, b } = cfg;
  const gw = Math.min(4, tn); // accumulators are vec4 over 4 columns (f32 / vec2 for 1- or 2-column blocks)
  if (tn % gw || (a === 'f4' && tm % 4) || (b === 'f4' && tn % 4))
    throw new Error(`gemm: bad block ${configKey(cfg)}`);
  const accT = gw === 1 ? 'f32' : `vec${gw}<f32>`;
  const rows = range(tm);
  const cols = range(tn);
  const groups = range(tn / gw);
  const row = (i: number) => `m0 + ${i}u`;
  // f4 columns: 4 contiguous per group, groups strided by the workgroup; else every column strided.
  const col = (j: number) =>
    b === 'f4' ? `n0 + ${Math.floor(j / 4) * 4 * wgx + (j % 4)}u` : `n0 + ${j * wgx}u`;
  const aPtrs = a === 'f4' ? range(tm / 4) : rows;
  const bPtrs = b === 'f4' ? groups : cols;
  const aRow = (i: number) => (a === 'f4' ? row(4 * i) : row(i));
  const bCol = (j: number) => (b === 'f4' ? col(4 * j) : col(j));
  const aMax = a === 'f4' ? 'u.M - 4u' : 'u.M - 1u';
  const bMax = b === 'f4' ? 'u.N - 4u' : 'u.N - 1u';

  // Values for inner step q of a 4-step group starting at c.
  const aVal = (i: number, q: number) =>
    a === 'scalar' ? `a${i}_${q}` : a === 'k4' ? `a${i}[${q}]` : `a${i >> 2}_${q}[${i & 3}]`;
  const bVec = (g: number, q: number) =>
    b === 'f4'
      ? `b${g}_${q}`
      : `${accT}(${range(gw)
          .map((r) => (b === 'scalar' ? `b${gw * g + r}_${q}` : `b${gw * g + r}[${q}]`))
          .join(', ')})`;
  const loads = (q: number, single: boolean) => {
    const c = single ? 'c' : `c + ${q}u`;
    const out: string[] = [];
    if (a === 'k4') {
      if (q === 0) out.push(...rows.map((i) => `let a${i} = aAt(pa${i}, c);`));
    } else out.push(...aPtrs.map((i) => `let a${i}_${q} = aAt(pa${i}, ${c});`));
    if (b === 'k4') {
      if (q === 0) out.push(...cols.map((j) => `let b${j} = bAt(pb${j}, c);`));
    } else out.push(...bPtrs.map((j) => `let b${j}_${q} = bAt(pb${j}, ${c});`));
    return out;
  };
  const fmas = (q: number) =>
    rows.flatMap((i) => groups.map((g) => `acc${i}_${g} = acc${i}_${g} + ${aVal(i, q)} * ${bVec(g, q)};`));
  const step = (q: number, single = false) => [...loads(q, single), ...fmas(q)].join('\n        ');
  const vectorK = a === 'k4' || b === 'k4';

  return `
struct U { M: u32, N: u32, KI: u32, ${uniformFields} }
@group(0) @binding(0) var<uniform> u: U;
${hooks.decls}
${hooks.setup}
${hooks.aPtr}
${hooks.aAt}
${hooks.bPtr}
${hooks.bAt}
${hooks.write}
@compute @workgroup_size(${wgx}, ${wgy}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let z = wid.z;
  let base = setup(z);
  let m0 = wid.y * ${tm * wgy}u${wgy === 1 ? '' : ` + lid.y * ${tm}u`};
  let n0 = wid.x * ${tn * wgx}u + lid.x${b === 'f4' ? ' * 4u' : ''};
  ${aPtrs.map((i) => `let rm${i} = min(${aRow(i)}, ${aMax});`).join('\n  ')}
  ${bPtrs.map((j) => `let cn${j} = min(${bCol(j)}, ${bMax});`).join('\n  ')}
  ${rows.flatMap((i) => groups.map((g) => `var acc${i}_${g} = ${accT}(0.0);`)).join('\n  ')}
  let K4 = u.KI & ~3u;
  for (var t = base.z; t < base.w; t = t + 1u) {
    ${aPtrs.map((i) => `let pa${i} = aPtr(base, rm${i}, t);`).join('\n    ')}
    ${bPtrs.map((j) => `let pb${j} = bPtr(base, t, cn${j});`).join('\n    ')}
    var c = 0u;
    loop {
      if (c >= K4) { break; }
      {
        ${range(4)
          .map((q) => step(q))
          .join('\n        ')}
      }
      c = c + 4u;
    }${
      vectorK
        ? ''
        : `
    loop {
      if (c >= u.KI) { break; }
      {
        ${step(0, true)}
      }
      c = c + 1u;
    }`
    }
  }
  ${rows
    .flatMap((i) =>
      cols.map(
        (j) =>
          `if (${row(i)} < u.M && ${col(j)} < u.N) { write(z, base, ${row(i)}, ${col(j)}, ${gw === 1 ? `acc${i}_${j}` : `acc${i}_${Math.floor(j / gw)}[${j % gw}]`}); }`,
      ),
    )
    .join('\n  ')}
}`;
}

/**
 * The block shape for an output N columns wide: GEMM_DEFAULT (64×32 tiles) unless the output is narrow —
 * N ≤ 32 gets 8×4 blocks (32-column tiles), N ≤ 4 one column of 8×N blocks (64 invocations down M), so that few
 * multiply-adds go to clamped columns (e.g. convTranspose2d to 1 channel: N = 1).
 */
export function pickConfig(N: number, a: OperandMode = 'scalar', b: OperandMode = 'scalar'): GemmConfig {
  if (N <= 2 && b !== 'f4') return { tm: 8, tn: N, wgx: 1, wgy: 64, a, b };
  if (N <= 4) return { tm: 8, tn: 4, wgx: 1, wgy: 64, a, b };
  if (N <= 32) return { tm: 8, tn: 4, wgx: 8, wgy: 8, a, b };
  return { ...GEMM_DEFAULT, a, b };
}

/** Workgroup counts for an M×N output over `batch` matrices. */
export function gemmGroups(cfg: GemmConfig, M: number, N: number, batch: number): [number, number, number] {
  return [Math.ceil(N / tileN(cfg)), Math.ceil(M / tileM(cfg)), batch];
}
