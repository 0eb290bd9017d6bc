import { linear } from '@wgrad/tensor';
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
t.run();
