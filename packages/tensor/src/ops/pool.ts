// 2-D pooling and nearest upsampling (NCHW). Forward: one lane per output column; backward: one lane per
// input column, gathering from the outputs whose window covers it (no atomics, deterministic). The kernels
// run on a row grid (rowgrid.ts: column on the lanes, up to u.yb rows per lane, plane = image·channel on z), so
// no lane divides its flat index into (plane, row, column), which lavapipe runs as a scalar `divl` per lane,
// and a workgroup's fixed cost is shared by ≈ 4096 elements. One output per invocation (the way before) against
// the grid, timestamp queries, two alternating pairs of processes (2-core Zen 5 EPYC, 2026-12-06): 2× nearest
// upsample of (128, 64, 14, 14) 37.8–38.2 → 13.6 ms, max / avg pooling 2×2 of (128, 64, 28, 28) 16.9–17.2 →
// 11.9–12.4 / 15.0–16.2 → 11.2–11.3 ms (backward kernels not timed).
import { dispatch, f32, kernelFor, nanBits, runtime, type UWord } from '../gpu.js';
import { fmtShape, record, Tensor } from '../tensor.js';
import { type Pair, pair } from './conv.js';
import { ROW_GRID_END, rowGrid, rowGridMain } from './rowgrid.js';

const FIELDS =
  'H: u32, W: u32, OH: u32, OW: u32, kH: u32, kW: u32, sh: u32, sw: u32, ph: u32, pw: u32, includePad: u32, yb: u32, p0: u32';
/**
 * main() over the row grid of the output (`out`: row oh, column ow) or of the input (row ih, column iw), with
 * `plane` and the flat index `i`, up to the body of the row loop: a kernel's body ends with ROW_GRID_END.
 */
const GRID_MAIN = (gx: number, out: boolean) => {
  const [Y, X, r, c] = out ? ['u.OH', 'u.OW', 'oh', 'ow'] : ['u.H', 'u.W', 'ih', 'iw'];
  return `${rowGridMain(gx, X, Y, 'u.yb', 'let plane = wid.z + u.p0;')}
    let ${r} = row;
    let ${c} = gid.x;
    let i = (plane * ${Y} + ${r}) * ${X} + ${c};`;
};
const HEAD = (bindings: string, gx: number, out: boolean) => `
struct U { ${FIELDS} }
@group(0) @binding(0) var<uniform> u: U;
${bindings}
${GRID_MAIN(gx, out)}`;

// Output windows (oh, ow) whose taps cover input (ih, iw): oh·s − p ≤ ih ≤ oh·s − p + k − 1.
const COVERING = `
  let lh = i32(ih + u.ph) - i32(u.kH) + 1; let lw = i32(iw + u.pw) - i32(u.kW) + 1;
  let oh0 = u32(max(0, (lh + i32(u.sh) - 1) / i32(u.sh))); let ow0 = u32(max(0, (lw + i32(u.sw) - 1) / i32(u.sw)));
  let oh1 = min((ih + u.ph) / u.sh + 1u, u.OH); let ow1 = min((iw + u.pw) / u.sw + 1u, u.OW);
  var acc = 0.0;
  for (var oh = oh0; oh < oh1; oh = oh + 1u) {
    for (var ow = ow0; ow < ow1; ow = ow + 1u) {
      let o = (plane * u.OH + oh) * u.OW + ow;`;

const WINDOW = `
  let h0 = i32(oh * u.sh) - i32(u.ph); let w0 = i32(ow * u.sw) - i32(u.pw);`;

const MAX_FWD = (gx: number) => `${HEAD(
  `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;`,
  gx,
  true,
)}${WINDOW}
  var best = -3.402823e38; var arg = -1;
  for (var kh = 0u; kh < u.kH; kh = kh + 1u) {
    let ih = h0 + i32(kh);
    if (ih < 0 || ih >= i32(u.H)) { continue; }
    for (var kw = 0u; kw < u.kW; kw = kw + 1u) {
      let iw = w0 + i32(kw);
      if (iw < 0 || iw >= i32(u.W)) { continue; }
      let v = x[(plane * u.H + u32(ih)) * u.W + u32(iw)];
      // A NaN wins and stays (PyTorch), tested on the bits: lavapipe folds v != v to false.
      if (v > best || arg < 0 || (${nanBits('v')} && !(${nanBits('best')}))) { best = v; arg = ih * i32(u.W) + iw; }
    }
  }
  y[i] = best; idx[i] = arg;${ROW_GRID_END}`;

const MAX_BWD = (gx: number) => `${HEAD(
  `@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;`,
  gx,
  false,
)}${COVERING}
      if (idx[o] == i32(ih * u.W + iw)) { acc = acc + g[o]; }
    }
  }
  gx[i] = acc;${ROW_GRID_END}`;

// Divisor of an average window: kH·kW with count_include_pad, else the taps inside the input.
const DIVISOR = `
fn divisor(oh: u32, ow: u32) -> f32 {
  if (u.includePad == 1u) { return f32(u.kH * u.kW); }
  let h0 = i32(oh * u.sh) - i32(u.ph); let w0 = i32(ow * u.sw) - i32(u.pw);
  let hh = min(h0 + i32(u.kH), i32(u.H)) - max(h0, 0); let ww = min(w0 + i32(u.kW), i32(u.W)) - max(w0, 0);
  return f32(max(hh, 1) * max(ww, 1));
}`;

const AVG_FWD = (gx: number) => `${DIVISOR}${HEAD(
  `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;`,
  gx,
  true,
)}${WINDOW}
  var acc = 0.0;
  for (var kh = 0u; kh < u.kH; kh = kh + 1u) {
    let ih = h0 + i32(kh);
    if (ih < 0 || ih >= i32(u.H)) { continue; }
    for (var kw = 0u; kw < u.kW; kw = kw + 1u) {
      let iw = w0 + i32(kw);
      if (iw < 0 || iw >= i32(u.W)) { continue; }
      acc = acc + x[(plane * u.H + u32(ih)) * u.W + u32(iw)];
    }
  }
  y[i] = acc / divisor(oh, ow);${ROW_GRID_END}`;

const AVG_BWD = (gx: number) => `${DIVISOR}${HEAD(
  `@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> gx: array<f32>;`,
  gx,
  false,
)}${COVERING}
      acc = acc + g[o] / divisor(oh, ow);
    }
  }
  gx[i] = acc;${ROW_GRID_END}`;

// Nearest, PyTorch's rule in float32: y[oh, ow] = x[min(⌊oh·sh⌋, H − 1), min(⌊ow·sw⌋, W − 1)] with sh = H/OH, or
// 1/scale_factor when interpolate() was given one. Backward: the outputs that read input row ih lie in
// [⌊ih/sh⌋ − 1, ⌈(ih + 1)/sh⌉ + 1) (to OH for the last row, which also takes the clamped ones); each is
// checked with the forward rule itself, so the two can never disagree.
const NEAREST_U = `struct U { H: u32, W: u32, OH: u32, OW: u32, sh: f32, sw: f32, yb: u32, p0: u32 }
@group(0) @binding(0) var<uniform> u: U;
fn srcH(oh: u32) -> u32 { return min(u32(floor(f32(oh) * u.sh)), u.H - 1u); }
fn srcW(ow: u32) -> u32 { return min(u32(floor(f32(ow) * u.sw)), u.W - 1u); }`;
const NEAREST_FWD = (gx: number) => `${NEAREST_U}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${GRID_MAIN(gx, true)}
    y[i] = x[(plane * u.H + srcH(oh)) * u.W + srcW(ow)];${ROW_GRID_END}`;
const NEAREST_BWD = (gx: number) => `${NEAREST_U}
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> gx: array<f32>;
${GRID_MAIN(gx, false)}
  let oh0 = u32(max(i32(floor(f32(ih) / u.sh)) - 1, 0));
  let oh1 = select(min(u32(ceil(f32(ih + 1u) / u.sh)) + 1u, u.OH), u.OH, ih == u.H - 1u);
  let ow0 = u32(max(i32(floor(f32(iw) / u.sw)) - 1, 0));
  let ow1 = select(min(u32(ceil(f32(iw + 1u) / u.sw)) + 1u, u.OW), u.OW, iw == u.W - 1u);
  var acc = 0.0;
  for (var oh = oh0; oh < oh1; oh = oh + 1u) {
    if (srcH(oh) != ih) { continue; }
    for (var ow = ow0; ow < ow1; ow = ow + 1u) {
      if (srcW(ow) == iw) { acc = acc + g[(plane * u.OH + oh) * u.OW + ow]; }
    }
  }
  gx[i] = acc;${ROW_GRID_END}`;

type Win = {
  H: number;
  W: number;
  OH: number;
  OW: number;
  k: [number, number];
  s: [number, number];
  p: [number, number];
  includePad: boolean;
};
const uniforms = (q: Win) => [q.H, q.W, q.OH, q.OW, ...q.k, ...q.s, ...q.p, q.includePad ? 1 : 0];

/**
 * Dispatches a row-grid kernel (see rowGrid) over `planes` planes of Y rows × X columns, the planes on z in
 * chunks of the adapter's grid limit (their first plane in the last uniform word).
 */
function launchGrid(
  name: string,
  make: (gx: number) => string,
  words: UWord[],
  planes: number,
  Y: number,
  X: number,
  bufs: GPUBuffer[],
): void {
  if (planes * Y * X === 0) return;
  const max = runtime().maxWorkgroupsPerDim;
  const g = rowGrid(X, Y, Math.min(planes, max));
  if (!g) throw new Error(`${name}: a ${Y}×${X} plane exceeds the adapter's workgroup grid`);
  const k = kernelFor(`${name}|${g.gx}`, () => make(g.gx));
  for (let p0 = 0; p0 < planes; p0 += max)
    dispatch(k, [...words, g.yb, p0], bufs, [g.groups[0], g.groups[1], Math.min(max, planes - p0)]);
}

/** A pooling kernel over the output's (`out`) or the input's rows and columns of `planes` = B·C planes. */
function launch(
  name: string,
  make: (gx: number) => string,
  planes: number,
  q: Win,
  out: boolean,
  bufs: GPUBuffer[],
): void {
  launchGrid(name, make, uniforms(q), planes, out ? q.OH : q.H, out ? q.OW : q.W, bufs);
}

function window(
  op: string,
  x: Tensor,
  kernelSize: Pair,
  stride: Pair | undefined,
  padding: Pair,
  includePad: boolean,
): Win {
  if (x.shape.length !== 4)
    throw new Error(`${op}: input must be 4-D (B, C, H, W), got ${fmtShape(x.shape)}`);
  if (x.dtype !== 'float32') throw new Error(`${op}: input must be float32, got ${x.dtype}`);
  const k = pair(op, 'kernelSize', kernelSize, 1);
  const s = pair(op, 'stride', stride ?? kernelSize, 1);
  const p = pair(op, 'padding', padding, 0);
  if (p[0] * 2 > k[0] || p[1] * 2 > k[1])
    throw new Error(`${op}: padding ${p} must be at most half the kernel size ${k}`);
  const [, , H, W] = x.shape as [number, number, number, number];
  const OH = Math.floor((H + 2 * p[0] - k[0]) / s[0]) + 1;
  const OW = Math.floor((W + 2 * p[1] - k[1]) / s[1]) + 1;
  if (OH < 1 || OW < 1)
    throw new Error(`${op}: kernel ${k} is larger than the padded input ${H}x${W} (padding ${p})`);
  return { H, W, OH, OW, k, s, p, includePad };
}

export interface PoolOptions {
  stride?: Pair;
  padding?: Pair;
}

/** Max pooling (PyTorch's max_pool2d, ceil_mode false): padding acts as −∞. */
export function maxPool2d(x: Tensor, kernelSize: Pair, opts: PoolOptions = {}): Tensor {
  const q = window('maxPool2d', x, kernelSize, opts.stride, opts.padding ?? 0, false);
  const [B, C] = x.shape as [number, number];
  const y = new Tensor([B, C, q.OH, q.OW], 'float32');
  const idx = new Tensor([B, C, q.OH, q.OW], 'int32');
  launch('maxpool_forward', MAX_FWD, B * C, q, true, [
    x.buffer('maxPool2d'),
    y.buffer('maxPool2d'),
    idx.buffer('maxPool2d'),
  ]);
  if (
    !record('maxPool2d', y, [x], (g) => {
      const gx = new Tensor(x.shape, 'float32');
      launch('maxpool_backward', MAX_BWD, B * C, q, false, [
        g.buffer('maxPool2d'),
        idx.buffer('maxPool2d'),
        gx.buffer('maxPool2d'),
      ]);
      idx.dispose();
      return [gx];
    }).gradFn
  )
    idx.dispose();
  return y;
}

/** Average pooling (PyTorch's avg_pool2d, ceil_mode false; countIncludePad defaults to true). */
export function avgPool2d(
  x: Tensor,
  kernelSize: Pair,
  opts: PoolOptions & { countIncludePad?: boolean } = {},
): Tensor {
  const q = window('avgPool2d', x, kernelSize, opts.stride, opts.padding ?? 0, opts.countIncludePad ?? true);
  const [B, C] = x.shape as [number, number];
  const y = new Tensor([B, C, q.OH, q.OW], 'float32');
  launch('avgpool_forward', AVG_FWD, B * C, q, true, [x.buffer('avgPool2d'), y.buffer('avgPool2d')]);
  return record('avgPool2d', y, [x], (g) => {
    const gx = new Tensor(x.shape, 'float32');
    launch('avgpool_backward', AVG_BWD, B * C, q, false, [g.buffer('avgPool2d'), gx.buffer('avgPool2d')]);
    return [gx];
  });
}

/** Nearest resize to OH×OW reading input row ⌊oh·sh⌋ (sh in float32, as PyTorch computes it). */
function nearest(op: string, x: Tensor, OH: number, OW: number, sh: number, sw: number): Tensor {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const u = [H, W, OH, OW, f32(sh), f32(sw)];
  const y = new Tensor([B, C, OH, OW], 'float32');
  launchGrid('nearest_forward', NEAREST_FWD, u, B * C, OH, OW, [x.buffer(op), y.buffer(op)]);
  return record(op, y, [x], (g) => {
    const gx = new Tensor(x.shape, 'float32');
    launchGrid('nearest_backward', NEAREST_BWD, u, B * C, H, W, [g.buffer(op), gx.buffer(op)]);
    return [gx];
  });
}

/** Nearest-neighbour resize of (B, C, H, W) to (B, C, outH, outW), PyTorch's 'nearest' index rule. */
export function upsampleNearest2d(x: Tensor, size: Pair): Tensor {
  const op = 'upsampleNearest2d';
  if (x.shape.length !== 4)
    throw new Error(`${op}: input must be 4-D (B, C, H, W), got ${fmtShape(x.shape)}`);
  const [OH, OW] = pair(op, 'size', size, 1);
  const [, , H, W] = x.shape as [number, number, number, number];
  return nearest(op, x, OH, OW, H / OH, W / OW);
}

/** torch.nn.functional.interpolate for mode 'nearest': give `size` or an integer-or-float `scaleFactor`. */
export function interpolate(
  x: Tensor,
  opts: { size?: Pair; scaleFactor?: number | readonly [number, number]; mode?: 'nearest' },
): Tensor {
  if ((opts.mode ?? 'nearest') !== 'nearest')
    throw new Error(`interpolate: only mode 'nearest' is supported, got '${opts.mode}'`);
  if (x.shape.length !== 4)
    throw new Error(`interpolate: input must be 4-D (B, C, H, W), got ${fmtShape(x.shape)}`);
  if ((opts.size === undefined) === (opts.scaleFactor === undefined))
    throw new Error('interpolate: give exactly one of size and scaleFactor');
  if (opts.size !== undefined) return upsampleNearest2d(x, opts.size);
  const sf = typeof opts.scaleFactor === 'number' ? [opts.scaleFactor, opts.scaleFactor] : opts.scaleFactor!;
  if (sf.some((f) => !(f > 0)))
    throw new Error(`interpolate: scaleFactor must be positive, got ${JSON.stringify(opts.scaleFactor)}`);
  // PyTorch (recompute_scale_factor unset): output ⌊H·f⌋, source index ⌊oh / f⌋ (scale 1/f, not H/OH).
  const OH = Math.floor(x.shape[2]! * sf[0]!);
  const OW = Math.floor(x.shape[3]! * sf[1]!);
  if (OH < 1 || OW < 1)
    throw new Error(
      `interpolate: scaleFactor ${JSON.stringify(opts.scaleFactor)} gives an empty output ${OH}x${OW}`,
    );
  return nearest('interpolate', x, OH, OW, 1 / sf[0]!, 1 / sf[1]!);
}
