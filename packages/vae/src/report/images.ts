// PNG output for the reports: image grids (samples, reconstructions), heatmaps (per-pixel errors) and overlays.
import pngjs from 'pngjs';
import { writeFileAtomic } from './fs.js';

const { PNG } = pngjs;

export type Colormap = 'inferno' | 'viridis' | 'gray';

// Matplotlib's perceptually uniform colormaps (CC0), sampled at 25 evenly spaced stops (the same samples
// Vega ships); colours in between are interpolated linearly.
const STOPS: Record<Exclude<Colormap, 'gray'>, string> = {
  viridis:
    '440154470e61481a6c482575472f7d443a834144873d4e8a39568c35608d31688e2d708e2a788e27818e23888e21918d1f988b1fa08822a8842ab07f35b77943bf7154c56866cc5d7ad1518fd744a5db36bcdf27d2e21be9e51afde725',
  inferno:
    '0000040403130c0826170c3b240c4f330a5f420a68500d6c5d126e6b176e781c6d86216b932667a12b62ae305cbb3755c73e4cd24644dd513ae65c30ed6925f3771af8850ffb9506fca50afcb519fac62df6d645f2e661f3f484fcffa4',
};

const LUT = new Map<Colormap, Uint8Array>();

/** 256-entry RGB lookup table of a colormap. */
function lut(name: Colormap): Uint8Array {
  let t = LUT.get(name);
  if (t) return t;
  t = new Uint8Array(256 * 3);
  if (name === 'gray') for (let i = 0; i < 256; i++) t.fill(i, i * 3, i * 3 + 3);
  else {
    const hex = STOPS[name];
    if (!hex) throw new Error(`colormap: unknown colormap '${name}' (inferno, viridis or gray)`);
    const stops = hex
      .match(/.{6}/g)!
      .map((c) => [0, 2, 4].map((k) => Number.parseInt(c.slice(k, k + 2), 16)));
    for (let i = 0; i < 256; i++) {
      const p = (i / 255) * (stops.length - 1);
      const lo = Math.min(Math.floor(p), stops.length - 2);
      const f = p - lo;
      for (let k = 0; k < 3; k++)
        t[i * 3 + k] = Math.round(stops[lo]![k]! * (1 - f) + stops[lo + 1]![k]! * f);
    }
  }
  LUT.set(name, t);
  return t;
}

/** The colour of `t` ∈ [0, 1] (clamped; NaN counts as 0) in a colormap, as [r, g, b] bytes. */
export function colormap(name: Colormap, t: number): [number, number, number] {
  const table = lut(name);
  const i = toByte(t) * 3;
  return [table[i]!, table[i + 1]!, table[i + 2]!];
}

function toByte(v: number): number {
  return v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
}

export interface GridLayout {
  /** Images per row (default ⌈√n⌉). */
  cols?: number;
  /** Padding between and around the tiles, in output pixels (default 2). */
  pad?: number;
  /** Grey level [0, 1] of the padding (default 1, white; for inverted image grids 0.8, to keep the tiles apart). */
  padValue?: number;
  /** Integer nearest-neighbour upscaling of every tile (default 1). */
  scale?: number;
}

export interface ImageGridOptions extends GridLayout {
  /** Shows 1 − v (e.g. dark MNIST digits on white). */
  invert?: boolean;
}

/** Lays out `n` tiles of h×w in a grid; `tile(i, y, x, rgb)` writes the [0, 255] colour of a source pixel. */
function grid(
  n: number,
  h: number,
  w: number,
  channels: 1 | 3,
  o: GridLayout,
  tile: (i: number, y: number, x: number, out: Uint8Array) => void,
): Buffer {
  if (!(n > 0 && h > 0 && w > 0)) throw new Error(`image grid: needs n, h, w > 0, got ${n}, ${h}, ${w}`);
  const cols = Math.max(1, Math.min(n, Math.floor(o.cols ?? Math.ceil(Math.sqrt(n)))));
  const rows = Math.ceil(n / cols);
  const pad = Math.max(0, Math.floor(o.pad ?? 2));
  const s = Math.max(1, Math.floor(o.scale ?? 1));
  const th = h * s;
  const tw = w * s;
  const W = cols * tw + (cols + 1) * pad;
  const H = rows * th + (rows + 1) * pad;
  const data = Buffer.alloc(W * H * channels, toByte(o.padValue ?? 1));
  const px = new Uint8Array(3);
  for (let i = 0; i < n; i++) {
    const oy = pad + Math.floor(i / cols) * (th + pad);
    const ox = pad + (i % cols) * (tw + pad);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        tile(i, y, x, px);
        for (let dy = 0; dy < s; dy++) {
          let p = ((oy + y * s + dy) * W + ox + x * s) * channels;
          for (let dx = 0; dx < s; dx++, p += channels)
            for (let k = 0; k < channels; k++) data[p + k] = px[k]!;
        }
      }
  }
  const colorType = channels === 1 ? 0 : 2;
  const png = new PNG({ width: W, height: H, colorType, inputColorType: colorType, inputHasAlpha: false });
  png.data = data;
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false });
}

function checkSize(what: string, data: ArrayLike<number>, dims: number[]): void {
  const want = dims.reduce((a, b) => a * b, 1);
  if (data.length !== want)
    throw new Error(`${what}: ${data.length} values are not ${dims.join('×')} = ${want}`);
}

/**
 * Encodes `n` CHW images with values in [0, 1] (clamped) as one PNG grid: grey for c = 1, RGB for c = 3.
 * `images` is n × c × h × w, row-major (the layout of an NCHW tensor).
 */
export function imageGrid(
  images: ArrayLike<number>,
  n: number,
  c: number,
  h: number,
  w: number,
  o: ImageGridOptions = {},
): Buffer {
  if (c !== 1 && c !== 3) throw new Error(`imageGrid: c must be 1 (grey) or 3 (RGB), got ${c}`);
  checkSize('imageGrid', images, [n, c, h, w]);
  const hw = h * w;
  const inv = o.invert ?? false;
  return grid(n, h, w, c, { ...o, padValue: o.padValue ?? (inv ? 0.8 : 1) }, (i, y, x, out) => {
    for (let k = 0; k < c; k++) {
      const v = images[(i * c + k) * hw + y * w + x]!;
      out[k] = toByte(inv ? 1 - v : v);
    }
  });
}

export interface HeatmapOptions extends GridLayout {
  /** Colormap (default 'inferno'). */
  colormap?: Colormap;
  /** Maps each image's own min..max to the colormap ('image', default) or the min..max of all ('global'). */
  normalize?: 'image' | 'global';
  /** Fixed value range mapped to the colormap ends (overrides `normalize`). */
  range?: [number, number];
}

/** Per-tile [lo, hi] ranges for the normalisation of `values` (n × size). */
function ranges(values: ArrayLike<number>, n: number, size: number, o: HeatmapOptions): Float64Array {
  const r = new Float64Array(n * 2);
  if (o.range) {
    for (let i = 0; i < n; i++) [r[2 * i], r[2 * i + 1]] = o.range;
    return r;
  }
  for (let i = 0; i < n; i++) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let j = i * size; j < (i + 1) * size; j++) {
      const v = values[j]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    r[2 * i] = lo;
    r[2 * i + 1] = hi;
  }
  if ((o.normalize ?? 'image') === 'global') {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      lo = Math.min(lo, r[2 * i]!);
      hi = Math.max(hi, r[2 * i + 1]!);
    }
    for (let i = 0; i < n; i++) [r[2 * i], r[2 * i + 1]] = [lo, hi];
  }
  return r;
}

const unit = (v: number, lo: number, hi: number) => (hi > lo ? (v - lo) / (hi - lo) : 0);

/** Colour-mapped heatmaps (e.g. per-pixel reconstruction error) of `values` (n × h × w) as one RGB PNG grid. */
export function heatmapPng(
  values: ArrayLike<number>,
  n: number,
  h: number,
  w: number,
  o: HeatmapOptions = {},
): Buffer {
  checkSize('heatmapPng', values, [n, h, w]);
  const table = lut(o.colormap ?? 'inferno');
  const hw = h * w;
  const r = ranges(values, n, hw, o);
  return grid(n, h, w, 3, o, (i, y, x, out) => {
    const b = toByte(unit(values[i * hw + y * w + x]!, r[2 * i]!, r[2 * i + 1]!)) * 3;
    out[0] = table[b]!;
    out[1] = table[b + 1]!;
    out[2] = table[b + 2]!;
  });
}

export interface OverlayOptions extends HeatmapOptions {
  /** Opacity of the heatmap at its maximum (default 0.75); it fades to 0 where the heat is 0. */
  alpha?: number;
  /** Brightness factor of the underlying image (default 0.6), so that the colours stand out on it. */
  dim?: number;
  invert?: boolean;
}

/**
 * Heatmaps (n × h × w) blended over images (n × c × h × w, [0, 1]) as one RGB PNG grid: the heatmap's opacity
 * grows with its value, so the image shows through where the heat is low.
 */
export function overlayPng(
  images: ArrayLike<number>,
  heatmaps: ArrayLike<number>,
  n: number,
  c: number,
  h: number,
  w: number,
  o: OverlayOptions = {},
): Buffer {
  if (c !== 1 && c !== 3) throw new Error(`overlayPng: c must be 1 (grey) or 3 (RGB), got ${c}`);
  checkSize('overlayPng images', images, [n, c, h, w]);
  checkSize('overlayPng heatmaps', heatmaps, [n, h, w]);
  const table = lut(o.colormap ?? 'inferno');
  const hw = h * w;
  const r = ranges(heatmaps, n, hw, o);
  const alpha = o.alpha ?? 0.75;
  const dim = o.dim ?? 0.6;
  const inv = o.invert ?? false;
  return grid(n, h, w, 3, o, (i, y, x, out) => {
    const t = Math.min(1, Math.max(0, unit(heatmaps[i * hw + y * w + x]!, r[2 * i]!, r[2 * i + 1]!) || 0));
    const b = toByte(t) * 3;
    const a = alpha * t;
    for (let k = 0; k < 3; k++) {
      const v = images[(i * c + (c === 3 ? k : 0)) * hw + y * w + x]!;
      const base = toByte(inv ? 1 - v : v) * dim;
      out[k] = Math.round(base * (1 - a) + table[b + k]! * a);
    }
  });
}

/** Writes a PNG (or any bytes) atomically: temporary file + rename. */
export function writePng(path: string, png: Uint8Array): Promise<void> {
  return writeFileAtomic(path, png);
}

/** A `data:image/png;base64,…` URI of a PNG, for embedding in HTML. */
export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString('base64')}`;
}
