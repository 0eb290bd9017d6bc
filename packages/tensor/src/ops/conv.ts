// conv2d and convTranspose2d (NCHW, PyTorch semantics) on the shared GEMM body by implicit im2col.
// Three kernels cover both ops and all gradients:
//   convForward    y  = conv2d(x, w)            M = B·OH·OW, N = Cout/g, K = Cin/g·kH·kW
//   convInputGrad  gx = conv2d's dL/dx(gy, w)    M = B·H·W,   N = Cin/g,  K = Cout/g·kH·kW   (= convTranspose2d)
//   convWeightGrad gw = conv2d's dL/dw(gy, x)    M = Cout/g,  N = Cin/g·kH·kW, K = B·OH·OW (split along K)
// conv2d:          forward convForward; dx convInputGrad; dw convWeightGrad(gy, x)
// convTranspose2d: forward convInputGrad; dx convForward(gy); dw convWeightGrad(x, gy)  (roles swapped)
import { dispatch, kernelFor } from '../gpu.js';
import { fmtShape, record, Tensor } from '../tensor.js';
import { configKey, type GemmConfig, gemmGroups, gemmSource, pickConfig, tileM, tileN } from './gemm.js';
import { reshape } from './movement.js';
import { sum } from './reduce.js';

export type Pair = number | readonly [number, number];
export const pair = (op: string, name: string, v: Pair, min: number): [number, number] => {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (p.some((x) => !Number.isInteger(x) || x < min))
    throw new Error(`${op}: ${name} must be integer(s) ≥ ${min}, got ${JSON.stringify(v)}`);
  return p;
};

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}
export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: Pair;
}

/**
 * Geometry of a conv2d from `x` (B, Cin, H, W) to `y` (B, Cout, OH, OW) with weight (Cout, Cin/g, kH, kW).
 * convTranspose2d uses the same geometry with x and y swapped.
 */
interface Geom {
  B: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  OH: number;
  OW: number;
  kH: number;
  kW: number;
  s: [number, number];
  p: [number, number];
  d: [number, number];
  g: number;
}

const words = (q: Geom) => [
  q.B,
  q.Cin,
  q.H,
  q.W,
  q.Cout,
  q.OH,
  q.OW,
  q.kH,
  q.kW,
  ...q.s,
  ...q.p,
  ...q.d,
  q.g,
  q.Cin / q.g,
  q.Cout / q.g,
  q.kH * q.kW,
];
const FIELDS =
  'B: u32, Cin: u32, H: u32, W: u32, Cout: u32, OH: u32, OW: u32, kH: u32, kW: u32, sh: u32, sw: u32, ph: u32, pw: u32, dh: u32, dw: u32, G: u32, Cig: u32, Cog: u32, taps: u32, S: u32, chunk: u32';

// Pointers into an image for one (row, kernel tap): the element offset of channel 0 (then c·stride) and
// whether the tap falls inside the image (false: the padding, read as 0).
const PTR = `struct Ptr { off: u32, ok: bool }`;
// A pointer to one image row (off; ok = false: the row is in the padding) and the column of c = 0 (iw, u32
// wrap-around for negative columns: checked per read against W).
const XPTR = `struct XPtr { off: u32, iw: u32, ok: bool }`;

// Forward: A(m, k) = x[b, g·Cig + ci, oh·sh + kh·dh − ph, ow·sw + kw·dw − pw] for m = (b, oh, ow), k = (t, c) with
// t = (ci, kh) and c = kw; B(k, n) = w[g·Cog + n, ci, kh, kw] (contiguous in c). The row pointer (per t) holds
// the x row and the first column; the column bound is checked per read. (t = tap / c = channel would need no
// per-read check, but the first layer has Cin = 1: inner loops of length 1.)
const forwardSource = (bias: boolean, cfg: GemmConfig) =>
  gemmSource(
    {
      decls: `@group(0) @binding(1) var<storage, read> x: array<f32>;   // (B, Cin, H, W)
@group(0) @binding(2) var<storage, read> w: array<f32>;   // (Cout, Cin/g, kH, kW)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;  // (B, Cout, OH, OW)
${bias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;  // (Cout)' : ''}
${XPTR}
alias APtr = XPtr;
alias BPtr = u32;`,
      setup: 'fn setup(z: u32) -> vec4<u32> { return vec4<u32>(z, 0u, 0u, u.Cig * u.kH); }',
      aPtr: `fn aPtr(base: vec4<u32>, m: u32, t: u32) -> XPtr {
  let ow = m % u.OW; let oh = (m / u.OW) % u.OH; let b = m / (u.OW * u.OH);
  let ci = t / u.kH; let kh = t % u.kH;
  let ih = oh * u.sh + kh * u.dh - u.ph;  // u32 wrap-around: < 0 reads as ≥ H
  let ok = ih < u.H;
  return XPtr(select(0u, ((b * u.Cin + base.x * u.Cig + ci) * u.H + ih) * u.W, ok), ow * u.sw - u.pw, ok);
}`,
      aAt: `fn aAt(p: XPtr, c: u32) -> f32 {
  let iw = p.iw + c * u.dw;
  return select(0.0, x[p.off + iw], p.ok && iw < u.W);
}`,
      bPtr: 'fn bPtr(base: vec4<u32>, t: u32, n: u32) -> u32 { return ((base.x * u.Cog + n) * u.Cig * u.kH + t) * u.kW; }',
      bAt: 'fn bAt(p: u32, c: u32) -> f32 { return w[p + c]; }',
      write: `fn write(z: u32, base: vec4<u32>, m: u32, n: u32, v: f32) {
  let ow = m % u.OW; let oh = (m / u.OW) % u.OH; let b = m / (u.OW * u.OH);
  let co = z * u.Cog + n;
  y[((b * u.Cout + co) * u.OH + oh) * u.OW + ow] = v${bias ? ' + bias[co]' : ''};
}`,
    },
    FIELDS,
    cfg,
  );

// dL/dx of conv2d as a gather: gx[b, ci, ih, iw] = Σ_{co, kh, kw} gy[b, co, oh, ow] · w[co, ci, kh, kw] over the
// taps where ih = oh·sh − ph + kh·dh (and the same for w) has an integer solution inside the output.
// m = (b, ih, iw), n = ci, k = (t, c) with t = (kh, kw) and c = co.
const inputGradSource = (bias: boolean, cfg: GemmConfig) =>
  gemmSource(
    {
      decls: `@group(0) @binding(1) var<storage, read> gy: array<f32>;  // (B, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> w: array<f32>;   // (Cout, Cin/g, kH, kW)
@group(0) @binding(3) var<storage, read_write> gx: array<f32>; // (B, Cin, H, W)
${bias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;  // (Cin)' : ''}
${PTR}
alias APtr = Ptr;
alias BPtr = u32;`,
      setup: 'fn setup(z: u32) -> vec4<u32> { return vec4<u32>(z, 0u, 0u, u.taps); }',
      aPtr: `fn aPtr(base: vec4<u32>, m: u32, t: u32) -> Ptr {
  let iw = m % u.W; let ih = (m / u.W) % u.H; let b = m / (u.W * u.H);
  let th = ih + u.ph - (t / u.kW) * u.dh;  // u32 wrap-around: < 0 gives oh ≥ OH
  let tw = iw + u.pw - (t % u.kW) * u.dw;
  let oh = th / u.sh; let ow = tw / u.sw;
  let ok = oh * u.sh == th && ow * u.sw == tw && oh < u.OH && ow < u.OW;
  return Ptr(select(0u, ((b * u.Cout + base.x * u.Cog) * u.OH + oh) * u.OW + ow, ok), ok);
}`,
      aAt: 'fn aAt(p: Ptr, c: u32) -> f32 { return select(0.0, gy[p.off + c * u.OH * u.OW], p.ok); }',
      bPtr: 'fn bPtr(base: vec4<u32>, t: u32, n: u32) -> u32 { return (base.x * u.Cog * u.Cig + n) * u.taps + t; }',
      bAt: 'fn bAt(p: u32, c: u32) -> f32 { return w[p + c * u.Cig * u.taps]; }',
      write: `fn write(z: u32, base: vec4<u32>, m: u32, n: u32, v: f32) {
  let iw = m % u.W; let ih = (m / u.W) % u.H; let b = m / (u.W * u.H);
  let ci = z * u.Cig + n;
  gx[((b * u.Cin + ci) * u.H + ih) * u.W + iw] = v${bias ? ' + bias[ci]' : ''};
}`,
    },
    FIELDS,
    cfg,
  );

// dL/dw of conv2d: gw[co, ci, kh, kw] = Σ_{b, oh, ow} gy[b, co, oh, ow] · x[b, ci, ih, iw]. m = co, n = (ci, kh, kw),
// k = (t, c) with t = (b, oh) and c = ow. K = B·OH·OW is long and the output small, so the t range is split S
// ways (z = group·S + split) into partial sums reduced afterwards.
const weightGradSource = (cfg: GemmConfig) =>
  gemmSource(
    {
      decls: `@group(0) @binding(1) var<storage, read> gy: array<f32>;  // (B, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> x: array<f32>;   // (B, Cin, H, W)
@group(0) @binding(3) var<storage, read_write> gw: array<f32>; // (S, Cout, Cin/g·kH·kW)
${XPTR}
alias APtr = u32;
alias BPtr = XPtr;`,
      setup: `fn setup(z: u32) -> vec4<u32> {
  let g = z / u.S; let s = z % u.S;
  let t0 = min(s * u.chunk, u.B * u.OH);
  return vec4<u32>(g, s, t0, min(t0 + u.chunk, u.B * u.OH));
}`,
      aPtr: `fn aPtr(base: vec4<u32>, m: u32, t: u32) -> u32 {
  let b = t / u.OH; let oh = t % u.OH;
  return ((b * u.Cout + base.x * u.Cog + m) * u.OH + oh) * u.OW;
}`,
      aAt: 'fn aAt(p: u32, c: u32) -> f32 { return gy[p + c]; }',
      bPtr: `fn bPtr(base: vec4<u32>, t: u32, n: u32) -> XPtr {
  let b = t / u.OH; let oh = t % u.OH;
  let tap = n % u.taps; let ci = n / u.taps;
  let ih = oh * u.sh + (tap / u.kW) * u.dh - u.ph;  // u32 wrap-around: < 0 reads as ≥ H
  let iw0 = (tap % u.kW) * u.dw - u.pw;
  let ok = ih < u.H;
  return XPtr(select(0u, ((b * u.Cin + base.x * u.Cig + ci) * u.H + ih) * u.W, ok), iw0, ok);
}`,
      bAt: `fn bAt(p: XPtr, c: u32) -> f32 {
  let iw = p.iw + c * u.sw;
  return select(0.0, x[p.off + iw], p.ok && iw < u.W);
}`,
      write: `fn write(z: u32, base: vec4<u32>, m: u32, n: u32, v: f32) {
  gw[(base.y * u.Cout + base.x * u.Cog + m) * u.N + n] = v;
}`,
    },
    FIELDS,
    cfg,
  );

function run(
  name: string,
  src: (cfg: GemmConfig) => string,
  q: Geom,
  mnk: [number, number, number],
  zs: number,
  buffers: GPUBuffer[],
  extra: [number, number] = [1, 0],
): void {
  const [M, N, KI] = mnk;
  const cfg = pickConfig(N);
  const [gx, gy] = gemmGroups(cfg, M, N, 1);
  dispatch(
    kernelFor(`${name}|${configKey(cfg)}`, () => src(cfg)),
    [M, N, KI, ...words(q), ...extra],
    buffers,
    [gx, gy, zs],
  );
}

function convForward(x: Tensor, w: Tensor, b: Tensor | null, q: Geom, op: string): Tensor {
  const y = new Tensor([q.B, q.Cout, q.OH, q.OW], 'float32');
  if (y.size === 0) return y;
  const bufs = [x.buffer(op), w.buffer(op), y.buffer(op), ...(b ? [b.buffer(op)] : [])];
  run(
    b ? 'conv_forward_bias' : 'conv_forward',
    (cfg) => forwardSource(!!b, cfg),
    q,
    [q.B * q.OH * q.OW, q.Cout / q.g, q.kW],
    q.g,
    bufs,
  );
  return y;
}

function convInputGrad(gy: Tensor, w: Tensor, b: Tensor | null, q: Geom, op: string): Tensor {
  const gx = new Tensor([q.B, q.Cin, q.H, q.W], 'float32');
  if (gx.size === 0) return gx;
  const bufs = [gy.buffer(op), w.buffer(op), gx.buffer(op), ...(b ? [b.buffer(op)] : [])];
  run(
    b ? 'conv_input_grad_bias' : 'conv_input_grad',
    (cfg) => inputGradSource(!!b, cfg),
    q,
    [q.B * q.H * q.W, q.Cin / q.g, q.Cout / q.g],
    q.g,
    bufs,
  );
  return gx;
}

function convWeightGrad(gy: Tensor, x: Tensor, q: Geom, op: string): Tensor {
  const M = q.Cout / q.g;
  const N = (q.Cin / q.g) * q.kH * q.kW;
  const T = q.B * q.OH; // outer K (b, oh); inner K is ow
  const cfg = pickConfig(N);
  const tiles = Math.ceil(M / tileM(cfg)) * Math.ceil(N / tileN(cfg)) * q.g;
  // Enough workgroups to keep every core busy, but each split still sums ≥ 256 terms.
  const S = Math.max(1, Math.min(Math.ceil(64 / tiles), Math.floor((T * q.OW) / 256), 64));
  const chunk = Math.ceil(T / S);
  const partial = new Tensor([S, q.Cout, N], 'float32');
  run(
    'conv_weight_grad',
    weightGradSource,
    q,
    [M, N, q.OW],
    q.g * S,
    [gy.buffer(op), x.buffer(op), partial.buffer(op)],
    [S, chunk],
  );
  const wShape = [q.Cout, q.Cin / q.g, q.kH, q.kW];
  if (S === 1) {
    const r = reshape(partial, wShape);
    partial.dispose();
    return r;
  }
  const s = sum(partial, 0);
  partial.dispose();
  const r = reshape(s, wShape);
  s.dispose();
  return r;
}

function checkArgs(op: string, x: Tensor, w: Tensor, b: Tensor | null | undefined): void {
  for (const [name, t] of [
    ['input', x],
    ['weight', w],
    ['bias', b],
  ] as const)
    if (t && t.dtype !== 'float32') throw new Error(`${op}: ${name} must be float32, got ${t.dtype}`);
  if (x.shape.length !== 4)
    throw new Error(`${op}: input must be 4-D (B, C, H, W), got ${fmtShape(x.shape)}`);
  if (w.shape.length !== 4) throw new Error(`${op}: weight must be 4-D, got ${fmtShape(w.shape)}`);
}

function checkBias(op: string, b: Tensor | null | undefined, channels: number): void {
  if (b && (b.shape.length !== 1 || b.shape[0] !== channels))
    throw new Error(`${op}: bias must have shape [${channels}], got ${fmtShape(b.shape)}`);
}

function outSize(op: string, n: number, k: number, s: number, p: number, d: number, axis: string): number {
  const o = Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
  if (o < 1)
    throw new Error(
      `${op}: kernel ${axis}=${k} (dilation ${d}) is larger than the padded input ${axis}=${n}+2·${p}=${n + 2 * p}`,
    );
  return o;
}

/** 2-D convolution, PyTorch semantics: x (B, Cin, H, W), w (Cout, Cin/groups, kH, kW), b (Cout). */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  checkArgs(op, x, w, b);
  const s = pair(op, 'stride', opts.stride ?? 1, 1);
  const p = pair(op, 'padding', opts.padding ?? 0, 0);
  const d = pair(op, 'dilation', opts.dilation ?? 1, 1);
  const g = opts.groups ?? 1;
  const [B, Cin, H, W] = x.shape as [number, number, number, number];
  const [Cout, Cig, kH, kW] = w.shape as [number, number, number, number];
  if (!Number.isInteger(g) || g < 1) throw new Error(`${op}: groups must be a positive integer, got ${g}`);
  if (Cin !== Cig * g)
    throw new Error(
      `${op}: input has ${Cin} channels but weight ${fmtShape(w.shape)} with groups=${g} expects ${Cig * g}`,
    );
  if (Cout % g) throw new Error(`${op}: out channels ${Cout} are not divisible by groups=${g}`);
  checkBias(op, b, Cout);
  const q: Geom = {
    B,
    Cin,
    H,
    W,
    Cout,
    kH,
    kW,
    s,
    p,
    d,
    g,
    OH: outSize(op, H, kH, s[0], p[0], d[0], 'H'),
    OW: outSize(op, W, kW, s[1], p[1], d[1], 'W'),
  };
  const y = convForward(x, w, b ?? null, q, op);
  const inputs = b ? [x, w, b] : [x, w];
  return record(op, y, inputs, (gy) => [
    x.requiresGrad ? convInputGrad(gy, w, null, q, op) : null,
    w.requiresGrad ? convWeightGrad(gy, x, q, op) : null,
    b?.requiresGrad ? sum(gy, [0, 2, 3]) : null,
  ]);
}

/**
 * Transposed 2-D convolution, PyTorch semantics: x (B, Cin, H, W), w (Cin, Cout/groups, kH, kW), b (Cout);
 * output size (H−1)·stride − 2·padding + dilation·(kH−1) + outputPadding + 1.
 */
export function convTranspose2d(
  x: Tensor,
  w: Tensor,
  b?: Tensor | null,
  opts: ConvTranspose2dOptions = {},
): Tensor {
  const op = 'convTranspose2d';
  checkArgs(op, x, w, b);
  const s = pair(op, 'stride', opts.stride ?? 1, 1);
  const p = pair(op, 'padding', opts.padding ?? 0, 0);
  const d = pair(op, 'dilation', opts.dilation ?? 1, 1);
  const op2 = pair(op, 'outputPadding', opts.outputPadding ?? 0, 0);
  const g = opts.groups ?? 1;
  const [B, Cin, H, W] = x.shape as [number, number, number, number];
  const [Cw, Cog, kH, kW] = w.shape as [number, number, number, number];
  if (!Number.isInteger(g) || g < 1) throw new Error(`${op}: groups must be a positive integer, got ${g}`);
  if (Cin !== Cw)
    throw new Error(`${op}: input has ${Cin} channels but weight ${fmtShape(w.shape)} expects ${Cw}`);
  if (Cin % g) throw new Error(`${op}: in channels ${Cin} are not divisible by groups=${g}`);
  for (let i = 0; i < 2; i++)
    if (op2[i]! >= s[i]! && op2[i]! >= d[i]!)
      throw new Error(
        `${op}: outputPadding ${op2[i]} must be smaller than stride ${s[i]} or dilation ${d[i]}`,
      );
  const Cout = Cog * g;
  checkBias(op, b, Cout);
  const OH = (H - 1) * s[0] - 2 * p[0] + d[0] * (kH - 1) + op2[0] + 1;
  const OW = (W - 1) * s[1] - 2 * p[1] + d[1] * (kW - 1) + op2[1] + 1;
  if (OH < 1 || OW < 1)
    throw new Error(`${op}: output size ${OH}x${OW} is not positive for input ${fmtShape(x.shape)}`);
  // As a conv2d from the output (B, Cout, OH, OW) back to the input (B, Cin, H, W) with the same weight.
  const q: Geom = { B, Cin: Cout, H: OH, W: OW, Cout: Cin, OH: H, OW: W, kH, kW, s, p, d, g };
  const y = convInputGrad(x, w, b ?? null, q, op);
  const inputs = b ? [x, w, b] : [x, w];
  return record(op, y, inputs, (gy) => [
    x.requiresGrad ? convForward(gy, w, null, q, op) : null,
    w.requiresGrad ? convWeightGrad(x, gy, q, op) : null,
    b?.requiresGrad ? sum(gy, [0, 2, 3]) : null,
  ]);
}
