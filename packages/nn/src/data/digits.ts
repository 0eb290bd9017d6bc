// scikit-learn's 8x8 handwritten digits, shipped with this package (data/digits.csv.gz; see data/README.md).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { type LabeledArrays, TensorDataset } from './dataset.js';
import { DataError, errorText } from './errors.js';
import { isGzip } from './idx.js';
import { checkLimit, MNIST_CLASSES } from './mnist.js';

const gunzipAsync = promisify(gunzip);

/** The copy of scikit-learn's digits.csv.gz shipped in this package's data/ folder. */
export function digitsPath(): string {
  // src/data/mnist.ts and dist/data/mnist.js are both two levels below the package root.
  return fileURLToPath(new URL('../../data/digits.csv.gz', import.meta.url));
}

/**
 * scikit-learn's 8x8 handwritten digits (the test set of UCI "Optical Recognition of Handwritten Digits"):
 * 1,797 images whose 64 pixels count 0..16, as float32 values/16 in [0, 1] of shape [N, 1, 8, 8] with int32
 * labels 0..9. Read from the copy shipped with @wgrad/nn (data/digits.csv.gz), or `opts.path`.
 */
export async function loadDigits(opts: { limit?: number; path?: string } = {}): Promise<LabeledArrays> {
  checkLimit('loadDigits', opts.limit);
  const file = opts.path ?? digitsPath();
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
    if (isGzip(bytes)) bytes = await gunzipAsync(bytes);
  } catch (e) {
    throw new DataError({ file, reason: `cannot read digits data: ${errorText(e)}` }, { cause: e });
  }
  const lines = new TextDecoder().decode(bytes).split('\n');
  const rows: number[][] = [];
  for (let r = 0; r < lines.length; r++) {
    const line = lines[r]!.trim();
    if (!line) continue;
    const v = line.split(',').map(Number);
    const row = rows.length + 1;
    if (v.length !== 65)
      throw new DataError({
        file,
        row,
        reason: `has ${v.length} values, expected 64 pixels and a label: '${line}'`,
      });
    const badAt = v.findIndex((x, i) => !Number.isInteger(x) || x < 0 || x > (i === 64 ? 9 : 16));
    if (badAt >= 0)
      throw new DataError({
        file,
        row,
        reason: `${badAt === 64 ? 'label' : `pixel ${badAt}`} is '${line.split(',')[badAt]}', expected an integer 0..${badAt === 64 ? 9 : 16}`,
      });
    rows.push(v);
    if (opts.limit && rows.length === opts.limit) break;
  }
  if (!rows.length) throw new DataError({ file, reason: 'no data rows' });
  const n = rows.length;
  const images = new Float32Array(n * 64);
  const labels = new Int32Array(n);
  rows.forEach((v, i) => {
    for (let j = 0; j < 64; j++) images[i * 64 + j] = v[j]! / 16;
    labels[i] = v[64]!;
  });
  return { images, labels, shape: [n, 1, 8, 8], classes: MNIST_CLASSES };
}

/** The 8x8 digits as a TensorDataset (host arrays; see loadDigits). */
export async function digitsDataset(opts: { limit?: number; path?: string } = {}): Promise<TensorDataset> {
  return TensorDataset.from(await loadDigits(opts));
}
