// One GEMM body for matmul and every convolution pass: C[z, m, n] = Σ_k A(z, m, k) · B(z, k, n).
// Operand layouts are hooks (WGSL functions readA / readB / write), so the same register-blocked loop serves
// plain strided matrices, implicit-im2col convolution inputs and the weight gradient, with a fused epilogue.
//
// Register blocking: each invocation owns a TM×TN block of C (rows contiguous, columns strided by the
// workgroup width so neighbouring invocations read neighbouring B elements), and every loaded A/B value
// feeds TN/TM multiply-adds. The K loop is unrolled by 4. Edge rows/columns are clamped on read and
// skipped on write, so the inner loop has no bounds branches.

export interface GemmHooks {
  /** Extra bindings/uniform-independent declarations (bindings 1.. in order given by the caller). */
  decls: string;
  /**
   * fn setup(z: u32) -> vec4<u32>: per-batch values computed once; .x/.y are free for the hooks (e.g.
   * operand offsets), .z/.w are the K range [k0, k1) this batch entry sums over (split-K uses it).
   */
  setup: string;
  /** fn readA(base: vec4<u32>, m: u32, k: u32) -> f32 (m < M, k < K guaranteed). */
  readA: string;
  /** fn readB(base: vec4<u32>, k: u32, n: u32) -> f32 (k < K, n < N guaranteed). */
  readB: string;
  /** fn write(z: u32, base: vec4<u32>, m: u32, n: u32, v: f32) (only called for m < M, n < N). */
  write: string;
}

export const TM = 4;
export const TN = 4;
export const WG_X = 8;
export const WG_Y = 8;
export const TILE_M = TM * WG_Y;
export const TILE_N = TN * WG_X;

/**
 * WGSL of the GEMM. The uniform struct must start with `M: u32, N: u32, K: u32` (callers append fields
 * after those three via `uniformFields`).
 */
export function gemmSource(hooks: GemmHooks, uniformFields: string): string {
  const rows = Array.from({ length: TM }, (_, i) => i);
  const cols = Array.from({ length: TN }, (_, j) => j);
  const step = (kk: string) => `
      {
        let k = ${kk};
        let bv = vec4<f32>(${cols.map((j) => `readB(base, k, cn${j})`).join(', ')});
        ${rows.map((i) => `acc${i} = acc${i} + readA(base, rm${i}, k) * bv;`).join('\n        ')}
      }`;
  return `
struct U { M: u32, N: u32, K: u32, ${uniformFields} }
@group(0) @binding(0) var<uniform> u: U;
${hooks.decls}
${hooks.setup}
${hooks.readA}
${hooks.readB}
${hooks.write}
@compute @workgroup_size(${WG_X}, ${WG_Y}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let z = wid.z;
  let base = setup(z);
  let m0 = wid.y * ${TILE_M}u + lid.y * ${TM}u;
  let n0 = wid.x * ${TILE_N}u + lid.x;
  ${rows.map((i) => `let rm${i} = min(m0 + ${i}u, u.M - 1u);`).join('\n  ')}
  ${cols.map((j) => `let cn${j} = min(n0 + ${j * WG_X}u, u.N - 1u);`).join('\n  ')}
  ${rows.map((i) => `var acc${i} = vec4<f32>(0.0);`).join('\n  ')}
  let K4 = base.z + ((base.w - base.z) & ~3u);
  var k0 = base.z;
  loop {
    if (k0 >= K4) { break; }
    ${[0, 1, 2, 3].map((q) => step(`k0 + ${q}u`)).join('')}
    k0 = k0 + 4u;
  }
  loop {
    if (k0 >= base.w) { break; }
    ${step('k0')}
    k0 = k0 + 1u;
  }
  ${rows
    .map((i) =>
      cols
        .map(
          (j) =>
            `if (m0 + ${i}u < u.M && n0 + ${j * WG_X}u < u.N) { write(z, base, m0 + ${i}u, n0 + ${j * WG_X}u, acc${i}[${j}]); }`,
        )
        .join('\n  '),
    )
    .join('\n  ')}
}`;
}

/** Workgroup counts for an M×N output over `batch` matrices. */
export function gemmGroups(M: number, N: number, batch: number): [number, number, number] {
  return [Math.ceil(N / TILE_N), Math.ceil(M / TILE_M), batch];
}
