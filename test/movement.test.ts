// Movement ops: reshape/flatten/squeeze/unsqueeze views, permute/transpose/expand copies, slice with steps and
// negative indices, narrow, pad (incl. negative crop), concat/stack, indexSelect/gather, oneHot; forward
// against the reference and every backward against finite differences.
import {
  cat,
  concat,
  expand,
  flatten,
  gather,
  indexSelect,
  memory,
  narrow,
  oneHot,
  pad,
  permute,
  reshape,
  slice,
  squeeze,
  stack,
  type Tensor,
  tensor,
  transpose,
  unsqueeze,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('movement');

const shapeOf = (x: Tensor) => [...x.shape];
const int = (v: number[], shape?: number[]) => tensor(Int32Array.from(v), shape ? { shape } : {});

t('reshape (incl. -1) is a view: same data, no new buffer, gradient reshaped back', async () => {
  const x = randRef([2, 3, 4], 1);
  const X = fromRef(x);
  const before = memory().buffersInUse;
  for (const s of [[24], [4, -1], [-1, 2, 3], [2, 12], [1, 24, 1], [3, 8]]) {
    const y = X.reshape(s);
    await expectClose(y, R.reshape(x, s), `reshape ${s}`);
    y.dispose();
  }
  assert.is(memory().buffersInUse, before, 'reshape allocates no buffer');
  assert.equal(shapeOf(X.view(6, 4)), [6, 4]);
  assert.equal(shapeOf(X.reshape([2, 3], 4)), [2, 3, 4]);
  assert.equal(shapeOf(reshape(tensor([5]), [])), []);
  assert.equal(shapeOf(tensor(new Float32Array(0), { shape: [0, 3] }).reshape(-1, 3)), [0, 3]);
  await checkGrad(
    'reshape',
    [x],
    ([a]) => a!.reshape(4, -1).mul(a!.reshape(4, 6)),
    ([a]) => {
      const r = R.reshape(a!, [4, 6]);
      return R.binary(r, r, (p, q) => p * q);
    },
  );
  assert.throws(() => X.reshape(5, -1), /reshape: cannot reshape \[2,3,4\] \(24 elements\) to \[5,-1\]/);
  assert.throws(() => X.reshape(-1, -1), /reshape: invalid target shape \[-1,-1\]/);
  assert.throws(() => X.reshape(25), /reshape: cannot reshape \[2,3,4\] \(24 elements\) to \[25\]/);
  assert.throws(() => X.reshape(2.5, 2), /reshape: invalid target shape/);
});

t('flatten, squeeze and unsqueeze', async () => {
  const X = fromRef(randRef([2, 1, 3, 1], 2));
  assert.equal(shapeOf(X.flatten()), [6]);
  assert.equal(shapeOf(flatten(X, 1)), [2, 3]);
  assert.equal(shapeOf(X.flatten(1, 2)), [2, 3, 1]);
  assert.equal(shapeOf(X.flatten(-2, -1)), [2, 1, 3]);
  assert.equal(shapeOf(tensor(3).flatten()), [1]);
  assert.throws(() => X.flatten(2, 1), /flatten: startDim 2 comes after endDim 1/);
  assert.equal(shapeOf(X.squeeze()), [2, 3]);
  assert.equal(shapeOf(squeeze(X, 1)), [2, 3, 1]);
  assert.equal(shapeOf(X.squeeze(-1)), [2, 1, 3]);
  assert.equal(shapeOf(X.squeeze(0)), [2, 1, 3, 1], 'squeezing a non-1 dim is a no-op');
  assert.equal(shapeOf(X.unsqueeze(0)), [1, 2, 1, 3, 1]);
  assert.equal(shapeOf(unsqueeze(X, -1)), [2, 1, 3, 1, 1]);
  assert.equal(shapeOf(X.unsqueeze(2)), [2, 1, 1, 3, 1]);
  assert.throws(() => X.unsqueeze(6), /unsqueeze: dim 6 is out of range for a tensor of rank 5/);
  assert.throws(() => X.squeeze(4), /squeeze: dim 4 is out of range for a tensor of rank 4/);
  assert.equal(Array.from(await X.squeeze().toArray()), Array.from(await X.toArray()));
  const w = tensor([[1], [2]], { requiresGrad: true });
  w.squeeze()
    .unsqueeze(0)
    .flatten()
    .mul(tensor([3, 4]))
    .sum()
    .backward();
  assert.equal(shapeOf(w.grad!), [2, 1]);
  assert.equal(Array.from(await w.grad!.toArray()), [3, 4]);
});

t('permute, transpose and .T', async () => {
  const x = randRef([2, 3, 4, 5], 3);
  const X = fromRef(x);
  for (const p of [
    [0, 1, 2, 3],
    [3, 2, 1, 0],
    [1, 0, 3, 2],
    [0, 2, 3, 1],
    [2, 0, 1, 3],
  ]) {
    await expectClose(X.permute(p), R.permute(x, p), `permute ${p}`, 0, 0);
    await expectClose(permute(X, p), R.permute(x, p), `permute ${p}`, 0, 0);
  }
  await expectClose(X.permute(-1, 0, -2, 1), R.permute(x, [3, 0, 2, 1]), 'permute negative', 0, 0);
  await expectClose(X.transpose(0, 2), R.permute(x, [2, 1, 0, 3]), 'transpose(0,2)', 0, 0);
  await expectClose(transpose(X), R.permute(x, [0, 1, 3, 2]), 'transpose()', 0, 0);
  const m = randRef([3, 7], 4);
  await expectClose(fromRef(m).T, R.permute(m, [1, 0]), '.T', 0, 0);
  assert.equal(shapeOf(tensor([1, 2, 3]).T), [3]);
  await checkGrad(
    'permute',
    [randRef([2, 3, 4], 5)],
    ([a]) => a!.permute(2, 0, 1),
    ([a]) => R.permute(a!, [2, 0, 1]),
  );
  await checkGrad(
    'transpose',
    [randRef([2, 3, 4], 6)],
    ([a]) => a!.transpose(0, -1),
    ([a]) => R.permute(a!, [2, 1, 0]),
  );
  const i = int([1, 2, 3, 4, 5, 6], [2, 3]);
  assert.equal(await i.T.toNested(), [
    [1, 4],
    [2, 5],
    [3, 6],
  ]);
  assert.is(i.T.dtype, 'int32');
  assert.throws(
    () => X.permute(0, 1, 2),
    /permute: \[0,1,2\] is not a permutation of the 4 dims of \[2,3,4,5\]/,
  );
  assert.throws(() => X.permute(0, 1, 1, 2), /permute: \[0,1,1,2\] is not a permutation/);
  assert.throws(() => X.permute(0, 1, 2, 4), /permute: dim 4 is out of range/);
  assert.throws(() => X.transpose(0, 4), /transpose: dim 4 is out of range/);
});

t('expand broadcasts (new dims, size-1 dims, -1) and sums the gradient back', async () => {
  const x = randRef([3, 1], 7);
  const X = fromRef(x);
  for (const s of [
    [3, 4],
    [2, 3, 4],
    [-1, 5],
    [2, -1, 1],
  ])
    await expectClose(X.expand(s), R.expand(x, s), `expand ${s}`, 0, 0);
  await expectClose(expand(X, [1, 3, 2]), R.expand(x, [1, 3, 2]), 'expand fn', 0, 0);
  await checkGrad(
    'expand',
    [x],
    ([a]) => a!.expand(2, 3, 4),
    ([a]) => R.expand(a!, [2, 3, 4]),
  );
  await checkGrad(
    'expand scalar',
    [randRef([], 8)],
    ([a]) => a!.expand(2, 3),
    ([a]) => R.expand(a!, [2, 3]),
  );
  assert.throws(() => X.expand(3, 4, 2), /expand: cannot expand \[3,1\] to \[3,4,2\]/);
  assert.throws(() => X.expand(4), /expand: cannot expand \[3,1\] to \[4\]/);
});

t('slice with steps, negative indices, clamping, null dims and empty results', async () => {
  const x = randRef([5, 6, 7], 9);
  const X = fromRef(x);
  type Rg = [number, number] | [number, number, number] | null;
  const cases: Rg[][] = [
    [[1, 4], null, [0, 7, 2]],
    [[-3, -1], [2, 6, 3], null],
    [null, [-100, 100], [-1, 7]],
    [[0, 5, 4]],
    [[3, 1], null, null],
    [null, null, [6, 7, 5]],
    [
      [0, 5, 2],
      [1, 6, 2],
      [1, 7, 3],
    ],
  ];
  for (const ranges of cases) {
    const starts = x.shape.map((_, i) => ranges[i]?.[0] ?? 0);
    const ends = x.shape.map((d, i) => ranges[i]?.[1] ?? d);
    const steps = x.shape.map((_, i) => ranges[i]?.[2] ?? 1);
    const ref = R.slice(x, starts, ends, steps);
    await expectClose(X.slice(ranges), ref, `slice ${JSON.stringify(ranges)}`, 0, 0);
    await expectClose(slice(X, ranges), ref, `slice ${JSON.stringify(ranges)}`, 0, 0);
    if (R.size(ref.shape) > 0)
      await checkGrad(
        `slice ${JSON.stringify(ranges)}`,
        [x],
        ([a]) => a!.slice(ranges),
        ([a]) => R.slice(a!, starts, ends, steps),
      );
  }
  assert.throws(() => X.slice([[0, 2, 0]]), /slice: step must be a positive integer, got 0 \(dim 0\)/);
  assert.throws(() => X.slice([[0, 2, -1]]), /slice: step must be a positive integer/);
  assert.throws(() => X.slice([null, null, null, null]), /slice: 4 ranges for a tensor of rank 3 \[5,6,7\]/);
  const i = int([0, 1, 2, 3, 4, 5]);
  assert.equal(Array.from(await i.slice([[1, 6, 2]]).data()), [1, 3, 5]);
});

t('narrow', async () => {
  const x = randRef([4, 6], 10);
  const X = fromRef(x);
  await expectClose(X.narrow(1, 2, 3), R.slice(x, [0, 2], [4, 5]), 'narrow(1,2,3)', 0, 0);
  await expectClose(narrow(X, -2, -2, 2), R.slice(x, [2, 0], [4, 6]), 'narrow(-2,-2,2)', 0, 0);
  assert.equal(shapeOf(X.narrow(0, 4, 0)), [0, 6]);
  await checkGrad(
    'narrow',
    [x],
    ([a]) => a!.narrow(1, 1, 4),
    ([a]) => R.slice(a!, [0, 1], [4, 5]),
  );
  assert.throws(() => X.narrow(1, 4, 3), /narrow: start 4 \+ length 3 is out of range for dim 1 of size 6/);
  assert.throws(() => X.narrow(0, -5, 1), /narrow: start -5 \+ length 1 is out of range/);
  assert.throws(() => X.narrow(2, 0, 1), /narrow: dim 2 is out of range/);
});

t('pad: positive, negative (crop), mixed, fill value, int32; gradient', async () => {
  const x = randRef([3, 4, 5], 11);
  const X = fromRef(x);
  // torch order: (last before, last after, second-to-last before, ...)
  const toRef = (p: number[]): [number, number][] =>
    x.shape.map((_, i) => {
      const k = x.shape.length - 1 - i;
      return [p[2 * k] ?? 0, p[2 * k + 1] ?? 0];
    });
  for (const p of [
    [1, 2],
    [0, 0, 2, 1],
    [-1, -2],
    [2, -1, -1, 3],
    [1, 1, 1, 1, 1, 1],
    [-2, 0, 0, -3, 1, -1],
  ]) {
    await expectClose(X.pad(p), R.pad(x, toRef(p)), `pad ${p}`, 0, 0);
    await checkGrad(
      `pad ${p}`,
      [x],
      ([a]) => a!.pad(p),
      ([a]) => R.pad(a!, toRef(p)),
    );
  }
  await expectClose(pad(X, [1, 1], -2.5), R.pad(x, toRef([1, 1]), -2.5), 'pad value', 0, 0);
  const i = int([1, 2, 3]);
  const ip = i.pad([1, 2], 9);
  assert.is(ip.dtype, 'int32');
  assert.equal(Array.from(await ip.data()), [9, 1, 2, 3, 9, 9]);
  assert.equal(shapeOf(X.pad([-5, 0])), [3, 4, 0]);
  assert.throws(
    () => X.pad([1]),
    /pad: pads \[1\] must be integer \(before, after\) pairs for at most 3 dims/,
  );
  assert.throws(() => X.pad([1, 1, 1, 1, 1, 1, 1, 1]), /pad: pads .* for at most 3 dims/);
  assert.throws(() => X.pad([0.5, 1]), /pad: pads \[0.5,1\] must be integer/);
  assert.throws(() => X.pad([-3, -3]), /pad: pads \[-3,-3\] crop \[3,4,5\] below zero size/);
});

t('concat and stack: any dim, gradients split back, same tensor twice', async () => {
  const a = randRef([2, 3, 4], 12);
  const b = randRef([2, 5, 4], 13);
  const c = randRef([2, 1, 4], 14);
  await expectClose(concat([fromRef(a), fromRef(b), fromRef(c)], 1), R.concat([a, b, c], 1), 'concat 1');
  await expectClose(cat([fromRef(a), fromRef(c)], -2), R.concat([a, c], -2), 'cat -2');
  await expectClose(concat([fromRef(a)]), R.concat([a], 0), 'concat one');
  const d = randRef([1, 3, 4], 15);
  await expectClose(concat([fromRef(d), fromRef(a)]), R.concat([d, a], 0), 'concat 0');
  await checkGrad(
    'concat',
    [a, b, c],
    ([p, q, r]) => concat([p!, q!, r!], 1),
    ([p, q, r]) => R.concat([p!, q!, r!], 1),
  );
  await checkGrad(
    'concat same twice',
    [a],
    ([p]) => concat([p!, p!.mul(2), p!], -1),
    ([p]) => R.concat([p!, R.unary(p!, (v) => 2 * v), p!], -1),
  );
  for (const dim of [0, 1, 3, -1, -4]) {
    await expectClose(stack([fromRef(a), fromRef(a)], dim), R.stack([a, a], dim), `stack ${dim}`, 0, 0);
    await checkGrad(
      `stack ${dim}`,
      [a, randRef([2, 3, 4], 16)],
      ([p, q]) => stack([p!, q!], dim),
      ([p, q]) => R.stack([p!, q!], dim),
    );
  }
  const s = stack([tensor(1), tensor(2), tensor(3)]);
  assert.equal(shapeOf(s), [3]);
  assert.equal(Array.from(await s.toArray()), [1, 2, 3]);
  const ii = concat([int([1, 2]), int([3])]);
  assert.is(ii.dtype, 'int32');
  assert.equal(Array.from(await ii.data()), [1, 2, 3]);
  assert.throws(() => concat([]), /concat: needs at least one tensor/);
  assert.throws(() => stack([]), /stack: needs at least one tensor/);
  assert.throws(
    () => concat([fromRef(a), fromRef(b)], 0),
    /concat: shapes float32\[2,3,4\], float32\[2,5,4\] differ outside dim 0/,
  );
  assert.throws(
    () => concat([fromRef(a), fromRef(a).reshape(6, 4)]),
    /concat: shapes .* differ outside dim 0/,
  );
  assert.throws(() => concat([int([1]), tensor([1])]), /concat: shapes int32\[1\], float32\[1\] differ/);
  assert.throws(() => concat([tensor(1), tensor(2)]), /concat: zero-dim tensors cannot be concatenated/);
  assert.throws(() => stack([fromRef(a), fromRef(b)]), /concat: shapes .* differ/);
  assert.throws(() => concat([fromRef(a)], 3), /concat: dim 3 is out of range for a tensor of rank 3/);
});

t('indexSelect: any dim, repeated indices, gradients accumulate', async () => {
  const x = randRef([4, 5, 3], 17);
  const X = fromRef(x);
  for (const [dim, idx] of [
    [0, [3, 0, 0, 2]],
    [1, [4]],
    [2, [2, 1, 0, 1, 2]],
    [-1, [0]],
    [1, []],
  ] as [number, number[]][]) {
    const ref = R.indexSelect(x, dim, idx);
    await expectClose(X.indexSelect(dim, int(idx)), ref, `indexSelect ${dim} ${idx}`, 0, 0);
    await expectClose(indexSelect(X, dim, int(idx)), ref, `indexSelect ${dim} ${idx}`, 0, 0);
    if (idx.length)
      await checkGrad(
        `indexSelect ${dim} ${idx}`,
        [x],
        ([a]) => a!.indexSelect(dim, int(idx)),
        ([a]) => R.indexSelect(a!, dim, idx),
      );
  }
  // an embedding lookup: int32 table rows
  const table = int([10, 11, 20, 21, 30, 31], [3, 2]);
  assert.equal(await table.indexSelect(0, int([2, 0])).toNested(), [
    [30, 31],
    [10, 11],
  ]);
  // out-of-range indices give NaN, not a silent wrong value
  const bad = await X.indexSelect(0, int([1, 4, -1])).toArray();
  assert.ok(bad.slice(15).every(Number.isNaN), 'index 4 and -1 give NaN');
  assert.ok(!bad.slice(0, 15).some(Number.isNaN));
  assert.throws(
    () => X.indexSelect(0, tensor([0])),
    /indexSelect: index must be an int32 tensor, got float32/,
  );
  assert.throws(() => X.indexSelect(0, int([0, 1], [1, 2])), /indexSelect: index must be 1-D, got \[1,2\]/);
  assert.throws(() => X.indexSelect(3, int([0])), /indexSelect: dim 3 is out of range/);
});

t('gather along each dim; backward sums repeated picks', async () => {
  const x = randRef([3, 4, 5], 18);
  const X = fromRef(x);
  const r = R.rng(19);
  for (const [dim, n] of [
    [0, 2],
    [1, 6],
    [2, 3],
    [-1, 1],
  ] as [number, number][]) {
    const d = dim < 0 ? dim + 3 : dim;
    const ishape = x.shape.map((s, i) => (i === d ? n : s));
    const idx = R.ref(
      ishape,
      Array.from({ length: R.size(ishape) }, () => Math.floor(r() * x.shape[d]!)),
    );
    const I = int(Array.from(idx.data), ishape);
    await expectClose(X.gather(dim, I), R.gather(x, dim, idx), `gather ${dim}`, 0, 0);
    await expectClose(gather(X, dim, I), R.gather(x, dim, idx), `gather ${dim}`, 0, 0);
    await checkGrad(
      `gather ${dim}`,
      [x],
      ([a]) => a!.gather(dim, I),
      ([a]) => R.gather(a!, dim, idx),
    );
  }
  // picking the label's log-probability (cross-entropy style)
  const logits = tensor(
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    { requiresGrad: true },
  );
  const picked = logits.gather(1, int([2, 0], [2, 1]));
  assert.equal(await picked.toNested(), [[3], [4]]);
  picked.sum().backward();
  assert.equal(await logits.grad!.toNested(), [
    [0, 0, 1],
    [1, 0, 0],
  ]);
  assert.throws(
    () => X.gather(1, int([0], [1, 1, 1])),
    /gather: index shape \[1,1,1\] must match input \[3,4,5\] except at dim 1/,
  );
  assert.throws(
    () => X.gather(0, tensor(new Float32Array(20), { shape: [1, 4, 5] })),
    /gather: index must be an int32 tensor/,
  );
});

t('oneHot', async () => {
  const labels = [3, 0, 2, 2, 1];
  const y = oneHot(int(labels), 4);
  assert.is(y.dtype, 'float32');
  await expectClose(y, R.oneHot(labels, 4), 'oneHot', 0, 0);
  const y2 = oneHot(int([0, 1, 1, 0], [2, 2]), 3);
  assert.equal(shapeOf(y2), [2, 2, 3]);
  assert.equal(await y2.toNested(), [
    [
      [1, 0, 0],
      [0, 1, 0],
    ],
    [
      [0, 1, 0],
      [1, 0, 0],
    ],
  ]);
  assert.equal(Array.from(await oneHot(int([0, 0]), 1).toArray()), [1, 1]);
  // out-of-range labels give an all-zero row
  assert.equal(await oneHot(int([5]), 3).toNested(), [[0, 0, 0]]);
  assert.throws(() => oneHot(tensor([1]), 3), /oneHot: labels must be int32, got float32/);
  assert.throws(() => oneHot(int([1]), 0), /oneHot: numClasses must be a positive integer, got 0/);
});

t('awkward sizes (1, 7, 127, 1000, 4097): permute, expand, slice, pad, concat, indexSelect', async () => {
  for (const n of [1, 7, 127, 1000, 4097]) {
    const x = randRef([2, n], n);
    const X = fromRef(x);
    await expectClose(permute(X, [1, 0]), R.permute(x, [1, 0]), `permute ${n}`, 0, 0);
    await expectClose(
      expand(fromRef(randRef([1, n], n + 1)), [3, n]),
      R.expand(randRef([1, n], n + 1), [3, n]),
      `expand ${n}`,
      0,
      0,
    );
    await expectClose(slice(X, [null, [1, n, 2]]), R.slice(x, [0, 1], [2, n], [1, 2]), `slice ${n}`, 0, 0);
    await expectClose(
      X.pad([3, 2]),
      R.pad(x, [
        [0, 0],
        [3, 2],
      ]),
      `pad ${n}`,
      0,
      0,
    );
    await expectClose(concat([X, X], 1), R.concat([x, x], 1), `concat ${n}`, 0, 0);
    const idx = Array.from({ length: Math.min(n, 50) }, (_, i) => (i * 7919) % n);
    await expectClose(indexSelect(X, 1, int(idx)), R.indexSelect(x, 1, idx), `indexSelect ${n}`, 0, 0);
  }
});

t(
  'copies on a (lanes, rows, outer dims) grid: lane and row tails, 6 outer dims, and the general kernel past the grid',
  async () => {
    // (3, 130, 70): 70 lanes = 64 + a tail of 6, 130 rows = 64 + 64 + 2 per workgroup, 3 outer.
    const a = randRef([3, 70, 130], 21);
    await expectClose(permute(fromRef(a), [0, 2, 1]), R.permute(a, [0, 2, 1]), 'tails', 0, 0);
    // Rank 8 with no dims to merge: 6 outer dims split from the workgroup's z.
    const b = randRef([2, 3, 2, 3, 2, 3, 2, 3], 22);
    const rev = [7, 6, 5, 4, 3, 2, 1, 0];
    await expectClose(permute(fromRef(b), rev), R.permute(b, rev), 'rank 8', 0, 0);
    // 70,000 outer indices exceed a grid dimension (65,535): the general kernel.
    const c = randRef([70_000, 2, 3], 23);
    await expectClose(permute(fromRef(c), [0, 2, 1]), R.permute(c, [0, 2, 1]), 'general kernel', 0, 0);
    // indexSelect and its gradient on the grid (70 lanes, 9 rows) and flat past it (70,000 leading indices);
    // the gradient counts how often each row was picked (row 2 twice, row 1 once, row 0 once).
    const idx = [2, 0, 2, 1];
    for (const shape of [
      [3, 9, 70],
      [70_000, 3, 2],
    ]) {
      const r = randRef(shape, 24);
      const x = fromRef(r, { requiresGrad: true });
      const y = indexSelect(x, 1, int(idx));
      await expectClose(y, R.indexSelect(r, 1, idx), `indexSelect [${shape}]`, 0, 0);
      y.sum().backward();
      const g = await x.grad!.toArray();
      const per = shape[2]!;
      const want = [1, 1, 2, ...new Array(shape[1]! - 3).fill(0)];
      for (const a of [0, shape[0]! - 1])
        for (let n = 0; n < shape[1]!; n++)
          assert.is(g[(a * shape[1]! + n) * per + per - 1], want[n], `grad [${shape}] at (${a}, ${n})`);
    }
  },
);

t('a chain of movement ops on a graph reusing the input', async () => {
  const x = randRef([2, 3, 4], 20);
  await checkGrad(
    'chain',
    [x],
    ([a]) =>
      a!
        .permute(2, 0, 1)
        .slice([[0, 4, 2]])
        .pad([1, 0])
        .reshape(2, -1)
        .add(a!.narrow(2, 1, 2).reshape(2, 6).pad([0, 2])),
    ([a]) => {
      const p = R.pad(R.slice(R.permute(a!, [2, 0, 1]), [0, 0, 0], [4, 2, 3], [2, 1, 1]), [
        [0, 0],
        [0, 0],
        [1, 0],
      ]);
      const q = R.pad(R.reshape(R.slice(a!, [0, 0, 1], [2, 3, 3]), [2, 6]), [
        [0, 0],
        [0, 2],
      ]);
      return R.binary(R.reshape(p, [2, -1]), q, (u, v) => u + v);
    },
  );
});

t.run();
