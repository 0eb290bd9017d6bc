import { addmm, conv2d, linear, randn, tensor } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { checkGrad, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('linear');
t('linear matches x·wᵀ + b and its gradients', async () => {
  for (const lead of [[5], [2, 3]]) {
    await checkGrad(
      'linear',
      [randRef([...lead, 7], 1), randRef([4, 7], 2), randRef([4], 3)],
      ([x, w, b]) => linear(x!, w!, b!),
      ([x, w, b]) => R.binary(R.matmul(x!, R.permute(w!, [1, 0])), b!, (p, q) => p + q),
    );
  }
  await checkGrad(
    'linear no bias',
    [randRef([3, 33], 4), randRef([9, 33], 5)],
    ([x, w]) => linear(x!, w!),
    ([x, w]) => R.matmul(x!, R.permute(w!, [1, 0])),
  );
});

t('addmm(b, x, w) matches x·w + b (and with relu fused) and its gradients', async () => {
  const relu = (v: R.RefTensor) => R.unary(v, (p) => Math.max(p, 0));
  for (const act of [null, 'relu'] as const)
    await checkGrad(
      `addmm ${act}`,
      [randRef([6], 6), randRef([2, 5, 9], 7), randRef([9, 6], 8)],
      ([b, x, w]) => addmm(b!, x!, w!, { activation: act }),
      ([b, x, w]) => {
        const y = R.binary(R.matmul(x!, w!), b!, (p, q) => p + q);
        return act ? relu(y) : y;
      },
    );
});

t(
  'a relu fused into the GEMM keeps NaN as the unfused relu does (row-major, narrow and NCHW writes)',
  async () => {
    // Bit-identical to the unfused op, NaN positions included: the epilogue applies bias and relu to whole vec4s
    // before its guarded stores (row-major f4 writes at N = 8 and 40, the narrow swap's scalar writes with the
    // bias along m at N = 3, a conv's NCHW scalar writes).
    const same = async (got: Float32Array, want: Float32Array, what: string) => {
      assert.is(got.length, want.length, what);
      let nan = 0;
      for (let i = 0; i < got.length; i++) {
        if (Number.isNaN(want[i]!)) nan++;
        if (!Object.is(got[i], want[i]) && !(Number.isNaN(got[i]!) && Number.isNaN(want[i]!)))
          assert.unreachable(`${what}: element ${i} is ${got[i]}, unfused ${want[i]}`);
      }
      assert.ok(nan > 0, `${what}: the NaN input reached no output`);
    };
    // One NaN (tensor() rejects non-finite input: it comes from sqrt(−1)), 1 elsewhere, as a multiplier.
    const nanAt = (n: number, at: number, shape: number[]) =>
      tensor(
        Array.from({ length: n }, (_, i) => (i === at ? -1 : 1)),
        { shape },
      ).sqrt();
    const base = tensor(
      Array.from({ length: 64 * 16 }, (_, i) => Math.sin(i * 0.37)),
      { shape: [64, 16] },
    );
    const mask = nanAt(64 * 16, 5 * 16 + 2, [64, 16]);
    const x = base.mul(mask);
    base.dispose();
    mask.dispose();
    for (const N of [8, 3, 40]) {
      const w = randn([N, 16]);
      const b = randn([N]);
      const fused = linear(x, w, b, { activation: 'relu' });
      const plain = linear(x, w, b);
      const unfused = plain.relu();
      await same(await fused.toArray(), await unfused.toArray(), `linear N=${N}`);
      for (const t of [w, b, fused, plain, unfused]) t.dispose();
    }
    x.dispose();
    const ci = randn([2, 3, 8, 8]);
    const cm = nanAt(2 * 3 * 8 * 8, 1 * 192 + 2 * 64 + 3 * 8 + 4, [2, 3, 8, 8]);
    const cx = ci.mul(cm);
    const cw = randn([8, 3, 3, 3]);
    const cb = randn([8]);
    const fused = conv2d(cx, cw, cb, { padding: 1, activation: 'relu' });
    const plain = conv2d(cx, cw, cb, { padding: 1 });
    const unfused = plain.relu();
    await same(await fused.toArray(), await unfused.toArray(), 'conv2d');
    for (const t of [ci, cm, cx, cw, cb, fused, plain, unfused]) t.dispose();
  },
);

t('addmm rejects bad shapes and names them', () => {
  const x = tensor([[1, 2, 3]]);
  assert.throws(
    () => addmm(tensor([1, 2]), x, tensor([1, 2, 3])),
    /addmm: weight must be 2-D \(in, out\), got \[3\]/,
  );
  assert.throws(
    () => addmm(tensor([1, 2]), x, tensor([[1, 2]])),
    /addmm: input \[1,3\] does not end in the weight's in_features 1/,
  );
  assert.throws(
    () =>
      addmm(
        tensor([1, 2, 3]),
        x,
        tensor([
          [1, 2],
          [3, 4],
          [5, 6],
        ]),
      ),
    /addmm: bias must have shape \[2\], got \[3\]/,
  );
});
t.run();
