import { tensor } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('basics');

t('add broadcasts and reads back', async () => {
  const a = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const b = tensor([10, 20, 30]);
  assert.equal(await a.add(b).toNested(), [
    [11, 22, 33],
    [14, 25, 36],
  ]);
});

t('x*x + x gradient', async () => {
  const x = randRef([7], 1);
  await checkGrad(
    'x*x+x',
    [x],
    ([a]) => a!.mul(a!).add(a!),
    ([a]) =>
      R.binary(
        R.binary(a!, a!, (p, q) => p * q),
        a!,
        (p, q) => p + q,
      ),
  );
});

t('matmul forward', async () => {
  const a = randRef([5, 3], 2);
  const b = randRef([3, 4], 3);
  await expectClose(fromRef(a).matmul(fromRef(b)), R.matmul(a, b), 'matmul');
});

t.run();
