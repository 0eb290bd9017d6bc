// conv2d and convTranspose2d (NCHW, PyTorch semantics) as explicit im2col / col2im around the shared GEMM.
// With P = OH·OW output pixels, T = kH·kW taps and a group's channels Cig = Cin/g, Cog = Cout/g:
//   forward      y      = im2col(x) · wᵀ (+ b)          M = B·P, N = Cog,     K = Cig·T   (y written as NCHW)
//   input grad   gx     = col2im(gy · w)                M = B·P, N = Cig·T,   K = Cog     (gy read as NCHW)
//   weight grad  gw     = Σ_b gy[b] · im2col(x[b])      M = Cog, N = Cig·T,   K = P       (outer sum over b)
// conv2d:          forward; dx = input grad; dw = weight grad(gy, x)
// convTranspose2d: forward = input grad of the conv2d from its output back to its input (+ b in col2im);
//                  dx = forward(gy); dw = weight grad(x, gy)   (roles swapped)
// im2col row m = (b, oh, ow), column k = (ci, kh, kw), the weight's own layout, so wᵀ is read in place.
// Why explicit: on lavapipe every load costs the same, so the GEMM is fastest on plain strided operands
// (vec4 reads, index math out of the K loop); the im2col gather costs a few % of the GEMM. A transposed
// convolution's col2im gathers only the taps that exist (stride 2: 1 in 4), where a direct implicit GEMM
// over all taps would multiply zeros. Batches are processed in chunks so that no im2col buffer exceeds
// the column budget (setConvColumnBudget).
import { cpuAdapter, dispatch, FLAT_INDEX, grid, keepNan, kernelFor, limits } from '../gpu.js';
import { fmtShape, needsGrad, record, Tensor } from '../tensor.js';
import { reluGradFromOutput } from './elementwise.js';
import { gemm, gemmParallelism, splitSlices } from './gemm.js';
import type { FusedActivation } from './linalg.js';
import { reshape } from './movement.js';
import { sum } from './reduce.js';

export type Pair = number | readonly [number, number];
export const pair = (op: string, name: string, v: Pair, min: number): [number, number] => {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (p.some((x) => !Number.isInteger(x) || x < min))
    throw new Error(`${op}: ${name} must be integer(s) ≥ ${min}, got ${JSON.stringify(v)}`);
  return p;
};

export interface Conv2dOptions extends FusedActivation {
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

/** Output pixels P, kernel taps T and the channels of one group, in and out. */
const sizes = (q: Geom) => ({ P: q.OH * q.OW, T: q.kH * q.kW, Cig: q.Cin / q.g, Cog: q.Cout / q.g });
/** Whether the backward GEMMs read gy channels-last (as vec4s of a group's channels) rather than NCHW. */
const gyChannelsLast = (q: Geom) => (q.Cout / q.g) % 4 === 0 && q.OH * q.OW > 1;
/**
 * Whether the col2im path of the input gradient reads gy channels-last. The transpose costs a pass over gy
 * (B·P·Cout floats each way) whatever the GEMM's width N = Cig·T, while the NCHW view costs the GEMM ≈ 25%,
 * so a narrow GEMM reads gy in place: ConvTranspose2d(64,1,4,2,1) at batch 128 (N = 16), fwd 5.75 → 4.07 ms,
 * fwd+bwd 12.9 → 11.0 ms (median of 7 interleaved rounds, lavapipe, 2-core EPYC, 2026-12-05).
 */
const inputGradChannelsLast = (q: Geom) => gyChannelsLast(q) && (q.Cin / q.g) * q.kH * q.kW >= 64;

/** Floats per im2col buffer (default 2²⁴ = 64 MiB); larger batches are processed in chunks of images. */
let colBudget = 1 << 24;
/** Sets the largest im2col/col2im buffer (floats) conv2d/convTranspose2d allocate; returns the old value. */
export function setConvColumnBudget(floats: number): number {
  if (!Number.isInteger(floats) || floats < 1)
    throw new Error(`setConvColumnBudget: expected a positive integer, got ${floats}`);
  const old = colBudget;
  colBudget = floats;
  return old;
}

const WG = 64;
// Uniforms shared by both kernels: geometry in the conv2d direction, the chunk's first image and a bias flag.
const UNIFORM = `struct U { Cin: u32, H: u32, W: u32, OH: u32, OW: u32, sh: u32, sw: u32, ph: u32, pw: u32, dh: u32, dw: u32, b0: u32, nb: u32, Kt: u32 }
@group(0) @binding(0) var<uniform> u: U;`;
const words = (q: Geom, b0: number, nb: number) => [
  q.Cin,
  q.H,
  q.W,
  q.OH,
  q.OW,
  ...q.s,
  ...q.p,
  ...q.d,
  b0,
  nb,
  q.Cin * q.kH * q.kW,
];

// im2col: col[(b − b0)·P + oh·OW + ow, ci·T + kh·kW + kw] = x[b, ci, oh·sh + kh·dh − ph, ow·sw + kw·dw − pw]
// (0 in the padding). One invocation per (channel, output pixel) of an image, flattened so that no lane idles
// when P is not a multiple of the workgroup (P = 49: 15 of 64 lanes did), with P and OW compile-time so the
// index's divisions are multiply-shifts instead of lavapipe's 8 scalar divl. The kH×kW taps (unrolled) are
// loaded through clamped indices and zeroed by select (no branch per tap) and written as one contiguous run of
// the column row, as vec4s when T % 4 = 0 (lavapipe pays per store, whatever its width).
const im2colSource = (kH: number, kW: number, P: number, OW: number) => {
  const T = kH * kW;
  const v4 = T % 4 === 0;
  const taps = Array.from({ length: T }, (_, t) => {
    const kh = Math.floor(t / kW);
    const kw = t % kW;
    return `let ih${t} = oh * u.sh + ${kh}u * u.dh - u.ph; let iw${t} = ow * u.sw + ${kw}u * u.dw - u.pw;
  let v${t} = select(0.0, x[xb + min(ih${t}, u.H - 1u) * u.W + min(iw${t}, u.W - 1u)], ih${t} < u.H && iw${t} < u.W);`;
  });
  const stores = v4
    ? Array.from(
        { length: T / 4 },
        (_, q) =>
          `col4[(cb >> 2u) + ${q}u] = vec4<f32>(v${4 * q}, v${4 * q + 1}, v${4 * q + 2}, v${4 * q + 3});`,
      )
    : Array.from({ length: T }, (_, t) => `col[cb + ${t}u] = v${t};`);
  return `${UNIFORM}
@group(0) @binding(1) var<storage, read> x: array<f32>;    // (B, Cin, H, W)
@group(0) @binding(2) var<storage, read_write> ${v4 ? 'col4: array<vec4<f32>>' : 'col: array<f32>'}; // (nb·OH·OW, Cin·kH·kW)
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${FLAT_INDEX(WG)} // ci·P + pix
  if (i >= u.Cin * ${P}u) { return; }
  let ci = i / ${P}u;
  let pix = i - ci * ${P}u;
  let bl = wid.z;                       // image within the chunk
  let oh = pix / ${OW}u;
  let ow = pix - oh * ${OW}u;
  let xb = ((u.b0 + bl) * u.Cin + ci) * u.H * u.W;
  let cb = (bl * ${P}u + pix) * u.Kt + ci * ${T}u;
  // u32 wrap-around: a negative ih/iw reads as ≥ H/W (the padding)
  ${taps.join('\n  ')}
  ${stores.join('\n  ')}
}`;
};

// col2im (a gather, no atomics): x[b, ci, ih, iw] = Σ col[(b − b0)·P + oh·OW + ow, ci·T + kh·kW + kw] over the
// taps with oh·sh = ih + ph − kh (and the same along w) inside the output; + bias[ci]. Dilation 1, one
// dispatch per stride phase (ih mod sh, iw mod sw): within a phase every output pixel has the same taps,
// kh = kh0 + sh·t with oh = i + ch − t (ih = rh + sh·i), so the lanes of a SIMD row all load real taps
// instead of each testing every tap (stride 2: 4 loads per pixel instead of 16 tests).
const PHASE_UNIFORM = `struct U { Cin: u32, H: u32, W: u32, OH: u32, OW: u32, b0: u32, Kt: u32, T: u32, rh: u32, rw: u32, Hr: u32, Wr: u32, ch: u32, cw: u32 }
@group(0) @binding(0) var<uniform> u: U;`;
const col2imSource = (kW: number, sh: number, sw: number, ph: Phase, bias: boolean, relu: boolean) => {
  const T = [];
  for (let t = 0; t < ph.nth; t++)
    for (let s = 0; s < ph.ntw; s++)
      T.push(`{ let oh = i + u.ch - ${t}u; let ow = j + u.cw - ${s}u;
    if (oh < u.OH && ow < u.OW) { acc = acc + col[cb + (oh * u.OW + ow) * u.Kt + ${(ph.kh0 + sh * t) * kW + ph.kw0 + sw * s}u]; } }`);
  return `${PHASE_UNIFORM}
@group(0) @binding(1) var<storage, read> col: array<f32>;  // (nb·OH·OW, Cin·kH·kW)
@group(0) @binding(2) var<storage, read_write> x: array<f32>; // (B, Cin, H, W)
${bias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;  // (Cin)' : ''}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let pix = gid.x;
  if (pix >= u.Hr * u.Wr) { return; }
  let ci = wid.y;
  let bl = wid.z;
  let i = pix / u.Wr;
  let j = pix - i * u.Wr;
  let P = u.OH * u.OW;
  let cb = bl * P * u.Kt + ci * u.T;
  var acc = ${bias ? 'bias[ci]' : '0.0'};
  // u32 wrap-around: oh, ow < 0 read as ≥ OH, OW
  ${T.length ? T.join('\n  ') : 'if (u.Hr == 0xffffffffu) { acc = col[cb]; } // no taps: keep the binding (never runs)'}
  x[((u.b0 + bl) * u.Cin + ci) * u.H * u.W + (u.rh + ${sh}u * i) * u.W + u.rw + ${sw}u * j] = ${relu ? keepNan('acc', 'max(acc, 0.0)') : 'acc'};
}`;
};

/** One stride phase of col2im: its first taps (kh0, kw0) and tap counts; the kernel is specialised on it. */
interface Phase {
  kh0: number;
  kw0: number;
  nth: number;
  ntw: number;
}

// col2im for dilated kernels: every output pixel tests every tap.
const col2imDilatedSource = (
  kH: number,
  kW: number,
  sh: number,
  sw: number,
  bias: boolean,
  relu: boolean,
) => `${UNIFORM}
@group(0) @binding(1) var<storage, read> col: array<f32>;  // (nb·OH·OW, Cin·kH·kW)
@group(0) @binding(2) var<storage, read_write> x: array<f32>; // (B, Cin, H, W)
${bias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;  // (Cin)' : ''}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let HW = u.H * u.W;
  let pix = gid.x;
  if (pix >= HW) { return; }
  let ci = wid.y;
  let bl = wid.z;
  let ih = pix / u.W;
  let iw = pix - ih * u.W;
  let P = u.OH * u.OW;
  let cb = bl * P * u.Kt + ci * ${kH * kW}u;
  var acc = ${bias ? 'bias[ci]' : '0.0'};
  for (var kh = 0u; kh < ${kH}u; kh = kh + 1u) {
    let th = ih + u.ph - kh * u.dh;          // u32 wrap-around: < 0 gives oh ≥ OH
    let oh = th / ${sh}u;
    if (oh * ${sh}u != th || oh >= u.OH) { continue; }
    for (var kw = 0u; kw < ${kW}u; kw = kw + 1u) {
      let tw = iw + u.pw - kw * u.dw;
      let ow = tw / ${sw}u;
      if (ow * ${sw}u == tw && ow < u.OW) {
        acc = acc + col[cb + (oh * u.OW + ow) * u.Kt + kh * ${kW}u + kw];
      }
    }
  }
  x[((u.b0 + bl) * u.Cin + ci) * HW + pix] = ${relu ? keepNan('acc', 'max(acc, 0.0)') : 'acc'};
}`;

// NCHW → channels-last: y[(b − b0)·P + p, c] = x[b, c, p] for c < C (C % 4 = 0). One invocation per (4 channels,
// pixel) of an image, flattened with P compile-time (as im2col): 4 loads and one vec4 store. Makes gy a plain
// row-major (B·P, C) matrix, which the GEMM reads as vec4s along K (the NCHW view needs 4 scalar loads per
// step, ≈ 25% slower on lavapipe).
const channelsLastSource = (P: number) => `struct U { C: u32, b0: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // (B, C, P)
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>; // (nb·P, C)
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${FLAT_INDEX(WG)} // (c / 4)·P + p
  if (i >= (u.C >> 2u) * ${P}u) { return; }
  let c4 = i / ${P}u;
  let p = i - c4 * ${P}u;
  let c = c4 * 4u;
  let bl = wid.z;
  let xb = ((u.b0 + bl) * u.C + c) * ${P}u + p;
  y[((bl * ${P}u + p) * u.C + c) >> 2u] = vec4<f32>(x[xb], x[xb + ${P}u], x[xb + ${2 * P}u], x[xb + ${3 * P}u]);
}`;

function channelsLast(x: Tensor, C: number, P: number, b0: number, nb: number, op: string): Tensor {
  const y = new Tensor([nb * P, C], 'float32');
  dispatch(
    kernelFor(`channels_last|${P}`, () => channelsLastSource(P)),
    [C, b0],
    [x.buffer(op), y.buffer(op)],
    [...grid(Math.ceil(((C / 4) * P) / WG)), nb],
  );
  return y;
}

/** Images per chunk so that one (chunk·P, Cin·T) column buffer fits the budget and the binding limit. */
function chunkImages(op: string, q: Geom): number {
  const perImage = q.OH * q.OW * q.Cin * q.kH * q.kW;
  const cap = Math.min(colBudget, Math.floor(limits().maxStorageBufferBindingSize / 4));
  if (perImage > cap)
    throw new Error(
      `${op}: one image needs a ${q.OH * q.OW}x${q.Cin * q.kH * q.kW} column buffer (${perImage} floats), more than ${cap}`,
    );
  return Math.max(1, Math.min(q.B, Math.floor(cap / perImage), limits().maxComputeWorkgroupsPerDimension));
}

function im2col(x: GPUBuffer, q: Geom, b0: number, nb: number, op: string): Tensor {
  const col = new Tensor([nb * q.OH * q.OW, q.Cin * q.kH * q.kW], 'float32');
  const P = q.OH * q.OW;
  dispatch(
    kernelFor(`im2col|${q.kH}.${q.kW}.${P}.${q.OW}`, () => im2colSource(q.kH, q.kW, P, q.OW)),
    words(q, b0, nb),
    [x, col.buffer(op)],
    [...grid(Math.ceil((q.Cin * P) / WG)), nb],
    () => `im2col ${nb}x${q.Cin}x${q.H}x${q.W}→${q.OH}x${q.OW}`,
  );
  return col;
}

function col2im(
  col: Tensor,
  out: GPUBuffer,
  q: Geom,
  b0: number,
  nb: number,
  bias: Tensor | null,
  op: string,
  relu: boolean,
) {
  const [sh, sw] = q.s;
  const bufs = [col.buffer(op), out, ...(bias ? [bias.buffer(op)] : [])];
  const label = `col2im ${nb}x${q.Cin}x${q.H}x${q.W}←${q.OH}x${q.OW}`;
  if (q.d[0] !== 1 || q.d[1] !== 1) {
    dispatch(
      kernelFor(`col2im_dilated|${q.kH}.${q.kW}.${sh}.${sw}.${bias ? 1 : 0}.${+relu}`, () =>
        col2imDilatedSource(q.kH, q.kW, sh, sw, !!bias, relu),
      ),
      words(q, b0, nb),
      bufs,
      [Math.ceil((q.H * q.W) / WG), q.Cin, nb],
      label,
    );
    return;
  }
  const T = q.kH * q.kW;
  for (const f of phases(q)) {
    const { kh0, kw0, nth, ntw } = f;
    dispatch(
      kernelFor(`col2im|${q.kW}.${sh}.${sw}.${kh0}.${kw0}.${nth}.${ntw}.${bias ? 1 : 0}.${+relu}`, () =>
        col2imSource(q.kW, sh, sw, f, !!bias, relu),
      ),
      [q.Cin, q.H, q.W, q.OH, q.OW, b0, q.Cin * T, T, f.rh, f.rw, f.Hr, f.Wr, f.ch, f.cw],
      bufs,
      [Math.ceil((f.Hr * f.Wr) / WG), q.Cin, nb],
      label,
    );
  }
}

/** A stride phase with everything col2im and the implicit input gradient need (dilation 1). */
interface PhaseGeom extends Phase {
  /** Input pixels (rh + sh·i, rw + sw·j), i < Hr, j < Wr. */
  rh: number;
  rw: number;
  Hr: number;
  Wr: number;
  /** Tap t of the phase reads output row oh = i + ch − t (column ow = j + cw − s). */
  ch: number;
  cw: number;
}

/** The stride phases of the input (conv2d direction) for dilation 1. */
function phases(q: Geom): PhaseGeom[] {
  const [sh, sw] = q.s;
  const [ph, pw] = q.p;
  const mod = (a: number, m: number) => ((a % m) + m) % m;
  const out: PhaseGeom[] = [];
  for (let rh = 0; rh < Math.min(sh, q.H); rh++)
    for (let rw = 0; rw < Math.min(sw, q.W); rw++) {
      const kh0 = mod(rh + ph, sh);
      const kw0 = mod(rw + pw, sw);
      out.push({
        rh,
        rw,
        Hr: Math.ceil((q.H - rh) / sh),
        Wr: Math.ceil((q.W - rw) / sw),
        kh0,
        kw0,
        // oh = (ih + ph − kh)/sh = i + ch − t with ch = (rh + ph − kh0)/sh, an integer ≥ 0.
        ch: (rh + ph - kh0) / sh,
        cw: (rw + pw - kw0) / sw,
        nth: Math.max(0, Math.ceil((q.kH - kh0) / sh)),
        ntw: Math.max(0, Math.ceil((q.kW - kw0) / sw)),
      });
    }
  return out;
}

/**
 * y (B, Cout, OH, OW) = conv2d(x, w) + b. With `keepCol`, the im2col columns are returned when the batch
 * took one chunk (the weight gradient needs the same columns).
 */
function convForward(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  q: Geom,
  op: string,
  keepCol = false,
  relu = false,
): { y: Tensor; col?: Tensor } {
  const y = new Tensor([q.B, q.Cout, q.OH, q.OW], 'float32');
  if (y.size === 0) return { y };
  const { P, T, Cig, Cog } = sizes(q);
  const step = chunkImages(op, q);
  for (let b0 = 0; b0 < q.B; b0 += step) {
    const nb = Math.min(step, q.B - b0);
    const col = im2col(x.buffer(op), q, b0, nb, op);
    for (let g = 0; g < q.g; g++)
      gemm({
        op,
        M: nb * P,
        N: Cog,
        K: Cig * T,
        a: { off: g * Cig * T, rs: q.Cin * T, cs: 1 }, // im2col rows, this group's columns
        b: { off: g * Cog * Cig * T, rs: 1, cs: Cig * T }, // wᵀ: w is (Cout, Cig·T)
        c: { off: (b0 * q.Cout + g * Cog) * P, rs: 1, cs: P, split: { P, ro: q.Cout * P } },
        bufA: col.buffer(op),
        bufB: w.buffer(op),
        bufC: y.buffer(op),
        bias: b ? { buf: b.buffer(op), along: 'n', off: g * Cog } : undefined,
        act: relu ? 'relu' : undefined,
      });
    if (keepCol && step >= q.B) return { y, col };
    col.dispose();
  }
  return { y };
}

// ---------------------------------------------------------------------------------------------------------
// Implicit input gradient: col2im fused into the GEMM (no column buffer, no col2im pass). For dilation 1 the
// pixels of one stride phase of gx, (rh + sh·i, rw + sw·j), all receive the same nth×ntw taps, so the phase is
// one GEMM with an outer sum over its taps (conv2d direction, g = 1 shown):
//   gx[b, ci, rh + sh·i, rw + sw·j] = Σ_{t < nth, s < ntw} Σ_co gyp[b, i + ch − t, j + cw − s, co] · w[co, ci, kh0 + sh·t, kw0 + sw·s]
// M = B·Hr·Wr (rows m = (b, i, j), a two-level row split), N = Cig, K = Cog per tap; A is gy channels-last
// with a zero border (gyp) so that taps falling outside the output read zeros, B is w read in place (the
// texture pack reorders each tap's (Cog, Cig) slice), C is gx written in place with the bias and relu in the
// epilogue. Same multiply-adds as im2col + GEMM + col2im, minus the (B·P, Cin·T) column buffer's write and
// read-back.

export type ConvInputGradMode = 'auto' | 'implicit' | 'col2im';
let inputGradMode: ConvInputGradMode = 'auto';
/**
 * Benches/tests: how conv2d's input gradient and convTranspose2d's forward are computed: 'implicit' (fused
 * GEMM per stride phase, where the geometry allows it), 'col2im' (GEMM into a column buffer, then col2im), or
 * 'auto' (default: implicit for layers with ≥ 8 input channels per group on CPU adapters; col2im on GPUs,
 * where the one wide GEMM fills the device better: on an H200, Conv2d(64,128,4,2,1) fwd+bwd at batch 128 took
 * 0.585 ms on the col2im path against 0.951 ms implicit, ConvTranspose2d(128,64) 0.574 against 0.946, same
 * run). Returns the old mode.
 */
export function setConvInputGradMode(mode: ConvInputGradMode): ConvInputGradMode {
  if (mode !== 'auto' && mode !== 'implicit' && mode !== 'col2im')
    throw new Error(`setConvInputGradMode: expected 'auto', 'implicit' or 'col2im', got '${String(mode)}'`);
  const old = inputGradMode;
  inputGradMode = mode;
  return old;
}

/** Zero border of gyp: the output rows/columns that taps of some phase read outside [0, OH) × [0, OW). */
function implicitPads(q: Geom, fs: readonly PhaseGeom[]) {
  let [pt, pb, pl, pr] = [0, 0, 0, 0];
  for (const f of fs) {
    pt = Math.max(pt, f.nth - 1 - f.ch);
    pb = Math.max(pb, f.Hr - 1 + f.ch - (q.OH - 1));
    pl = Math.max(pl, f.ntw - 1 - f.cw);
    pr = Math.max(pr, f.Wr - 1 + f.cw - (q.OW - 1));
  }
  return { pt, pl, Hp: q.OH + pt + pb, Wp: q.OW + pl + pr };
}

/** Whether the input gradient of this geometry takes the implicit path (see setConvInputGradMode). */
function useImplicit(q: Geom): boolean {
  if (inputGradMode === 'col2im') return false;
  const Cog = q.Cout / q.g;
  const ok =
    q.d[0] === 1 &&
    q.d[1] === 1 &&
    q.kH >= q.s[0] &&
    q.kW >= q.s[1] && // every phase has taps
    Cog % 4 === 0; // gyp is written (and read along co) as vec4s
  if (!ok) return false;
  const { Hp, Wp } = implicitPads(q, phases(q));
  if (q.B * Hp * Wp * q.Cout > Math.floor(limits().maxStorageBufferBindingSize / 4)) return false;
  return inputGradMode === 'implicit' || (q.Cin / q.g >= 8 && cpuAdapter());
}

// gyp[b, ph, pw, c] = gy[b, c, ph − pt, pw − pl] inside the output, 0 in the border. One invocation per
// (4 channels, padded pixel) of an image, flattened (no idle lanes when Hp·Wp is not a multiple of the
// workgroup) with Hp·Wp and Wp compile-time (multiply-shifts, not lavapipe's 8 scalar divl per division): 4
// loads through clamped indices, zeroed by select in the border, and one vec4 store.
const channelsLastPaddedSource = (
  HWp: number,
  Wp: number,
) => `struct U { C: u32, OH: u32, OW: u32, pt: u32, pl: u32, b0: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;             // (B, C, OH, OW)
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>; // (B, Hp, Wp, C)
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${FLAT_INDEX(WG)} // (c / 4)·Hp·Wp + p
  if (i >= (u.C >> 2u) * ${HWp}u) { return; }
  let c4 = i / ${HWp}u;
  let p = i - c4 * ${HWp}u;
  let c = c4 * 4u;
  let bl = wid.z;
  let ph = p / ${Wp}u;
  let oh = ph - u.pt;                // u32 wrap-around: the top/left border reads as ≥ OH/OW
  let ow = p - ph * ${Wp}u - u.pl;
  let inside = oh < u.OH && ow < u.OW;
  let P = u.OH * u.OW;
  let xb = ((u.b0 + bl) * u.C + c) * P + min(oh, u.OH - 1u) * u.OW + min(ow, u.OW - 1u);
  let v = vec4<f32>(x[xb], x[xb + P], x[xb + 2u * P], x[xb + 3u * P]);
  y[(((u.b0 + bl) * ${HWp}u + p) * u.C + c) >> 2u] = select(vec4<f32>(0.0), v, inside);
}`;

function convInputGradImplicit(
  gy: Tensor,
  w: Tensor,
  b: Tensor | null,
  q: Geom,
  op: string,
  relu: boolean,
): Tensor {
  const gx = new Tensor([q.B, q.Cin, q.H, q.W], 'float32');
  const { T, Cig, Cog } = sizes(q);
  const fs = phases(q);
  const { pt, pl, Hp, Wp } = implicitPads(q, fs);
  const gyp = new Tensor([q.B, Hp, Wp, q.Cout], 'float32');
  const maxZ = limits().maxComputeWorkgroupsPerDimension;
  for (let b0 = 0; b0 < q.B; b0 += maxZ) {
    const nb = Math.min(maxZ, q.B - b0);
    dispatch(
      kernelFor(`channels_last_padded|${Hp * Wp}.${Wp}`, () => channelsLastPaddedSource(Hp * Wp, Wp)),
      [q.Cout, q.OH, q.OW, pt, pl, b0],
      [gy.buffer(op), gyp.buffer(op)],
      [...grid(Math.ceil(((q.Cout / 4) * Hp * Wp) / WG)), nb],
      () => `channels_last_padded ${nb}x${q.Cout}x${q.OH}x${q.OW}→${Hp}x${Wp}`,
    );
  }
  const HW = q.H * q.W;
  for (const f of fs)
    for (let g = 0; g < q.g; g++)
      gemm({
        op,
        M: q.B * f.Hr * f.Wr,
        N: Cig,
        K: Cog,
        a: {
          off: ((pt + f.ch) * Wp + pl + f.cw) * q.Cout + g * Cog,
          rs: q.Cout,
          cs: 1,
          split: { P: f.Hr * f.Wr, ro: Hp * Wp * q.Cout, Q: f.Wr, rq: Wp * q.Cout },
        },
        b: { off: g * Cog * Cig * T + f.kh0 * q.kW + f.kw0, rs: Cig * T, cs: T }, // w (Cout, Cig, kH, kW)
        c: {
          off: g * Cig * HW + f.rh * q.W + f.rw,
          rs: q.s[1],
          cs: HW,
          split: { P: f.Hr * f.Wr, ro: q.Cin * HW, Q: f.Wr, rq: q.s[0] * q.W },
        },
        outer: {
          n: f.nth * f.ntw,
          cols: f.ntw,
          as: -q.Cout,
          as1: -Wp * q.Cout,
          bs: q.s[1],
          bs1: q.s[0] * q.kW,
        },
        bufA: gyp.buffer(op),
        bufB: w.buffer(op),
        bufC: gx.buffer(op),
        bias: b ? { buf: b.buffer(op), along: 'n', off: g * Cig } : undefined,
        act: relu ? 'relu' : undefined,
      });
  gyp.dispose();
  return gx;
}

/** gx (B, Cin, H, W) = dL/dx of conv2d for dL/dy = gy (+ bias[ci]: convTranspose2d's forward). */
function convInputGrad(
  gy: Tensor,
  w: Tensor,
  b: Tensor | null,
  q: Geom,
  op: string,
  relu = false,
  gyCl?: Tensor | null,
): Tensor {
  if (q.B * q.Cin * q.H * q.W > 0 && useImplicit(q)) return convInputGradImplicit(gy, w, b, q, op, relu);
  const gx = new Tensor([q.B, q.Cin, q.H, q.W], 'float32');
  if (gx.size === 0) return gx;
  const { P, T, Cig, Cog } = sizes(q);
  const step = chunkImages(op, q);
  for (let b0 = 0; b0 < q.B; b0 += step) {
    const nb = Math.min(step, q.B - b0);
    const col = new Tensor([nb * P, q.Cin * T], 'float32');
    // gy as an (m, co) matrix: channels-last when the GEMM can then read it as vec4s, else the NCHW view.
    const cl = gyCl ?? (inputGradChannelsLast(q) ? channelsLast(gy, q.Cout, P, b0, nb, op) : null);
    for (let g = 0; g < q.g; g++)
      gemm({
        op,
        M: nb * P,
        N: Cig * T,
        K: Cog,
        a: cl
          ? { off: g * Cog, rs: q.Cout, cs: 1 }
          : { off: (b0 * q.Cout + g * Cog) * P, rs: 1, cs: P, split: { P, ro: q.Cout * P } },
        b: { off: g * Cog * Cig * T, rs: Cig * T, cs: 1 }, // w (Cout, Cig·T)
        c: { off: g * Cig * T, rs: q.Cin * T, cs: 1 },
        bufA: cl ? cl.buffer(op) : gy.buffer(op),
        bufB: w.buffer(op),
        bufC: col.buffer(op),
      });
    if (cl !== gyCl) cl?.dispose();
    col2im(col, gx.buffer(op), q, b0, nb, b, op, relu);
    col.dispose();
  }
  return gx;
}

/** Whether the weight gradient takes its transposed form (one GEMM over all images, gy channels-last). */
function weightGradTransposed(q: Geom): boolean {
  const { T, Cig, Cog } = sizes(q);
  return gyChannelsLast(q) && Math.ceil((Cig * T) / 16) * Math.ceil(Cog / 32) * q.g >= 32;
}

/**
 * gw (Cout, Cin/g, kH, kW) = dL/dw of conv2d for dL/dy = gy and input x. When the batch is one chunk, `xCol`
 * is im2col(x) and `gyCl` gy channels-last, if the caller has them.
 */
function convWeightGrad(
  gy: Tensor,
  x: Tensor,
  q: Geom,
  op: string,
  xCol?: Tensor,
  gyCl?: Tensor | null,
): Tensor {
  const { P, T, Cig, Cog } = sizes(q);
  const Kt = q.Cin * T;
  const N = Cig * T;
  const step = chunkImages(op, q);
  // Two forms. With enough output tiles as gwᵀ (N × Cog): gwᵀ = im2col(x)ᵀ · gy_cl, one GEMM over K = nb·P
  // with gy channels-last, vec4 reads of gy and no per-image loop (P = 49 would leave a K tail per image).
  // Otherwise an outer sum over the images (gy[b] is a plain (Cout, P) matrix), split into slices when the
  // output has few tiles, so that both cores (on a GPU: all its cores) get work.
  const transposedForm = weightGradTransposed(q);
  const tiles = Math.ceil(Cog / 16) * Math.ceil(N / 32) * q.g;
  const plan: { b0: number; nb: number; S: number; first: number }[] = [];
  let slices = 0;
  for (let b0 = 0; b0 < q.B; b0 += step) {
    const nb = Math.min(step, q.B - b0);
    const S = transposedForm ? 1 : splitSlices(nb, Math.min(Math.ceil(gemmParallelism() / tiles), 64));
    plan.push({ b0, nb, S, first: slices });
    slices += S;
  }
  const partial = new Tensor([slices, q.Cout, N], 'float32');
  for (const { b0, nb, S, first } of plan) {
    const col = xCol && plan.length === 1 ? xCol : im2col(x.buffer(op), q, b0, nb, op);
    if (transposedForm) {
      const cl = gyCl && plan.length === 1 ? gyCl : channelsLast(gy, q.Cout, P, b0, nb, op); // (nb·P, Cout)
      for (let g = 0; g < q.g; g++)
        gemm({
          op,
          M: N,
          N: Cog,
          K: nb * P,
          a: { off: g * N, rs: 1, cs: Kt }, // im2col(x)ᵀ: this group's columns as rows
          b: { off: g * Cog, rs: q.Cout, cs: 1 }, // gy channels-last: this group's channels
          c: { off: (first * q.Cout + g * Cog) * N, rs: 1, cs: N }, // written transposed into gw
          bufA: col.buffer(op),
          bufB: cl.buffer(op),
          bufC: partial.buffer(op),
        });
      if (cl !== gyCl) cl.dispose();
      if (col !== xCol) col.dispose();
      continue;
    }
    for (let g = 0; g < q.g; g++)
      gemm({
        op,
        M: Cog,
        N,
        K: P,
        a: { off: (b0 * q.Cout + g * Cog) * P, rs: P, cs: 1 }, // gy[b] (Cout, P), this group's rows
        b: { off: g * N, rs: Kt, cs: 1 }, // im2col rows of image b, this group's columns
        c: { off: (first * q.Cout + g * Cog) * N, rs: N, cs: 1 },
        bufA: gy.buffer(op),
        bufB: col.buffer(op),
        bufC: partial.buffer(op),
        outer: { n: nb, as: q.Cout * P, bs: P * Kt },
        split: { S, zsC: q.Cout * N },
      });
    if (col !== xCol) col.dispose();
  }
  const wShape = [q.Cout, Cig, q.kH, q.kW];
  const s = slices === 1 ? partial : sum(partial, 0);
  if (s !== partial) partial.dispose();
  const r = reshape(s, wShape);
  s.dispose();
  return r;
}

function activation(op: string, o: FusedActivation): boolean {
  const a = o.activation ?? null;
  if (a !== null && a !== 'relu')
    throw new Error(`${op}: activation must be 'relu' or null, got '${String(a)}'`);
  return a === 'relu';
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
  const inputs = b ? [x, w, b] : [x, w];
  // The weight gradient needs im2col(x) again: keep the forward's columns on the tape (freed after backward
  // or with y).
  const relu = activation(op, opts);
  const { y, col } = convForward(x, w, b ?? null, q, op, w.requiresGrad && needsGrad(inputs), relu);
  return record(
    op,
    y,
    inputs,
    (gy0) => {
      const gy = relu ? reluGradFromOutput(y, gy0) : gy0;
      // When dx and dw both read gy channels-last: one transpose for both if the batch is one chunk.
      const cl =
        x.requiresGrad &&
        w.requiresGrad &&
        chunkImages(op, q) >= q.B &&
        !useImplicit(q) &&
        inputGradChannelsLast(q) &&
        weightGradTransposed(q)
          ? channelsLast(gy, q.Cout, q.OH * q.OW, 0, q.B, op)
          : null;
      const grads = [
        x.requiresGrad ? convInputGrad(gy, w, null, q, op, false, cl) : null,
        w.requiresGrad ? convWeightGrad(gy, x, q, op, col, cl) : null,
        b?.requiresGrad ? sum(gy, [0, 2, 3]) : null,
      ];
      cl?.dispose();
      return grads;
    },
    col ? [col] : undefined,
  );
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
  const relu = activation(op, opts);
  const y = convInputGrad(x, w, b ?? null, q, op, relu);
  const inputs = b ? [x, w, b] : [x, w];
  return record(op, y, inputs, (gy0) => {
    const gy = relu ? reluGradFromOutput(y, gy0) : gy0;
    // dx and dw both need im2col(gy): computed once when the batch is one chunk.
    const fwd = x.requiresGrad ? convForward(gy, w, null, q, op, w.requiresGrad) : null;
    const gw = w.requiresGrad ? convWeightGrad(x, gy, q, op, fwd?.col) : null;
    fwd?.col?.dispose();
    return [fwd?.y ?? null, gw, b?.requiresGrad ? sum(gy, [0, 2, 3]) : null];
  });
}
