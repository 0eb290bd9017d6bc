// Movement ops. Reshape is a view (shared storage); everything else is a strided copy that reads and writes
// 32-bit words through arbitrary strides (so it serves every dtype): permute, expand, slice, pad, concat and
// their gradients (a grid kernel, or a general one where the grid would not fit; see copyStrided).
// Gather/indexSelect have their own kernel and a scatter-free backward.
import { dispatch, FLAT_INDEX, grid, kernel, kernelFor, MAIN_1D } from '../gpu.js';
import { fmtShape, record, type Shape, shapeSize, Tensor } from '../tensor.js';
import { full, mapElementwise } from './elementwise.js';
import { gridDims, gridStrides, ROW_GRID_END, rowGrid, rowGridMain, splitOuter } from './rowgrid.js';
import { broadcastStrides, collapse, contiguousStrides, MAX_RANK, normAxis, padWords } from './shape.js';

const WG = 256;

// The general copy: one element per invocation, its index split into the collapsed dims by divisions. Used
// only when a grid of the form below would exceed the adapter's workgroup limits.
const COPY_SRC = `
struct U { n: u32, rank: u32, inOff: u32, outOff: u32, shape: array<vec4<u32>, 2>, ist: array<vec4<u32>, 2>, ost: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  if (i >= u.n) { return; }
  var rem = i;
  var src = u.inOff;
  var dst = u.outOff;
  for (var d = i32(u.rank) - 1; d >= 0; d = d - 1) {
    let du = u32(d);
    let s = u.shape[du / 4u][du % 4u];
    let c = rem % s;
    rem = rem / s;
    src = src + c * u.ist[du / 4u][du % 4u];
    dst = dst + c * u.ost[du / 4u][du % 4u];
  }
  y[dst] = x[src];
}`;

// The grid copy: the innermost collapsed dim along x (lanes), the next along y, all outer dims flattened along
// z. Only z is split into indices, once per workgroup (its divisions are scalar), and every uniform is read at
// a constant index. Each lane copies its column of up to `yb` rows. Measured on lavapipe (timestamp queries,
// 2-core Zen 5 EPYC, 2026-12-06), a (128, 64, 14, 14) → NHWC permute took 28.7 ms with the general kernel
// (a scalar `divl` per lane and dim), 15.9 ms on this grid with one row per workgroup, 2.7 ms with ≈ 4096
// elements per workgroup; a 400×784 transpose 4.8 → 0.6 ms. Uniform words: see gridDims and gridStrides
// (rowgrid.ts); st[0..1] the input's strides, st[2..3] the output's.
const copyGridSource = (gx: number) => `
struct U { inOff: u32, outOff: u32, nx: u32, ny: u32, yb: u32, p0: u32, p1: u32, p2: u32, zs: array<vec4<u32>, 2>, st: array<vec4<u32>, 4> }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
${rowGridMain(
  gx,
  'u.nx',
  'u.ny',
  'u.yb',
  `var src = u.inOff + gid.x * u.st[0][0] + y0 * u.st[0][1];
  var dst = u.outOff + gid.x * u.st[2][0] + y0 * u.st[2][1];
  ${splitOuter('u.zs', [
    { name: 'src', st: 'u.st', at: 0 },
    { name: 'dst', st: 'u.st', at: 2 },
  ])}`,
)}
    y[dst] = x[src];
    src = src + u.st[0][1];
    dst = dst + u.st[2][1];${ROW_GRID_END}`;

/** y[outOff + Σ c·ost] = x[inOff + Σ c·ist] for every index c of `shape` (element units). */
function copyStrided(
  op: string,
  x: Tensor,
  y: Tensor,
  shape: Shape,
  ist: number[],
  inOff: number,
  ost: number[],
  outOff: number,
): void {
  const n = shapeSize(shape);
  if (n === 0) return;
  const c = collapse(shape, [ist, ost]);
  if (c.shape.length > MAX_RANK) throw new Error(`${op}: rank ${c.shape.length} exceeds ${MAX_RANK}`);
  const r = c.shape.length;
  const [is, os] = [c.strides[0]!, c.strides[1]!];
  // A copy that collapses to one dim (a slice or concat of whole rows; rank 0 for one element) has no rows to
  // share a workgroup's cost: the general kernel takes 256 elements per workgroup and divides once per lane.
  const d = gridDims(c.shape);
  const g = r > 1 ? rowGrid(d.X, d.Y, d.Z) : null;
  if (g) {
    dispatch(
      kernelFor(`copy_grid|${g.gx}`, () => copyGridSource(g.gx)),
      [inOff, outOff, d.X, d.Y, g.yb, 0, 0, 0, ...d.sizes, ...gridStrides(is), ...gridStrides(os)],
      [x.buffer(op), y.buffer(op)],
      g.groups,
      `copy:${op}`,
    );
    return;
  }
  dispatch(
    kernel('copy_strided', COPY_SRC),
    [n, r, inOff, outOff, ...padWords(c.shape), ...padWords(is), ...padWords(os)],
    [x.buffer(op), y.buffer(op)],
    grid(Math.ceil(n / WG)),
    `copy:${op}`,
  );
}

// ---------------------------------------------------------------------------------------------------------
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1);
  const infer = shape.length - known.length;
  if (infer > 1 || known.some((d) => !Number.isInteger(d) || d < 0))
    throw new Error(`reshape: invalid target shape ${fmtShape(shape)}`);
  const prod = shapeSize(known);
  const target = infer ? shape.map((d) => (d === -1 ? (prod === 0 ? 0 : x.size / prod) : d)) : [...shape];
  if (shapeSize(target) !== x.size || target.some((d) => !Number.isInteger(d)))
    throw new Error(
      `reshape: cannot reshape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)}`,
    );
  const y = new Tensor(target, x.dtype, x.storage('reshape').retain());
  return record('reshape', y, [x], (g) => [reshape(g, x.shape)]);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.shape.length === 0) return reshape(x, [1]);
  const s = normAxis('flatten', startDim, x.shape.length);
  const e = normAxis('flatten', endDim, x.shape.length);
  if (s > e) throw new Error(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  return reshape(x, [...x.shape.slice(0, s), shapeSize(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normAxis('unsqueeze', dim, x.shape.length + 1);
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const d = normAxis('squeeze', dim, x.shape.length);
  return x.shape[d] === 1
    ? reshape(x, [...x.shape.slice(0, d), ...x.shape.slice(d + 1)])
    : reshape(x, x.shape);
}

export function permute(x: Tensor, perm: readonly number[], op = 'permute'): Tensor {
  const r = x.shape.length;
  const p = perm.map((a) => normAxis(op, a, r));
  if (p.length !== r || new Set(p).size !== r)
    throw new Error(
      `${op}: [${perm.join(',')}] is not a permutation of the ${r} dims of ${fmtShape(x.shape)}`,
    );
  const st = contiguousStrides(x.shape);
  const shape = p.map((a) => x.shape[a]!);
  const y = new Tensor(shape, x.dtype);
  copyStrided(
    op,
    x,
    y,
    shape,
    p.map((a) => st[a]!),
    0,
    contiguousStrides(shape),
    0,
  );
  const inv = new Array<number>(r);
  p.forEach((a, i) => {
    inv[a] = i;
  });
  return record(op, y, [x], (g) => [permute(g, inv)]);
}

export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const r = x.shape.length;
  if (r < 2 && dim0 === -2 && dim1 === -1) return reshape(x, x.shape);
  const a = normAxis('transpose', dim0, r);
  const b = normAxis('transpose', dim1, r);
  const p = Array.from({ length: r }, (_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, p, 'transpose');
}

/** Broadcasts to `shape` (PyTorch rules: new dims on the left, size-1 dims stretch, -1 keeps a dim). */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.shape.length;
  const target = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead]! : d));
  if (
    lead < 0 ||
    target.some((d, i) => i >= lead && x.shape[i - lead] !== 1 && x.shape[i - lead] !== d) ||
    target.some((d) => d < 0)
  )
    throw new Error(`expand: cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  let y: Tensor;
  if (x.size === 1) y = mapElementwise('expand', 'v0', [x], { shape: target, outType: x.dtype });
  else {
    y = new Tensor(target, x.dtype);
    copyStrided('expand', x, y, target, broadcastStrides(x.shape, target), 0, contiguousStrides(target), 0);
  }
  // The tape sums the gradient back over the broadcast dims.
  return record('expand', y, [x], (g) => [g]);
}

type Range = [number, number] | [number, number, number] | null;

/** Normalises per-dim ranges (negative indices from the end, clamped like Python slices, step ≥ 1). */
function normRanges(
  x: Tensor,
  ranges: readonly Range[],
): { start: number[]; step: number[]; shape: number[] } {
  if (ranges.length > x.shape.length)
    throw new Error(
      `slice: ${ranges.length} ranges for a tensor of rank ${x.shape.length} ${fmtShape(x.shape)}`,
    );
  const start: number[] = [];
  const step: number[] = [];
  const shape: number[] = [];
  x.shape.forEach((d, i) => {
    const r = ranges[i] ?? null;
    const [s0, e0, st = 1] = r ?? [0, d, 1];
    if (!Number.isInteger(st) || st < 1)
      throw new Error(`slice: step must be a positive integer, got ${st} (dim ${i})`);
    const norm = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const s = norm(s0);
    const e = Math.max(norm(e0), s);
    start.push(s);
    step.push(st);
    shape.push(Math.ceil((e - s) / st));
  });
  return { start, step, shape };
}

export function slice(x: Tensor, ranges: readonly Range[]): Tensor {
  const { start, step, shape } = normRanges(x, ranges);
  const st = contiguousStrides(x.shape);
  const off = start.reduce((acc, s, i) => acc + s * st[i]!, 0);
  const ist = st.map((s, i) => s * step[i]!);
  const y = new Tensor(shape, x.dtype);
  copyStrided('slice', x, y, shape, ist, off, contiguousStrides(shape), 0);
  return record('slice', y, [x], (g) => {
    const gx = full(x.shape, 0);
    copyStrided('slice_backward', g, gx, shape, contiguousStrides(shape), 0, ist, off);
    return [gx];
  });
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normAxis('narrow', dim, x.shape.length);
  const s = start < 0 ? start + x.shape[d]! : start;
  if (s < 0 || length < 0 || s + length > x.shape[d]!)
    throw new Error(
      `narrow: start ${start} + length ${length} is out of range for dim ${dim} of size ${x.shape[d]}`,
    );
  return slice(
    x,
    x.shape.map((n, i) => (i === d ? [s, s + length] : [0, n])),
  );
}

/**
 * Pads like torch.nn.functional.pad: `pads` lists (before, after) pairs starting from the LAST dim
 * ([left, right, top, bottom, …]); negative values crop.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  const r = x.shape.length;
  if (pads.length % 2 || pads.length / 2 > r || pads.some((p) => !Number.isInteger(p)))
    throw new Error(
      `pad: pads [${pads.join(',')}] must be integer (before, after) pairs for at most ${r} dims`,
    );
  const before = new Array<number>(r).fill(0);
  const after = new Array<number>(r).fill(0);
  for (let k = 0; k < pads.length / 2; k++) {
    before[r - 1 - k] = pads[2 * k]!;
    after[r - 1 - k] = pads[2 * k + 1]!;
  }
  const shape = x.shape.map((d, i) => d + before[i]! + after[i]!);
  if (shape.some((d) => d < 0))
    throw new Error(`pad: pads [${pads.join(',')}] crop ${fmtShape(x.shape)} below zero size`);
  const y = full(shape, value, x.dtype);
  const region = x.shape.map((d, i) => Math.max(0, d - Math.max(0, -before[i]!) - Math.max(0, -after[i]!)));
  const ist = contiguousStrides(x.shape);
  const ost = contiguousStrides(shape);
  const inOff = before.reduce((acc, b, i) => acc + Math.max(0, -b) * ist[i]!, 0);
  const outOff = before.reduce((acc, b, i) => acc + Math.max(0, b) * ost[i]!, 0);
  copyStrided('pad', x, y, region, ist, inOff, ost, outOff);
  return record('pad', y, [x], (g) => [
    pad(
      g,
      before.flatMap((_, k) => [-before[r - 1 - k]!, -after[r - 1 - k]!]),
    ),
  ]);
}

export function concat(xs: readonly Tensor[], dim = 0): Tensor {
  if (!xs.length) throw new Error('concat: needs at least one tensor');
  const first = xs[0]!;
  if (!first.shape.length) throw new Error('concat: zero-dim tensors cannot be concatenated (use stack)');
  const d = normAxis('concat', dim, first.shape.length);
  for (const t of xs)
    if (
      t.dtype !== first.dtype ||
      t.shape.length !== first.shape.length ||
      t.shape.some((n, i) => i !== d && n !== first.shape[i])
    )
      throw new Error(
        `concat: shapes ${xs.map((t) => `${t.dtype}${fmtShape(t.shape)}`).join(', ')} differ outside dim ${dim}`,
      );
  const shape = first.shape.map((n, i) => (i === d ? xs.reduce((acc, t) => acc + t.shape[d]!, 0) : n));
  const y = new Tensor(shape, first.dtype);
  const ost = contiguousStrides(shape);
  let offset = 0;
  for (const t of xs) {
    copyStrided('concat', t, y, t.shape, contiguousStrides(t.shape), 0, ost, offset * ost[d]!);
    offset += t.shape[d]!;
  }
  return record('concat', y, xs, (g) => {
    let o = 0;
    return xs.map((t) => {
      // Only the parts whose input needs a gradient are copied out (e.g. not a one-hot label beside x).
      const part = t.requiresGrad ? narrow(g, d, o, t.shape[d]!) : null;
      o += t.shape[d]!;
      return part;
    });
  });
}
export const cat = concat;

export function stack(xs: readonly Tensor[], dim = 0): Tensor {
  if (!xs.length) throw new Error('stack: needs at least one tensor');
  const d = normAxis('stack', dim, xs[0]!.shape.length + 1);
  const parts = xs.map((t) => unsqueeze(t, d));
  const y = concat(parts, d);
  return y;
}

// ---------------------------------------------------------------------------------------------------------
// Gather along one dim, x viewed as (A, N, B), output (A, J, B); index read through strides (ia, ij, ib),
// so indexSelect (index depends on j only) and torch.gather (index has the output's shape) share it.
// Both kernels come in two forms: on a row grid (see rowGrid: b on the lanes, rows j (or n) per lane, a on z;
// gx lanes per workgroup) or, past the grid's limits (gx = 0), one element per invocation, its flat index
// divided into (a, j, b). Measured (timestamp queries, Zen 5 EPYC, 2026-12-06): 512 rows of a 784×512 table
// 2.1–2.3 ms flat, 0.86–0.91 ms on the grid (two alternating pairs of processes).
const gatherMain = (gx: number, rows: 'J' | 'N') =>
  gx
    ? `${rowGridMain(gx, 'u.B', `u.${rows}`, 'u.yb', 'let a = wid.z;')}
    let b = gid.x;
    let r = row;
    let i = (a * u.${rows} + r) * u.B + b;`
    : `${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  if (i >= u.n) { return; }
  let b = i % u.B;
  let r = (i / u.B) % u.${rows};
  let a = i / (u.B * u.${rows});
  {`; // the flat form's body closes like the grid form's (ROW_GRID_END)
const GATHER_U = 'struct U { n: u32, N: u32, J: u32, B: u32, ia: u32, ij: u32, ib: u32, yb: u32 }';
const gatherSource = (gx: number) => `
${GATHER_U}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;
${gatherMain(gx, 'J')}
    let k = index[a * u.ia + r * u.ij + b * u.ib];
    // An out-of-range index gives NaN (float) rather than a silent wrong value.
    if (k < 0 || u32(k) >= u.N) { y[i] = 0x7fc00000u; } else { y[i] = x[(a * u.N + u32(k)) * u.B + b]; }${ROW_GRID_END}`;

// d/dx of a gather: one thread per x element sums the output grads whose index points at it (no atomics).
const gatherBackwardSource = (gx: number) => `
${GATHER_U}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;
${gatherMain(gx, 'N')}
    let nn = i32(r);
    var acc = 0.0;
    for (var j = 0u; j < u.J; j = j + 1u) {
      if (index[a * u.ia + j * u.ij + b * u.ib] == nn) { acc = acc + g[(a * u.J + j) * u.B + b]; }
    }
    gx[i] = acc;${ROW_GRID_END}`;

/** Dispatches a gather kernel over (A, rows, B) on a row grid, or flat past its limits. */
function gatherDispatch(
  name: string,
  make: (gx: number) => string,
  words: number[],
  A: number,
  rows: number,
  B: number,
  bufs: GPUBuffer[],
): void {
  if (A * rows * B === 0) return;
  const g = rowGrid(B, rows, A);
  const gx = g?.gx ?? 0;
  dispatch(
    kernelFor(`${name}|${gx}`, () => make(gx)),
    [...words, g?.yb ?? 0],
    bufs,
    g ? g.groups : grid(Math.ceil((A * rows * B) / WG)),
  );
}

function gatherImpl(
  op: string,
  x: Tensor,
  d: number,
  index: Tensor,
  outShape: number[],
  istr: [number, number, number],
): Tensor {
  if (index.dtype !== 'int32') throw new Error(`${op}: index must be an int32 tensor, got ${index.dtype}`);
  const N = x.shape[d]!;
  const B = shapeSize(x.shape.slice(d + 1));
  const J = outShape[d]!;
  const y = new Tensor(outShape, x.dtype);
  const A = shapeSize(x.shape.slice(0, d));
  gatherDispatch(op, gatherSource, [y.size, N, J, B, ...istr], A, J, B, [
    x.buffer(op),
    index.buffer(op),
    y.buffer(op),
  ]);
  return record(op, y, [x], (g) => {
    const gx = new Tensor(x.shape, 'float32');
    gatherDispatch(`${op}_backward`, gatherBackwardSource, [gx.size, N, J, B, ...istr], A, N, B, [
      g.buffer(op),
      index.buffer(op),
      gx.buffer(op),
    ]);
    return [gx];
  });
}

/** torch.index_select: picks entries `index` (1-D int32) along `dim`. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normAxis('indexSelect', dim, x.shape.length);
  if (index.shape.length !== 1)
    throw new Error(`indexSelect: index must be 1-D, got ${fmtShape(index.shape)}`);
  const shape = x.shape.map((n, i) => (i === d ? index.size : n));
  return gatherImpl('indexSelect', x, d, index, shape, [0, 1, 0]);
}

/** torch.gather: out[…, j, …] = x[…, index[…, j, …], …] along `dim` (index has x's shape except at `dim`). */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normAxis('gather', dim, x.shape.length);
  if (index.shape.length !== x.shape.length || index.shape.some((n, i) => i !== d && n !== x.shape[i]))
    throw new Error(
      `gather: index shape ${fmtShape(index.shape)} must match input ${fmtShape(x.shape)} except at dim ${dim}`,
    );
  const J = index.shape[d]!;
  const B = shapeSize(x.shape.slice(d + 1));
  return gatherImpl('gather', x, d, index, [...index.shape], [J * B, B, 1]);
}
