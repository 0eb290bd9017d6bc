// The device: the adapter summary, limits, dispatch statistics, and debug mode (one op per submit inside
// error scopes) still computing correct results.
import {
  acquireDevice,
  adapterSummary,
  dispatch,
  dispatchStats,
  emptyCache,
  isDebug,
  kernel,
  limits,
  matmul,
  scope,
  setDebug,
  setUniformBinding,
  staticUniforms,
  sync,
  type Tensor,
  tensor,
  type UniformBinding,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { cpuAdapter, flush, setUniformHeapBytes } from '../packages/tensor/src/gpu.js';
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

t(
  'a WebGPU validation error surfaces as a JS error that names the op (debug mode: exactly that op)',
  async () => {
    const bad = kernel(
      'test_bad_bindings',
      `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = 1.0; }`,
    );
    const x = tensor([1, 2, 3]);
    setDebug(true);
    try {
      // Binding 0 is a storage buffer, but dispatch puts the (empty) uniform block there: a validation error.
      dispatch(bad, [1], [x.buffer()], [1]);
      let message = '';
      try {
        await sync();
        x.add(1).dispose(); // an error reported asynchronously is thrown by the next op at the latest
        await sync();
      } catch (e) {
        message = (e as Error).message;
      }
      assert.match(message, /WebGPU (validation )?error in op\(s\) \[[^\]]*test_bad_bindings[^\]]*\]/);
    } finally {
      setDebug(false);
    }
    await sync(); // the device is still usable
    assert.equal(Array.from(await x.add(1).toArray()), [2, 3, 4]);
  },
);

t('one pipeline serves every shape of an op (shapes travel in uniforms)', async () => {
  const a = randRef([10, 5], 30);
  const b = randRef([5, 39], 31);
  fromRef(a).add(1).dispose();
  matmul(fromRef(a), fromRef(b)).dispose();
  await sync();
  const p0 = dispatchStats().pipelines;
  // Same kernel variant (8 < M ≤ 16, N ≥ 32, K odd: scalar reads with a K tail), new sizes each time.
  for (const [m, k, n] of [
    [9, 5, 33],
    [12, 13, 35],
    [15, 21, 37],
  ] as const) {
    fromRef(randRef([m, k], m))
      .add(1)
      .dispose();
    matmul(fromRef(randRef([m, k], k)), fromRef(randRef([k, n], n))).dispose();
  }
  await sync();
  assert.is(dispatchStats().pipelines, p0, 'no new pipeline for new shapes');
});

t(
  'cached bind groups: the same kernel on the same buffers with new uniforms, in one submit and after emptyCache',
  async () => {
    const x = tensor([1, 2, 3, 4, 5]);
    const ys: Tensor[] = [];
    for (let round = 0; round < 2; round++) {
      // Each product is disposed before the next: the pool hands the same output buffer back, so consecutive
      // dispatches share kernel and buffers and differ only in their uniforms (the scalar, at a new offset).
      const got: number[][] = [];
      for (const s of [2, 3, -1, 0.5]) {
        const y = x.mul(s);
        const z = y.add(s); // same buffers again on the next turn
        ys.push(z);
        y.dispose();
      }
      for (const z of ys.splice(0)) {
        got.push([...(await z.toArray())]);
        z.dispose();
      }
      assert.equal(
        got,
        [2, 3, -1, 0.5].map((s) => [1, 2, 3, 4, 5].map((v) => v * s + s)),
      );
      emptyCache(); // destroys the pooled buffers: their cached bind groups must go too
    }
  },
);

/** Runs `f` with uniform blocks bound in `mode`, restoring the default afterwards. */
async function withUniforms<T>(mode: UniformBinding, f: () => Promise<T>): Promise<T> {
  const old = setUniformBinding(mode);
  try {
    return await f();
  } finally {
    setUniformBinding(old);
  }
}

t(
  'uniform blocks: static on CPU adapters, dynamic elsewhere; both bindings give identical results',
  async () => {
    assert.is(staticUniforms(), cpuAdapter(), 'auto binds statically exactly on CPU adapters');
    assert.throws(
      () => setUniformBinding('push' as UniformBinding),
      /setUniformBinding: unknown mode 'push'/,
    );
    const a = randRef([37, 20], 40);
    const b = randRef([20, 45], 41);
    // Rounds that dispose everything they make (the pool hands the same buffers back): the same scalar three
    // times, then a new one. Returns the results and the bind groups each round created.
    const run = async () => {
      const out: number[][] = [];
      const created: number[] = [];
      for (const s of [0.5, 0.5, 0.5, -3]) {
        const c0 = dispatchStats().bindGroupsCreated;
        await scope(async () => {
          const x = fromRef(a, { requiresGrad: true });
          const y = matmul(x, fromRef(b)).mul(s).add(1).relu();
          y.sum().backward();
          out.push([...(await y.toArray())], [...(await x.grad!.toArray())]);
          x.grad!.dispose();
        });
        created.push(dispatchStats().bindGroupsCreated - c0);
      }
      return { out, created };
    };
    const dyn = await withUniforms('dynamic', async () => {
      assert.is(staticUniforms(), false);
      return run();
    });
    const stat = await withUniforms('static', async () => {
      assert.is(staticUniforms(), true);
      return run();
    });
    assert.equal(stat.out, dyn.out, 'static and dynamic uniform binding agree bit for bit');
    assert.ok(stat.created[0]! > 0, `static blocks create bind groups (${stat.created})`);
    assert.is(stat.created[2], 0, `the third identical round finds every bind group (${stat.created})`);
    assert.ok(stat.created[3]! > 0, `a new scalar needs new slots (${stat.created})`);
    assert.is(dyn.created[2], 0, `dynamic offsets: the third round finds every bind group (${dyn.created})`);
    assert.is(dyn.created[3], 0, `dynamic offsets: new words need no bind group (${dyn.created})`);
  },
);

t(
  'static uniform blocks: words that change every submit rewrite a slot and keep its bind group',
  async () => {
    await withUniforms('static', async () => {
      const x = tensor([1, 2, 3]);
      let created = 0;
      for (let i = 1; i <= 12; i++) {
        const c0 = dispatchStats().bindGroupsCreated;
        const y = x.mul(i); // the same kernel and buffers each time (y's buffer returns to the pool)
        assert.equal([...(await y.toArray())], [i, 2 * i, 3 * i], `x * ${i}`);
        y.dispose();
        if (i > 4) created += dispatchStats().bindGroupsCreated - c0;
      }
      assert.is(created, 0, 'after 4 slots, new words rewrite the least recently used one');
    });
  },
);

t(
  'static uniform blocks: slots rewritten while earlier submits may still run keep their results',
  async () => {
    await withUniforms('static', async () => {
      const x = tensor([1, 2, 3]);
      const kept: Tensor[] = [];
      const c0 = dispatchStats().bindGroupsCreated;
      const s0 = dispatchStats().submits;
      // Each round: the same mul kernel on the same buffers (y's buffer returns to the pool) with a new scalar,
      // copied out, then submitted without waiting; later rounds rewrite slots that submitted work read.
      for (let i = 1; i <= 24; i++) {
        const y = x.mul(i);
        kept.push(y.add(0));
        y.dispose();
        flush();
      }
      assert.ok(dispatchStats().submits - s0 >= 24, 'one submit per round');
      const got = await Promise.all(kept.map((k) => k.toArray()));
      assert.equal(
        got.map((g) => [...g]),
        kept.map((_, j) => [1, 2, 3].map((v) => v * (j + 1))),
      );
      // The mul node stops growing at 4 slots; the add's words never change.
      assert.ok(dispatchStats().bindGroupsCreated - c0 <= 4 + 24, 'bounded bind groups');
      for (const k of kept) k.dispose();
      x.dispose();
    });
  },
);

t('static uniform blocks: a full heap is flushed and reused without corrupting encoded work', async () => {
  await withUniforms('static', async () => {
    const align = limits().minUniformBufferOffsetAlignment;
    setUniformHeapBytes(16 * Math.max(align, 256)); // 16 slots at most
    try {
      // 200 dependent adds with distinct scalars in one submit: far more distinct blocks than slots.
      let y = tensor([1, 2, 3]);
      let want = [1, 2, 3];
      for (let i = 1; i <= 200; i++) {
        const next = y.add(i * 0.25);
        y.dispose();
        y = next;
        want = want.map((v) => Math.fround(v + Math.fround(i * 0.25)));
      }
      assert.equal([...(await y.toArray())], want);
      y.dispose();
    } finally {
      setUniformHeapBytes(1 << 21);
    }
  });
});

t('waiting on the GPU leaves globalThis.setImmediate as it was', async () => {
  const before = globalThis.setImmediate;
  const x = tensor([1, 2, 3]).mul(2);
  const [a, b] = await Promise.all([x.toArray(), x.add(1).toArray(), sync()]);
  assert.equal(Array.from(a!), [2, 4, 6]);
  assert.equal(Array.from(b!), [3, 5, 7]);
  assert.is(globalThis.setImmediate, before);
});

t('an invalid WGRAD_BACKEND is an error that names the variable and the value', async () => {
  const old = process.env.WGRAD_BACKEND;
  process.env.WGRAD_BACKEND = 'metal';
  try {
    let message = '';
    await acquireDevice().catch((e: Error) => {
      message = e.message;
    });
    assert.match(message, /WGRAD_BACKEND must be auto, vulkan or opengl, got 'metal'/);
  } finally {
    if (old === undefined) delete process.env.WGRAD_BACKEND;
    else process.env.WGRAD_BACKEND = old;
  }
});

t.run();
