// A stand-in for the topoDLMini folder (seed 000): the same files and CSV layout, with synthetic chips.
// Background chips: paper tint, brown contour lines of a smooth random terrain, blue streams, black text
// strokes. Positive chips additionally hold a surface-mine disturbance patch (an irregular stippled area
// that breaks the contours), and its mask. Files: trainDF.csv / testDF.csv / valDF.csv with columns
// chpN, chpPth, mskPth, division; chips/*.png (3-band 8-bit), masks/*.png (1-band 8-bit).
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PNG } from 'pngjs';

type Rng = () => number;
function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type RGB = [number, number, number];
const PAPER: RGB = [242, 236, 218];
const CONTOUR: RGB = [170, 110, 60];
const STREAM: RGB = [60, 120, 200];
const TEXT: RGB = [30, 30, 30];
// USGS maps tint surface-mine areas (strip mines, spoil) in purple-brown and stipple them.
const MINE: RGB = [150, 85, 140];
const SPOIL: RGB = [60, 40, 60];

class Canvas {
  readonly rgb: Float32Array;
  readonly mask: Uint8Array;
  constructor(readonly size: number) {
    this.rgb = new Float32Array(size * size * 3);
    this.mask = new Uint8Array(size * size);
  }
  set(x: number, y: number, c: RGB, alpha = 1): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.size || yi >= this.size) return;
    const o = (yi * this.size + xi) * 3;
    for (let k = 0; k < 3; k++) this.rgb[o + k] = this.rgb[o + k]! * (1 - alpha) + c[k]! * alpha;
  }
  line(x0: number, y0: number, x1: number, y1: number, c: RGB, alpha = 1): void {
    const n = Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 1.5) + 1;
    for (let i = 0; i <= n; i++) this.set(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, c, alpha);
  }
}

/** Smooth random terrain: a sum of a few random plane waves. */
function terrain(rng: Rng): (x: number, y: number) => number {
  const waves = Array.from({ length: 5 }, () => ({
    fx: (rng() - 0.5) * 0.25,
    fy: (rng() - 0.5) * 0.25,
    ph: rng() * Math.PI * 2,
    a: 0.5 + rng(),
  }));
  return (x, y) => waves.reduce((s, w) => s + w.a * Math.sin(w.fx * x + w.fy * y + w.ph), 0);
}

function drawBackground(cv: Canvas, rng: Rng): void {
  const n = cv.size;
  const tint = (rng() - 0.5) * 12;
  for (let i = 0; i < n * n; i++)
    for (let k = 0; k < 3; k++) cv.rgb[i * 3 + k] = PAPER[k]! + tint + (rng() - 0.5) * 6;
  // Contours: level sets of the terrain, one every `step` units, every fifth one bolder (index contour).
  const h = terrain(rng);
  const step = 0.35 + rng() * 0.25;
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const v = h(x, y) / step;
      const frac = Math.abs(v - Math.round(v));
      const grad = Math.hypot(h(x + 1, y) - h(x - 1, y), h(x, y + 1) - h(x, y - 1)) / (2 * step);
      const width = Math.round(v) % 5 === 0 ? 0.9 : 0.5;
      if (frac < width * Math.max(grad, 0.05)) cv.set(x, y, CONTOUR, 0.85);
    }
  // Streams: meandering random walks.
  const streams = Math.floor(rng() * 3);
  for (let s = 0; s < streams; s++) {
    let x = rng() * n;
    let y = 0;
    let dir = Math.PI / 2 + (rng() - 0.5);
    while (y < n && x > -2 && x < n + 2) {
      const nx = x + Math.cos(dir) * 2;
      const ny = y + Math.sin(dir) * 2;
      cv.line(x, y, nx, ny, STREAM, 0.9);
      x = nx;
      y = ny;
      dir += (rng() - 0.5) * 0.6;
      dir = Math.min(Math.max(dir, 0.3), Math.PI - 0.3);
    }
  }
  // Text: short words of little strokes.
  const words = Math.floor(rng() * 3);
  for (let w = 0; w < words; w++) {
    let x = rng() * (n - 20);
    const y = 4 + rng() * (n - 8);
    const letters = 3 + Math.floor(rng() * 5);
    for (let l = 0; l < letters; l++) {
      const strokes = 2 + Math.floor(rng() * 2);
      for (let s = 0; s < strokes; s++) {
        const x0 = x + rng() * 3;
        const x1 = x + rng() * 3;
        cv.line(x0, y - 2 + rng() * 4, x1, y - 2 + rng() * 4, TEXT, 0.9);
      }
      x += 4;
    }
  }
}

/**
 * A mine-disturbance patch: an irregular blob in a tint that background chips never have, densely stippled,
 * over the contours. (A first version used a pale tint that wiped the contours: the smoother patch was
 * easier to reconstruct than background, and the VAE rated positives as *more* normal, AUROC 0.40.)
 */
function drawMine(cv: Canvas, rng: Rng): void {
  const n = cv.size;
  const cx = n * (0.25 + rng() * 0.5);
  const cy = n * (0.25 + rng() * 0.5);
  const r0 = n * (0.18 + rng() * 0.14);
  const lobes = Array.from({ length: 4 }, () => ({
    k: 2 + Math.floor(rng() * 4),
    a: rng() * 0.35,
    p: rng() * Math.PI * 2,
  }));
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const ang = Math.atan2(y - cy, x - cx);
      const r = r0 * (1 + lobes.reduce((s, l) => s + l.a * Math.sin(l.k * ang + l.p), 0));
      if (Math.hypot(x - cx, y - cy) > r) continue;
      cv.mask[y * n + x] = 255;
      cv.set(x, y, MINE, 0.85);
      if (rng() < 0.35) cv.set(x, y, SPOIL, 1);
    }
}

export interface TopoOptions {
  dir: string;
  size?: number;
  trainBackground?: number;
  trainPositive?: number;
  testBackground?: number;
  testPositive?: number;
  seed?: number;
}

async function writePng(
  path: string,
  width: number,
  channels: 1 | 3,
  data: Float32Array | Uint8Array,
): Promise<void> {
  const png = new PNG({
    width,
    height: width,
    colorType: channels === 1 ? 0 : 2,
    inputColorType: channels === 1 ? 0 : 2,
    inputHasAlpha: false,
  });
  png.data = Buffer.from(Uint8Array.from(data, (v) => Math.max(0, Math.min(255, Math.round(v)))));
  const buf = PNG.sync.write(png, {
    colorType: channels === 1 ? 0 : 2,
    inputColorType: channels === 1 ? 0 : 2,
    inputHasAlpha: false,
  });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, buf);
  await rename(tmp, path);
}

/** Writes the stand-in dataset; returns the number of chips per split and class. */
export async function makeTopoData(opts: TopoOptions): Promise<Record<string, number>> {
  const size = opts.size ?? 32;
  const rng = mulberry32(opts.seed ?? 12);
  await mkdir(join(opts.dir, 'chips'), { recursive: true });
  await mkdir(join(opts.dir, 'masks'), { recursive: true });
  const counts: Record<string, number> = {
    'train/background': opts.trainBackground ?? 600,
    'train/positive': opts.trainPositive ?? 60,
    'val/background': 20,
    'val/positive': 10,
    'test/background': opts.testBackground ?? 100,
    'test/positive': opts.testPositive ?? 100,
  };
  const rows: Record<string, string[]> = { train: [], val: [], test: [] };
  let id = 0;
  for (const [key, count] of Object.entries(counts)) {
    const [split, cls] = key.split('/') as [string, string];
    for (let i = 0; i < count; i++) {
      const cv = new Canvas(size);
      drawBackground(cv, rng);
      if (cls === 'positive') drawMine(cv, rng);
      const name = `${split}_${String(id++).padStart(5, '0')}`;
      await writePng(join(opts.dir, 'chips', `${name}.png`), size, 3, cv.rgb);
      await writePng(join(opts.dir, 'masks', `${name}.png`), size, 1, cv.mask);
      // The published CSVs spell the classes inconsistently; the stand-in does too (about 1 row in 10).
      const label =
        cls === 'background'
          ? rng() < 0.1
            ? 'Backround'
            : 'Background'
          : rng() < 0.1
            ? 'Postive'
            : 'Positive';
      rows[split]!.push(`${name},chips/${name}.png,masks/${name}.png,${label}`);
    }
  }
  for (const [split, file] of [
    ['train', 'trainDF.csv'],
    ['val', 'valDF.csv'],
    ['test', 'testDF.csv'],
  ] as const) {
    const body = `chpN,chpPth,mskPth,division\n${rows[split]!.join('\n')}\n`;
    await writeFile(join(opts.dir, `${file}.tmp`), body);
    await rename(join(opts.dir, `${file}.tmp`), join(opts.dir, file));
  }
  return counts;
}
