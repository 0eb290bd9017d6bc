// matmul with torch.matmul's shape rules: 2-D, the four 1-D promotions, batched and broadcast batch dims,
// awkward sizes (K not a multiple of 4, edges of the 32×32 tiles), gradients, and shape/dtype errors.
import { matmul, mm, tensor } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('matmul');

t('2-D on awkward sizes (1, 7, 33, 127; K not a multiple of 4)', async () => {
  const sizes = [1, 7, 33, 127];
  let seed = 1;
  for (const M of sizes)
    for (const K of [1, 3, 5, 33, 127])
      for (const N of sizes) {
        if (M * K * N > 127 * 127 * 33) continue;
        const a = randRef([M, K], seed++);
        const b = randRef([K, N], seed++);
        await expectClose(
          fromRef(a).matmul(fromRef(b)),
          R.matmul(a, b),
          `[${M},${K}]@[${K},${N}]`,
          1e-4,
          1e-5,
        );
      }
});

t('larger square product and K = 0', async () => {
  const a = randRef([130, 300], 2);
  const b = randRef([300, 65], 3);
  await expectClose(matmul(fromRef(a), fromRef(b)), R.matmul(a, b), '130x300x65', 1e-4, 1e-4);
  const z = matmul(
    tensor(new Float32Array(0), { shape: [2, 0] }),
    tensor(new Float32Array(0), { shape: [0, 3] }),
  );
  assert.equal([...z.shape], [2, 3]);
  assert.equal(Array.from(await z.toArray()), [0, 0, 0, 0, 0, 0]);
  const e = matmul(tensor(new Float32Array(0), { shape: [0, 3] }), fromRef(randRef([3, 2], 4)));
  assert.equal([...e.shape], [0, 2]);
});

t('1-D promotions: vector·vector, vector@matrix, matrix@vector, batched with vectors', async () => {
  const v = randRef([5], 5);
  const w = randRef([5], 6);
  const m = randRef([5, 3], 7);
  const n = randRef([4, 5], 8);
  const bm = randRef([2, 5, 3], 9);
  const bn = randRef([2, 4, 5], 10);
  const cases: [R.RefTensor, R.RefTensor, number[]][] = [
    [v, w, []],
    [v, m, [3]],
    [n, v, [4]],
    [v, bm, [2, 3]],
    [bn, v, [2, 4]],
  ];
  for (const [a, b, shape] of cases) {
    const y = fromRef(a).matmul(fromRef(b));
    assert.equal([...y.shape], shape, `[${a.shape}]@[${b.shape}] shape`);
    await expectClose(y, R.matmul(a, b), `[${a.shape}]@[${b.shape}]`);
    await checkGrad(
      `[${a.shape}]@[${b.shape}]`,
      [a, b],
      ([p, q]) => p!.matmul(q!),
      ([p, q]) => R.matmul(p!, q!),
    );
  }
});

t('batched and broadcast batch dims', async () => {
  const cases: [number[], number[]][] = [
    [
      [3, 4, 5],
      [3, 5, 2],
    ],
    [
      [2, 1, 3, 4],
      [5, 4, 2],
    ],
    [
      [4, 5],
      [3, 5, 2],
    ],
    [
      [3, 4, 5],
      [5, 2],
    ],
    [
      [2, 1, 3, 7],
      [1, 3, 7, 9],
    ],
    [
      [1, 2, 1, 3, 4],
      [2, 1, 2, 4, 3],
    ],
  ];
  let seed = 20;
  for (const [sa, sb] of cases) {
    const a = randRef(sa, seed++);
    const b = randRef(sb, seed++);
    await expectClose(mm(fromRef(a), fromRef(b)), R.matmul(a, b), `[${sa}]@[${sb}]`);
    await checkGrad(
      `[${sa}]@[${sb}]`,
      [a, b],
      ([p, q]) => p!.matmul(q!),
      ([p, q]) => R.matmul(p!, q!),
    );
  }
});

t('gradients on awkward 2-D sizes and through transposed operands', async () => {
  for (const [M, K, N] of [
    [1, 1, 1],
    [7, 5, 3],
    [33, 6, 2],
    [2, 9, 35],
  ]) {
    const a = randRef([M!, K!], M! + K!);
    const b = randRef([K!, N!], K! + N!);
    await checkGrad(
      `[${M},${K}]@[${K},${N}]`,
      [a, b],
      ([p, q]) => p!.matmul(q!),
      ([p, q]) => R.matmul(p!, q!),
    );
  }
  const a = randRef([4, 3], 40);
  const b = randRef([5, 4], 41);
  await checkGrad(
    'aᵀ@bᵀ',
    [a, b],
    ([p, q]) => p!.T.matmul(q!.T),
    ([p, q]) => R.matmul(R.permute(p!, [1, 0]), R.permute(q!, [1, 0])),
  );
  // x @ x (the same tensor on both sides)
  const s = randRef([4, 4], 42);
  await checkGrad(
    'x@x',
    [s],
    ([p]) => p!.matmul(p!),
    ([p]) => R.matmul(p!, p!),
  );
  // only one side requires grad
  const x = fromRef(randRef([3, 2], 43), { requiresGrad: true });
  const c = fromRef(randRef([2, 4], 44));
  x.matmul(c).sum().backward();
  assert.ok(x.grad);
  assert.is(c.grad, null);
});

t('matmul errors name the op and both shapes', () => {
  const a = tensor(new Float32Array(6), { shape: [2, 3] });
  const b = tensor(new Float32Array(20), { shape: [4, 5] });
  assert.throws(() => a.matmul(b), /matmul: inner dims differ: \[2,3\] @ \[4,5\]/);
  assert.throws(() => a.matmul(tensor([1, 2])), /matmul: inner dims differ: \[2,3\] @ \[2\]/);
  assert.throws(() => tensor([1, 2]).matmul(a.T), /matmul: inner dims differ: \[2\] @ \[3,2\]/);
  assert.throws(() => a.matmul(tensor(1)), /matmul: both operands need at least 1 dim, got \[2,3\] @ \[\]/);
  const ba = tensor(new Float32Array(24), { shape: [2, 3, 4] });
  const bb = tensor(new Float32Array(60), { shape: [3, 4, 5] });
  assert.throws(() => ba.matmul(bb), /matmul: shapes \[2\] and \[3\] cannot be broadcast together/);
  const i = tensor(Int32Array.from([1, 2, 3, 4]), { shape: [2, 2] });
  assert.throws(() => i.matmul(i), /matmul: expected float32 operands, got int32 and int32/);
  assert.throws(() => a.matmul(i), /matmul: expected float32 operands, got float32 and int32/);
});

t.run();
