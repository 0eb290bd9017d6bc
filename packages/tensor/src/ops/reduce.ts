// Reductions over any set of axes. Each run of adjacent reduced axes is one pass over x viewed as (A, K, B);
// a kernel reduces chunks of K per thread, and is applied again on the partial results until K is 1, so a
// full reduction of a large tensor stays parallel.
import { dispatch, FLAT_INDEX, f32, grid, kernelFor, MAIN_1D, nanBits } from '../gpu.js';
import { fmtShape, noGrad, record, type Shape, shapeSize, Tensor } from '../tensor.js';
import { add, div, eq, exp, full, log, mapElementwise, mul, sub } from './elementwise.js';
import { expand, reshape } from './movement.js';
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
const IS_NAN = `fn isNan(v: f32) -> bool { return ${nanBits('v')}; }`;

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
// A thread sums up to SERIAL_MAX values of K alone, else chunks of SERIAL_CHUNK: every pass is a dispatch
// (≈ 9 µs on lavapipe plus its start), so a bias gradient of (128, 784) is one pass and a full sum of 100k
// values two (it was two and four with chunks of 32: AE step 3.42 → 3.13 ms with the fused loss).
const SERIAL_MAX = 512;
const SERIAL_CHUNK = 256;
/** How many chunks a pass splits a reduced length k into, for A·B independent outputs. */
const chunksOf = (k: number, outputs: number) =>
  k <= SERIAL_MAX || outputs >= TARGET_THREADS
    ? 1
    : Math.min(Math.ceil(TARGET_THREADS / outputs), Math.ceil(k / SERIAL_CHUNK));

/** Reduces the middle axis of x viewed as (A, K, B); returns (A, B) as a flat untracked tensor. */
function reduceAKB(op: ReduceOp, x: Tensor, A: number, K: number, B: number, scale: number): Tensor {
  let cur = x;
  let k = K;
  for (;;) {
    const chunks = chunksOf(k, A * B);
    const chunk = Math.ceil(k / chunks);
    const out = new Tensor([A * chunks * B], 'float32');
    const n = out.size;
    if (n > 0)
      dispatch(
        kernelFor(`reduce_${op}`, () => reduceSource(op)),
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

/**
 * One pass of scale · Σ expr(v0, v1, …) over same-sized flat inputs: lane i sums elements [i·chunk, (i+1)·chunk)
 * into y[off + i] (sumOfExpr's first pass; sumOfSquares runs it once per tensor into shared slots).
 */
function partialSums(
  name: string,
  expr: string,
  inputs: readonly Tensor[],
  prelude: string,
  chunk: number,
  chunks: number,
  scale: number,
  y: Tensor,
  off: number,
): void {
  const source = () => `${prelude}
struct U { n: u32, chunk: u32, chunks: u32, scale: f32, off: u32 }
@group(0) @binding(0) var<uniform> u: U;
${inputs.map((_, j) => `@group(0) @binding(${j + 1}) var<storage, read> x${j}: array<f32>;`).join('\n')}
@group(0) @binding(${inputs.length + 1}) var<storage, read_write> y: array<f32>;
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  if (i >= u.chunks) { return; }
  let k1 = min((i + 1u) * u.chunk, u.n);
  var acc = 0.0;
  for (var p = i * u.chunk; p < k1; p = p + 1u) {
    ${inputs.map((_, j) => `let v${j} = x${j}[p];`).join(' ')}
    acc = acc + (${expr});
  }
  y[u.off + i] = acc * u.scale;
}`;
  dispatch(
    kernelFor(`${name}|${inputs.length}|${expr}|${prelude}`, source),
    [inputs[0]!.size, chunk, chunks, f32(scale), off],
    [...inputs.map((t) => t.buffer(name)), y.buffer(name)],
    grid(Math.ceil(chunks / WG)),
  );
}

/**
 * scale · Σ over all elements of an elementwise WGSL expression of same-shaped inputs (v0, v1, …), the first
 * pass reading the inputs directly (no temporary of the terms), then `reduceAKB` over the partial sums.
 * Returns an untracked scalar; the caller records the backward.
 */
export function sumOfExpr(
  name: string,
  expr: string,
  inputs: readonly Tensor[],
  scale: number,
  prelude = '',
): Tensor {
  const n = inputs[0]!.size;
  const chunks = chunksOf(n, 1);
  const chunk = Math.max(1, Math.ceil(n / chunks));
  const used = Math.max(1, Math.ceil(n / chunk));
  const partial = new Tensor(used === 1 ? [] : [used], 'float32');
  partialSums(name, expr, inputs, prelude, chunk, used, scale, partial, 0);
  if (used === 1) return partial;
  const flat = reduceAKB('sum', partial, 1, used, 1, 1);
  partial.dispose();
  const out = reshape(flat, []);
  flat.dispose();
  return out;
}

/**
 * Reduces `axes` (sorted) of x; returns the result flat in the order of the kept dims, untracked. Each run of
 * adjacent axes is one (A, K, B) pass, last run first, so non-adjacent axes (e.g. a bias gradient's
 * sum over (B, H, W) of (B, C, H, W)) need no permute copy. `scale` is applied once, in the first run.
 */
function reduceAxes(op: ReduceOp, x: Tensor, axes: number[], scale: number): Tensor {
  const runs: [number, number][] = [];
  for (const a of axes) {
    const r = runs[runs.length - 1];
    if (r && a === r[1] + 1) r[1] = a;
    else runs.push([a, a]);
  }
  if (!runs.length) return reduceAKB(op, x, x.size, 1, 1, scale);
  let cur = x;
  let shape = [...x.shape];
  for (let i = runs.length - 1; i >= 0; i--) {
    const [first, last] = runs[i]!;
    const out = reduceAKB(
      op,
      cur,
      shapeSize(shape.slice(0, first)),
      shapeSize(shape.slice(first, last + 1)),
      shapeSize(shape.slice(last + 1)),
      i === 0 ? scale : 1,
    );
    if (cur !== x) cur.dispose();
    cur = out;
    shape = [...shape.slice(0, first), ...shape.slice(last + 1)];
  }
  return cur;
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
  const K = shapeSize(axes.map((a) => x.shape[a] ?? 1)); // a 0-d tensor reduces over its one "dim"
  if (K === 0 && op !== 'sum')
    throw new Error(`${name}: cannot reduce an empty dimension (shape ${fmtShape(x.shape)})`);
  const flat = reduceAxes(op, x, axes, mean ? 1 / K : 1);
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

// Σ_i Σ_e x_i[e]² over tensors of any shapes (a global gradient norm's square): partialSums once per tensor,
// each lane summing SERIAL_CHUNK squares into its own slot of one buffer shared by all tensors, then reduceAKB
// over the slots. The conv VAE's 14 gradients take 15–16 dispatches, where square + sum per tensor, a stack
// and a sum took 55.
/**
 * Σ of the squares of every element of every tensor in `xs` (any shapes), as a 0-d tensor: the square of
 * their joint 2-norm (clipGradNorm). Differentiable: ∂/∂x = 2·x·g.
 */
export function sumOfSquares(xs: readonly Tensor[]): Tensor {
  const name = 'sumOfSquares';
  xs.forEach((x, i) => {
    if (x.dtype !== 'float32') throw new Error(`${name}: tensor ${i} must be float32, got ${x.dtype}`);
  });
  const slots = xs.map((x) => Math.ceil(x.size / SERIAL_CHUNK));
  const total = slots.reduce((a, b) => a + b, 0);
  let y: Tensor;
  if (total === 0) y = full([], 0);
  else {
    const partial = new Tensor([total], 'float32');
    let off = 0;
    xs.forEach((x, i) => {
      const n = slots[i]!;
      if (n) partialSums(name, 'v0 * v0', [x], '', SERIAL_CHUNK, n, 1, partial, off);
      off += n;
    });
    const flat = reduceAKB('sum', partial, 1, total, 1, 1);
    partial.dispose();
    y = reshape(flat, []);
    flat.dispose();
  }
  return record(name, y, xs, (g) =>
    xs.map((x) => (x.requiresGrad ? mapElementwise(`${name}_grad`, '2.0 * v0 * v1', [x, g]) : null)),
  );
}

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
      kernelFor(name, () => argSource(name === 'argmax' ? '>' : '<')),
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
