// Data pipeline, file formats: IDX (raw and gzip, every dtype, every error), PNG decoding (bit depths, colour
// types, channel forcing) and CSV-manifest image datasets (labels, filter, every bad-data case, skip mode).
// All files are generated here, in a temporary folder.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DataError,
  DataLoader,
  decodePng,
  ImageCsvDataset,
  type ImageCsvOptions,
  parseIdx,
  readIdx,
  readPngHeader,
} from '../packages/nn/src/data/index.js';
import { gpuSuite } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'wgrad-data-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let fileNo = 0;
/** Writes `bytes` to a new file in the temp folder (or at `rel` under it) and returns its path. */
function put(bytes: Uint8Array | string, rel?: string): string {
  const p = join(tmp, rel ?? `f${fileNo++}`);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, bytes);
  return p;
}

/** Asserts that `fn` rejects (or throws) with a message containing every one of `parts`. */
async function rejects(fn: () => unknown, ...parts: (string | number)[]): Promise<Error> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof Error)) throw new Error(`expected an error containing ${parts.join(' / ')}, got none`);
  for (const p of parts)
    if (!err.message.includes(String(p))) assert.unreachable(`error message lacks '${p}': ${err.message}`);
  return err;
}

// ---- IDX ------------------------------------------------------------------------------------------------

const IDX_CODES = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
} as const;
type Dt = keyof typeof IDX_CODES;
const SIZES: Record<Dt, number> = { uint8: 1, int8: 1, int16: 2, int32: 4, float32: 4, float64: 8 };

/** A tiny IDX writer (independent of the reader): big-endian header and values. */
function encodeIdx(dtype: Dt, shape: number[], values: number[]): Uint8Array {
  const head = 4 + 4 * shape.length;
  const out = new Uint8Array(head + values.length * SIZES[dtype]);
  const v = new DataView(out.buffer);
  out[2] = IDX_CODES[dtype];
  out[3] = shape.length;
  shape.forEach((d, i) => {
    v.setUint32(4 + 4 * i, d, false);
  });
  values.forEach((x, i) => {
    const o = head + i * SIZES[dtype];
    if (dtype === 'uint8') v.setUint8(o, x);
    else if (dtype === 'int8') v.setInt8(o, x);
    else if (dtype === 'int16') v.setInt16(o, x, false);
    else if (dtype === 'int32') v.setInt32(o, x, false);
    else if (dtype === 'float32') v.setFloat32(o, x, false);
    else v.setFloat64(o, x, false);
  });
  return out;
}

const SAMPLE: Record<Dt, number[]> = {
  uint8: [0, 1, 127, 128, 254, 255],
  int8: [-128, -1, 0, 1, 100, 127],
  int16: [-32768, -2, 0, 258, 1000, 32767],
  int32: [-(2 ** 31), -70000, 0, 65537, 16777217, 2 ** 31 - 1],
  float32: [-1.5, 0, 0.1, 3.4e38, -1e-30, 65504.25],
  float64: [-1.5, 0, 0.1, 1e300, -Math.PI, 2 ** 60 + 2 ** 9],
};

const idx = suite('data: IDX');

for (const dtype of Object.keys(IDX_CODES) as Dt[])
  idx(`round trip ${dtype}, raw and .gz, multi-dimensional`, async () => {
    const bytes = encodeIdx(dtype, [2, 3], SAMPLE[dtype]);
    const expected = dtype === 'float32' ? SAMPLE.float32.map(Math.fround) : SAMPLE[dtype];
    for (const p of [put(bytes, `rt-${dtype}.idx`), put(gzipSync(bytes), `rt-${dtype}.idx.gz`)]) {
      const a = await readIdx(p);
      assert.equal(a.shape, [2, 3]);
      assert.is(a.dtype, dtype);
      assert.equal(Array.from(a.data), expected, `${dtype} values from ${p}`);
    }
  });

idx('gzip is recognised by content, and 1-D and 4-D arrays parse', async () => {
  const p = put(gzipSync(encodeIdx('uint8', [5], [9, 8, 7, 6, 5])), 'no-extension');
  assert.equal(Array.from((await readIdx(p)).data), [9, 8, 7, 6, 5]);
  const four = parseIdx(encodeIdx('int16', [1, 2, 1, 2], [1, -2, 3, -4]));
  assert.equal(four.shape, [1, 2, 1, 2]);
  assert.ok(four.data instanceof Int16Array);
  const empty = parseIdx(encodeIdx('uint8', [0, 28, 28], []));
  assert.equal(empty.shape, [0, 28, 28]);
  assert.is(empty.data.length, 0);
});

idx('returns copies, not views of the file buffer', async () => {
  const a = await readIdx(put(encodeIdx('uint8', [3], [1, 2, 3])));
  assert.is(a.data.byteOffset, 0);
  assert.is(a.data.buffer.byteLength, 3);
});

idx('truncated files name the file and the sizes', async () => {
  const good = encodeIdx('int32', [2, 3], SAMPLE.int32);
  await rejects(() => readIdx(put(good.subarray(0, 3), 'short.idx')), 'short.idx', 'truncated', '3 bytes');
  await rejects(
    () => readIdx(put(good.subarray(0, 9), 'shorthead.idx')),
    'shorthead.idx',
    'truncated',
    'needs 12',
  );
  await rejects(
    () => readIdx(put(good.subarray(0, good.length - 1), 'shortbody.idx')),
    'shortbody.idx',
    'truncated',
    'needs 24 data bytes',
    'found 23',
  );
  const gz = gzipSync(good);
  await rejects(() => readIdx(put(gz.subarray(0, gz.length - 6), 'cut.gz')), 'cut.gz', 'gzip');
  await rejects(() => readIdx(put(new Uint8Array(0), 'empty.idx')), 'empty.idx', 'truncated', '0 bytes');
});

idx('bad magic, unknown type, zero dimensions, trailing bytes, missing file', async () => {
  const good = encodeIdx('uint8', [4], [1, 2, 3, 4]);
  const badMagic = good.slice();
  badMagic[0] = 0x12;
  await rejects(() => readIdx(put(badMagic, 'magic.idx')), 'magic.idx', 'bad magic number 0x12000801');
  const badType = good.slice();
  badType[2] = 0x0a;
  await rejects(() => readIdx(put(badType, 'type.idx')), 'type.idx', 'bad magic', '0x00000a01');
  const zeroDim = good.slice(0, 4);
  zeroDim[3] = 0;
  await rejects(() => readIdx(put(zeroDim, 'zero.idx')), 'zero.idx', 'zero dimensions');
  await rejects(
    () => readIdx(put(new Uint8Array([...good, 0, 0]), 'long.idx')),
    'long.idx',
    'size mismatch',
    '2 trailing bytes',
  );
  await rejects(() => readIdx(join(tmp, 'nope.idx')), 'nope.idx', 'cannot read', 'ENOENT');
  const e = await rejects(() => readIdx(put(badMagic)), 'bad magic');
  assert.instance(e, DataError);
  // A gzip file whose content is not IDX.
  await rejects(() => readIdx(put(gzipSync(Buffer.from('hello world')), 'text.gz')), 'text.gz', 'bad magic');
  // Double-compressed: the message says so.
  await rejects(() => parseIdx(gzipSync(good), 'double.gz'), 'double.gz', 'still gzip-compressed');
});

idx.run();

// ---- PNG ------------------------------------------------------------------------------------------------

/** Writes a PNG with pngjs from RGBA input (8-bit: Uint8 values; 16-bit: Uint16 values). */
function pngjsEncode(
  W: number,
  H: number,
  rgba: number[],
  colorType: 0 | 2 | 4 | 6,
  bitDepth: 8 | 16 = 8,
): Uint8Array {
  const png = new PNG({ width: W, height: H });
  png.data =
    bitDepth === 16 ? Buffer.from(Uint16Array.from(rgba).buffer) : Buffer.from(Uint8Array.from(rgba));
  return PNG.sync.write(png, { colorType, bitDepth, inputColorType: 6, inputHasAlpha: true });
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  out.set(Buffer.from(type, 'latin1'), 4);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}
/**
 * A hand-made PNG (what pngjs cannot write: palettes, tRNS, depths below 8): `samples` are per-pixel
 * samples in row order (bitDepth bits each, packed MSB first, filter 0 per row).
 */
function rawPng(o: {
  W: number;
  H: number;
  colorType: number;
  bitDepth: number;
  samples: number[];
  spp?: number;
  palette?: number[][];
  trns?: Uint8Array;
}): Uint8Array {
  const spp = o.spp ?? 1;
  const rowBytes = Math.ceil((o.W * spp * o.bitDepth) / 8);
  const raw = new Uint8Array(o.H * (rowBytes + 1));
  for (let y = 0; y < o.H; y++)
    for (let i = 0; i < o.W * spp; i++) {
      const s = o.samples[y * o.W * spp + i]!;
      const base = y * (rowBytes + 1) + 1;
      if (o.bitDepth === 16) {
        raw[base + 2 * i] = s >> 8;
        raw[base + 2 * i + 1] = s & 0xff;
      } else {
        const bit = i * o.bitDepth;
        raw[base + (bit >> 3)]! |= s << (8 - o.bitDepth - (bit & 7));
      }
    }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, o.W);
  v.setUint32(4, o.H);
  ihdr[8] = o.bitDepth;
  ihdr[9] = o.colorType;
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  if (o.palette) parts.push(chunk('PLTE', Uint8Array.from(o.palette.flat())));
  if (o.trns) parts.push(chunk('tRNS', o.trns));
  parts.push(chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}

const f32 = (xs: number[]) => xs.map(Math.fround);
const gray4 = [0, 85, 170, 255]; // a 2x2 gray image

const png = suite('data: PNG');

png('8-bit gray (pngjs) -> 1 channel, v/255', () => {
  const img = decodePng(
    pngjsEncode(
      2,
      2,
      gray4.flatMap((g) => [g, g, g, 255]),
      0,
    ),
  );
  assert.equal([img.channels, img.height, img.width], [1, 2, 2]);
  assert.equal(Array.from(img.data), f32(gray4.map((g) => g / 255)));
});

png('16-bit gray (pngjs) keeps 16-bit precision', () => {
  const g16 = [0, 1, 32768, 65535];
  const img = decodePng(
    pngjsEncode(
      2,
      2,
      g16.flatMap((g) => [g, g, g, 65535]),
      0,
      16,
    ),
  );
  assert.is(img.channels, 1);
  assert.equal(Array.from(img.data), f32(g16.map((g) => g / 65535)));
  assert.ok(img.data[1]! > 0, 'value 1 of 65535 is not rounded away');
});

png('RGB and RGBA (pngjs) -> CHW planes', () => {
  const px = [
    [255, 0, 10, 255],
    [0, 255, 20, 128],
    [1, 2, 3, 0],
    [100, 150, 200, 255],
  ];
  const rgb = decodePng(
    pngjsEncode(
      2,
      2,
      px.flatMap(([r, g, b]) => [r!, g!, b!, 255]),
      2,
    ),
  );
  assert.is(rgb.channels, 3);
  const plane = (c: number) => px.map((p) => p[c]! / 255);
  assert.equal(Array.from(rgb.data), f32([...plane(0), ...plane(1), ...plane(2)]));
  const rgba = decodePng(pngjsEncode(2, 2, px.flat(), 6));
  assert.is(rgba.channels, 4);
  assert.equal(Array.from(rgba.data), f32([...plane(0), ...plane(1), ...plane(2), ...plane(3)]));
  // Forced to 3: alpha dropped; to 1: an error (a colour image is not gray).
  assert.equal(
    Array.from(decodePng(pngjsEncode(2, 2, px.flat(), 6), { channels: 3 }).data),
    Array.from(rgb.data),
  );
  assert.throws(
    () => decodePng(pngjsEncode(2, 2, px.flat(), 6), { channels: 1 }),
    /has 4 channels \(RGBA\), expected 1/,
  );
  assert.throws(
    () => decodePng(pngjsEncode(2, 2, px.flat(), 2), { channels: 1 }),
    /has 3 channels \(RGB\), expected 1/,
  );
});

png('gray+alpha (pngjs): 2 channels; forced 1 drops alpha, 3 replicates gray, 4 keeps alpha', () => {
  const ga = [
    [10, 255],
    [20, 0],
    [30, 128],
    [40, 7],
  ];
  const bytes = pngjsEncode(
    2,
    2,
    ga.flatMap(([g, a]) => [g!, g!, g!, a!]),
    4,
  );
  const native = decodePng(bytes);
  assert.is(native.channels, 2);
  const g = f32(ga.map((p) => p[0]! / 255));
  const a = f32(ga.map((p) => p[1]! / 255));
  assert.equal(Array.from(native.data), [...g, ...a]);
  assert.equal(Array.from(decodePng(bytes, { channels: 1 }).data), g);
  assert.equal(Array.from(decodePng(bytes, { channels: 3 }).data), [...g, ...g, ...g]);
  assert.equal(Array.from(decodePng(bytes, { channels: 4 }).data), [...g, ...g, ...g, ...a]);
});

png('gray forced to 3 and 4 channels (opaque alpha = 1)', () => {
  const bytes = pngjsEncode(
    2,
    2,
    gray4.flatMap((v) => [v, v, v, 255]),
    0,
  );
  const g = f32(gray4.map((v) => v / 255));
  assert.equal(Array.from(decodePng(bytes, { channels: 3 }).data), [...g, ...g, ...g]);
  assert.equal(Array.from(decodePng(bytes, { channels: 4 }).data), [...g, ...g, ...g, 1, 1, 1, 1]);
});

png('palette (8-bit and 2-bit indices, with tRNS): RGB by default, RGBA on request', () => {
  const palette = [
    [255, 0, 0],
    [0, 128, 255],
    [7, 7, 7],
  ];
  const idxs = [0, 1, 2, 1, 0, 0];
  for (const bitDepth of [8, 2]) {
    const bytes = rawPng({
      W: 3,
      H: 2,
      colorType: 3,
      bitDepth,
      samples: idxs,
      palette,
      trns: Uint8Array.of(255, 64),
    });
    const img = decodePng(bytes);
    assert.equal([img.channels, img.height, img.width], [3, 2, 3]);
    const plane = (c: number) => idxs.map((i) => palette[i]![c]! / 255);
    assert.equal(Array.from(img.data), f32([...plane(0), ...plane(1), ...plane(2)]), `depth ${bitDepth}`);
    const alpha = idxs.map((i) => [255, 64, 255][i]! / 255);
    assert.equal(Array.from(decodePng(bytes, { channels: 4 }).data.subarray(18)), f32(alpha));
    assert.throws(() => decodePng(bytes, { channels: 1 }), /colour palette image, expected 1 channel/);
  }
  // A palette of grays is a gray image: channels 1 works.
  const grayPal = rawPng({
    W: 2,
    H: 1,
    colorType: 3,
    bitDepth: 8,
    samples: [1, 0],
    palette: [
      [9, 9, 9],
      [200, 200, 200],
    ],
  });
  assert.equal(Array.from(decodePng(grayPal, { channels: 1 }).data), f32([200 / 255, 9 / 255]));
});

png('low bit depths, 16-bit RGB and a tRNS key colour (its value is kept, alpha 0)', () => {
  const g1 = decodePng(rawPng({ W: 5, H: 1, colorType: 0, bitDepth: 1, samples: [1, 0, 1, 1, 0] }));
  assert.equal(Array.from(g1.data), [1, 0, 1, 1, 0]);
  const g4 = decodePng(rawPng({ W: 3, H: 1, colorType: 0, bitDepth: 4, samples: [0, 5, 15] }));
  assert.equal(Array.from(g4.data), f32([0, 5 / 15, 1]));
  const rgb16 = decodePng(
    rawPng({ W: 1, H: 1, colorType: 2, bitDepth: 16, spp: 3, samples: [65535, 256, 1] }),
  );
  assert.equal(Array.from(rgb16.data), f32([1, 256 / 65535, 1 / 65535]));
  const keyed = rawPng({
    W: 3,
    H: 1,
    colorType: 0,
    bitDepth: 8,
    samples: [255, 10, 255],
    trns: Uint8Array.of(0, 255),
  });
  assert.equal(Array.from(decodePng(keyed).data), [1, f32([10 / 255])[0], 1]);
  assert.equal(Array.from(decodePng(keyed, { channels: 4 }).data.subarray(9)), [0, 1, 0]);
});

png('corrupt and non-PNG data fail with clear reasons; the header reader', async () => {
  const good = pngjsEncode(
    2,
    2,
    gray4.flatMap((g) => [g, g, g, 255]),
    0,
  );
  assert.throws(() => decodePng(Buffer.from('definitely not a png')), /not a PNG file \(bad signature\)/);
  assert.throws(() => decodePng(new Uint8Array(0)), /empty file/);
  assert.throws(() => decodePng(good.subarray(0, 20)), /truncated PNG/);
  assert.throws(() => decodePng(good.subarray(0, good.length - 20)), /corrupt PNG/);
  const flipped = Buffer.from(good);
  flipped[40] = flipped[40]! ^ 0xff; // inside IDAT: CRC mismatch
  assert.throws(() => decodePng(flipped), /corrupt PNG/);
  const h = await readPngHeader(put(good, 'hdr.png'));
  assert.equal(h, { width: 2, height: 2, bitDepth: 8, colorType: 0 });
});

png.run();

// ---- CSV manifests ----------------------------------------------------------------------------------------

let dirNo = 0;
const rgbPng = (W: number, H: number, seed: number) =>
  pngjsEncode(
    W,
    H,
    Array.from({ length: W * H }, (_, p) => [(seed * 40 + p) % 256, (p * 7) % 256, seed % 256, 255]).flat(),
    2,
  );
const grayPng = (W: number, H: number, v: number) =>
  pngjsEncode(W, H, Array.from({ length: W * H }, () => [v, v, v, 255]).flat(), 0);

/**
 * A topoDL-like folder: `images` (relative path → PNG bytes, or null for a file not written) and a
 * trainDF.csv whose rows are `lines` (the header is chpN,chpPth,mskPth,division unless given).
 */
function manifest(
  lines: string[],
  images: Record<string, Uint8Array | null>,
  header = 'chpN,chpPth,mskPth,division',
) {
  const dir = join(tmp, `topo${dirNo++}`);
  for (const [rel, bytes] of Object.entries(images))
    if (bytes) put(bytes, join(dir.slice(tmp.length + 1), rel));
  return put([header, ...lines].join('\n') + '\n', join(dir.slice(tmp.length + 1), 'trainDF.csv'));
}

const standard = () =>
  manifest(
    [
      'c1,chips/c1.png,masks/c1.png,Background',
      'c2,chips/c2.png,masks/c2.png,Positive',
      'c3,chips/c3.png,masks/c3.png,Backround',
      'c4,chips/c4.png,masks/c4.png, postive ',
      'c5,chips/c5.png,masks/c5.png,BACKGROUND',
    ],
    Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`chips/c${i}.png`, rgbPng(4, 3, i)])),
  );

const csv = gpuSuite('data: CSV manifests');
const quiet: ImageCsvOptions = { log: () => {} };

csv('topoDL layout: labels with the published misspellings, lazy decoding, sample shape', async () => {
  const ds = await ImageCsvDataset.fromCsv(standard());
  assert.is(ds.length, 5);
  assert.equal(
    ds.rows.map((r) => r.y),
    [0, 1, 0, 1, 0],
  );
  assert.equal(ds.classes, ['background', 'positive']);
  assert.equal(ds.sampleShape, [3, 3, 4]);
  const s = await ds.get(2);
  assert.is(s.y, 0);
  const ref = decodePng(rgbPng(4, 3, 3));
  assert.equal(Array.from(s.x), Array.from(ref.data));
  assert.is(s.x.length, 3 * 3 * 4);
  assert.equal(ds.skipped, []);
});

csv(
  'filter by label (misspellings included), row numbers kept; explicit labelMap; custom columns',
  async () => {
    const bg = await ImageCsvDataset.fromCsv(standard(), { filter: 'background' });
    assert.equal(
      bg.rows.map((r) => [r.row, r.label]),
      [
        [1, 'Background'],
        [3, 'Backround'],
        [5, 'BACKGROUND'],
      ],
    );
    const pos = await ImageCsvDataset.fromCsv(standard(), { filter: ['Postive'] });
    assert.equal(
      pos.rows.map((r) => r.row),
      [2, 4],
    );
    const fn = await ImageCsvDataset.fromCsv(standard(), { filter: (label) => label === 'positive' });
    assert.is(fn.length, 2);
    await rejects(
      () => ImageCsvDataset.fromCsv(standard(), { filter: 'negative' }),
      "filter label 'negative'",
    );

    const p = manifest(
      ['a.png, CAT ', 'b.png,dog', 'c.png,Dog'],
      { 'a.png': grayPng(2, 2, 0), 'b.png': grayPng(2, 2, 128), 'c.png': grayPng(2, 2, 255) },
      'file,animal',
    );
    const ds = await ImageCsvDataset.fromCsv(p, {
      imageColumn: 'file',
      labelColumn: 'animal',
      labelMap: { Cat: 3, dog: 1 },
    });
    assert.equal(
      ds.rows.map((r) => r.y),
      [3, 1, 1],
    );
    assert.equal(ds.classes, ['0', 'dog', '2', 'cat']);
    assert.equal(ds.sampleShape, [1, 2, 2]);
    assert.equal(Array.from((await ds.get(2)).x), [1, 1, 1, 1]);
    const unlabeled = await ImageCsvDataset.fromCsv(p, {
      imageColumn: 'file',
      labelColumn: null,
      channels: 3,
    });
    assert.is((await unlabeled.get(0)).y, -1);
    assert.equal(unlabeled.sampleShape, [3, 2, 2]);
  },
);

csv('missing column, empty file, header only, ragged row, unknown label', async () => {
  const p = manifest(
    ['c1,chips/c1.png,Background'],
    { 'chips/c1.png': rgbPng(2, 2, 1) },
    'chpN,path,division',
  );
  await rejects(() => ImageCsvDataset.fromCsv(p), p, "missing column 'chpPth'", "'chpN', 'path', 'division'");
  await rejects(
    () => ImageCsvDataset.fromCsv(p, { imageColumn: 'path', labelColumn: 'label' }),
    p,
    "missing column 'label'",
  );
  const empty = put('', 'empty/trainDF.csv');
  await rejects(() => ImageCsvDataset.fromCsv(empty), empty, 'empty file');
  const blank = put('\n  \n', 'blank/trainDF.csv');
  await rejects(() => ImageCsvDataset.fromCsv(blank), blank, 'empty file');
  const headerOnly = put('chpN,chpPth,mskPth,division\n', 'hdr/trainDF.csv');
  await rejects(() => ImageCsvDataset.fromCsv(headerOnly), headerOnly, 'no data rows');
  const ragged = manifest(['c1,chips/c1.png,m,Background', 'c2,chips/c1.png,Positive'], {
    'chips/c1.png': rgbPng(2, 2, 1),
  });
  await rejects(() => ImageCsvDataset.fromCsv(ragged), ragged, 'row 2', 'has 3 fields, the header has 4');
  const unknown = manifest(['c1,chips/c1.png,m,Background', 'c2,chips/c1.png,m,Negativ'], {
    'chips/c1.png': rgbPng(2, 2, 1),
  });
  const e = await rejects(
    () => ImageCsvDataset.fromCsv(unknown),
    unknown,
    'row 2',
    "unknown label 'Negativ'",
    "column 'division'",
  );
  assert.instance(e, DataError);
  assert.is((e as DataError).row, 2);
  const quote = manifest(['c1,chips/c1.png,m,Background', 'c2,"chips/c1.png,m,Positive'], {
    'chips/c1.png': rgbPng(2, 2, 1),
  });
  await rejects(() => ImageCsvDataset.fromCsv(quote), quote, 'CSV parse error', "missing closing: '\"'");
  const emptyPath = manifest(['c1,,m,Background'], {});
  await rejects(
    () => ImageCsvDataset.fromCsv(emptyPath),
    emptyPath,
    'row 1',
    "empty value in column 'chpPth'",
  );
});

csv('missing PNG, corrupt PNG, wrong size, wrong channels: file, row and value', async () => {
  const imgs = { 'chips/ok.png': rgbPng(4, 3, 1) };
  const missing = manifest(['c1,chips/ok.png,m,Background', 'c2,chips/gone.png,m,Positive'], imgs);
  await rejects(
    () => ImageCsvDataset.fromCsv(missing),
    missing,
    "row 2, chpPth 'chips/gone.png'",
    join('chips', 'gone.png'),
    'image not found',
  );

  const corrupt = manifest(['c1,chips/ok.png,m,Background', 'c2,chips/bad.png,m,Positive'], {
    ...imgs,
    'chips/bad.png': Buffer.from('<html>not an image</html>'),
  });
  await rejects(() => ImageCsvDataset.fromCsv(corrupt), corrupt, 'row 2', 'bad.png', 'not a PNG file');

  // A PNG whose header is fine but whose pixel data is cut: found by verify 'decode', or by get().
  const cut = rgbPng(4, 3, 2);
  const truncated = manifest(['c1,chips/ok.png,m,Background', 'c2,chips/cut.png,m,Positive'], {
    ...imgs,
    'chips/cut.png': cut.subarray(0, cut.length - 30),
  });
  await rejects(
    () => ImageCsvDataset.fromCsv(truncated, { verify: 'decode' }),
    truncated,
    'row 2',
    'cut.png',
    'corrupt PNG',
  );
  const lazy = await ImageCsvDataset.fromCsv(truncated);
  assert.is(lazy.length, 2);
  await rejects(() => lazy.get(1), truncated, 'row 2', 'cut.png', 'corrupt PNG');

  const sizes = manifest(['c1,chips/ok.png,m,Background', 'c2,chips/big.png,m,Positive'], {
    ...imgs,
    'chips/big.png': rgbPng(5, 3, 2),
  });
  await rejects(
    () => ImageCsvDataset.fromCsv(sizes),
    sizes,
    'row 2',
    'big.png',
    'image is 5x3',
    'expected 4x3 (as the image of row 1)',
  );
  await rejects(
    () => ImageCsvDataset.fromCsv(sizes, { size: { height: 3, width: 5 } }),
    sizes,
    'row 1',
    'ok.png',
    'image is 4x3 (width x height), expected 5x3',
  );
  // Lazily (verify 'none'), the size check happens in get().
  const none = await ImageCsvDataset.fromCsv(sizes, { verify: 'none', size: { height: 3, width: 4 } });
  await none.get(0);
  await rejects(() => none.get(1), sizes, 'row 2', 'expected 4x3');

  const chans = manifest(['c1,chips/ok.png,m,Background', 'c2,chips/g.png,m,Positive'], {
    ...imgs,
    'chips/g.png': grayPng(4, 3, 9),
  });
  await rejects(
    () => ImageCsvDataset.fromCsv(chans),
    chans,
    'row 2',
    'g.png',
    'image has 1 channels, expected 3',
  );
  await rejects(
    () => ImageCsvDataset.fromCsv(chans, { channels: 1 }),
    chans,
    'row 1',
    'ok.png',
    'has 3 channels (RGB), expected 1',
  );
  // Forcing 3 channels makes the gray image usable.
  const forced = await ImageCsvDataset.fromCsv(chans, { channels: 3 });
  assert.equal(Array.from((await forced.get(1)).x), Array(36).fill(Math.fround(9 / 255)));
});

csv("onBadRow 'skip': bad rows listed with row, file and reason, one summary line", async () => {
  const p = manifest(
    [
      'c1,chips/ok1.png,m,Background',
      'c2,chips/gone.png,m,Background',
      'c3,chips/ok2.png,m,Unknown',
      'c4,chips/big.png,m,Positive',
      'c5,chips/bad.png,m,Positive',
      'c6,chips/ok2.png,m,Postive',
      'c7,chips/ok1.png,m',
    ],
    {
      'chips/ok1.png': rgbPng(4, 3, 1),
      'chips/ok2.png': rgbPng(4, 3, 2),
      'chips/big.png': rgbPng(8, 8, 2),
      'chips/bad.png': Buffer.from('garbage'),
    },
  );
  const lines: string[] = [];
  const ds = await ImageCsvDataset.fromCsv(p, { onBadRow: 'skip', log: (l) => lines.push(l) });
  assert.equal(
    ds.rows.map((r) => r.row),
    [1, 6],
  );
  assert.equal(
    ds.skipped.map((s) => [s.row, s.kind]),
    [
      [2, 'missing-image'],
      [3, 'unknown-label'],
      [4, 'wrong-size'],
      [5, 'corrupt-image'],
      [7, 'fields'],
    ],
  );
  assert.ok(ds.skipped[0]!.file.endsWith(join('chips', 'gone.png')));
  assert.is(ds.skipped[1]!.file, p);
  assert.match(ds.skipped[4]!.reason, 'has 3 fields');
  assert.is(lines.length, 1);
  assert.match(lines[0]!, `skipped 5 of 7 rows of ${p}`);
  assert.match(lines[0]!, '1 missing-image');
  // Every row bad: an error even in skip mode.
  const allBad = manifest(['c1,chips/gone.png,m,Background'], {});
  await rejects(
    () => ImageCsvDataset.fromCsv(allBad, { onBadRow: 'skip', ...quiet }),
    allBad,
    'no usable rows',
    '1 skipped',
  );
  const noMatch = manifest(['c1,chips/a.png,m,Background'], { 'chips/a.png': rgbPng(2, 2, 0) });
  await rejects(
    () => ImageCsvDataset.fromCsv(noMatch, { filter: 'positive' }),
    noMatch,
    'no usable rows match the filter',
  );
});

csv('cache, index checks, BOM and quoted fields, paths with backslashes', async () => {
  const p = manifest(
    ['c1,"chips\\a b.png",m,"Background"', 'c2,chips/c.png,m,Positive'],
    { 'chips/a b.png': rgbPng(2, 2, 1), 'chips/c.png': rgbPng(2, 2, 2) },
    '\ufeffchpN,chpPth,mskPth,division',
  );
  const ds = await ImageCsvDataset.fromCsv(p, { cache: true });
  const a = await ds.get(0);
  assert.is((await ds.get(0)).x, a.x, 'cached array returned again');
  await rejects(() => ds.get(2), 'out of range');
  const decoded = await ImageCsvDataset.fromCsv(p, { cache: true, verify: 'decode' });
  assert.is(decoded.length, 2);
  // Windows line ends, a pandas index column with an empty header, a blank line, an absolute path.
  const abs = put(rgbPng(2, 2, 3), 'crlf/abs.png');
  const crlf = put(
    `,chpN,chpPth,mskPth,division\r\n0,c1,img.png,m,Background\r\n\r\n1,c2,${abs},m,Positive\r\n`,
    'crlf/testDF.csv',
  );
  put(rgbPng(2, 2, 4), 'crlf/img.png');
  const w = await ImageCsvDataset.fromCsv(crlf);
  assert.equal(
    w.rows.map((r) => [r.row, r.image, r.y]),
    [
      [1, join(tmp, 'crlf', 'img.png'), 0],
      [2, abs, 1],
    ],
  );
});

csv('DataLoader over a CSV manifest: (B, C, H, W) float32 batches and int32 labels', async () => {
  const ds = await ImageCsvDataset.fromCsv(standard(), { channels: 3 });
  const loader = new DataLoader(ds, { batchSize: 2, shuffle: true, seed: 3 });
  const order = loader.order(0);
  const seen: number[] = [];
  let b = 0;
  for await (const { x, y } of loader) {
    assert.equal(x.shape, b < 2 ? [2, 3, 3, 4] : [1, 3, 3, 4]);
    assert.is(x.dtype, 'float32');
    assert.is(y.dtype, 'int32');
    const xs = await x.toArray();
    const ys = Array.from(await y.data());
    for (let k = 0; k < ys.length; k++) {
      const i = order[b * 2 + k]!;
      assert.is(ys[k], ds.rows[i]!.y);
      assert.equal(Array.from(xs.subarray(k * 36, (k + 1) * 36)), Array.from((await ds.get(i)).x));
      seen.push(i);
    }
    x.dispose();
    y.dispose();
    b++;
  }
  assert.equal(seen.sort(), [0, 1, 2, 3, 4]);
});

csv.run();
