// Reductions over any set of axes (adjacent, non-adjacent, negative, keepdim), large and many-output
// reductions, arg-reductions, var/std, logsumexp/softmax/logSoftmax, ties and NaN, and every backward.
import {
  argmax,
  logSoftmax,
  logsumexp,
  max,
  mean,
  min,
  noGrad,
  softmax,
  sum,
  sumOfSquares,
  type Tensor,
  tensor,
  variance,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('reduce');

type Axes = number | number[] | undefined;
const list = (axes: Axes, rank: number): number[] =>
  axes === undefined ? [...Array(rank).keys()] : typeof axes === 'number' ? [axes] : axes;
const norm = (axes: Axes, rank: number) => list(axes, rank).map((a) => (a < 0 ? a + rank : a));
const squeezeShape = (shape: number[], axes: Axes, keepdim: boolean) => {
  const ax = norm(axes, shape.length);
  return keepdim ? shape.map((d, i) => (ax.includes(i) ? 1 : d)) : shape.filter((_, i) => !ax.includes(i));
};

// Composite references built from the primitive ones.
function refVar(x: R.RefTensor, axes: Axes, correction = 1, keepdim = false): R.RefTensor {
  const ax = list(axes, x.shape.length);
  const m = R.reduce(x, ax, true, 'mean');
  const d2 = R.binary(x, m, (p, q) => (p - q) ** 2);
  const n = norm(axes, x.shape.length).reduce((acc, a) => acc * x.shape[a]!, 1);
  return R.unary(R.reduce(d2, ax, keepdim, 'sum'), (v) => v / Math.max(n - correction, 0));
}
function refLogsumexp(x: R.RefTensor, axes: Axes, keepdim = false): R.RefTensor {
  const ax = list(axes, x.shape.length);
  const m = R.reduce(x, ax, true, 'max');
  const s = R.reduce(
    R.binary(x, m, (p, q) => Math.exp(p - q)),
    ax,
    true,
    'sum',
  );
  const r = R.binary(s, m, (p, q) => Math.log(p) + q);
  return R.reshape(r, squeezeShape(x.shape, axes, keepdim));
}
const refLogSoftmax = (x: R.RefTensor, dim: number) =>
  R.binary(x, refLogsumexp(x, dim, true), (p, q) => p - q);
const refSoftmax = (x: R.RefTensor, dim: number) => R.unary(refLogSoftmax(x, dim), Math.exp);

const AXES: Axes[] = [undefined, 0, -1, 2, [1], [0, 2], [1, 3], [0, 3], [-1, -3], [0, 1, 2, 3], [2, 1]];
const OPS = ['sum', 'mean', 'max', 'min'] as const;
const gpuReduce = (op: (typeof OPS)[number], x: Tensor, axes: Axes, keepdim: boolean) =>
  op === 'sum'
    ? x.sum(axes, keepdim)
    : op === 'mean'
      ? x.mean(axes, keepdim)
      : op === 'max'
        ? x.max(axes, keepdim)
        : x.min(axes, keepdim);

t('sum/mean/max/min over every kind of axis set, with and without keepdim', async () => {
  const x = randRef([2, 3, 4, 5], 1);
  const X = fromRef(x);
  for (const op of OPS)
    for (const axes of AXES)
      for (const keepdim of [false, true]) {
        const y = gpuReduce(op, X, axes, keepdim);
        await expectClose(
          y,
          R.reduce(x, list(axes, 4), keepdim, op),
          `${op}(${JSON.stringify(axes)}, ${keepdim})`,
        );
      }
});

t('free-function reductions and 0-d / size-1 inputs', async () => {
  const x = randRef([3, 4], 2);
  const X = fromRef(x);
  await expectClose(sum(X, 1), R.reduce(x, [1], false, 'sum'), 'sum()');
  await expectClose(mean(X, 0, true), R.reduce(x, [0], true, 'mean'), 'mean()');
  await expectClose(max(X), R.reduce(x, undefined, false, 'max'), 'max()');
  await expectClose(min(X, -1), R.reduce(x, [-1], false, 'min'), 'min()');
  const s = tensor(2.5);
  assert.equal([...s.sum().shape], []);
  assert.is(await s.sum().item(), 2.5);
  assert.is(await s.max().item(), 2.5);
  assert.is(await s.mean(0).item(), 2.5);
  const one = tensor([[7]]);
  assert.equal([...one.sum(undefined, true).shape], [1, 1]);
  assert.is(await one.min(1).item(), 7);
});

t('full reductions on awkward sizes', async () => {
  for (const n of [1, 7, 127, 1000, 4097, 65537]) {
    const x = randRef([n], n);
    const X = fromRef(x);
    for (const op of OPS)
      await expectClose(gpuReduce(op, X, undefined, false), R.reduce(x, undefined, false, op), `${op}[${n}]`);
  }
});

t('large full reductions stay accurate (1e6 elements)', async () => {
  const n = 1_000_000;
  const data = new Float32Array(n);
  const r = R.rng(3);
  for (let i = 0; i < n; i++) data[i] = r();
  let exact = 0;
  for (const v of data) exact += v;
  const x = tensor(data);
  R.assertClose([await x.sum().item()], [exact], { rtol: 2e-6, atol: 0, what: 'sum 1e6' });
  R.assertClose([await x.mean().item()], [exact / n], { rtol: 2e-6, atol: 0, what: 'mean 1e6' });
  // integer-valued sums are exact in float32 below 2^24
  assert.is(
    await tensor(new Float32Array(n + 1).fill(1))
      .sum()
      .item(),
    n + 1,
  );
  // extreme at the very end and the very start
  data[n - 1] = 5;
  data[0] = -5;
  const y = tensor(data);
  assert.is(await y.max().item(), 5);
  assert.is(await y.min().item(), -5);
  assert.is(await y.argmax().item(), n - 1);
  assert.is(await y.argmin().item(), 0);
});

t('reductions producing many outputs', async () => {
  const a = randRef([30000, 7], 4);
  const A = fromRef(a);
  await expectClose(A.sum(-1), R.reduce(a, [-1], false, 'sum'), 'sum rows');
  await expectClose(A.max(1, true), R.reduce(a, [1], true, 'max'), 'max rows');
  const b = randRef([5, 20000], 5);
  const B = fromRef(b);
  await expectClose(B.sum(0), R.reduce(b, [0], false, 'sum'), 'sum cols');
  await expectClose(B.mean(0), R.reduce(b, [0], false, 'mean'), 'mean cols');
  const c = randRef([3, 2000, 3], 6);
  await expectClose(fromRef(c).min(1), R.reduce(c, [1], false, 'min'), 'min middle');
  // long reduced axis with several outputs: the multi-pass (chunked) path
  const d = randRef([3, 50000], 7);
  await expectClose(fromRef(d).sum(1), R.reduce(d, [1], false, 'sum'), 'sum long rows', 1e-4, 1e-3);
  await expectClose(fromRef(d).max(-1), R.reduce(d, [1], false, 'max'), 'max long rows');
  const e = randRef([40000, 2], 8);
  await expectClose(fromRef(e).sum(0), R.reduce(e, [0], false, 'sum'), 'sum long cols', 1e-4, 1e-3);
  await expectClose(fromRef(e).min(0), R.reduce(e, [0], false, 'min'), 'min long cols');
});

t('empty reductions: sum of nothing is 0, max of nothing throws', async () => {
  const x = tensor(new Float32Array(0), { shape: [3, 0] });
  assert.equal(Array.from(await x.sum(1).toArray()), [0, 0, 0]);
  assert.equal([...x.sum(0).shape], [0]);
  assert.throws(() => x.max(1), /max: cannot reduce an empty dimension \(shape \[3,0\]\)/);
  assert.throws(() => x.argmin(1), /argmin: cannot reduce an empty dimension/);
});

t(
  'sumOfSquares over tensors of any shapes (empty, one slot, many, two reduction levels) and its gradient',
  async () => {
    // 300,000 elements give 1,172 partial sums: more than one pass of reduceAKB after the per-tensor passes.
    const refs = [[3], [2, 5, 7], [0, 4], [1000], [300000], [1]].map((s, i) => randRef(s, 30 + i));
    const xs = refs.map((r) => fromRef(r));
    const y = sumOfSquares(xs);
    assert.equal(y.shape, []);
    let want = 0;
    for (const r of refs) for (const v of r.data) want += v * v;
    R.assertClose([await y.item()], [want], { what: 'sumOfSquares', rtol: 1e-5 });
    // Each tensor lands in its own slots: the same tensors in another order give the same sum.
    const y2 = sumOfSquares([...xs].reverse());
    R.assertClose([await y2.item()], [want], { what: 'sumOfSquares reversed', rtol: 1e-5 });
    const none = sumOfSquares([]);
    const empty = sumOfSquares([xs[2]!]);
    assert.equal([await none.item(), await empty.item()], [0, 0]);
    for (const v of [y, y2, none, empty, ...xs]) v.dispose();
    const sq = (rs: R.RefTensor[]) =>
      R.ref([], [rs.reduce((a, r) => a + r.data.reduce((b, v) => b + v * v, 0), 0)]);
    await checkGrad('sumOfSquares', [randRef([3, 4], 41), randRef([5], 42)], (ts) => sumOfSquares(ts), sq);
    const ints = tensor([1, 2], { dtype: 'int32' });
    assert.throws(() => sumOfSquares([ints]), /sumOfSquares: tensor 0 must be float32, got int32/);
    ints.dispose();
  },
);

t('reduction backward over adjacent, non-adjacent and negative axes', async () => {
  const x = randRef([2, 3, 4], 9);
  for (const op of OPS)
    for (const axes of [undefined, 1, [0, 2], [-1], [0, 1]] as Axes[])
      for (const keepdim of [false, true])
        await checkGrad(
          `${op}(${JSON.stringify(axes)}, ${keepdim})`,
          [x],
          ([a]) => gpuReduce(op, a!, axes, keepdim),
          ([a]) => R.reduce(a!, list(axes, 3), keepdim, op),
        );
});

t('max/min gradients are shared equally between tied extremes', async () => {
  const x = tensor(
    [
      [1, 3, 3],
      [2, 2, 2],
      [0, -1, 5],
    ],
    { requiresGrad: true },
  );
  x.max(1).sum().backward();
  R.assertClose(await x.grad!.toArray(), [0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3, 0, 0, 1], { what: 'max ties' });
  const y = tensor([4, 1, 4, 1, 4], { requiresGrad: true });
  y.max().mul(6).backward();
  assert.equal(Array.from(await y.grad!.toArray()), [2, 0, 2, 0, 2]);
  const z = tensor([4, 1, 4, 1, 4], { requiresGrad: true });
  z.min().backward(tensor(3));
  assert.equal(Array.from(await z.grad!.toArray()), [0, 1.5, 0, 1.5, 0]);
  // ties over a non-adjacent axis pair with keepdim
  const w = tensor([1, 2, 0, 3, 2, 0, 3, 0], { shape: [2, 2, 2], requiresGrad: true });
  w.max([0, 2], true).sum().backward();
  assert.equal(Array.from(await w.grad!.toArray()), [0, 0.5, 0, 0.5, 0.5, 0, 0.5, 0]);
});

t('NaN propagates through max/min/sum and argmax/argmin point at it', async () => {
  const nanAt = (v: number[], i: number) =>
    tensor(v).add(
      tensor([-1])
        .sqrt()
        .pad([i, v.length - 1 - i], 0),
    );
  for (const i of [0, 1, 2]) {
    const x = nanAt([1, 2, 3], i);
    assert.ok(Number.isNaN(await x.max().item()), `max with NaN at ${i}`);
    assert.ok(Number.isNaN(await x.min().item()), `min with NaN at ${i}`);
    assert.ok(Number.isNaN(await x.sum().item()), `sum with NaN at ${i}`);
    assert.is(await x.argmax().item(), i, `argmax with NaN at ${i}`);
    assert.is(await x.argmin().item(), i, `argmin with NaN at ${i}`);
  }
  // in the multi-pass path too
  const big = nanAt(new Array<number>(100000).fill(1), 77777);
  assert.ok(Number.isNaN(await big.max().item()), 'max of 1e5 with one NaN');
  assert.ok(Number.isNaN(await big.min().item()), 'min of 1e5 with one NaN');
  const rows = big.reshape(100, 1000).max(1);
  const r = await rows.toArray();
  assert.ok(Number.isNaN(r[77]!) && r.filter(Number.isNaN).length === 1, 'row max with NaN');
});

t('argmax/argmin along dims, flattened, keepdim, first index on ties', async () => {
  const x = R.unary(randRef([3, 4, 5], 10), (v) => Math.round(v * 3));
  const X = fromRef(x);
  for (const op of ['argmax', 'argmin'] as const) {
    for (const dim of [0, 1, 2, -1, -3])
      for (const keepdim of [false, true]) {
        const y = op === 'argmax' ? X.argmax(dim, keepdim) : X.argmin(dim, keepdim);
        assert.is(y.dtype, 'int32');
        await expectClose(y, R.argReduce(x, dim, keepdim, op), `${op}(${dim}, ${keepdim})`, 0, 0);
      }
    const flat = R.reshape(x, [60]);
    const yf = op === 'argmax' ? X.argmax() : X.argmin();
    assert.equal([...yf.shape], []);
    await expectClose(yf, R.argReduce(flat, 0, false, op), `${op}()`, 0, 0);
    const yk = op === 'argmax' ? X.argmax(undefined, true) : X.argmin(undefined, true);
    assert.equal([...yk.shape], [1, 1, 1]);
  }
  assert.is(await argmax(tensor([1, 3, 3, 2])).item(), 1);
  assert.is(await tensor([2, 0, 5, 0]).argmin().item(), 1);
  const w = tensor([1, 2], { requiresGrad: true });
  assert.is(w.argmax().requiresGrad, false);
  assert.throws(() => tensor(Int32Array.from([1])).argmax(), /argmax: expected a float32 tensor, got int32/);
});

t('var/std with corrections, axes and keepdim', async () => {
  const x = randRef([3, 4, 5], 11);
  const X = fromRef(x);
  const cases: [Axes, number, boolean][] = [
    [undefined, 1, false],
    [undefined, 0, false],
    [1, 1, false],
    [[0, 2], 1, true],
    [-1, 0, true],
    [[2, 0], 2, false],
  ];
  for (const [axes, correction, keepdim] of cases) {
    const what = `var(${JSON.stringify(axes)}, c=${correction}, ${keepdim})`;
    const ref = refVar(x, axes, correction, keepdim);
    await expectClose(X.var(axes, { correction, keepdim }), ref, what);
    await expectClose(variance(X, axes, { correction, keepdim }), ref, what);
    await expectClose(X.std(axes, { correction, keepdim }), R.unary(ref, Math.sqrt), `s${what}`);
    await checkGrad(
      what,
      [x],
      ([a]) => a!.var(axes, { correction, keepdim }),
      ([a]) => refVar(a!, axes, correction, keepdim),
    );
  }
  await checkGrad(
    'std(1)',
    [x],
    ([a]) => a!.std(1),
    ([a]) => R.unary(refVar(a!, 1), Math.sqrt),
  );
  // unbiased variance of one sample is NaN (0/0), like PyTorch
  assert.ok(Number.isNaN(await tensor([3]).var().item()));
  assert.is(await tensor([3]).var(undefined, { correction: 0 }).item(), 0);
  R.assertClose([await tensor([1, 2, 3, 4]).var().item()], [5 / 3]);
});

t('logsumexp, softmax, logSoftmax: forward, stability and backward', async () => {
  const x = randRef([3, 4, 5], 12, -3, 3);
  const X = fromRef(x);
  for (const axes of [0, -1, [0, 2], [1]] as Axes[])
    for (const keepdim of [false, true]) {
      const what = `logsumexp(${JSON.stringify(axes)}, ${keepdim})`;
      await expectClose(X.logsumexp(axes as number, keepdim), refLogsumexp(x, axes, keepdim), what);
      await expectClose(logsumexp(X, axes as number[], keepdim), refLogsumexp(x, axes, keepdim), what);
      await checkGrad(
        what,
        [x],
        ([a]) => a!.logsumexp(axes as number, keepdim),
        ([a]) => refLogsumexp(a!, axes, keepdim),
      );
    }
  for (const dim of [0, 1, -1]) {
    await expectClose(X.softmax(dim), refSoftmax(x, dim), `softmax(${dim})`);
    await expectClose(softmax(X, dim), refSoftmax(x, dim), `softmax(${dim})`);
    await expectClose(X.logSoftmax(dim), refLogSoftmax(x, dim), `logSoftmax(${dim})`);
    await expectClose(logSoftmax(X, dim), refLogSoftmax(x, dim), `logSoftmax(${dim})`);
    await checkGrad(
      `softmax(${dim})`,
      [x],
      ([a]) => a!.softmax(dim),
      ([a]) => refSoftmax(a!, dim),
    );
    await checkGrad(
      `logSoftmax(${dim})`,
      [x],
      ([a]) => a!.logSoftmax(dim),
      ([a]) => refLogSoftmax(a!, dim),
    );
  }
  // large logits: no overflow, rows sum to 1
  const big = tensor([
    [1000, 1001, 1002],
    [-1000, -1000, -1000],
  ]);
  const sm = await big.softmax(1).toArray();
  const e = [Math.exp(-2), Math.exp(-1), 1];
  const z = e[0]! + e[1]! + 1;
  R.assertClose(sm, [...e.map((v) => v / z), 1 / 3, 1 / 3, 1 / 3], { what: 'softmax large' });
  R.assertClose(await big.logsumexp(1).toArray(), [1002 + Math.log(z), -1000 + Math.log(3)], {
    what: 'logsumexp large',
  });
  R.assertClose(
    await big.logSoftmax(-1).toArray(),
    [...e.map((v) => Math.log(v / z)), -Math.log(3), -Math.log(3), -Math.log(3)],
    {
      what: 'logSoftmax large',
    },
  );
  // a softmax row sums to 1 exactly enough for 1000 classes
  const wide = fromRef(randRef([2, 1000], 13, -5, 5))
    .softmax(1)
    .sum(1);
  R.assertClose(await wide.toArray(), [1, 1], { rtol: 1e-5 });
});

t('composite reductions record no stray graph nodes and leave no temporaries in noGrad', async () => {
  const x = fromRef(randRef([4, 5, 6], 14), { requiresGrad: true });
  const y = x.sum([0, 2]);
  assert.is(y.gradFn?.op, 'sum');
  assert.is(y.gradFn?.inputs[0], x);
  const l = x.logsumexp(1);
  // the max shift is a constant: the graph of logsumexp never reaches a 'max' node
  const ops = new Set<string>();
  const walk = (u: Tensor) => {
    if (!u.gradFn) return;
    ops.add(u.gradFn.op);
    for (const i of u.gradFn.inputs) walk(i);
  };
  walk(l);
  assert.not.ok(ops.has('max'), `logsumexp graph ops: ${[...ops]}`);
  assert.not.ok(ops.has('permute'), `logsumexp graph ops: ${[...ops]}`);
  noGrad(() => {
    const m = x.sum([0, 2]);
    assert.is(m.requiresGrad, false);
    assert.is(m.gradFn, null);
  });
});

t('reduction errors name the op, the dim and the shape', () => {
  const x = tensor(new Float32Array(6), { shape: [2, 3] });
  assert.throws(() => x.sum(2), /sum: dim 2 is out of range for a tensor of rank 2/);
  assert.throws(() => x.mean(-3), /mean: dim -3 is out of range for a tensor of rank 2/);
  assert.throws(() => x.max([0, -2]), /max: repeated dim in \[0,0\]/);
  assert.throws(() => x.min(0.5), /min: dim 0.5 is out of range/);
  assert.throws(() => x.argmax(5), /argmax: dim 5 is out of range/);
  assert.throws(() => x.var(3), /var: dim 3 is out of range/);
  assert.throws(() => x.logsumexp(-4), /logsumexp: dim -4 is out of range/);
  assert.throws(() => x.softmax(2), /dim 2 is out of range/);
  const i = tensor(Int32Array.from([1, 2]));
  assert.throws(() => i.sum(), /sum: expected a float32 tensor, got int32 \(use \.float\(\)\)/);
  assert.throws(() => i.max(), /max: expected a float32 tensor, got int32/);
});

t.run();
