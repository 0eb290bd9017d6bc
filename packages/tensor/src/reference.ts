// CPU reference implementation (float64) used by the tests as an oracle for every GPU kernel.
// Plain TypeScript, no dependencies, no Node APIs. Simple and obviously correct rather than fast:
// almost every op is written as `build(outShape, idx => value at idx)` on top of one index helper.

/** Dense contiguous row-major tensor. */
export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

// ---------------------------------------------------------------------------------------------
// Core helpers
// ---------------------------------------------------------------------------------------------

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

function fail(fn: string, msg: string): never {
  throw new Error(`${fn}: ${msg}`);
}

const isInt = (v: number): boolean => Number.isInteger(v);

function checkShape(fn: string, shape: readonly number[]): void {
  if (!Array.isArray(shape) || !shape.every((d) => isInt(d) && d >= 0))
    fail(fn, `invalid shape ${fmt(shape)} (dims must be non-negative integers)`);
}

/** Validates that each tensor's data length matches its shape. */
function check(fn: string, ...xs: RefTensor[]): void {
  for (const x of xs) {
    checkShape(fn, x.shape);
    if (x.data.length !== size(x.shape))
      fail(fn, `tensor of shape ${fmt(x.shape)} has ${x.data.length} elements, expected ${size(x.shape)}`);
  }
}

/** Normalizes a possibly negative axis into [0, ndim). */
function normAxis(fn: string, axis: number, ndim: number, shape: readonly number[]): number {
  if (!isInt(axis) || axis < -ndim || axis >= ndim)
    fail(fn, `axis ${axis} out of range for shape ${fmt(shape)}`);
  return axis < 0 ? axis + ndim : axis;
}

/**
 * Flat row-major offset of multi-index `idx` into a tensor of `shape`. `idx` may have more dims than
 * `shape` (extra leading dims are ignored) and size-1 dims always read index 0: this is exactly NumPy
 * broadcasting of `shape` against the index space of `idx`.
 */
function offset(shape: readonly number[], idx: readonly number[]): number {
  const lead = idx.length - shape.length;
  let flat = 0;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d] + (shape[d] === 1 ? 0 : idx[d + lead]);
  return flat;
}

const at = (x: RefTensor, idx: readonly number[]): number => x.data[offset(x.shape, idx)];

/** Copy of `idx` with entry `axis` replaced by `k`. */
const withAxis = (idx: readonly number[], axis: number, k: number): number[] =>
  idx.map((v, d) => (d === axis ? k : v));

/** Calls `f` for every multi-index of `shape` in row-major order (idx is reused: copy to keep). */
function forEachIndex(shape: readonly number[], f: (idx: number[], flat: number) => void): void {
  const n = size(shape);
  const idx: number[] = new Array(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    f(idx, i);
    for (let d = shape.length - 1; d >= 0 && ++idx[d] === shape[d]; d--) idx[d] = 0;
  }
}

/** New tensor of `shape` whose element at multi-index idx is f(idx). */
function build(shape: readonly number[], f: (idx: number[]) => number): RefTensor {
  const data = new Float64Array(size(shape));
  forEachIndex(shape, (idx, i) => {
    data[i] = f(idx);
  });
  return { shape: [...shape], data };
}

function bshape(fn: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) fail(fn, `cannot broadcast shapes ${fmt(a)} and ${fmt(b)}`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

function pair(fn: string, name: string, p: readonly number[], min: number): void {
  if (p.length !== 2 || !p.every((v) => isInt(v) && v >= min))
    fail(fn, `${name} must be a pair of integers >= ${min}, got ${fmt(p)}`);
}

// ---------------------------------------------------------------------------------------------
// Construction
// ---------------------------------------------------------------------------------------------

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function ref(shape: number[], data: ArrayLike<number>): RefTensor {
  checkShape('ref', shape);
  if (data.length !== size(shape))
    fail('ref', `shape ${fmt(shape)} needs ${size(shape)} elements, got ${data.length}`);
  return { shape: [...shape], data: Float64Array.from(data) };
}

/** NumPy broadcasting of two shapes (right-aligned; each dim equal or 1). */
export function broadcastShapes(a: number[], b: number[]): number[] {
  return bshape('broadcastShapes', a, b);
}

// ---------------------------------------------------------------------------------------------
// Elementwise
// ---------------------------------------------------------------------------------------------

export function unary(x: RefTensor, f: (v: number) => number): RefTensor {
  check('unary', x);
  return { shape: [...x.shape], data: x.data.map((v) => f(v)) };
}

export function binary(a: RefTensor, b: RefTensor, f: (x: number, y: number) => number): RefTensor {
  check('binary', a, b);
  return build(bshape('binary', a.shape, b.shape), (i) => f(at(a, i), at(b, i)));
}

/** c != 0 ? a : b, broadcasting all three (NaN condition counts as true, as in a != 0 test). */
export function where(c: RefTensor, a: RefTensor, b: RefTensor): RefTensor {
  check('where', c, a, b);
  const shape = bshape('where', bshape('where', c.shape, a.shape), b.shape);
  return build(shape, (i) => (at(c, i) !== 0 ? at(a, i) : at(b, i)));
}

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

/** Reduces over `axes` (negative allowed; undefined = all axes; [] = no axes, identity). */
export function reduce(
  x: RefTensor,
  axes: number[] | undefined,
  keepdim: boolean,
  op: 'sum' | 'mean' | 'max' | 'min' | 'prod',
): RefTensor {
  check('reduce', x);
  const nd = x.shape.length;
  const list = (axes ?? x.shape.map((_, d) => d)).map((a) => normAxis('reduce', a, nd, x.shape));
  const red = new Set(list);
  if (red.size !== list.length)
    fail('reduce', `repeated axis in ${fmt(axes ?? [])} for shape ${fmt(x.shape)}`);
  const keptShape = x.shape.map((d, i) => (red.has(i) ? 1 : d)); // reduced dims -> 1
  const windowShape = x.shape.map((d, i) => (red.has(i) ? d : 1)); // the dims being reduced
  const count = size(windowShape);
  if ((op === 'max' || op === 'min') && count === 0)
    fail('reduce', `${op} over zero elements (shape ${fmt(x.shape)}, axes ${fmt([...red])})`);
  const out = build(keptShape, (o) => {
    let acc = op === 'max' ? -Infinity : op === 'min' ? Infinity : op === 'prod' ? 1 : 0;
    forEachIndex(windowShape, (w) => {
      const v = at(
        x,
        o.map((oi, d) => oi + w[d]), // kept dims come from o, reduced dims from w
      );
      // Math.max/min propagate NaN, like torch
      if (op === 'max') acc = Math.max(acc, v);
      else if (op === 'min') acc = Math.min(acc, v);
      else if (op === 'prod') acc *= v;
      else acc += v;
    });
    return op === 'mean' ? acc / count : acc;
  });
  return keepdim ? out : { shape: x.shape.filter((_, i) => !red.has(i)), data: out.data };
}

/** Index of the max/min along `axis`; first index on ties; NaN counts as the extreme (like torch). */
export function argReduce(x: RefTensor, axis: number, keepdim: boolean, op: 'argmax' | 'argmin'): RefTensor {
  check('argReduce', x);
  const ax = normAxis('argReduce', axis, x.shape.length, x.shape);
  const n = x.shape[ax];
  if (n === 0) fail('argReduce', `${op} over empty axis ${axis} of shape ${fmt(x.shape)}`);
  const better = (v: number, best: number) =>
    !Number.isNaN(best) && (Number.isNaN(v) || (op === 'argmax' ? v > best : v < best));
  const out = build(
    x.shape.map((d, i) => (i === ax ? 1 : d)),
    (o) => {
      const along = (k: number) => at(x, withAxis(o, ax, k));
      let bi = 0;
      for (let k = 1; k < n; k++) if (better(along(k), along(bi))) bi = k;
      return bi;
    },
  );
  return keepdim ? out : { shape: x.shape.filter((_, i) => i !== ax), data: out.data };
}

// ---------------------------------------------------------------------------------------------
// Movement
// ---------------------------------------------------------------------------------------------

/** Same data, new shape; at most one -1 which is inferred. */
export function reshape(x: RefTensor, shape: number[]): RefTensor {
  check('reshape', x);
  const bad = () => fail('reshape', `cannot reshape ${fmt(x.shape)} to ${fmt(shape)}`);
  const infer = shape.indexOf(-1);
  if (shape.some((d, i) => !isInt(d) || d < -1 || (d === -1 && i !== infer))) bad();
  const known = size(shape.filter((d) => d !== -1));
  const out = [...shape];
  if (infer >= 0) {
    if (known === 0 || size(x.shape) % known !== 0) bad();
    out[infer] = size(x.shape) / known;
  }
  if (size(out) !== size(x.shape)) bad();
  return { shape: out, data: x.data.slice() };
}

/** out.shape[i] = x.shape[perm[i]]. */
export function permute(x: RefTensor, perm: number[]): RefTensor {
  check('permute', x);
  const nd = x.shape.length;
  const sorted = [...perm].sort((p, q) => p - q);
  if (perm.length !== nd || !sorted.every((p, i) => p === i))
    fail('permute', `invalid permutation ${fmt(perm)} for shape ${fmt(x.shape)}`);
  const src: number[] = new Array(nd);
  return build(
    perm.map((p) => x.shape[p]),
    (i) => {
      perm.forEach((p, d) => {
        src[p] = i[d];
      });
      return at(x, src);
    },
  );
}

/** Broadcast x to `shape` (new dims on the left; size-1 dims stretch; -1 keeps an existing dim). */
export function expand(x: RefTensor, shape: number[]): RefTensor {
  check('expand', x);
  const lead = shape.length - x.shape.length;
  const bad = () => fail('expand', `cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  if (lead < 0) bad();
  const out = shape.map((d, i) => {
    const src = i < lead ? undefined : x.shape[i - lead];
    if (d === -1 && src !== undefined) return src;
    if (!isInt(d) || d < 0 || (src !== undefined && src !== 1 && src !== d)) bad();
    return d;
  });
  return build(out, (i) => at(x, i));
}

/**
 * Python-style slice per dim: negative starts/ends count from the end, both are clamped to [0, dim],
 * steps must be positive (default 1). Element k of dim d is x[start_d + k * step_d].
 */
export function slice(x: RefTensor, starts: number[], ends: number[], steps?: number[]): RefTensor {
  check('slice', x);
  const nd = x.shape.length;
  const st = steps ?? x.shape.map(() => 1);
  if (starts.length !== nd || ends.length !== nd || st.length !== nd)
    fail(
      'slice',
      `starts/ends/steps ${fmt(starts)}/${fmt(ends)}/${fmt(st)} do not match shape ${fmt(x.shape)}`,
    );
  if (![...starts, ...ends, ...st].every(isInt) || st.some((s) => s <= 0))
    fail('slice', `starts/ends must be integers and steps positive integers, got steps ${fmt(st)}`);
  const clamp = (v: number, d: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
  const b = starts.map((s, i) => clamp(s, x.shape[i]));
  const e = ends.map((s, i) => clamp(s, x.shape[i]));
  const out = b.map((s, i) => Math.max(0, Math.ceil((e[i] - s) / st[i])));
  return build(out, (i) =>
    at(
      x,
      i.map((k, d) => b[d] + k * st[d]),
    ),
  );
}

/** Constant pad; pads[d] = [before, after] for every dim d; negative values crop. */
export function pad(x: RefTensor, pads: [number, number][], value = 0): RefTensor {
  check('pad', x);
  const out = x.shape.map((d, i) => d + (pads[i]?.[0] ?? 0) + (pads[i]?.[1] ?? 0));
  if (pads.length !== x.shape.length || !pads.flat().every(isInt) || out.some((d) => d < 0))
    fail('pad', `invalid pads ${JSON.stringify(pads)} for shape ${fmt(x.shape)}`);
  return build(out, (i) => {
    const src = i.map((k, d) => k - pads[d][0]);
    return src.every((s, d) => s >= 0 && s < x.shape[d]) ? at(x, src) : value;
  });
}

/** Joins tensors along an existing axis; all other dims must match. */
export function concat(xs: RefTensor[], axis: number): RefTensor {
  if (xs.length === 0) fail('concat', 'needs at least one tensor');
  check('concat', ...xs);
  const first = xs[0].shape;
  const ax = normAxis('concat', axis, first.length, first);
  if (xs.some((t) => t.shape.length !== first.length || t.shape.some((d, i) => i !== ax && d !== first[i])))
    fail('concat', `shapes ${xs.map((t) => fmt(t.shape)).join(', ')} differ outside axis ${axis}`);
  const out = [...first];
  out[ax] = xs.reduce((s, t) => s + t.shape[ax], 0);
  return build(out, (i) => {
    let k = i[ax];
    let t = 0;
    while (k >= xs[t].shape[ax]) k -= xs[t++].shape[ax];
    return at(xs[t], withAxis(i, ax, k));
  });
}

/** Joins equally shaped tensors along a new axis (axis in [-(ndim+1), ndim]). */
export function stack(xs: RefTensor[], axis: number): RefTensor {
  if (xs.length === 0) fail('stack', 'needs at least one tensor');
  check('stack', ...xs);
  const first = xs[0].shape;
  if (xs.some((t) => fmt(t.shape) !== fmt(first)))
    fail('stack', `shapes differ: ${xs.map((t) => fmt(t.shape)).join(', ')}`);
  const ax = normAxis('stack', axis, first.length + 1, first);
  const unsq = [...first.slice(0, ax), 1, ...first.slice(ax)];
  return concat(
    xs.map((t) => ({ shape: unsq, data: t.data })),
    ax,
  );
}

/** out = x with dim `axis` replaced by x[..., index[k], ...] for k in index. */
export function indexSelect(x: RefTensor, axis: number, index: number[]): RefTensor {
  check('indexSelect', x);
  const ax = normAxis('indexSelect', axis, x.shape.length, x.shape);
  if (!index.every((v) => isInt(v) && v >= 0 && v < x.shape[ax]))
    fail('indexSelect', `index ${fmt(index)} out of range for axis ${axis} of shape ${fmt(x.shape)}`);
  const out = [...x.shape];
  out[ax] = index.length;
  return build(out, (i) => at(x, withAxis(i, ax, index[i[ax]])));
}

/** torch.gather: out has index's shape; out[i][j][k] = x[i][index[i][j][k]][k] for axis 1. */
export function gather(x: RefTensor, axis: number, index: RefTensor): RefTensor {
  check('gather', x, index);
  const nd = x.shape.length;
  const ax = normAxis('gather', axis, nd, x.shape);
  if (index.shape.length !== nd || index.shape.some((d, i) => i !== ax && d > x.shape[i]))
    fail('gather', `index shape ${fmt(index.shape)} incompatible with input ${fmt(x.shape)} on axis ${axis}`);
  return build(index.shape, (i) => {
    const k = index.data[offset(index.shape, i)];
    if (!isInt(k) || k < 0 || k >= x.shape[ax])
      fail('gather', `index value ${k} out of range for axis ${axis} of shape ${fmt(x.shape)}`);
    return at(x, withAxis(i, ax, k));
  });
}

/** (N) integer labels -> (N, numClasses) of 0/1. */
export function oneHot(labels: number[], numClasses: number): RefTensor {
  if (!isInt(numClasses) || numClasses < 0 || !labels.every((l) => isInt(l) && l >= 0 && l < numClasses))
    fail('oneHot', `labels ${fmt(labels)} invalid for numClasses ${numClasses}`);
  return build([labels.length, numClasses], ([n, c]) => (labels[n] === c ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Linear algebra
// ---------------------------------------------------------------------------------------------

/**
 * torch.matmul: 1-D a is treated as (1, K) and 1-D b as (K, 1), the added dim removed afterwards;
 * otherwise (..., M, K) @ (..., K, N) -> (broadcast(...), M, N).
 */
export function matmul(a: RefTensor, b: RefTensor): RefTensor {
  check('matmul', a, b);
  const bad = () => fail('matmul', `incompatible shapes ${fmt(a.shape)} and ${fmt(b.shape)}`);
  if (a.shape.length === 0 || b.shape.length === 0) bad();
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const [M, K] = as.slice(-2);
  const [K2, N] = bs.slice(-2);
  if (K !== K2) bad();
  const batch = bshape('matmul', as.slice(0, -2), bs.slice(0, -2));
  const nb = batch.length;
  const A = { shape: as, data: a.data };
  const B = { shape: bs, data: b.data };
  const out = build([...batch, M, N], (i) => {
    const ia = [...i];
    const ib = [...i];
    let s = 0;
    for (let k = 0; k < K; k++) {
      ia[nb + 1] = k; // (..., m, k)
      ib[nb] = k; // (..., k, n)
      s += at(A, ia) * at(B, ib);
    }
    return s;
  });
  const shape = [...batch, ...(a.shape.length === 1 ? [] : [M]), ...(b.shape.length === 1 ? [] : [N])];
  return { shape, data: out.data };
}

// ---------------------------------------------------------------------------------------------
// Convolution family (NCHW, PyTorch semantics)
// ---------------------------------------------------------------------------------------------

export interface Conv2dOpts {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** Validates conv inputs; returns a thrower for shape mismatches found by the caller. */
function checkConv(fn: string, x: RefTensor, w: RefTensor, b: RefTensor | null, o: Conv2dOpts): () => never {
  check(fn, x, w, ...(b ? [b] : []));
  pair(fn, 'stride', o.stride, 1);
  pair(fn, 'padding', o.padding, 0);
  pair(fn, 'dilation', o.dilation, 1);
  if (x.shape.length !== 4 || w.shape.length !== 4)
    fail(fn, `expected 4-D input and weight, got ${fmt(x.shape)} and ${fmt(w.shape)}`);
  if (!isInt(o.groups) || o.groups < 1) fail(fn, `groups must be a positive integer, got ${o.groups}`);
  const bs = b ? fmt(b.shape) : 'null';
  return () =>
    fail(fn, `bad shapes x ${fmt(x.shape)}, w ${fmt(w.shape)}, b ${bs}, groups ${o.groups} (or output < 1)`);
}

/** Output length of a convolution/pool window sweep along one spatial dim. */
const convOut = (n: number, k: number, s: number, p: number, d: number) =>
  Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;

/** x (N, Cin, H, W), w (Cout, Cin/g, kH, kW), b (Cout) -> (N, Cout, Ho, Wo). Cross-correlation. */
export function conv2d(x: RefTensor, w: RefTensor, b: RefTensor | null, o: Conv2dOpts): RefTensor {
  const bad = checkConv('conv2d', x, w, b, o);
  const [N, Cin, H, W] = x.shape;
  const [Cout, Cg, kH, kW] = w.shape;
  const g = o.groups;
  const [sh, sw] = o.stride;
  const [ph, pw] = o.padding;
  const [dh, dw] = o.dilation;
  const Ho = convOut(H, kH, sh, ph, dh);
  const Wo = convOut(W, kW, sw, pw, dw);
  if (Cin % g || Cout % g || Cg !== Cin / g || (b && fmt(b.shape) !== fmt([Cout])) || Ho < 1 || Wo < 1) bad();
  const coPerG = Cout / g;
  return build([N, Cout, Ho, Wo], ([n, co, oy, ox]) => {
    const c0 = Math.floor(co / coPerG) * Cg; // first input channel of this group
    let s = b ? b.data[co] : 0;
    for (let ci = 0; ci < Cg; ci++)
      for (let ky = 0; ky < kH; ky++)
        for (let kx = 0; kx < kW; kx++) {
          const iy = oy * sh - ph + ky * dh;
          const ix = ox * sw - pw + kx * dw;
          if (iy >= 0 && iy < H && ix >= 0 && ix < W)
            s += at(x, [n, c0 + ci, iy, ix]) * at(w, [co, ci, ky, kx]);
        }
    return s;
  });
}

/**
 * x (N, Cin, H, W), w (Cin, Cout/g, kH, kW), b (Cout) -> (N, Cout, Ho, Wo) with
 * Ho = (H - 1) * sH - 2 pH + dH (kH - 1) + opH + 1. Written as the scatter that defines it:
 * every input pixel adds x * w into the output window it maps to (the adjoint of conv2d).
 */
export function convTranspose2d(
  x: RefTensor,
  w: RefTensor,
  b: RefTensor | null,
  o: Conv2dOpts & { outputPadding: [number, number] },
): RefTensor {
  const bad = checkConv('convTranspose2d', x, w, b, o);
  pair('convTranspose2d', 'outputPadding', o.outputPadding, 0);
  const [N, Cin, H, W] = x.shape;
  const [Cin2, Cg, kH, kW] = w.shape;
  const g = o.groups;
  const [sh, sw] = o.stride;
  const [ph, pw] = o.padding;
  const [dh, dw] = o.dilation;
  const [oph, opw] = o.outputPadding;
  const Cout = Cg * g;
  const Ho = (H - 1) * sh - 2 * ph + dh * (kH - 1) + oph + 1;
  const Wo = (W - 1) * sw - 2 * pw + dw * (kW - 1) + opw + 1;
  if (Cin % g || Cin2 !== Cin || (b && fmt(b.shape) !== fmt([Cout])) || Ho < 1 || Wo < 1) bad();
  if ((oph >= sh && oph >= dh) || (opw >= sw && opw >= dw))
    fail('convTranspose2d', `outputPadding ${fmt(o.outputPadding)} must be smaller than stride or dilation`);
  const outShape = [N, Cout, Ho, Wo];
  const out = build(outShape, ([, co]) => (b ? b.data[co] : 0));
  const ciPerG = Cin / g;
  forEachIndex(x.shape, ([n, ci, iy, ix]) => {
    const c0 = Math.floor(ci / ciPerG) * Cg; // first output channel of this group
    for (let co = 0; co < Cg; co++)
      for (let ky = 0; ky < kH; ky++)
        for (let kx = 0; kx < kW; kx++) {
          const oy = iy * sh - ph + ky * dh;
          const ox = ix * sw - pw + kx * dw;
          if (oy >= 0 && oy < Ho && ox >= 0 && ox < Wo)
            out.data[offset(outShape, [n, c0 + co, oy, ox])] +=
              at(x, [n, ci, iy, ix]) * at(w, [ci, co, ky, kx]);
        }
  });
  return out;
}

/** Shared window sweep for the pools: x (N, C, H, W) -> (N, C, Ho, Wo), ceil_mode = false. */
function pool2d(
  fn: string,
  x: RefTensor,
  k: [number, number],
  s: [number, number],
  p: [number, number],
  f: (window: number[]) => number,
): RefTensor {
  check(fn, x);
  pair(fn, 'kernel', k, 1);
  pair(fn, 'stride', s, 1);
  pair(fn, 'padding', p, 0);
  if (x.shape.length !== 4) fail(fn, `expected 4-D input, got ${fmt(x.shape)}`);
  const [N, C, H, W] = x.shape;
  if (p[0] > k[0] / 2 || p[1] > k[1] / 2)
    fail(fn, `padding ${fmt(p)} must be at most half of kernel ${fmt(k)}`);
  const Ho = convOut(H, k[0], s[0], p[0], 1);
  const Wo = convOut(W, k[1], s[1], p[1], 1);
  if (Ho < 1 || Wo < 1)
    fail(fn, `input ${fmt(x.shape)} too small for kernel ${fmt(k)} with padding ${fmt(p)}`);
  return build([N, C, Ho, Wo], ([n, c, oy, ox]) => {
    const y0 = oy * s[0] - p[0];
    const x0 = ox * s[1] - p[1];
    const vals: number[] = []; // in-bounds window values
    for (let iy = Math.max(y0, 0); iy < Math.min(y0 + k[0], H); iy++)
      for (let ix = Math.max(x0, 0); ix < Math.min(x0 + k[1], W); ix++) vals.push(at(x, [n, c, iy, ix]));
    return f(vals);
  });
}

/** Max over each window; padding acts as -inf. NaN propagates. */
export function maxPool2d(
  x: RefTensor,
  k: [number, number],
  s: [number, number],
  p: [number, number],
): RefTensor {
  return pool2d('maxPool2d', x, k, s, p, (v) => v.reduce((a, b) => Math.max(a, b), -Infinity));
}

/** Mean over each window; divisor kH*kW when countIncludePad (default), else the in-bounds count. */
export function avgPool2d(
  x: RefTensor,
  k: [number, number],
  s: [number, number],
  p: [number, number],
  countIncludePad = true,
): RefTensor {
  const divisor = (v: number[]) => (countIncludePad ? k[0] * k[1] : v.length);
  return pool2d('avgPool2d', x, k, s, p, (v) => v.reduce((a, b) => a + b, 0) / divisor(v));
}

/** PyTorch mode='nearest': x (N, C, H, W) -> (N, C, outH, outW), src = floor(dst * in / out). */
export function upsampleNearest2d(x: RefTensor, outH: number, outW: number): RefTensor {
  check('upsampleNearest2d', x);
  if (x.shape.length !== 4 || !isInt(outH) || !isInt(outW) || outH < 1 || outW < 1)
    fail('upsampleNearest2d', `bad input ${fmt(x.shape)} or output size ${fmt([outH, outW])}`);
  const [N, C, H, W] = x.shape;
  // exact integer arithmetic: floor((dst * in) / out)
  return build([N, C, outH, outW], ([n, c, y, xx]) =>
    at(x, [n, c, Math.min(Math.floor((y * H) / outH), H - 1), Math.min(Math.floor((xx * W) / outW), W - 1)]),
  );
}

// ---------------------------------------------------------------------------------------------
// Finite-difference gradients
// ---------------------------------------------------------------------------------------------

/**
 * Gradients of L = sum(f(xs) * upstream) w.r.t. every element of every input, by central differences
 * in float64: (L(x + eps) - L(x - eps)) / (2 eps). The caller's tensors are not modified.
 */
export function numericGrad(
  f: (xs: RefTensor[]) => RefTensor,
  xs: RefTensor[],
  upstream: RefTensor,
  eps = 1e-6,
): RefTensor[] {
  check('numericGrad', ...xs, upstream);
  const ws = xs.map((x) => ({ shape: [...x.shape], data: x.data.slice() }));
  const loss = () => {
    const y = f(ws);
    if (fmt(y.shape) !== fmt(upstream.shape))
      fail('numericGrad', `f returned shape ${fmt(y.shape)} but upstream has shape ${fmt(upstream.shape)}`);
    return y.data.reduce((s, v, i) => s + v * upstream.data[i], 0);
  };
  return ws.map((w) => {
    const grad = new Float64Array(w.data.length);
    for (let i = 0; i < w.data.length; i++) {
      const orig = w.data[i];
      w.data[i] = orig + eps;
      const lp = loss();
      w.data[i] = orig - eps;
      const lm = loss();
      w.data[i] = orig;
      grad[i] = (lp - lm) / (2 * eps);
    }
    return { shape: [...w.shape], data: grad };
  });
}

// ---------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------

/** Elementwise error |a - e| / (atol + |e|); equal values (incl. both NaN, same infinity) count as 0. */
function relErr(a: number, e: number, atol: number): number {
  if (a === e || (Number.isNaN(a) && Number.isNaN(e))) return 0;
  const err = Math.abs(a - e) / (atol + Math.abs(e));
  return Number.isNaN(err) ? Infinity : err;
}

/** max_i |actual_i - expected_i| / (atol + |expected_i|), atol default 1e-6. Throws on length mismatch. */
export function maxRelErr(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-6): number {
  if (actual.length !== expected.length)
    fail('maxRelErr', `length mismatch: actual ${actual.length}, expected ${expected.length}`);
  let m = 0;
  for (let i = 0; i < actual.length; i++) m = Math.max(m, relErr(actual[i], expected[i], atol));
  return m;
}

/**
 * Throws unless |actual_i - expected_i| <= atol + rtol * |expected_i| for every i (numpy.allclose;
 * NaN matches NaN, infinities must match exactly). Defaults rtol 1e-4, atol 1e-5 (float32 GPU vs float64).
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: { rtol?: number; atol?: number; what?: string } = {},
): void {
  const { rtol = 1e-4, atol = 1e-5, what = 'values' } = opts;
  if (actual.length !== expected.length)
    throw new Error(
      `assertClose(${what}): length mismatch: actual ${actual.length}, expected ${expected.length}`,
    );
  let bad = -1;
  let nBad = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const ok =
      a === e ||
      (Number.isNaN(a) && Number.isNaN(e)) ||
      (Number.isFinite(a) && Number.isFinite(e) && Math.abs(a - e) <= atol + rtol * Math.abs(e));
    if (!ok && nBad++ === 0) bad = i;
  }
  if (bad >= 0) {
    const a = actual[bad];
    const e = expected[bad];
    throw new Error(
      `assertClose(${what}): ${nBad} of ${actual.length} elements differ; first at index ${bad}: ` +
        `actual ${a}, expected ${e} (|diff| ${Math.abs(a - e)} > atol ${atol} + rtol ${rtol} * |expected|)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Seeded CPU PRNG for test inputs
// ---------------------------------------------------------------------------------------------

/** mulberry32: deterministic uniform [0, 1) stream from a 32-bit seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Tensor of `shape` with uniform values in [lo, hi) (default [-1, 1)) from rng(seed). */
export function randomRef(shape: number[], seed: number, lo = -1, hi = 1): RefTensor {
  checkShape('randomRef', shape);
  const r = rng(seed);
  return build(shape, () => lo + (hi - lo) * r());
}
