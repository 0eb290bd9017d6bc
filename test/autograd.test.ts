// The tape: composite graphs that reuse nodes, a small MLP, gradient accumulation, explicit gradients,
// requiresGrad propagation, detach/noGrad, retainGraph, and the errors for misuse of backward().
import {
  concat,
  dispatchStats,
  memory,
  noGrad,
  record,
  scope,
  sync,
  type Tensor,
  tensor,
  where,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('autograd');

const add = (a: R.RefTensor, b: R.RefTensor) => R.binary(a, b, (p, q) => p + q);
const mul = (a: R.RefTensor, b: R.RefTensor) => R.binary(a, b, (p, q) => p * q);

t('a graph that reuses a node: x*x + x, and a diamond', async () => {
  const x = randRef([3, 4], 1);
  await checkGrad(
    'x*x+x',
    [x],
    ([a]) => a!.mul(a!).add(a!),
    ([a]) => add(mul(a!, a!), a!),
  );
  // h is used by three consumers, one of them twice
  await checkGrad(
    'diamond',
    [x],
    ([a]) => {
      const h = a!.exp();
      return h.mul(h).add(h.sin()).sub(h.sum(1, true));
    },
    ([a]) => {
      const h = R.unary(a!, Math.exp);
      return R.binary(add(mul(h, h), R.unary(h, Math.sin)), R.reduce(h, [1], true, 'sum'), (p, q) => p - q);
    },
  );
});

t('a small MLP with relu and an MSE loss', async () => {
  const xs = randRef([8, 5], 2);
  const target = randRef([8, 3], 3);
  const w1 = randRef([5, 16], 4);
  const b1 = randRef([16], 5, -0.1, 0.1);
  const w2 = randRef([16, 3], 6);
  const b2 = randRef([3], 7, -0.1, 0.1);
  await checkGrad(
    'mlp',
    [w1, b1, w2, b2],
    ([W1, B1, W2, B2]) => {
      const h = fromRef(xs).matmul(W1!).add(B1!).relu();
      const y = h.matmul(W2!).add(B2!);
      return y.sub(fromRef(target)).square().mean();
    },
    ([W1, B1, W2, B2]) => {
      const h = R.unary(add(R.matmul(xs, W1!), B1!), (v) => Math.max(v, 0));
      const y = add(R.matmul(h, W2!), B2!);
      return R.reduce(
        R.binary(y, target, (p, q) => (p - q) ** 2),
        undefined,
        false,
        'mean',
      );
    },
  );
});

t('a softmax cross-entropy with gather, a logsumexp and a tanh layer', async () => {
  const logitsIn = randRef([6, 4], 8);
  const w = randRef([4, 5], 9);
  const labels = [1, 0, 4, 2, 3, 4];
  await checkGrad(
    'xent',
    [logitsIn, w],
    ([x, W]) => {
      const z = x!.tanh().matmul(W!);
      const lp = z.logSoftmax(1);
      const idx = tensor(Int32Array.from(labels), { shape: [6, 1] });
      return lp.gather(1, idx).mean().neg();
    },
    ([x, W]) => {
      const z = R.matmul(R.unary(x!, Math.tanh), W!);
      let s = 0;
      for (let i = 0; i < 6; i++) {
        const row = Array.from(z.data.slice(i * 5, i * 5 + 5));
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((acc, v) => acc + Math.exp(v - m), 0));
        s += row[labels[i]!]! - lse;
      }
      return R.ref([], [-s / 6]);
    },
  );
});

t('gradients accumulate across backward() calls; .grad keeps its identity', async () => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  x.mul(x).sum().backward();
  const g = x.grad!;
  assert.equal(Array.from(await g.toArray()), [2, 4, 6]);
  x.mul(10).sum().backward();
  assert.is(x.grad, g, 'the accumulated gradient is the same tensor object');
  assert.equal(Array.from(await g.toArray()), [12, 14, 16]);
  // a graph kept with retainGraph can be run twice: the gradient doubles
  const y = tensor([1, -1], { requiresGrad: true });
  const l = y.exp().sum();
  l.backward(undefined, { retainGraph: true });
  l.backward();
  R.assertClose(await y.grad!.toArray(), [2 * Math.E, 2 / Math.E]);
  // zeroing the gradient by disposing it starts a fresh accumulation
  y.grad!.dispose();
  y.mul(3).sum().backward();
  assert.equal(Array.from(await y.grad!.toArray()), [3, 3]);
  y.grad!.dispose();
  y.grad = null;
  y.mul(4).sum().backward();
  assert.equal(Array.from(await y.grad!.toArray()), [4, 4]);
});

t('backward through a freed graph throws instead of silently doing nothing', async () => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  const h = x.mul(2);
  const l = h.sum();
  l.backward();
  assert.equal(Array.from(await x.grad!.toArray()), [2, 2, 2]);
  assert.throws(
    () => l.backward(),
    /backward: the graph through 'sum' .* was freed by an earlier backward\(\)/,
  );
  // a second loss sharing the freed part of the graph
  assert.throws(() => h.mul(3).sum().backward(), /backward: the graph through 'mul' .* was freed/);
  assert.equal(Array.from(await x.grad!.toArray()), [2, 2, 2], 'no partial accumulation');
  assert.is(h.grad, null, 'no gradient lands on an intermediate');
});

t('backward through a tensor disposed before backward() throws', async () => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  const loss = scope(() => x.mul(2).exp().sum());
  assert.throws(
    () => loss.backward(),
    /backward: input 0 of 'sum' \(tensor #\d+ \[3\]\) was disposed before backward\(\)/,
  );
  assert.is(x.grad, null);
  const dead = x.mul(1);
  dead.dispose();
  assert.throws(() => dead.backward(tensor([1, 1, 1])), /backward: tensor #\d+ \[3\] was disposed/);
});

t('backward with an explicit gradient; errors for non-scalar outputs and bad gradients', async () => {
  const x = randRef([2, 3], 10);
  const X = fromRef(x, { requiresGrad: true });
  const y = X.mul(X);
  y.backward(tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3] }));
  await expectClose(
    X.grad!,
    R.binary(x, R.ref([2, 3], [1, 2, 3, 4, 5, 6]), (p, q) => 2 * p * q),
    'explicit gradient',
  );
  const z = X.exp();
  assert.throws(
    () => z.backward(),
    /backward: gradient can be implicitly created only for scalar outputs, got shape \[2,3\]/,
  );
  assert.throws(
    () => z.backward(tensor([1, 2])),
    /backward: gradient float32\[2\] does not match output \[2,3\]/,
  );
  assert.throws(
    () => z.backward(tensor(Int32Array.from([1, 1, 1, 1, 1, 1]), { shape: [2, 3] })),
    /backward: gradient int32\[2,3\] does not match output \[2,3\]/,
  );
  assert.throws(() => tensor([1, 2]).sum().backward(), /backward: tensor does not require grad/);
  // a size-1 non-scalar output needs no explicit gradient
  const w = tensor([[2]], { requiresGrad: true });
  w.mul(w).backward();
  assert.equal(Array.from(await w.grad!.toArray()), [4]);
  // backward on a leaf itself
  const leaf = tensor([5], { requiresGrad: true });
  leaf.backward();
  assert.equal(Array.from(await leaf.grad!.toArray()), [1]);
  // the caller's gradient tensor stays usable and unchanged
  const up = tensor([3, 3]);
  const v = tensor([1, 2], { requiresGrad: true });
  v.mul(2).backward(up);
  assert.equal(Array.from(await up.toArray()), [3, 3]);
  assert.equal(Array.from(await v.grad!.toArray()), [6, 6]);
});

t('requiresGrad propagates only where an input requires grad', async () => {
  const a = tensor([1, 2], { requiresGrad: true });
  const b = tensor([3, 4]);
  assert.ok(a.requiresGrad && a.isLeaf);
  assert.not.ok(b.requiresGrad);
  const c = a.mul(b);
  assert.ok(c.requiresGrad);
  assert.not.ok(c.isLeaf);
  assert.is(c.gradFn?.op, 'mul');
  assert.is(c.gradFn?.inputs.length, 2);
  const d = b.exp();
  assert.not.ok(d.requiresGrad);
  assert.is(d.gradFn, null);
  const e = b.add(1).requiresGrad_();
  assert.ok(e.requiresGrad);
  assert.throws(() => c.requiresGrad_(false), /requiresGrad_: only leaf tensors can change requiresGrad/);
  assert.throws(
    () => tensor(Int32Array.from([1])).requiresGrad_(),
    /requiresGrad_: only float32 tensors can require grad \(got int32\)/,
  );
  assert.throws(
    () => tensor(Int32Array.from([1]), { requiresGrad: true }),
    /only float32 tensors can require grad/,
  );
  // gradient flows only to inputs that require it
  c.sum().backward();
  assert.equal(Array.from(await a.grad!.toArray()), [3, 4]);
  assert.is(b.grad, null);
  // a tensor that stops requiring grad is a constant
  const f = tensor([1, 2], { requiresGrad: true });
  f.requiresGrad_(false);
  assert.not.ok(f.mul(2).requiresGrad);
  assert.match(String(a), /Tensor\(\[2\], float32, requiresGrad\)/);
});

t('detach() cuts the graph but shares the data', async () => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  const y = x.mul(2);
  const d = y.detach();
  assert.not.ok(d.requiresGrad);
  assert.ok(d.isLeaf);
  assert.equal(Array.from(await d.toArray()), [2, 4, 6]);
  // d is a constant: d * x has gradient d
  x.mul(d).add(y).sum().backward();
  assert.equal(Array.from(await x.grad!.toArray()), [4, 6, 8]);
  assert.is(d.grad, null);
  // disposing the original keeps the detached view alive
  y.dispose();
  assert.equal(Array.from(await d.toArray()), [2, 4, 6]);
});

t('noGrad() records nothing, restores the mode after throws and after async functions', async () => {
  const { isGradEnabled } = await import('@wgrad/tensor');
  const x = tensor([1, 2], { requiresGrad: true });
  const y = noGrad(() => x.mul(2).exp());
  assert.not.ok(y.requiresGrad);
  assert.is(y.gradFn, null);
  assert.ok(isGradEnabled());
  assert.throws(() =>
    noGrad(() => {
      throw new Error('boom');
    }),
  );
  assert.ok(isGradEnabled(), 'restored after a throw');
  const z = await noGrad(async () => {
    await Promise.resolve();
    assert.not.ok(isGradEnabled());
    return x.add(1);
  });
  assert.not.ok(z.requiresGrad);
  assert.ok(isGradEnabled(), 'restored after an async function');
  // nested
  noGrad(() => {
    noGrad(() => undefined);
    assert.not.ok(isGradEnabled());
  });
  assert.ok(x.mul(3).requiresGrad);
});

t('backward frees its temporaries: only the new leaf gradients stay alive', async () => {
  const x = fromRef(randRef([4, 5], 11), { requiresGrad: true });
  const w = fromRef(randRef([5, 3], 12), { requiresGrad: true });
  const loss = x.matmul(w).maximum(0.1).sqrt().softmax(1).logsumexp(0).var();
  await loss.toArray();
  const before = memory();
  loss.backward();
  const after = memory();
  assert.is(after.liveTensors - before.liveTensors, 2, 'x.grad and w.grad');
  assert.is(after.buffersInUse - before.buffersInUse, 2, 'x.grad and w.grad buffers');
  // accumulating allocates nothing that stays
  const loss2 = x.sum();
  const b2 = memory();
  loss2.backward();
  assert.is(memory().liveTensors, b2.liveTensors);
  assert.is(memory().buffersInUse, b2.buffersInUse);
});

t('a deep chain does not overflow the stack', async () => {
  const x = tensor([0.5], { requiresGrad: true });
  let h: Tensor = x;
  for (let i = 0; i < 3000; i++) h = h.mul(1.0001);
  h.sum().backward();
  R.assertClose(await x.grad!.toArray(), [1.0001 ** 3000], { rtol: 1e-3 });
});

t('gradients of the same leaf from several paths and broadcasting sum correctly', async () => {
  const b = randRef([3], 13);
  const m = randRef([4, 3], 14);
  await checkGrad(
    'bias reused',
    [b, m],
    ([B, M]) => M!.add(B!).mul(B!.unsqueeze(0)).sub(B!.expand(4, 3)).sum(0),
    ([B, M]) =>
      R.binary(
        R.reduce(
          R.binary(mul(add(M!, B!), B!), R.expand(B!, [4, 3]), (p, q) => p - q),
          [0],
          false,
          'sum',
        ),
        R.ref([3], [0, 0, 0]),
        (p) => p,
      ),
  );
});

t('a custom rule may return one gradient tensor for several inputs, in any accumulation order', async () => {
  // f(p, q) = p + q whose rule hands the same tensor to both inputs
  const addShared = (p: Tensor, q: Tensor): Tensor =>
    record('addShared', p.detach().add(q.detach()), [p, q], (g) => {
      const h = g.mul(1);
      return [h, h];
    });
  for (const first of [true, false]) {
    const p = tensor([1, 2], { requiresGrad: true });
    const s = tensor([3, 4], { requiresGrad: true });
    const r = p.mul(1);
    const z1 = r.mul(3).sum();
    const z2 = addShared(r, s).sum();
    // in one order r already holds a gradient from z1 when addShared's rule runs
    (first ? z1.add(z2) : z2.add(z1)).backward();
    assert.equal(Array.from(await p.grad!.toArray()), [4, 4]);
    assert.equal(Array.from(await s.grad!.toArray()), [1, 1]);
  }
  // the same input twice through a custom rule
  const x = tensor([2], { requiresGrad: true });
  addShared(x, x).mul(5).sum().backward();
  assert.equal(Array.from(await x.grad!.toArray()), [10]);
});

t('backward makes only the gradients that are needed: none for a constant, a mask or a label', async () => {
  const xs = [1, -2, 3, 4, 5, -6];
  const cs = [2, -2, 0.5, 8, 4, -7]; // c > x, c = x, c < x all occur (max/min ties)
  /** Kernels of y.backward(ones) alone, and x's gradient; c needs a gradient only when asked. */
  const run = (f: (x: Tensor, c: Tensor) => Tensor, cNeedsGrad = false) =>
    scope(async () => {
      const x = tensor(xs, { requiresGrad: true });
      const y = f(x, tensor(cs, { requiresGrad: cNeedsGrad }));
      const g = tensor(Array(y.size).fill(1), { shape: [...y.shape] });
      await sync();
      const s0 = dispatchStats().dispatches;
      y.backward(g);
      const kernels = dispatchStats().dispatches - s0;
      return { kernels, grad: Array.from(await x.grad!.toArray()) };
    });
  const near = (what: string, got: number[], want: number[]) => {
    assert.is(got.length, want.length, `${what}: gradient length`);
    for (const [i, v] of got.entries())
      assert.ok(
        Math.abs(v - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)),
        `${what}[${i}]: ${v} vs ${want[i]}`,
      );
  };
  // The exact counts: one kernel for the needed gradient (x − c: none, the gradient passes through as it is).
  const exact: [string, (x: Tensor, c: Tensor) => Tensor, number, number[]][] = [
    ['x * c', (x, c) => x.mul(c), 1, cs],
    ['x * 3', (x) => x.mul(3), 1, [3, 3, 3, 3, 3, 3]],
    ['x / c', (x, c) => x.div(c), 1, cs.map((c) => 1 / c)],
    ['x - c', (x, c) => x.sub(c), 0, [1, 1, 1, 1, 1, 1]],
    ['c - x', (x, c) => c.sub(x), 1, [-1, -1, -1, -1, -1, -1]],
  ];
  for (const [what, f, kernels, want] of exact) {
    const r = await run(f);
    assert.is(r.kernels, kernels, `${what}: kernels in backward`);
    near(what, r.grad, want);
  }
  // The rest: fewer kernels than when c needs a gradient too, and the same gradient for x.
  const fewer: [string, (x: Tensor, c: Tensor) => Tensor, number[]][] = [
    ['maximum', (x, c) => x.maximum(c), [0, 0.5, 1, 0, 1, 1]],
    ['minimum', (x, c) => x.minimum(c), [1, 0.5, 0, 1, 0, 0]],
    ['where', (x, c) => where(c.gt(0), x, c), [1, 0, 1, 1, 1, 0]],
    ['concat', (x, c) => concat([x, c]), [1, 1, 1, 1, 1, 1]],
    ['pow', (x, c) => x.abs().pow(c.abs()), [2, -4, 0.5 / Math.sqrt(3), 8 * 4 ** 7, 4 * 5 ** 3, -7 * 6 ** 6]],
  ];
  for (const [what, f, want] of fewer) {
    const alone = await run(f);
    const both = await run(f, true);
    assert.ok(
      alone.kernels < both.kernels,
      `${what}: ${alone.kernels} kernels, ${both.kernels} with c needing one too`,
    );
    near(what, alone.grad, want);
    near(`${what} (c needing a gradient too)`, both.grad, want);
  }
});

t.run();
