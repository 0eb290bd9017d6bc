// Elementwise ops: one kernel generator for 1–3 inputs with NumPy broadcasting, scalars folded into
// uniforms, and a rule table per primitive holding its WGSL expression and its backward rule together.
import {
  dispatch,
  FLAT_INDEX,
  f32,
  grid,
  type Kernel,
  keepNan,
  keepNan2,
  kernelFor,
  MAIN_1D,
  onDeviceChange,
  staticUniforms,
  type UWord,
  writeBuffer,
} from '../gpu.js';
import { type DType, fmtShape, record, type Scalar, type Shape, Tensor } from '../tensor.js';
import { gridDims, gridStrides, ROW_GRID_END, rowGrid, rowGridMain, splitOuter } from './rowgrid.js';
import { broadcastShapes, broadcastStrides, collapse, MAX_RANK, sameShape } from './shape.js';

const WG = 256;
type Operand = Tensor | Scalar;
/**
 * How a kernel reads one operand: by the output index, through broadcast strides, its single element (a
 * size-1 tensor broadcast to the output), repeated over the output's leading dims (`tile`: e.g. a bias of the
 * last dim; index i mod its size, in the vector form only), or a uniform scalar. `grid`: through broadcast
 * strides in the grid form (see gridSource), which any broadcast takes where its grid fits.
 */
type Read = 'same' | 'bcast' | 'grid' | 'one' | 'tile' | 'scalar';

const wgslType = (d: DType) => (d === 'float32' ? 'f32' : 'i32');

/**
 * WGSL for `out[i] = expr(v0, v1, v2)`. Inputs are converted to f32 before `expr` (int32 labels compare and
 * mix with floats); `p0`, `p1` are op parameters passed as uniforms.
 */
function elementwiseSource(
  expr: string,
  reads: Read[],
  inTypes: DType[],
  outType: DType,
  prelude: string,
  gx: number,
): string {
  const nd = reads.includes('bcast');
  // A plain copy moves the words unconverted (an int32 through f32 loses bits above 2^24).
  const raw = expr === 'v0' && reads.length === 1 && reads[0] !== 'scalar' && inTypes[0] === outType;
  // Scalars take no binding; storage bindings are numbered densely after the uniform.
  let b = 1;
  const bind = reads
    .map((r, k) =>
      r === 'scalar'
        ? ''
        : `@group(0) @binding(${b++}) var<storage, read> x${k}: array<${wgslType(inTypes[k]!)}>;`,
    )
    .join('\n');
  const loads = reads
    .map((r, k) => {
      if (r === 'scalar') return `let v${k} = u.sc[${k}];`;
      const idx = r === 'same' ? 'i' : r === 'one' ? '0u' : `o${k}`;
      return raw ? `let v${k} = x${k}[${idx}];` : `let v${k} = f32(x${k}[${idx}]);`;
    })
    .join(' ');
  const offsets = nd
    ? `var rem = i; ${reads.map((r, k) => (r === 'bcast' ? `var o${k} = 0u;` : '')).join(' ')}
  for (var d = i32(u.rank) - 1; d >= 0; d = d - 1) {
    let du = u32(d);
    let s = u.shape[du / 4u][du % 4u];
    let c = rem % s;
    rem = rem / s;
    ${reads.map((r, k) => (r === 'bcast' ? `o${k} = o${k} + c * u.st[${k * 2}u + du / 4u][du % 4u];` : '')).join(' ')}
  }`
    : '';
  const result = raw || outType === 'float32' ? `(${expr})` : `i32(${expr})`;
  if (gx) return gridSource(reads, outType, prelude, bind, b, loads, result, gx);
  if (!nd) return vectorSource(reads, inTypes, outType, prelude, raw, result);
  return `
struct U { n: u32, rank: u32, p0: f32, p1: f32, sc: vec4<f32>, shape: array<vec4<u32>, 2>, st: array<vec4<u32>, 6> }
@group(0) @binding(0) var<uniform> u: U;
${bind}
${prelude}
@group(0) @binding(${b}) var<storage, read_write> y: array<${wgslType(outType)}>;
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  if (i >= u.n) { return; }
  ${offsets}
  ${loads}
  y[i] = ${result};
}`;
}

/** Elements per invocation of the vector form (4 vec4s). */
const PER = 16;

/**
 * The form without broadcasting: each invocation reads 4 vec4s of every operand and applies the scalar
 * expression per component. On lavapipe a storage access is done lane by lane with a per-lane overhead that
 * a vec4 shares across its 4 values, so this is 3.4× faster than one element per invocation (1 M-element
 * add: 0.86 vs 2.98 ns per element; one vec4 per invocation: 1.22). Every pooled buffer is a multiple of 16 bytes, so the last vec4 may
 * read and write past the tensor's end inside its own buffer.
 */
function vectorSource(
  reads: Read[],
  inTypes: DType[],
  outType: DType,
  prelude: string,
  raw: boolean,
  result: string,
): string {
  let b = 1;
  const vt = (d: DType) => `vec4<${wgslType(d)}>`;
  const bind = reads
    .map((r, k) =>
      r === 'scalar'
        ? ''
        : `@group(0) @binding(${b++}) var<storage, read> x${k}: array<${r === 'one' ? wgslType(inTypes[k]!) : vt(inTypes[k]!)}>;`,
    )
    .join('\n');
  const ones = reads.map((r, k) => (r === 'one' ? `let w${k} = x${k}[0u];` : '')).join(' ');
  // tile: the operand repeats every u.shape[0][k] vec4s of the output.
  const loads = reads
    .map((r, k) =>
      r === 'same' ? `let w${k} = x${k}[j];` : r === 'tile' ? `let w${k} = x${k}[j % u.shape[0][${k}]];` : '',
    )
    .join(' ');
  const comp = (c: number) =>
    reads
      .map((r, k) =>
        r === 'scalar'
          ? `let v${k} = u.sc[${k}];`
          : r === 'one'
            ? `let v${k} = f32(w${k});`
            : raw
              ? `let v${k} = w${k}[${c}];`
              : `let v${k} = f32(w${k}[${c}]);`,
      )
      .join(' ');
  const body = raw
    ? reads[0] === 'one'
      ? `y[j] = ${vt(outType)}(w0);`
      : 'y[j] = w0;'
    : `var r: ${vt(outType)};
      ${[0, 1, 2, 3].map((c) => `{ ${comp(c)} r[${c}] = ${result}; }`).join('\n      ')}
      y[j] = r;`;
  return `
struct U { n: u32, rank: u32, p0: f32, p1: f32, sc: vec4<f32>, shape: array<vec4<u32>, 2>, st: array<vec4<u32>, 6> }
@group(0) @binding(0) var<uniform> u: U;
${bind}
${prelude}
@group(0) @binding(${b}) var<storage, read_write> y: array<${vt(outType)}>;
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  let n4 = (u.n + 3u) / 4u;
  ${ones}
  for (var q = 0u; q < ${PER / 4}u; q = q + 1u) {
    let j = i * ${PER / 4}u + q;
    if (j < n4) {
      ${loads}
      ${body}
    }
  }
}`;
}

/**
 * The broadcasting form on a grid: the innermost collapsed dim on the lanes (`gx` per workgroup), each lane
 * walking up to u.g.z rows of the next dim, the outer dims (≤ MAX_RANK − 2) flattened on z and split into
 * indices once per workgroup, every uniform at a constant index. The general form above divides each
 * element's flat index by uniform sizes per lane and dim (a scalar `divl` per lane on lavapipe): a
 * (1024, 1024) + (1024, 1) add took 12.2 ms there against 1.4 ms without broadcasting (timestamp queries,
 * 2-core Zen 5 EPYC, 2026-12-06). Uniform words: u.g = (X, Y, rows per workgroup); u.zs the outer sizes and
 * operand k's strides in u.st[2k], u.st[2k + 1] as gridDims and gridStrides (rowgrid.ts) lay them out.
 */
function gridSource(
  reads: Read[],
  outType: DType,
  prelude: string,
  bind: string, // the input bindings and the loads of v0… (from elementwiseSource); `b`: the output's binding
  b: number,
  loads: string,
  result: string,
  gx: number,
): string {
  const gr = reads.flatMap((r, k) => (r === 'grid' ? [k] : []));
  // o{k}: operand k's offset of the lane's element in the current row (what `loads` reads), i the output's.
  const head = `${gr.map((k) => `var o${k} = gid.x * u.st[${2 * k}][0] + y0 * u.st[${2 * k}][1];`).join(' ')}
  var i = (wid.z * u.g.y + y0) * u.g.x + gid.x;
  ${splitOuter(
    'u.zs',
    gr.map((k) => ({ name: `o${k}`, st: 'u.st', at: 2 * k })),
  )}`;
  return `
struct U { n: u32, rank: u32, p0: f32, p1: f32, sc: vec4<f32>, g: vec4<u32>, zs: array<vec4<u32>, 2>, st: array<vec4<u32>, 6> }
@group(0) @binding(0) var<uniform> u: U;
${bind}
${prelude}
@group(0) @binding(${b}) var<storage, read_write> y: array<${wgslType(outType)}>;
${rowGridMain(gx, 'u.g.x', 'u.g.y', 'u.g.z', head)}
    ${loads}
    y[i] = ${result};
    i = i + u.g.x;
    ${gr.map((k) => `o${k} = o${k} + u.st[${2 * k}][1];`).join(' ')}${ROW_GRID_END}`;
}

const F0 = f32(0);

// Kernels by (prelude, expr, the rest): the long strings are map keys as they are (their hash is computed once
// and kept by the string), where one concatenated key had to be flattened and hashed on every dispatch.
// One table per uniform binding (see setUniformBinding: a kernel's layout has it built in).
const kernelTables = [0, 1].map(() => new Map<string, Map<string, Map<string, Kernel>>>());
onDeviceChange(() => {
  for (const t of kernelTables) t.clear();
});
function elementwiseKernel(
  name: string,
  expr: string,
  reads: Read[],
  inTypes: DType[],
  outType: DType,
  prelude: string,
  gx = 0,
): Kernel {
  const kernels = kernelTables[staticUniforms() ? 1 : 0]!;
  let byExpr = kernels.get(prelude);
  if (!byExpr) kernels.set(prelude, (byExpr = new Map()));
  let byRest = byExpr.get(expr);
  if (!byRest) byExpr.set(expr, (byRest = new Map()));
  const rest = `${name}|${reads.join(',')}|${inTypes.join(',')}|${outType}|${gx}`;
  let k = byRest.get(rest);
  if (!k) {
    k = kernelFor(`${name}|${expr}|${reads.join(',')}|${inTypes.join(',')}|${outType}|${gx}|${prelude}`, () =>
      elementwiseSource(expr, reads, inTypes, outType, prelude, gx),
    );
    if (k.id >= 0) byRest.set(rest, k); // a recording stand-in is not kept (see setRecorder)
  }
  return k;
}

/** Runs `expr` elementwise over broadcast operands and returns the (untracked) result. */
export function mapElementwise(
  name: string,
  expr: string,
  operands: readonly Operand[],
  opts: { params?: [number, number]; outType?: DType; prelude?: string; shape?: Shape } = {},
): Tensor {
  const tensors = operands.filter((o): o is Tensor => o instanceof Tensor);
  let outShape: number[] = opts.shape ? [...opts.shape] : [];
  for (const t of tensors) outShape = broadcastShapes(name, outShape, t.shape);
  const out = new Tensor(outShape, opts.outType ?? 'float32');
  if (out.size === 0) return out;
  let reads: Read[] = operands.map((o) =>
    typeof o === 'number' ? 'scalar' : sameShape(o.shape, outShape) ? 'same' : o.size === 1 ? 'one' : 'bcast',
  );
  // Broadcasts over leading dims only (the operand is the output's trailing dims) go through the vector form
  // when every such operand is a whole number of vec4s; any other broadcast keeps the general form for all.
  const tileable = (o: Operand) => {
    if (typeof o === 'number') return false;
    const dims = o.shape.slice(o.shape.findIndex((d) => d !== 1));
    return o.size % 4 === 0 && sameShape(dims, outShape.slice(outShape.length - dims.length));
  };
  const bcast = reads.includes('bcast');
  if (bcast && reads.every((r, k) => r !== 'bcast' || tileable(operands[k]!)))
    reads = reads.map((r) => (r === 'bcast' ? 'tile' : r));
  // Shape and strides matter to the general (broadcasting) form only; the vector form reads u.n and, for
  // tiled operands, their sizes.
  const { shape, strides } = bcast
    ? collapse(
        outShape,
        operands.map((o) =>
          typeof o === 'number' ? outShape.map(() => 0) : broadcastStrides(o.shape, outShape),
        ),
      )
    : { shape: [out.size], strides: [] as number[][] };
  if (shape.length > MAX_RANK) throw new Error(`${name}: rank ${shape.length} exceeds ${MAX_RANK}`);
  // The grid form (gridSource) wherever its grid fits the adapter's limits.
  const dims = gridDims(shape);
  const g = reads.includes('bcast') ? rowGrid(dims.X, dims.Y, dims.Z) : null;
  if (g) reads = reads.map((q) => (q === 'bcast' ? 'grid' : q));
  const inTypes = operands.map((o) => (typeof o === 'number' ? 'float32' : o.dtype));
  // Keyed by every template argument, so that the WGSL is generated once per variant, not per call.
  const prelude = opts.prelude ?? '';
  const k = elementwiseKernel(name, expr, reads, inTypes, out.dtype, prelude, g?.gx ?? 0);
  const p = opts.params;
  // struct U { n, rank, p0, p1, sc: vec4<f32>, shape: array<vec4<u32>, 2>, st: array<vec4<u32>, 6> }
  const uniforms = new Array<UWord>(8 + 4 * MAX_RANK);
  uniforms[0] = out.size;
  uniforms[1] = shape.length;
  uniforms[2] = p ? f32(p[0]) : F0;
  uniforms[3] = p ? f32(p[1]) : F0;
  for (let j = 0; j < 4; j++) {
    const o = operands[j];
    uniforms[4 + j] = typeof o === 'number' ? f32(o) : F0;
  }
  const tiled = reads.includes('tile');
  if (g) {
    // The grid form's struct U { n, rank, p0, p1, sc, g: (X, Y, rows per workgroup, 0), zs, st: 8 words per
    // operand } (see gridDims, gridStrides).
    const words = [dims.X, dims.Y, g.yb, 0, ...dims.sizes];
    for (let j = 0; j < 3; j++) words.push(...gridStrides(strides[j] ?? []));
    uniforms.splice(8, uniforms.length - 8, ...words);
  } else {
    for (let j = 0; j < MAX_RANK; j++)
      uniforms[8 + j] = tiled
        ? reads[j] === 'tile'
          ? (operands[j] as Tensor).size / 4
          : 0
        : (shape[j] ?? 0);
    for (let j = 0; j < 3; j++) {
      const st = strides[j];
      for (let d = 0; d < MAX_RANK; d++) uniforms[8 + MAX_RANK * (j + 1) + d] = st?.[d] ?? 0;
    }
  }
  const perThread = reads.includes('bcast') ? 1 : PER;
  const n = Math.ceil(out.size / perThread / WG);
  // Roofline cost (profiler): one FLOP per output element; every input read and the output written once.
  let bytes = out.size * 4;
  for (const t of tensors) bytes += t.size * 4;
  const bufs: GPUBuffer[] = [];
  for (const t of tensors) bufs.push(t.buffer(name));
  bufs.push(out.buffer(name));
  dispatch(k, uniforms, bufs, g ? g.groups : grid(n), undefined, {
    flops: out.size,
    bytes,
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Unary primitives: WGSL expression of `v0` (and params u.p0, u.p1), and the backward as one kernel: a WGSL
// expression of X (the input), Y (the output) and G (the upstream gradient); the backward runs untracked, so
// it needs no rule of its own.
type UnaryRule = {
  expr: string;
  grad: string | null;
};
export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'reciprocal'
  | 'abs'
  | 'sign'
  | 'square'
  | 'sin'
  | 'cos'
  | 'tanh'
  | 'sigmoid'
  | 'relu'
  | 'leakyRelu'
  | 'softplus'
  | 'log1p'
  | 'step'
  | 'clamp';

const SIGMOID = (v: string) => `select(exp(${v}) / (1.0 + exp(${v})), 1.0 / (1.0 + exp(-${v})), ${v} >= 0.0)`;

const UNARY: Record<UnaryOp, UnaryRule> = {
  neg: { expr: '-v0', grad: '-G' },
  exp: { expr: 'exp(v0)', grad: 'G * Y' },
  log: { expr: 'log(v0)', grad: 'G / X' },
  sqrt: { expr: 'sqrt(v0)', grad: 'G * 0.5 / Y' },
  rsqrt: { expr: 'inverseSqrt(v0)', grad: 'G * (Y * Y * Y * -0.5)' },
  reciprocal: { expr: '1.0 / v0', grad: 'G * -(Y * Y)' },
  abs: { expr: 'abs(v0)', grad: 'G * sign(X)' },
  sign: { expr: 'sign(v0)', grad: null },
  square: { expr: 'v0 * v0', grad: 'G * (X * 2.0)' },
  sin: { expr: 'sin(v0)', grad: 'G * cos(X)' },
  cos: { expr: 'cos(v0)', grad: 'G * -sin(X)' },
  // tanh(x) = 1 - 2/(exp(2x)+1) stays finite for large |x| (WGSL's tanh may overflow on some drivers); it
  // cancels near 0 (5% error at 1e-6, lavapipe's builtin too), so small |x| uses the Taylor series.
  tanh: {
    expr:
      'select(select(1.0 - 2.0 / (exp(2.0 * v0) + 1.0), sign(v0), abs(v0) > 15.0), ' +
      'v0 * (1.0 + v0 * v0 * (-0.33333333 + v0 * v0 * (0.13333333 + v0 * v0 * (-0.053968254 + v0 * v0 * 0.021869489)))), ' +
      'abs(v0) < 0.125)',
    grad: 'G * (1.0 - Y * Y)',
  },
  sigmoid: { expr: SIGMOID('v0'), grad: 'G * (Y * (1.0 - Y))' },
  // Like PyTorch's threshold_backward: G where x > 0, else 0.
  relu: { expr: keepNan('v0', 'max(v0, 0.0)'), grad: 'select(0.0, G, X > 0.0)' },
  leakyRelu: { expr: 'select(v0 * u.p0, v0, v0 > 0.0)', grad: 'G * select(u.p0, 1.0, X > 0.0)' },
  // log(1 + e) with e = exp(-|x|) rounds to 0 once e < 6e-8 (softplus(-20) = 2e-9, not 0): series for small e.
  softplus: {
    expr:
      'max(v0, 0.0) + select(log(1.0 + exp(-abs(v0))), ' +
      'exp(-abs(v0)) * (1.0 - exp(-abs(v0)) * (0.5 - exp(-abs(v0)) * 0.33333333)), abs(v0) > 5.0)',
    grad: `G * ${SIGMOID('X')}`,
  },
  // log(1 + x) loses the low bits of x in 1 + x: small |x| uses the series to x^4 (relative error < 3e-9).
  log1p: {
    expr: 'select(log(1.0 + v0), v0 * (1.0 - v0 * (0.5 - v0 * (0.33333333 - v0 * 0.25))), abs(v0) < 1e-2)',
    grad: 'G / (X + 1.0)',
  },
  step: { expr: 'select(0.0, 1.0, v0 > 0.0)', grad: null },
  // clamp's gradient passes where lo <= x <= hi (compared directly, not through step(x - lo)).
  clamp: {
    expr: keepNan('v0', 'clamp(v0, u.p0, u.p1)'),
    grad: 'G * select(0.0, 1.0, X >= u.p0 && X <= u.p1)',
  },
};

// Each backward expression with its placeholders replaced, once: operands are only those it reads, as v0, v1, …
// in the order X, Y, G.
type Placeholder = 'X' | 'Y' | 'G';
const GRADS = Object.fromEntries(
  Object.entries(UNARY).map(([op, rule]) => {
    const g = rule.grad;
    if (!g) return [op, null];
    const used = (['X', 'Y', 'G'] as const).filter((n) => new RegExp(`\\b${n}\\b`).test(g));
    return [op, { used, expr: g.replace(/\b[XYG]\b/g, (n) => `v${used.indexOf(n as Placeholder)}`) }];
  }),
) as Record<UnaryOp, { used: Placeholder[]; expr: string } | null>;

function unary(op: UnaryOp, x: Tensor, p0 = 0, p1 = 0): Tensor {
  const y = mapElementwise(op, UNARY[op].expr, [x], { params: [p0, p1] });
  const grad = GRADS[op];
  if (!grad) return y;
  return record(op, y, [x], (g) => {
    const operands = { X: x, Y: y, G: g };
    return [
      mapElementwise(
        `${op}_grad`,
        grad.expr,
        grad.used.map((n) => operands[n]),
        { params: [p0, p1] },
      ),
    ];
  });
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const reciprocal = (x: Tensor) => unary('reciprocal', x);
export const abs = (x: Tensor) => unary('abs', x);
export const sign = (x: Tensor) => unary('sign', x);
export const square = (x: Tensor) => unary('square', x);
export const sin = (x: Tensor) => unary('sin', x);
export const cos = (x: Tensor) => unary('cos', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const relu = (x: Tensor) => unary('relu', x);
export const leakyRelu = (x: Tensor, negativeSlope = 0.01) => unary('leakyRelu', x, negativeSlope);
export const softplus = (x: Tensor) => unary('softplus', x);
export const log1p = (x: Tensor) => unary('log1p', x);
/** g where y > 0, else 0: the gradient through a ReLU fused into the op that produced y (untracked). */
export const reluGradFromOutput = (y: Tensor, g: Tensor): Tensor =>
  mapElementwise('relu_grad', 'select(0.0, v1, v0 > 0.0)', [y, g]);

/** 1 where x > 0, else 0 (no gradient). */
export const step = (x: Tensor) => unary('step', x);
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  if (min === undefined && max === undefined) throw new Error('clamp: give min, max or both');
  const lo = min ?? -3.4e38;
  const hi = max ?? 3.4e38;
  if (lo > hi) throw new Error(`clamp: min ${lo} > max ${hi}`);
  return unary('clamp', x, lo, hi);
}

// ---------------------------------------------------------------------------------------------------------
// Binary primitives with broadcasting; scalars go into uniforms. Backward returns grads at the output
// shape; the tape sums them back to each input's shape. `need` says which operands are tensors that require
// grad: a rule makes only those gradients (a constant or a mask costs no kernel in backward).
type Need = readonly [boolean, boolean];
type BinaryRule = {
  expr: string;
  grad: ((a: Operand, b: Operand, y: Tensor, g: Tensor, need: Need) => [Tensor | null, Tensor | null]) | null;
};
export type BinaryOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'pow'
  | 'maximum'
  | 'minimum'
  | 'eq'
  | 'ne'
  | 'lt'
  | 'le'
  | 'gt'
  | 'ge';

const BINARY: Record<BinaryOp, BinaryRule> = {
  add: { expr: 'v0 + v1', grad: (_a, _b, _y, g, [na, nb]) => [na ? g : null, nb ? g : null] },
  sub: { expr: 'v0 - v1', grad: (_a, _b, _y, g, [na, nb]) => [na ? g : null, nb ? neg(g) : null] },
  mul: {
    expr: 'v0 * v1',
    grad: (a, b, _y, g, [na, nb]) => [na ? mul(g, b) : null, nb ? mul(g, a) : null],
  },
  div: {
    expr: 'v0 / v1',
    grad: (_a, b, y, g, [na, nb]) => [na ? div(g, b) : null, nb ? neg(div(mul(g, y), b)) : null],
  },
  // pow: x^p for x<0 is defined for integer p (as in PyTorch); 0^0 = 1.
  pow: {
    expr: 'powf(v0, v1)',
    grad: (a, b, y, g, [na, nb]) => [
      na ? mul(g, mul(b, pow(a, typeof b === 'number' ? b - 1 : sub(b, 1)))) : null,
      nb ? mul(g, mul(y, logOrZero(a))) : null,
    ],
  },
  maximum: {
    expr: keepNan2('v0', 'v1', 'max(v0, v1)'),
    grad: (a, b, _y, g, need) => tieSplit(a, b, g, need),
  },
  minimum: {
    expr: keepNan2('v0', 'v1', 'min(v0, v1)'),
    grad: (a, b, _y, g, need) => tieSplit(b, a, g, need),
  },
  eq: { expr: 'select(0.0, 1.0, v0 == v1)', grad: null },
  ne: { expr: 'select(0.0, 1.0, v0 != v1)', grad: null },
  lt: { expr: 'select(0.0, 1.0, v0 < v1)', grad: null },
  le: { expr: 'select(0.0, 1.0, v0 <= v1)', grad: null },
  gt: { expr: 'select(0.0, 1.0, v0 > v1)', grad: null },
  ge: { expr: 'select(0.0, 1.0, v0 >= v1)', grad: null },
};

const POW_FN = `fn powf(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  // 0^p: 0 for p > 0, +inf for p < 0 (drivers' pow(0, p) is undefined; lavapipe gives 0). Inf from bits, as
  // a constant inf is a WGSL compile error.
  if (x == 0.0) { return select(0.0, bitcast<f32>(0x7f800000u | (bitcast<u32>(x) & 0u)), p < 0.0); }
  if (x > 0.0) { return pow(x, p); }
  let m = pow(-x, p);
  if (p == round(p)) { return select(m, -m, (i32(p) & 1) == 1); }
  // NaN, also from bits of a runtime value ('value nan cannot be represented as f32' for a constant).
  return bitcast<f32>(0x7fc00000u | (bitcast<u32>(x) & 0u));
}`;

/**
 * Gradients of max(hi, lo) as [a's, b's] (a = hi for maximum, a = lo for minimum; `need` in that order): all
 * to `hi` where hi > lo, half each on ties (PyTorch's rule).
 */
function tieSplit(hi: Operand, lo: Operand, g: Tensor, [na, nb]: Need): [Tensor | null, Tensor | null] {
  if (!na && !nb) return [null, null];
  const w = add(gt(hi, lo), mul(eq(hi, lo), 0.5));
  return [na ? mul(g, w) : null, nb ? mul(g, sub(1, w)) : null];
}

function logOrZero(a: Operand): Tensor | number {
  if (typeof a === 'number') return a > 0 ? Math.log(a) : 0;
  return mapElementwise('logOrZero', 'select(0.0, log(v0), v0 > 0.0)', [a]);
}

/** Whether an operand is a tensor whose gradient backward must make. */
const needsGrad = (o: Operand) => o instanceof Tensor && o.requiresGrad;

function binary(op: BinaryOp, a: Operand, b: Operand): Tensor {
  if (!(a instanceof Tensor) && !(b instanceof Tensor))
    throw new Error(`${op}: at least one operand must be a tensor`);
  for (const o of [a, b])
    if (typeof o !== 'number' && !(o instanceof Tensor))
      throw new Error(`${op}: operand must be a Tensor or a number, got ${String(o)}`);
  const rule = BINARY[op];
  const y =
    op === 'pow'
      ? mapElementwise('pow', rule.expr, [a, b], { prelude: POW_FN })
      : mapElementwise(op, rule.expr, [a, b]);
  const grad = rule.grad;
  if (!grad) return y;
  const inputs = [a, b].filter((o): o is Tensor => o instanceof Tensor);
  return record(op, y, inputs, (g) => {
    const [ga, gb] = grad(a, b, y, g, [needsGrad(a), needsGrad(b)]);
    return [...(a instanceof Tensor ? [ga] : []), ...(b instanceof Tensor ? [gb] : [])];
  });
}

export const add = (a: Operand, b: Operand) => binary('add', a, b);
export const sub = (a: Operand, b: Operand) => binary('sub', a, b);
export const mul = (a: Operand, b: Operand) => binary('mul', a, b);
export const div = (a: Operand, b: Operand) => binary('div', a, b);
export const pow = (a: Operand, b: Operand) => binary('pow', a, b);
export const maximum = (a: Operand, b: Operand) => binary('maximum', a, b);
export const minimum = (a: Operand, b: Operand) => binary('minimum', a, b);
export const eq = (a: Operand, b: Operand) => binary('eq', a, b);
export const ne = (a: Operand, b: Operand) => binary('ne', a, b);
export const lt = (a: Operand, b: Operand) => binary('lt', a, b);
export const le = (a: Operand, b: Operand) => binary('le', a, b);
export const gt = (a: Operand, b: Operand) => binary('gt', a, b);
export const ge = (a: Operand, b: Operand) => binary('ge', a, b);

/** cond ? a : b elementwise, broadcasting all three (cond is nonzero = true). */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const y = mapElementwise('where', 'select(v2, v1, v0 != 0.0)', [cond, a, b]);
  const inputs = [a, b].filter((o): o is Tensor => o instanceof Tensor);
  return record('where', y, inputs, (g) => [
    ...(a instanceof Tensor ? [a.requiresGrad ? where(cond, g, 0) : null] : []),
    ...(b instanceof Tensor ? [b.requiresGrad ? where(cond, 0, g) : null] : []),
  ]);
}

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return clone(x);
  // float -> int truncates toward zero like PyTorch's .int(); no gradient.
  return mapElementwise('cast', 'v0', [x], { outType: dtype });
}

export function clone(x: Tensor): Tensor {
  const y = mapElementwise('copy', 'v0', [x], { outType: x.dtype });
  return record('clone', y, [x], (g) => [g]);
}

/** A tensor of `shape` filled with `value`. */
export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  if (typeof value !== 'number') throw new Error(`full: value must be a number, got ${String(value)}`);
  if (dtype === 'int32' && Math.abs(value) > 2 ** 24) {
    // The kernel's scalar is a float32, which rounds larger integers: write those from the host.
    const y = new Tensor(shape, dtype);
    if (y.size) writeBuffer(y.buffer('fill'), new Int32Array(y.size).fill(value));
    return y;
  }
  return mapElementwise('fill', 'v0', [value], { outType: dtype, shape });
}

export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (!sameShape(a.shape, b.shape))
    throw new Error(`${op}: shapes differ: ${fmtShape(a.shape)} vs ${fmtShape(b.shape)}`);
}
