// Memory management: dispose(), scope() (sync, async, nested, throwing; keeping returned tensors in arrays,
// objects and maps), keep(), memory() counters, the buffer pool's reuse, assign(), and use after dispose.
import v8 from 'node:v8';
import vm from 'node:vm';
import { keep, matmul, memory, scope, sync, type Tensor, tensor, zeros } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { fixtureReport, gpuSuite } from './helpers.js';

const t = gpuSuite('memory');

const live = () => memory().liveTensors;
const inUse = () => memory().buffersInUse;

t('dispose() frees now, is idempotent, and frees .grad with the tensor', async () => {
  const base = memory();
  const x = tensor([1, 2, 3], { requiresGrad: true });
  assert.is(live(), base.liveTensors + 1);
  assert.is(inUse(), base.buffersInUse + 1);
  assert.ok(memory().bytesInUse >= base.bytesInUse + 12);
  x.mul(2).sum().backward();
  assert.ok(x.grad);
  const g = x.grad!;
  x.dispose();
  x.dispose();
  assert.ok(x.isDisposed && g.isDisposed);
  assert.is(x.grad, null);
  // the temporaries (mul, sum) belong to the test scope; everything else is back to the baseline
  const y = tensor([1]);
  const n = live();
  y[Symbol.dispose]();
  assert.is(live(), n - 1);
});

t('using a disposed tensor names the op that tried', async () => {
  const x = tensor([1, 2, 3, 4], { shape: [2, 2] });
  x.dispose();
  assert.throws(() => x.add(1), /add: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  assert.throws(() => x.exp(), /exp: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  assert.throws(() => x.reshape(4), /reshape: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  assert.throws(() => x.T, /transpose: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  assert.throws(() => x.sum(), /reduce_sum: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  assert.throws(() => x.matmul(x), /matmul: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  assert.throws(() => x.detach(), /detach: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  assert.throws(() => x.slice([[0, 1]]), /slice: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  assert.throws(() => x.argmax(), /argmax|reshape/);
  let msg = '';
  await x.toArray().catch((e: Error) => {
    msg = e.message;
  });
  assert.match(msg, /toArray: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  const y = tensor([1, 2, 3, 4]);
  assert.throws(() => y.assign(x), /assign: tensor #\d+ \[2,2\] was used after dispose\(\)/);
  assert.throws(() => x.assign(tensor([1, 2, 3, 4], { shape: [2, 2] })), /assign: .*was used after dispose/);
});

t('scope() disposes everything but what it returns (arrays, objects, maps, .grad)', async () => {
  const base = memory();
  const outer = tensor([1, 2]);
  const r = scope(() => {
    const a = outer.add(1);
    const b = a.mul(2);
    const c = b.exp();
    const d = c.neg();
    d.abs(); // garbage
    const w = tensor([1], { requiresGrad: true });
    w.mul(3).sum().backward();
    a.add(b);
    return { list: [b, { deep: c }], map: new Map([['d', d]]), w, n: 3, s: 'x' };
  });
  const [b, { deep: c }] = r.list as [Tensor, { deep: Tensor }];
  assert.not.ok(b.isDisposed || c.isDisposed || r.map.get('d')!.isDisposed || r.w.isDisposed);
  assert.not.ok(r.w.grad!.isDisposed);
  assert.not.ok(outer.isDisposed, 'tensors made before the scope are untouched');
  assert.equal(Array.from(await b.toArray()), [4, 6]);
  assert.equal(Array.from(await r.w.grad!.toArray()), [3]);
  // outer, b, c, d, w (+ w.grad) survive
  assert.is(live(), base.liveTensors + 6);
  for (const x of [outer, b, c, r.map.get('d')!, r.w]) x.dispose();
  assert.is(live(), base.liveTensors);
  assert.is(inUse(), base.buffersInUse);
});

t('scope() with async functions keeps tensors created across await', async () => {
  const base = memory();
  const r = await scope(async () => {
    const a = tensor([1, 2, 3]);
    await sync();
    const b = a.mul(a);
    const v = await b.toArray();
    const c = b.add(1);
    await new Promise((res) => setTimeout(res, 1));
    const d = c.sum();
    return { d, v };
  });
  assert.equal(Array.from(r.v), [1, 4, 9]);
  assert.is(await r.d.item(), 17);
  assert.is(live(), base.liveTensors + 1);
  r.d.dispose();
  assert.is(live(), base.liveTensors);
  assert.is(inUse(), base.buffersInUse);
});

t('nested scopes hand returned tensors to the parent; keep() exempts from every scope', async () => {
  const base = memory();
  let inner: Tensor | null = null;
  let kept: Tensor | null = null;
  const out = scope(() => {
    inner = scope(() => {
      const x = tensor([1, 2]).add(1);
      kept = keep(x.mul(10));
      return x.mul(2);
    });
    assert.not.ok(inner.isDisposed);
    return inner.add(1);
  });
  assert.ok(inner!.isDisposed, 'the inner result belongs to the outer scope, which did not return it');
  assert.not.ok(kept!.isDisposed, 'keep() survives both scopes');
  assert.equal(Array.from(await out.toArray()), [5, 7]);
  assert.equal(Array.from(await kept!.toArray()), [20, 30]);
  out.dispose();
  kept!.dispose();
  assert.is(live(), base.liveTensors);
  assert.is(inUse(), base.buffersInUse);
});

t('a throwing scope (sync or async) still disposes its tensors', async () => {
  const base = memory();
  assert.throws(
    () =>
      scope(() => {
        tensor([1]).add(2);
        throw new Error('sync boom');
      }),
    /sync boom/,
  );
  assert.is(live(), base.liveTensors);
  let msg = '';
  await scope(async () => {
    tensor([1]).add(2);
    await sync();
    throw new Error('async boom');
  }).catch((e: Error) => {
    msg = e.message;
  });
  assert.is(msg, 'async boom');
  assert.is(live(), base.liveTensors);
  assert.is(inUse(), base.buffersInUse);
});

t('memory() counters return to the baseline after a training-like step', async () => {
  const w = tensor([0.5, -0.5, 0.25, 1], { shape: [2, 2], requiresGrad: true });
  const x = tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2] });
  for (let step = 0; step < 3; step++) {
    const base = memory();
    scope(() => {
      const loss = matmul(x, w).relu().square().mean();
      loss.backward();
      w.assign(w.sub(w.grad!.mul(0.1)));
      w.grad!.dispose();
      w.grad = null;
    });
    await sync();
    const after = memory();
    assert.is(after.liveTensors, base.liveTensors, `step ${step} tensors`);
    assert.is(after.buffersInUse, base.buffersInUse, `step ${step} buffers`);
    assert.is(after.bytesInUse, base.bytesInUse, `step ${step} bytes`);
  }
  assert.ok(w.requiresGrad && w.isLeaf, 'assign keeps the parameter a leaf');
});

t('the buffer pool reuses freed buffers of the same size class', async () => {
  const warm = zeros([1000]);
  warm.dispose();
  const created = memory().buffersCreated;
  for (let i = 0; i < 20; i++) zeros([1000]).dispose();
  // 4000 and 3900 bytes share a size class
  for (let i = 0; i < 5; i++) zeros([975]).dispose();
  assert.is(memory().buffersCreated, created, 'no new buffers for repeated same-size allocations');
  const m = memory();
  assert.ok(m.buffersPooled >= 1 && m.bytesPooled >= 4000);
  assert.ok(m.peakBytes >= m.bytesInUse + m.bytesPooled);
  // two live tensors need two buffers
  const a = zeros([1000]);
  const b = zeros([1000]);
  assert.ok(memory().buffersCreated <= created + 1);
  a.dispose();
  b.dispose();
});

t('emptyCache() drops pooled buffers; later allocations and readbacks still work', async () => {
  const { emptyCache } = await import('@wgrad/tensor');
  const x = tensor([1, 2, 3]);
  const y = x.mul(2);
  await y.toArray();
  y.dispose();
  emptyCache();
  const m = memory();
  assert.is(m.buffersPooled, 0);
  assert.is(m.bytesPooled, 0);
  const created = m.buffersCreated;
  const z = x.add(1);
  assert.is(memory().buffersCreated, created + 1, 'a fresh buffer once the pool is empty');
  assert.equal(Array.from(await z.toArray()), [2, 3, 4]);
  assert.equal(Array.from(await x.toArray()), [1, 2, 3], 'live tensors are untouched');
});

t('assign() swaps storage in O(1), keeps identity, validates shape and dtype', async () => {
  const base = memory();
  const x = tensor([1, 2, 3]);
  const y = tensor([4, 5, 6]);
  assert.is(x.assign(y), x);
  assert.equal(Array.from(await x.toArray()), [4, 5, 6]);
  assert.is(inUse(), base.buffersInUse + 1, 'x and y share one buffer; the old one is freed');
  y.dispose();
  assert.equal(Array.from(await x.toArray()), [4, 5, 6], 'x keeps the storage alive');
  x.assign(x.mul(2));
  assert.equal(Array.from(await x.toArray()), [8, 10, 12]);
  x.assign(x);
  assert.equal(Array.from(await x.toArray()), [8, 10, 12]);
  // same size, different shape is allowed (the storage is flat); different size or dtype is not
  x.assign(tensor([[1, 2, 3]]));
  assert.equal([...x.shape], [3]);
  assert.throws(() => x.assign(tensor([1, 2])), /assign: float32\[3\] <- float32\[2\]/);
  assert.throws(() => x.assign(tensor(new Int32Array(3))), /assign: float32\[3\] <- int32\[3\]/);
});

t('detach() and reshape views share storage: the buffer lives until the last view goes', async () => {
  const base = memory();
  const x = tensor([1, 2, 3, 4]);
  const v = x.reshape(2, 2);
  const d = x.detach();
  assert.is(inUse(), base.buffersInUse + 1);
  assert.is(live(), base.liveTensors + 3);
  x.dispose();
  v.dispose();
  assert.is(inUse(), base.buffersInUse + 1);
  assert.equal(Array.from(await d.toArray()), [1, 2, 3, 4]);
  d.dispose();
  assert.is(inUse(), base.buffersInUse);
});

t('the FinalizationRegistry frees tensors dropped without dispose()', async () => {
  v8.setFlagsFromString('--expose_gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const base = memory();
  // kept tensors belong to no scope: once unreachable only the safety net can free them
  (() => {
    for (let i = 0; i < 5; i++) {
      const x = keep(tensor([1, 2, 3]));
      keep(x.reshape(3, 1));
      keep(x.mul(2));
    }
  })();
  assert.is(live(), base.liveTensors + 15);
  assert.is(inUse(), base.buffersInUse + 10);
  for (let k = 0; k < 50 && live() > base.liveTensors; k++) {
    gc();
    await new Promise((res) => setTimeout(res, 5));
  }
  assert.is(live(), base.liveTensors);
  assert.is(inUse(), base.buffersInUse);
});

t(
  'tensors that leave the outermost scope (returned, or saved for backward) are watched by the finalizer too',
  async () => {
    // Suites run inside a scope, so this runs in a child process at top level.
    const r = await fixtureReport<{ live: number[]; buffers: number[] }>('memory/escape.ts', [], {
      gc: true,
    });
    const [live0, liveMade, liveEnd] = r.live;
    const [buf0, bufMade, bufEnd] = r.buffers;
    assert.ok(liveMade! >= live0! + 12, `made ${liveMade! - live0!} tensors`);
    assert.ok(bufMade! > buf0!);
    assert.is(liveEnd, live0);
    assert.is(bufEnd, buf0);
  },
);

t.run();
