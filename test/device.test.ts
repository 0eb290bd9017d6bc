// The device: the adapter summary, limits, dispatch statistics, and debug mode (one op per submit inside
// error scopes) still computing correct results.
import {
  adapterSummary,
  dispatchStats,
  isDebug,
  limits,
  matmul,
  setDebug,
  sync,
  tensor,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('device');

t('adapterSummary() reports a backend and a description', () => {
  const a = adapterSummary();
  assert.ok(['vulkan', 'opengl'].includes(a.backend), `backend ${a.backend}`);
  assert.type(a.description, 'string');
  assert.ok(a.description.length > 0);
  assert.type(a.isFallback, 'boolean');
  assert.ok(['core', 'compatibility'].includes(a.featureLevel));
  assert.is(a.featureLevel === 'compatibility', a.backend === 'opengl');
  assert.ok(limits().maxComputeWorkgroupsPerDimension >= 65535);
  assert.ok(limits().maxStorageBufferBindingSize >= 128 << 20);
});

t('ops are batched: dispatch statistics count them', async () => {
  await sync();
  const s0 = dispatchStats();
  const x = tensor([1, 2, 3]);
  x.add(1).mul(2).exp();
  const s1 = dispatchStats();
  assert.is(s1.dispatches - s0.dispatches, 3);
  assert.is(s1.submits, s0.submits, 'nothing submitted before a sync or readback');
  await sync();
  assert.is(dispatchStats().submits, s1.submits + 1);
  assert.ok(s1.pipelines > 0);
});

t('setDebug(true): every op submitted alone, results unchanged', async () => {
  const a = randRef([5, 7], 1);
  const b = randRef([7, 3], 2);
  assert.not.ok(isDebug());
  setDebug(true);
  try {
    assert.ok(isDebug());
    const s0 = dispatchStats();
    const w = fromRef(a, { requiresGrad: true });
    const y = matmul(w, fromRef(b)).relu().sum(1).softmax(0);
    const loss = y.square().sum();
    loss.backward();
    const s1 = dispatchStats();
    assert.ok(s1.submits - s0.submits >= s1.dispatches - s0.dispatches, 'one submit per dispatch');
    const ref = R.unary(
      R.reduce(
        R.unary(R.matmul(a, b), (v) => Math.max(v, 0)),
        [1],
        false,
        'sum',
      ),
      (v) => v,
    );
    const m = Math.max(...ref.data);
    const e = ref.data.map((v) => Math.exp(v - m));
    const z = e.reduce((p, q) => p + q, 0);
    await expectClose(
      y,
      R.ref(
        [5],
        Array.from(e, (v) => v / z),
      ),
      'debug forward',
    );
    assert.ok(w.grad);
    assert.ok((await w.grad!.toArray()).every(Number.isFinite));
    await sync();
  } finally {
    setDebug(false);
  }
  assert.not.ok(isDebug());
});

t('concurrent readbacks of different sizes each get their own data', async () => {
  const xs = [1, 5, 300, 70000, 3].map((n, k) => fromRef(randRef([n], k + 10)));
  const ys = xs.map((x, k) => x.mul(k + 1));
  const all = await Promise.all([...ys.map((y) => y.toArray()), ...xs.map((x) => x.data())]);
  for (let k = 0; k < xs.length; k++) {
    const x = all[xs.length + k]!;
    const y = all[k]!;
    assert.is(y.length, x.length);
    assert.ok(
      y.every((v, i) => v === Math.fround(x[i]! * (k + 1))),
      `readback ${k}`,
    );
  }
});

t.run();
