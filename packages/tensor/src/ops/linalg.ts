// matmul with torch.matmul's shape rules (1-D promotion, broadcast batch dims). Operands are read through
// strides, so the transposes in the backward rule (dA = dC·Bᵀ, dB = Aᵀ·dC) cost no copies.
import { dispatch, kernelFor } from '../gpu.js';
import { fmtShape, record, type Shape, shapeSize, Tensor } from '../tensor.js';
import { configKey, type GemmConfig, gemmGroups, gemmSource, type OperandMode, pickConfig } from './gemm.js';
import { reshape } from './movement.js';
import { sum } from './reduce.js';
import { broadcastShapes, broadcastStrides, collapse, contiguousStrides } from './shape.js';

/** A batch of matrices inside a contiguous tensor, possibly transposed (strides in elements). */
interface MatView {
  t: Tensor;
  batch: Shape; // leading dims
  rows: number;
  cols: number;
  rs: number; // row stride
  cs: number; // column stride
}

const asView = (t: Tensor): MatView => {
  const r = t.shape.length;
  return {
    t,
    batch: t.shape.slice(0, r - 2),
    rows: t.shape[r - 2]!,
    cols: t.shape[r - 1]!,
    rs: t.shape[r - 1]!,
    cs: 1,
  };
};
const transposed = (v: MatView): MatView => ({ ...v, rows: v.cols, cols: v.rows, rs: v.cs, cs: v.rs });

// Operand read modes: a vec4 load needs the operand contiguous along that direction, the length along it a
// multiple of 4 and every offset 4-aligned (other stride and batch strides multiples of 4).
const aligned = (...xs: number[]) => xs.every((x) => x % 4 === 0);
function modeA(v: MatView, bs: number[]): OperandMode {
  if (v.cs === 1 && aligned(v.cols, v.rs, ...bs)) return 'k4';
  if (v.rs === 1 && aligned(v.rows, v.cs, ...bs)) return 'f4';
  return 'scalar';
}
function modeB(v: MatView, bs: number[]): OperandMode {
  if (v.cs === 1 && aligned(v.cols, v.rs, ...bs)) return 'f4';
  if (v.rs === 1 && aligned(v.rows, v.cs, ...bs)) return 'k4';
  return 'scalar';
}

// One operand's hooks: pointer = element offset of the row/column (÷4 for vec4 reads), then a strided read.
// Strides along a vec4 direction are passed ÷4 too (`u.sak` etc. are set by the host accordingly).
const operand = (name: 'a' | 'b', mode: OperandMode, free: string, k: string, off: string) => {
  const P = name === 'a' ? 'APtr' : 'BPtr';
  const v = mode === 'scalar' ? 'f32' : 'vec4<f32>';
  const ptr =
    name === 'a'
      ? `fn aPtr(base: vec4<u32>, m: u32, t: u32) -> u32 { return (${off} + m * u.${free})${mode === 'scalar' ? '' : ' >> 2u'}; }`
      : `fn bPtr(base: vec4<u32>, t: u32, n: u32) -> u32 { return (${off} + n * u.${free})${mode === 'scalar' ? '' : ' >> 2u'}; }`;
  const at = `fn ${name}At(p: u32, c: u32) -> ${v} { return ${name}[p + ${mode === 'k4' ? '(c >> 2u)' : `c * u.${k}`}]; }`;
  return {
    decl: `@group(0) @binding(${name === 'a' ? 1 : 2}) var<storage, read> ${name}: array<${v}>;\nalias ${P} = u32;`,
    ptr,
    at,
  };
};

// With `bias`, the epilogue adds bias[n] (linear layers: one pass, no separate broadcast add).
const matmulSource = (bias: boolean, cfg: GemmConfig) => {
  const A = operand('a', cfg.a, 'sam', 'sak', 'base.x');
  const B = operand('b', cfg.b, 'sbn', 'sbk', 'base.y');
  return gemmSource(
    {
      decls: `${A.decl}
${B.decl}
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
${bias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}
`,
      setup: `fn setup(z: u32) -> vec4<u32> {
  var rem = z;
  var oa = 0u;
  var ob = 0u;
  for (var d = i32(u.brank) - 1; d >= 0; d = d - 1) {
    let s = u.bshape[d];
    let q = rem % s;
    rem = rem / s;
    oa = oa + q * u.bsa[d];
    ob = ob + q * u.bsb[d];
  }
  return vec4<u32>(oa, ob, 0u, 1u);
}`,
      aPtr: A.ptr,
      aAt: A.at,
      bPtr: B.ptr,
      bAt: B.at,
      write: `fn write(z: u32, base: vec4<u32>, m: u32, n: u32, v: f32) { c[(z * u.M + m) * u.N + n] = v${bias ? ' + bias[n]' : ''}; }`,
    },
    'brank: u32, sam: u32, sak: u32, sbk: u32, sbn: u32, bshape: vec4<u32>, bsa: vec4<u32>, bsb: vec4<u32>',
    cfg,
  );
};

/** C = A·B for matrix views with broadcast batch dims; returns a contiguous (…batch, M, N) tensor. */
function gemm(op: string, a: MatView, b: MatView, bias?: Tensor, force?: GemmConfig): Tensor {
  if (a.cols !== b.rows)
    throw new Error(
      `${op}: inner dims differ: ${fmtShape([...a.batch, a.rows, a.cols])} @ ${fmtShape([...b.batch, b.rows, b.cols])}`,
    );
  const batch = broadcastShapes(op, a.batch, b.batch);
  const M = a.rows;
  const N = b.cols;
  const K = a.cols;
  const c = new Tensor([...batch, M, N], 'float32');
  if (c.size === 0) return c;
  const matA = a.rows * a.cols;
  const matB = b.rows * b.cols;
  const bsa = broadcastStrides(a.batch, batch).map((s) => s * matA);
  const bsb = broadcastStrides(b.batch, batch).map((s) => s * matB);
  const cb = collapse(batch, [bsa, bsb, contiguousStrides(batch)]);
  if (cb.shape.length > 4)
    throw new Error(`${op}: more than 4 non-mergeable broadcast batch dims ${fmtShape(batch)}`);
  const nb = shapeSize(batch);
  const cfg = force ?? pickConfig(N, modeA(a, cb.strides[0]!), modeB(b, cb.strides[1]!));
  const q4 = (mode: OperandMode, s: number) => (mode === 'scalar' ? s : s / 4);
  const pad4 = (v: number[]) => [...v, ...new Array<number>(4 - v.length).fill(0)];
  const u = [
    M,
    N,
    K,
    cb.shape.length,
    a.rs,
    q4(cfg.a, a.cs),
    q4(cfg.b, b.rs),
    b.cs,
    ...pad4(cb.shape),
    ...pad4(cb.strides[0]!),
    ...pad4(cb.strides[1]!),
  ];
  const bufs = [a.t.buffer(op), b.t.buffer(op), c.buffer(op), ...(bias ? [bias.buffer(op)] : [])];
  dispatch(
    kernelFor(`${bias ? 'matmul_bias' : 'matmul'}|${configKey(cfg)}`, () => matmulSource(!!bias, cfg)),
    u,
    bufs,
    gemmGroups(cfg, M, N, nb),
  );
  return c;
}

/** Benchmarks/tests only: C = A·B (2-D, contiguous) with a forced block config. */
export function matmulWithConfig(a: Tensor, b: Tensor, cfg: GemmConfig): Tensor {
  return gemm('matmul', asView(a), asView(b), undefined, cfg);
}

/** Differentiable C = A·B on ≥2-D operands. */
function matmul2(a: Tensor, b: Tensor): Tensor {
  const c = gemm('matmul', asView(a), asView(b));
  return record('matmul', c, [a, b], (g) => [
    a.requiresGrad ? gemm('matmul_backward', asView(g), transposed(asView(b))) : null,
    b.requiresGrad ? gemm('matmul_backward', transposed(asView(a)), asView(g)) : null,
  ]);
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'float32' || b.dtype !== 'float32')
    throw new Error(`matmul: expected float32 operands, got ${a.dtype} and ${b.dtype}`);
  if (a.shape.length === 0 || b.shape.length === 0)
    throw new Error(
      `matmul: both operands need at least 1 dim, got ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`,
    );
  const a2 = a.shape.length === 1 ? reshape(a, [1, a.shape[0]!]) : a;
  const b2 = b.shape.length === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
  if (a2.shape[a2.shape.length - 1] !== b2.shape[b2.shape.length - 2])
    throw new Error(`matmul: inner dims differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  const c = matmul2(a2, b2);
  if (a2 === a && b2 === b) return c;
  const shape = [...c.shape];
  if (b.shape.length === 1) shape.pop();
  if (a.shape.length === 1) shape.splice(shape.length - (b.shape.length === 1 ? 1 : 2), 1);
  return reshape(c, shape);
}

export const mm = matmul;

/**
 * torch.nn.functional.linear: y = x·wᵀ + b for x (…, in), w (out, in), b (out). wᵀ is read through strides
 * and the bias is added in the GEMM's epilogue.
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  const op = 'linear';
  if (x.dtype !== 'float32' || w.dtype !== 'float32')
    throw new Error(`${op}: expected float32 operands, got ${x.dtype} and ${w.dtype}`);
  if (w.shape.length !== 2) throw new Error(`${op}: weight must be 2-D (out, in), got ${fmtShape(w.shape)}`);
  const [out, inF] = w.shape as [number, number];
  if (x.shape.length < 1 || x.shape[x.shape.length - 1] !== inF)
    throw new Error(
      `${op}: input ${fmtShape(x.shape)} does not end in the weight's in_features ${inF} (weight ${fmtShape(w.shape)})`,
    );
  if (b && (b.shape.length !== 1 || b.shape[0] !== out))
    throw new Error(`${op}: bias must have shape [${out}], got ${fmtShape(b.shape)}`);
  const lead = x.shape.slice(0, -1);
  const x2 = reshape(x, [shapeSize(lead), inF]);
  const y2 = gemm(op, asView(x2), transposed(asView(w)), b ?? undefined);
  const y = reshape(y2, [...lead, out]);
  x2.dispose();
  y2.dispose();
  return record(op, y, b ? [x, w, b] : [x, w], (g) => {
    const g2 = reshape(g, [shapeSize(lead), out]);
    const xx = reshape(x, [shapeSize(lead), inF]);
    const gx2 = x.requiresGrad ? gemm(op, asView(g2), asView(w)) : null;
    const gx = gx2 ? reshape(gx2, [...x.shape]) : null;
    gx2?.dispose();
    const gw = w.requiresGrad ? gemm(op, transposed(asView(g2)), asView(xx)) : null;
    const gb = b?.requiresGrad ? sum(g2, 0) : null;
    g2.dispose();
    xx.dispose();
    return [gx, gw, gb];
  });
}
