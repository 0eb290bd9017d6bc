import { addmm, linear, tensor } from '@wgrad/tensor';
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
