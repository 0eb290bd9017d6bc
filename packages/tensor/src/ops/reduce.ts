// Reductions over any set of axes. The input is viewed as (A, K, B) with the reduced axes as one contiguous
// K block (permuted there first if they are not adjacent); a kernel reduces chunks of K per thread, and is
// applied again on the partial results until K is 1, so a full reduction of a large tensor stays parallel.
import { dispatch, FLAT_INDEX, f32, grid, kernel, MAIN_1D } from '../gpu.js';
import { fmtShape, noGrad, record, type Shape, shapeSize, Tensor } from '../tensor.js';
import { add, div, eq, exp, log, mul, sub } from './elementwise.js';
import { expand, permute, reshape } from './movement.js';
import { normAxes, normAxis } from './shape.js';

const WG = 64;
type ReduceOp = 'sum' | 'max' | 'min';
const INIT: Record<ReduceOp, string> = { sum: '0.0', max: '-3.402823e38', min: '3.402823e38' };
const COMBINE: Record<ReduceOp, (acc: string, v: string) => string> = {
  sum: (a, v) => `${a} + ${v}`,
  max: (a, v) => `max(${a}, ${v})`,
  min: (a, v) => `min(${a}, ${v})`,
};

// NaN test on the bits: WGSL lets compilers assume NaN never occurs, and lavapipe folds 'v != v' to false.
const IS_NAN = 'fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }';

const reduceSource = (op: ReduceOp) => `
${IS_NAN}
struct U { n: u32, K: u32, B: u32, chunk: u32, chunks: u32, scale: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;   // (A, K, B)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // (A, chunks, B)
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  if (i >= u.n) { return; }
  let b = i % u.B;
  let c = (i / u.B) % u.chunks;
  let a = i / (u.B * u.chunks);
  let k0 = c * u.chunk;
  let k1 = min(k0 + u.chunk, u.K);
  var acc = ${INIT[op]};
  var p = (a * u.K + k0) * u.B + b;
  for (var k = k0; k < k1; k = k + 1u) {
    let v = x[p];
    ${op === 'sum' ? `acc = ${COMBINE[op]('acc', 'v')};` : `if (!isNan(acc)) { acc = select(${COMBINE[op]('acc', 'v')}, v, isNan(v)); }`}
    p = p + u.B;
  }
  y[i] = acc * u.scale;
}`;

const TARGET_THREADS = 8192;

/** Reduces the middle axis of x viewed as (A, K, B); returns (A, B) as a flat untracked tensor. */
function reduceAKB(op: ReduceOp, x: Tensor, A: number, K: number, B: number, scale: number): Tensor {
  let cur = x;
  let k = K;
  for (;;) {
    const chunks =
      k <= 64 || A * B >= TARGET_THREADS
        ? 1
        : Math.min(Math.ceil(TARGET_THREADS / (A * B)), Math.ceil(k / 32));
    const chunk = Math.ceil(k / chunks);
    const out = new Tensor([A * chunks * B], 'float32');
    const n = out.size;
    if (n > 0)
      dispatch(
        kernel(`reduce_${op}`, reduceSource(op)),
        [n, k, B, chunk, chunks, f32(chunks === 1 ? scale : 1)],
        [cur.buffer(`reduce_${op}`), out.buffer(`reduce_${op}`)],
        grid(Math.ceil(n / WG)),
      );
    if (cur !== x) cur.dispose();
    cur = out;
    if (chunks === 1) return cur;
    k = chunks;
  }
}

/** Moves `axes` to one contiguous block (if needed) and returns the (A, K, B) view sizes. */
function toAKB(op: string, x: Tensor, axes: number[]): { src: Tensor; A: number; K: number; B: number } {
  const r = x.shape.length;
  const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1]! + 1);
  if (contiguous && axes.length) {
    const first = axes[0]!;
    const last = axes[axes.length - 1]!;
    return {
      src: x,
      A: shapeSize(x.shape.slice(0, first)),
      K: shapeSize(x.shape.slice(first, last + 1)),
      B: shapeSize(x.shape.slice(last + 1)),
    };
  }
  const keep = Array.from({ length: r }, (_, i) => i).filter((i) => !axes.includes(i));
  // A forward-only helper: not recorded on the tape (the reduction records its own node on x).
  const src = noGrad(() => permute(x, [...keep, ...axes], op));
  return {
    src,
    A: shapeSize(keep.map((i) => x.shape[i]!)),
    K: shapeSize(axes.map((i) => x.shape[i]!)),
    B: 1,
  };
}

function outShape(shape: Shape, axes: number[], keepdim: boolean): number[] {
  return keepdim
    ? shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : shape.filter((_, i) => !axes.includes(i));
}

function reduce(
  op: ReduceOp,
  name: string,
  x: Tensor,
  dim: number | number[] | undefined,
  keepdim: boolean,
  mean: boolean,
): Tensor {
  if (x.dtype !== 'float32')
    throw new Error(`${name}: expected a float32 tensor, got ${x.dtype} (use .float())`);
  const axes = normAxes(name, dim, x.shape.length);
  const { src, A, K, B } = toAKB(name, x, axes);
  if (K === 0 && op !== 'sum')
    throw new Error(`${name}: cannot reduce an empty dimension (shape ${fmtShape(x.shape)})`);
  const flat = reduceAKB(op, src, A, K, B, mean ? 1 / K : 1);
  if (src !== x) src.dispose();
  const shape = outShape(x.shape, axes, keepdim);
  const y = reshape(flat, shape);
  flat.dispose();
  const kept = outShape(x.shape, axes, true);
  return record(name, y, [x], (g) => {
    const gk = reshape(g, kept);
    if (op === 'sum') return [mean ? mul(expand(gk, [...x.shape]), 1 / K) : expand(gk, [...x.shape])];
    // max/min: the gradient is shared equally by the positions that attain the extreme (like torch.amax).
    const mask = eq(x, reshape(y, kept));
    const count = sum(mask, axes, true);
    return [mul(mask, div(gk, count))];
  });
}

export const sum = (x: Tensor, dim?: number | number[], keepdim = false) =>
  reduce('sum', 'sum', x, dim, keepdim, false);
export const mean = (x: Tensor, dim?: number | number[], keepdim = false) =>
  reduce('sum', 'mean', x, dim, keepdim, true);
export const max = (x: Tensor, dim?: number | number[], keepdim = false) =>
  reduce('max', 'max', x, dim, keepdim, false);
export const min = (x: Tensor, dim?: number | number[], keepdim = false) =>
  reduce('min', 'min', x, dim, keepdim, false);

const argSource = (cmp: '>' | '<') => `
${IS_NAN}
struct U { n: u32, K: u32, B: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;   // (A, K, B)
@group(0) @binding(2) var<storage, read_write> y: array<i32>;  // (A, B)
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  if (i >= u.n) { return; }
  let b = i % u.B;
  let a = i / u.B;
  var best = x[a * u.K * u.B + b];
  var arg = 0u;
  for (var k = 1u; k < u.K; k = k + 1u) {
    let v = x[(a * u.K + k) * u.B + b];
    if (!isNan(best) && (v ${cmp} best || isNan(v))) { best = v; arg = k; }
  }
  y[i] = i32(arg);
}`;

function argReduce(name: 'argmax' | 'argmin', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  if (x.dtype !== 'float32') throw new Error(`${name}: expected a float32 tensor, got ${x.dtype}`);
  const flatInput = dim === undefined;
  const src = flatInput ? noGrad(() => reshape(x, [x.size])) : x;
  const axis = flatInput ? 0 : normAxis(name, dim, x.shape.length);
  const K = src.shape[axis] ?? 1;
  if (K === 0) throw new Error(`${name}: cannot reduce an empty dimension (shape ${fmtShape(x.shape)})`);
  const B = shapeSize(src.shape.slice(axis + 1));
  const shape = flatInput ? (keepdim ? x.shape.map(() => 1) : []) : outShape(x.shape, [axis], keepdim);
  const y = new Tensor(shape, 'int32');
  if (y.size)
    dispatch(
      kernel(name, argSource(name === 'argmax' ? '>' : '<')),
      [y.size, K, B],
      [src.buffer(name), y.buffer(name)],
      grid(Math.ceil(y.size / WG)),
    );
  if (src !== x) src.dispose();
  return y;
}

export const argmax = (x: Tensor, dim?: number, keepdim = false) => argReduce('argmax', x, dim, keepdim);
export const argmin = (x: Tensor, dim?: number, keepdim = false) => argReduce('argmin', x, dim, keepdim);

// Composite reductions (differentiable through their parts).
export function variance(
  x: Tensor,
  dim?: number | number[],
  opts: { correction?: number; keepdim?: boolean } = {},
): Tensor {
  const axes = normAxes('var', dim, x.shape.length);
  const n = shapeSize(axes.map((a) => x.shape[a]!));
  const c = opts.correction ?? 1;
  const m = mean(x, axes, true);
  const d = sub(x, m);
  const s = sum(mul(d, d), axes, opts.keepdim ?? false);
  return div(s, Math.max(n - c, 0));
}

export function logsumexp(x: Tensor, dim: number | number[], keepdim = false): Tensor {
  const axes = normAxes('logsumexp', dim, x.shape.length);
  // The shift only guards exp against overflow: a constant for autodiff, so it is not recorded.
  const m = noGrad(() => max(x, axes, true));
  const s = log(sum(exp(sub(x, m)), axes, true));
  const r = add(s, m);
  return keepdim ? r : reshape(r, outShape(x.shape, axes, false));
}

export function logSoftmax(x: Tensor, dim: number): Tensor {
  return sub(x, logsumexp(x, dim, true));
}

export function softmax(x: Tensor, dim: number): Tensor {
  return exp(logSoftmax(x, dim));
}
