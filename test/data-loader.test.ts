// Data pipeline, batching: DataLoader (batch shapes, dropLast, seeded per-epoch shuffle, prefetch, errors),
// TensorDataset over host arrays and GPU tensors, Subset/randomSplit and the shuffling PRNG.
import { memory, scope, tensor } from '@wgrad/tensor';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DataLoader,
  type Dataset,
  permutation,
  Rng,
  randomSplit,
  type Sample,
  Subset,
  TensorDataset,
} from '../packages/nn/src/data/index.js';
import { gpuSuite } from './helpers.js';

/** N samples of D values: sample i is [i, i + 0.5, …] with label i % 7. */
function hostData(N: number, D: number) {
  const x = new Float32Array(N * D);
  for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) x[i * D + d] = i + d / 2;
  const y = Int32Array.from({ length: N }, (_, i) => i % 7);
  return { x, y };
}

/** A dataset whose `get` is async and records the order of calls. */
class SlowDataset implements Dataset<Sample> {
  readonly calls: number[] = [];
  constructor(
    readonly length: number,
    readonly sampleShape?: readonly number[],
    private readonly bad?: number,
  ) {}
  async get(i: number): Promise<Sample> {
    this.calls.push(i);
    await new Promise((r) => setTimeout(r, 1));
    if (i === this.bad) return { x: new Float32Array(3), y: 0 };
    return { x: Float32Array.of(i, -i, i * 2, 0.5), y: i };
  }
}

/** permutation(10, 0), pinned: a change of the generator would silently change every shuffled run. */
const PINNED_PERM_10_SEED_0 = [3, 6, 1, 5, 0, 4, 2, 9, 7, 8];

const rng = suite('data: Rng');

rng('xoshiro128** matches the reference implementation', () => {
  // State (1, 2, 3, 4): outputs of the authors' C code.
  const r = new Rng(0) as unknown as { s0: number; s1: number; s2: number; s3: number; nextU32(): number };
  [r.s0, r.s1, r.s2, r.s3] = [1, 2, 3, 4];
  assert.equal(
    Array.from({ length: 6 }, () => r.nextU32()),
    [11520, 0, 5927040, 70819200, 2031721883, 1637235492],
  );
});

rng('deterministic streams and permutations, pinned values', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 5 }, () => a.nextU32());
  assert.equal(
    xs,
    Array.from({ length: 5 }, () => b.nextU32()),
  );
  assert.not.equal(
    xs,
    Array.from({ length: 5 }, () => new Rng(43).nextU32()),
  );
  assert.equal(Array.from(permutation(10, 0)), PINNED_PERM_10_SEED_0);
  for (const seed of [0, 1, -5, 2 ** 40 + 3, 0.25]) {
    const p = Array.from(permutation(100, seed)).sort((u, v) => u - v);
    assert.equal(
      p,
      Array.from({ length: 100 }, (_, i) => i),
      `permutation(100, ${seed}) is a permutation`,
    );
  }
  assert.not.equal(
    Array.from(permutation(50, 2 ** 40)),
    Array.from(permutation(50, 0)),
    'high seed bits count',
  );
  assert.not.equal(
    Array.from(permutation(50, 0.5)),
    Array.from(permutation(50, 0)),
    'fractional seeds count',
  );
});

rng('int(n) is uniform enough and in range; next() in [0, 1)', () => {
  const r = new Rng(7);
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 60000; i++) counts[r.int(6)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 400, `bucket count ${c}`);
  for (let i = 0; i < 1000; i++) {
    const v = r.next();
    assert.ok(v >= 0 && v < 1);
  }
  assert.throws(() => r.int(0), /n must be an integer/);
  assert.throws(() => new Rng(Number.NaN), /finite/);
});

rng.run();

const dl = gpuSuite('data: DataLoader');

dl('batches in order: shapes (B, D), int32 labels, last partial batch, length', async () => {
  const { x, y } = hostData(10, 3);
  const ds = TensorDataset.fromArrays(x, y, [10, 3]);
  const loader = new DataLoader(ds, { batchSize: 4 });
  assert.is(loader.length, 3);
  const shapes: number[][] = [];
  const labels: number[] = [];
  let first: number[] = [];
  for await (const b of loader) {
    shapes.push([...b.x.shape]);
    assert.is(b.x.dtype, 'float32');
    assert.is(b.y.dtype, 'int32');
    assert.equal(b.y.shape, [b.x.shape[0]]);
    labels.push(...(await b.y.data()));
    if (!first.length) first = Array.from(await b.x.toArray());
    b.x.dispose();
    b.y.dispose();
  }
  assert.equal(shapes, [
    [4, 3],
    [4, 3],
    [2, 3],
  ]);
  assert.equal(labels, Array.from(y));
  assert.equal(first, Array.from(x.subarray(0, 12)));
});

dl('dropLast, batchSize larger than the dataset, empty dataset', async () => {
  const { x, y } = hostData(10, 2);
  const ds = TensorDataset.fromArrays(x, y, [10, 2]);
  const drop = new DataLoader(ds, { batchSize: 4, dropLast: true });
  assert.is(drop.length, 2);
  let n = 0;
  for await (const b of drop) {
    assert.equal(b.x.shape, [4, 2]);
    n++;
  }
  assert.is(n, 2);
  assert.is(new DataLoader(ds, { batchSize: 32 }).length, 1);
  assert.is(new DataLoader(ds, { batchSize: 32, dropLast: true }).length, 0);
  for await (const _ of new DataLoader(ds, { batchSize: 32, dropLast: true })) assert.unreachable('no batch');
  const empty = TensorDataset.fromArrays(new Float32Array(0), [], [0, 5]);
  assert.is(new DataLoader(empty, { batchSize: 3 }).length, 0);
  for await (const _ of new DataLoader(empty)) assert.unreachable('no batch');
  assert.throws(() => new DataLoader(ds, { batchSize: 0 }), /batchSize must be a positive integer/);
  assert.throws(() => new DataLoader(ds, { batchSize: 2.5 }), /batchSize/);
});

dl('image samples: (B, C, H, W) from the dataset sampleShape, or the sampleShape option', async () => {
  const { x, y } = hostData(6, 12);
  const ds = TensorDataset.fromArrays(x, y, [6, 3, 2, 2]);
  for await (const b of new DataLoader(ds, { batchSize: 4 })) {
    assert.equal(b.x.shape.slice(1), [3, 2, 2]);
  }
  for await (const b of new DataLoader(ds, { batchSize: 4, sampleShape: [12] })) {
    assert.equal(b.x.shape.slice(1), [12]);
  }
  const slow = new SlowDataset(5, [1, 2, 2]);
  for await (const b of new DataLoader(slow, { batchSize: 5 })) assert.equal(b.x.shape, [5, 1, 2, 2]);
  const flat = new SlowDataset(5);
  for await (const b of new DataLoader(flat, { batchSize: 5 })) assert.equal(b.x.shape, [5, 4]);
  await assertRejects(async () => {
    for await (const _ of new DataLoader(ds, { batchSize: 4, sampleShape: [5] }));
  }, /sampleShape \[5\] does not fit/);
});

dl('seeded shuffle: same seed same order, epoch e uses seed + e, every sample once per epoch', async () => {
  const N = 23;
  const { x } = hostData(N, 1);
  const ds = TensorDataset.fromArrays(
    x,
    Int32Array.from({ length: N }, (_, i) => i),
    [N, 1],
  );
  const epochOrder = async (loader: DataLoader) => {
    const seen: number[] = [];
    for await (const b of loader) {
      seen.push(...(await b.y.data()));
      b.x.dispose();
      b.y.dispose();
    }
    return seen;
  };
  const a = new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 11 });
  const b = new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 11 });
  const a0 = await epochOrder(a);
  const a1 = await epochOrder(a);
  assert.is(a.epoch, 2);
  assert.equal(await epochOrder(b), a0, 'same seed, same first epoch');
  assert.equal(await epochOrder(b), a1, 'same seed, same second epoch');
  assert.not.equal(a0, a1, 'a new order each epoch');
  assert.equal(
    [...a0].sort((p, q) => p - q),
    Array.from({ length: N }, (_, i) => i),
  );
  assert.equal(a0, Array.from(permutation(N, 11)));
  assert.equal(a1, Array.from(permutation(N, 12)));
  // A loader seeded 12 starts where `a` was at epoch 1; setEpoch resumes a run.
  assert.equal(await epochOrder(new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 12 })), a1);
  const c = new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 11 });
  c.setEpoch(1);
  assert.equal(await epochOrder(c), a1);
  assert.not.equal(await epochOrder(new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 99 })), a0);
  // Without shuffle, the order is 0..N-1 every epoch.
  const plain = new DataLoader(ds, { batchSize: 5 });
  assert.equal(
    await epochOrder(plain),
    Array.from({ length: N }, (_, i) => i),
  );
  assert.equal(
    await epochOrder(plain),
    Array.from({ length: N }, (_, i) => i),
  );
  // x follows y through the shuffle.
  for await (const batch of new DataLoader(ds, { batchSize: 7, shuffle: true, seed: 5 }))
    assert.equal(Array.from(await batch.x.toArray()), Array.from(await batch.y.toArray()));
});

dl('prefetch: the next batch is read on the host while the caller works, but not uploaded', async () => {
  const ds = new SlowDataset(10);
  const it = new DataLoader(ds, { batchSize: 3 })[Symbol.asyncIterator]();
  const before = memory().liveTensors;
  const first = await it.next();
  assert.ok(!first.done);
  assert.equal(Array.from(await first.value.y.data()), [0, 1, 2]);
  // While we hold batch 0, samples 3..5 are being read already; only batch 0 is on the GPU.
  assert.equal(ds.calls, [0, 1, 2, 3, 4, 5]);
  assert.is(memory().liveTensors, before + 2);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(ds.calls, [0, 1, 2, 3, 4, 5], 'one batch ahead, no more');
  const second = await it.next();
  assert.ok(!second.done);
  assert.equal(Array.from(await second.value.y.data()), [3, 4, 5]);
  assert.equal(ds.calls, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  await it.return(undefined);

  const lazy = new SlowDataset(10);
  const it2 = new DataLoader(lazy, { batchSize: 3, prefetch: false })[Symbol.asyncIterator]();
  await it2.next();
  assert.equal(lazy.calls, [0, 1, 2], 'no prefetch');
  await it2.return(undefined);
});

dl(
  'a bad sample fails its own batch, naming it; earlier batches are delivered; no unhandled rejection',
  async () => {
    const ds = new SlowDataset(8, undefined, 5);
    const got: number[] = [];
    await assertRejects(async () => {
      for await (const b of new DataLoader(ds, { batchSize: 2 })) got.push(...(await b.y.data()));
    }, /DataLoader: sample 5 has 3 values, expected 4/);
    assert.equal(got, [0, 1, 2, 3]);
    const badLabel: Dataset = { length: 2, get: (i) => ({ x: new Float32Array(2), y: i === 1 ? 0.5 : 0 }) };
    await assertRejects(async () => {
      for await (const _ of new DataLoader(badLabel, { batchSize: 2 }));
    }, /sample 1 has label 0.5, not a 32-bit integer/);
    // Breaking out early leaves no tensors behind (the suite checks) and no pending failure.
    for await (const b of new DataLoader(ds, { batchSize: 2 })) {
      assert.equal(b.x.shape, [2, 4]);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  },
);

dl('batches made inside scope() are freed with it', async () => {
  const { x, y } = hostData(8, 4);
  const loader = new DataLoader(TensorDataset.fromArrays(x, y, [8, 4]), { batchSize: 4 });
  const before = memory().liveTensors;
  await scope(async () => {
    for await (const { x: bx } of loader) assert.equal(bx.shape, [4, 4]);
  });
  assert.is(memory().liveTensors, before);
});

dl('TensorDataset over GPU tensors batches by gather on the GPU; get() reads back', async () => {
  const N = 9;
  const { x, y } = hostData(N, 6);
  const host = TensorDataset.fromArrays(x, y, [N, 2, 3]);
  const gx = tensor(x, { shape: [N, 2, 3] });
  const gy = tensor(y, { shape: [N] });
  const gpu = TensorDataset.fromTensors(gx, gy);
  assert.ok(gpu.onGpu);
  assert.equal(gpu.sampleShape, [2, 3]);
  const opts = { batchSize: 4, shuffle: true, seed: 2 };
  const hb: number[][] = [];
  for await (const b of new DataLoader(host, opts))
    hb.push([...(await b.x.toArray()), ...(await b.y.toArray())]);
  const gb: number[][] = [];
  for await (const b of new DataLoader(gpu, opts)) {
    assert.equal(b.x.shape.slice(1), [2, 3]);
    assert.is(b.y.dtype, 'int32');
    gb.push([...(await b.x.toArray()), ...(await b.y.toArray())]);
  }
  assert.equal(gb, hb);
  for await (const b of new DataLoader(gpu, { batchSize: 9, sampleShape: [6] })) {
    assert.equal(b.x.shape, [9, 6]);
    assert.equal(Array.from(await b.x.toArray()), Array.from(x));
  }
  const s = await gpu.get(4);
  assert.equal(Array.from(s.x), Array.from(x.subarray(24, 30)));
  assert.is(s.y, y[4]);
  const h = await host.get(4);
  assert.equal(Array.from(h.x), Array.from(s.x));
  assert.throws(() => TensorDataset.fromTensors(gx, tensor([1, 2]).int()), /y must have shape \[9\]/);
});

dl('TensorDataset validation; Subset and randomSplit', async () => {
  assert.throws(
    () => TensorDataset.fromArrays(new Float32Array(5), [0], [1, 4]),
    /5 values do not fill shape \[1, 4\]/,
  );
  assert.throws(() => TensorDataset.fromArrays(new Float32Array(8), [0], [2, 4]), /1 labels for 2 samples/);
  assert.throws(() => TensorDataset.fromArrays(new Float32Array(4), [0.5], [1, 4]), /label 0 is 0.5/);
  const ds = TensorDataset.fromArrays(new Float32Array(20), [0, 1, 2, 3, 4], [5, 4], { classes: ['a', 'b'] });
  assert.throws(() => ds.get(5), /index 5 out of range \[0, 5\)/);
  const sub = new Subset(ds, [4, 0]);
  assert.is(sub.length, 2);
  assert.is((await sub.get(0)).y, 4);
  assert.equal(sub.sampleShape, [4]);
  assert.equal(sub.classes, ['a', 'b']);
  assert.throws(() => new Subset(ds, [5]), /out of range/);
  const [p, q] = randomSplit(ds, [3, 2], 1);
  const all = [...p!.indices, ...q!.indices].sort();
  assert.equal(all, [0, 1, 2, 3, 4]);
  assert.equal(Array.from(randomSplit(ds, [3, 2], 1)[0]!.indices), Array.from(p!.indices));
  assert.throws(() => randomSplit(ds, [3, 3]), /adding up to 5/);
  for await (const b of new DataLoader(q!, { batchSize: 2 })) assert.equal(b.x.shape, [2, 4]);
});

dl.run();

async function assertRejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}
