// Seeded GPU random numbers: reproducibility under manualSeed, distinct streams, and the moments of rand
// (uniform [0, 1)) and randn (standard normal) on 1e6 samples.
import { manualSeed, rand, randn, rngState, setRngState } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { gpuSuite } from './helpers.js';

const t = gpuSuite('random');

const same = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  a.length === b.length && Array.prototype.every.call(a, (v: number, i: number) => v === b[i]);

function moments(v: Float32Array) {
  let s = 0;
  let s2 = 0;
  for (const x of v) {
    s += x;
    s2 += x * x;
  }
  const mean = s / v.length;
  return { mean, var: s2 / v.length - mean * mean };
}

t('manualSeed makes every random op reproducible; different seeds differ', async () => {
  manualSeed(1234);
  const a1 = await rand([1000]).toArray();
  const b1 = await randn([3, 7]).toArray();
  manualSeed(1234);
  const a2 = await rand([1000]).toArray();
  const b2 = await randn([3, 7]).toArray();
  assert.ok(same(a1, a2), 'rand reproducible');
  assert.ok(same(b1, b2), 'randn reproducible');
  manualSeed(1235);
  const a3 = await rand([1000]).toArray();
  assert.not.ok(same(a1, a3), 'a different seed gives different numbers');
  // large seeds use the high word too
  manualSeed(2 ** 32 + 5);
  const hi = await rand([100]).toArray();
  manualSeed(5);
  const lo = await rand([100]).toArray();
  assert.not.ok(same(hi, lo), 'seeds differing in the high word differ');
  manualSeed(-1);
  assert.ok((await rand([10]).toArray()).every((v) => v >= 0 && v < 1));
  assert.throws(() => manualSeed(Number.NaN), /manualSeed: seed must be a finite number, got NaN/);
});

t('consecutive calls differ; rngState/setRngState replay a stream', async () => {
  manualSeed(7);
  const a = await rand([256]).toArray();
  const b = await rand([256]).toArray();
  assert.not.ok(same(a, b), 'consecutive calls differ');
  const st = rngState();
  const c = await randn([64]).toArray();
  setRngState(st);
  const d = await randn([64]).toArray();
  assert.ok(same(c, d), 'setRngState replays');
  // values inside one call are distinct (no repeated blocks of 4)
  const e = await rand([4096]).toArray();
  assert.ok(new Set(e).size > 4090);
  // a prefix is not shared between sizes: the element index, not the size, keys the stream
  manualSeed(9);
  const short = await rand([10]).toArray();
  manualSeed(9);
  const long = await rand([1001]).toArray();
  assert.ok(same(short, long.slice(0, 10)), 'same seed and call: shorter is a prefix');
});

t('rand: range [0,1), mean 1/2, variance 1/12; low/high', async () => {
  manualSeed(42);
  const n = 1_000_000;
  const v = await rand([1000, 1000]).toArray();
  assert.is(v.length, n);
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  assert.ok(lo >= 0 && hi < 1, `range [${lo}, ${hi}]`);
  assert.ok(lo < 1e-4 && hi > 1 - 1e-4, 'covers the interval');
  const m = moments(v);
  assert.ok(Math.abs(m.mean - 0.5) < 2e-3, `mean ${m.mean}`);
  assert.ok(Math.abs(m.var - 1 / 12) < 1e-3, `var ${m.var}`);
  // deciles are roughly equally full
  const bins = new Array<number>(10).fill(0);
  for (const x of v) bins[Math.floor(x * 10)]!++;
  for (const b of bins) assert.ok(Math.abs(b - n / 10) < 2000, `decile count ${b}`);
  const w = await rand([10000], { low: -3, high: 5 }).toArray();
  assert.ok(w.every((x) => x >= -3 && x < 5));
  const mw = moments(w);
  assert.ok(Math.abs(mw.mean - 1) < 0.1, `mean ${mw.mean}`);
});

t('randn: mean 0, std 1, tails; mean/std options', async () => {
  manualSeed(43);
  const v = await randn([1_000_000]).toArray();
  const m = moments(v);
  assert.ok(Math.abs(m.mean) < 5e-3, `mean ${m.mean}`);
  assert.ok(Math.abs(Math.sqrt(m.var) - 1) < 3e-3, `std ${Math.sqrt(m.var)}`);
  let over2 = 0;
  let over3 = 0;
  let pos = 0;
  for (const x of v) {
    if (!Number.isFinite(x)) throw new Error(`non-finite sample ${x}`);
    if (Math.abs(x) > 2) over2++;
    if (Math.abs(x) > 3) over3++;
    if (x > 0) pos++;
  }
  // P(|z| > 2) = 0.0455, P(|z| > 3) = 0.0027
  assert.ok(Math.abs(over2 / v.length - 0.0455) < 1.5e-3, `P(|z|>2) ${over2 / v.length}`);
  assert.ok(Math.abs(over3 / v.length - 0.0027) < 4e-4, `P(|z|>3) ${over3 / v.length}`);
  assert.ok(Math.abs(pos / v.length - 0.5) < 3e-3, `P(z>0) ${pos / v.length}`);
  const w = await randn([20000], { mean: 3, std: 0.5 }).toArray();
  const mw = moments(w);
  assert.ok(Math.abs(mw.mean - 3) < 0.02, `mean ${mw.mean}`);
  assert.ok(Math.abs(Math.sqrt(mw.var) - 0.5) < 0.02, `std ${Math.sqrt(mw.var)}`);
  assert.throws(() => randn([2], { std: -1 }), /randn: std must be ≥ 0, got -1/);
});

t('shapes, sizes not a multiple of 4, empty', async () => {
  const a = rand([3, 1, 5]);
  assert.equal([...a.shape], [3, 1, 5]);
  assert.is(a.dtype, 'float32');
  assert.not.ok(a.requiresGrad);
  const b = await randn([7]).toArray();
  assert.ok(
    b.every((x) => x !== 0 && Number.isFinite(x)),
    'every element written',
  );
  assert.is(rand([0, 3]).size, 0);
  assert.is((await rand([]).toArray()).length, 1);
});

t('requiresGrad: a leaf that records, like torch.randn(..., requires_grad=True)', async () => {
  const w = randn([4, 3], { requiresGrad: true });
  const u = rand([4, 3], { low: -1, high: 1, requiresGrad: true });
  assert.ok(w.requiresGrad && u.requiresGrad);
  w.mul(u).sum().backward();
  assert.equal([...(await w.grad!.toArray())], [...(await u.toArray())]);
  assert.equal([...(await u.grad!.toArray())], [...(await w.toArray())]);
});

t.run();
