// matmul with torch.matmul's shape rules (1-D promotion, broadcast batch dims). Operands are read through
// strides, so the transposes in the backward rule (dA = dC·Bᵀ, dB = Aᵀ·dC) cost no copies.
import { fmtShape, record, type Shape, shapeSize, Tensor } from '../tensor.js';
import { reluGradFromOutput } from './elementwise.js';
import { type GemmConfig, gemm as gemmEncode } from './gemm.js';
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

/** C = A·B for matrix views with broadcast batch dims; returns a contiguous (…batch, M, N) tensor. */
function gemm(op: string, a: MatView, b: MatView, bias?: Tensor, config?: GemmConfig, act?: 'relu'): Tensor {
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
  const bsa = broadcastStrides(a.batch, batch).map((s) => s * a.rows * a.cols);
  const bsb = broadcastStrides(b.batch, batch).map((s) => s * b.rows * b.cols);
  const bsc = contiguousStrides(batch).map((s) => s * M * N);
  const cb = collapse(batch, [bsa, bsb, bsc]);
  if (cb.shape.length > 4)
    throw new Error(`${op}: more than 4 non-mergeable broadcast batch dims ${fmtShape(batch)}`);
  try {
    gemmEncode({
      op,
      M,
      N,
      K,
      batch: cb.shape,
      a: { off: 0, rs: a.rs, cs: a.cs, bs: cb.strides[0] },
      b: { off: 0, rs: b.rs, cs: b.cs, bs: cb.strides[1] },
      c: { off: 0, rs: N, cs: 1, bs: cb.strides[2] },
      bufA: a.t.buffer(op),
      bufB: b.t.buffer(op),
      bufC: c.buffer(op),
      bias: bias ? { buf: bias.buffer(op), along: 'n' } : undefined,
      act,
      config,
    });
  } catch (e) {
    c.dispose(); // nothing was encoded into it
    throw e;
  }
  return c;
}

/** Benchmarks/tests only: C = A·B (2-D, contiguous) with a forced GEMM config. */
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

/** Options of the layers whose GEMM can apply an activation in its epilogue. */
export interface FusedActivation {
  /** Apply relu to the result in the same kernel (the backward masks the gradient by y > 0). */
  activation?: 'relu' | null;
}

/**
 * torch.nn.functional.linear: y = x·wᵀ + b for x (…, in), w (out, in), b (out). wᵀ is read through strides
 * and the bias (and optionally relu) is applied in the GEMM's epilogue.
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null, opts: FusedActivation = {}): Tensor {
  const op = 'linear';
  if (w.shape.length !== 2) throw new Error(`${op}: weight must be 2-D (out, in), got ${fmtShape(w.shape)}`);
  return affine(op, x, w, true, b ?? null, opts);
}

/**
 * torch.addmm for a bias row: y = bias + x·w for x (…, K), w (K, N), bias (N), with the bias (and optionally
 * relu) applied in the GEMM's epilogue: one kernel for `x.matmul(w).add(bias)` (`.relu()`). Unlike
 * torch.addmm, x may have leading batch dims (as for linear).
 */
export function addmm(bias: Tensor, x: Tensor, w: Tensor, opts: FusedActivation = {}): Tensor {
  const op = 'addmm';
  if (w.shape.length !== 2) throw new Error(`${op}: weight must be 2-D (in, out), got ${fmtShape(w.shape)}`);
  return affine(op, x, w, false, bias, opts);
}

/** y = x·W + b with W = wᵀ (`wt`, w is (out, in)) or W = w (w is (in, out)); x (…, in), b (out). */
function affine(
  op: string,
  x: Tensor,
  w: Tensor,
  wt: boolean,
  b: Tensor | null,
  opts: FusedActivation,
): Tensor {
  if (x.dtype !== 'float32' || w.dtype !== 'float32')
    throw new Error(`${op}: expected float32 operands, got ${x.dtype} and ${w.dtype}`);
  const [out, inF] = (wt ? w.shape : [w.shape[1], w.shape[0]]) as [number, number];
  if (x.shape.length < 1 || x.shape[x.shape.length - 1] !== inF)
    throw new Error(
      `${op}: input ${fmtShape(x.shape)} does not end in the weight's in_features ${inF} (weight ${fmtShape(w.shape)})`,
    );
  if (b && (b.shape.length !== 1 || b.shape[0] !== out))
    throw new Error(`${op}: bias must have shape [${out}], got ${fmtShape(b.shape)}`);
  const lead = x.shape.slice(0, -1);
  const x2 = reshape(x, [shapeSize(lead), inF]);
  const act = opts.activation ?? null;
  if (act !== null && act !== 'relu')
    throw new Error(`${op}: activation must be 'relu' or null, got '${String(act)}'`);
  const W = (v: MatView) => (wt ? transposed(v) : v); // (in, out)
  const y2 = gemm(op, asView(x2), W(asView(w)), b ?? undefined, undefined, act ?? undefined);
  const y = reshape(y2, [...lead, out]);
  x2.dispose();
  y2.dispose();
  return record(op, y, b ? [x, w, b] : [x, w], (g0) => {
    const g = act ? reluGradFromOutput(y, g0) : g0;
    const g2 = reshape(g, [shapeSize(lead), out]);
    const xx = reshape(x, [shapeSize(lead), inF]);
    const gx2 = x.requiresGrad ? gemm(op, asView(g2), transposed(W(asView(w)))) : null;
    const gx = gx2 ? reshape(gx2, [...x.shape]) : null;
    gx2?.dispose();
    // dW = xᵀ·g (in, out); for w = Wᵀ, dw = gᵀ·x (out, in).
    const gw = w.requiresGrad
      ? wt
        ? gemm(op, transposed(asView(g2)), asView(xx))
        : gemm(op, transposed(asView(xx)), asView(g2))
      : null;
    const gb = b?.requiresGrad ? sum(g2, 0) : null;
    g2.dispose();
    xx.dispose();
    return [gx, gw, gb];
  });
}
