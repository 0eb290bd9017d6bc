// @wgrad/nn modules: Module reflection (names, train/eval, zeroGrad, printout, state dicts), every layer's
// forward against the float64 reference, PyTorch default initialisation, seeded dropout, and a small
// end-to-end training run.
import {
  Adam,
  AvgPool2d,
  Conv2d,
  ConvTranspose2d,
  Dropout,
  Embedding,
  Flatten,
  LeakyReLU,
  Linear,
  MaxPool2d,
  Module,
  mseLoss,
  OneHot,
  Parameter,
  ReLU,
  Sequential,
  Sigmoid,
  Tanh,
  Unflatten,
  Upsample,
} from '@wgrad/nn';
import { manualSeed, memory, noGrad, ones, scope, type Tensor, tensor, zeros } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { expectClose, fromRef, gpuSuite, R, randRef, toRef } from './helpers.js';

/** A small autoencoder: nested modules and a Sequential, for the naming/state tests. */
class AE extends Module {
  encoder = new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2));
  decoder = new Linear(2, 4);
  forward(x: Tensor): Tensor {
    return this.decoder.call(this.encoder.call(x));
  }
}

/** A module with its own parameter and buffer next to a child. */
class Scaled extends Module {
  scale: Parameter;
  fc = new Linear(3, 3);
  constructor() {
    super();
    this.scale = new Parameter(ones([3]));
    this.registerBuffer('steps', zeros([1]));
  }
  forward(x: Tensor): Tensor {
    return this.fc.call(x).mul(this.scale);
  }
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  a.length === b.length && Array.prototype.every.call(a, (v: number, i: number) => v === b[i]);

/** Expects fn to throw an error whose message contains every string in `parts`. */
function throwsWith(fn: () => unknown, parts: string[], what: string): string {
  try {
    fn();
  } catch (e) {
    const msg = (e as Error).message;
    for (const p of parts) assert.ok(msg.includes(p), `${what}: message '${msg}' lacks '${p}'`);
    return msg;
  }
  throw new Error(`${what}: did not throw`);
}

// ---------------------------------------------------------------------------------------------------------
const m = gpuSuite('nn.Module');

m('namedParameters gives dotted PyTorch names for nested modules and Sequential', () => {
  const ae = new AE();
  const names = [...ae.namedParameters()].map(([k]) => k);
  assert.equal(names, [
    'encoder.0.weight',
    'encoder.0.bias',
    'encoder.2.weight',
    'encoder.2.bias',
    'decoder.weight',
    'decoder.bias',
  ]);
  const ps = ae.parameters();
  assert.is(ps.length, 6);
  assert.ok(ps.every((p) => p instanceof Parameter && p.requiresGrad));
  assert.is(ps[0], (ae.encoder.at(0) as Linear).weight);
  assert.is(ps[5], ae.decoder.bias);
  assert.equal(
    [...ae.namedModules()].map(([k, mod]) => `${k}:${mod.constructor.name}`),
    [':AE', 'encoder:Sequential', 'encoder.0:Linear', 'encoder.1:ReLU', 'encoder.2:Linear', 'decoder:Linear'],
  );
  assert.equal(
    [...ae.namedChildren()].map(([k]) => k),
    ['encoder', 'decoder'],
  );
  const noBias = new Linear(5, 2, { bias: false });
  assert.equal(
    [...noBias.namedParameters()].map(([k]) => k),
    ['weight'],
  );
  // A Sequential of 12 children keeps numeric order (10, 11 after 9).
  const deep = new Sequential(...Array.from({ length: 12 }, () => new Linear(1, 1, { bias: false })));
  assert.equal(
    [...deep.namedParameters()].map(([k]) => k),
    Array.from({ length: 12 }, (_, i) => `${i}.weight`),
  );
  ae.dispose();
  noBias.dispose();
  deep.dispose();
});

m('train()/eval() propagate to every child; numParameters', () => {
  const ae = new AE();
  const all = () => [...ae.namedModules()].map(([, mod]) => mod.training);
  assert.ok(all().every((v) => v));
  assert.is(ae.eval(), ae);
  assert.ok(all().every((v) => !v));
  ae.encoder.train();
  assert.equal(all(), [false, true, true, true, true, false]);
  ae.train();
  assert.ok(all().every((v) => v));
  ae.train(false);
  assert.ok(all().every((v) => !v));
  assert.is(ae.numParameters(), 4 * 3 + 3 + 3 * 2 + 2 + 2 * 4 + 4);
  ae.dispose();
});

m('zeroGrad drops the gradient of every parameter', async () => {
  const ae = new AE();
  const x = fromRef(randRef([5, 4], 1));
  ae.call(x).square().sum().backward();
  assert.ok(ae.parameters().every((p) => p.grad !== null));
  assert.equal([...ae.decoder.weight.grad!.shape], [4, 2]);
  ae.zeroGrad();
  assert.ok(ae.parameters().every((p) => p.grad === null));
  // Gradients accumulate across backward() calls until zeroGrad.
  const lin = new Linear(2, 1);
  const xi = tensor([[1, 2]]);
  lin.call(xi).sum().backward();
  lin.call(xi).sum().backward();
  assert.equal(Array.from(await lin.bias!.grad!.toArray()), [2]);
  assert.equal(Array.from(await lin.weight.grad!.toArray()), [2, 4]);
  lin.zeroGrad();
  assert.is(lin.weight.grad, null);
  ae.dispose();
  lin.dispose();
});

m('toString shows the tree and parameter counts', () => {
  const big = new Linear(784, 400);
  assert.is(big.numParameters(), 314_000);
  assert.is(big.toString(), 'Linear(in=784, out=400, bias=true)  # 314,000 params');
  const ae = new AE();
  assert.is(
    ae.toString(),
    [
      'AE()  # 35 params',
      '  (encoder): Sequential()  # 23 params',
      '    (0): Linear(in=4, out=3, bias=true)  # 15 params',
      '    (1): ReLU()',
      '    (2): Linear(in=3, out=2, bias=true)  # 8 params',
      '  (decoder): Linear(in=2, out=4, bias=true)  # 12 params',
    ].join('\n'),
  );
  const s = new Scaled();
  assert.is(
    s.toString(),
    ['Scaled()  # 15 params (3 own)', '  (fc): Linear(in=3, out=3, bias=true)  # 12 params'].join('\n'),
  );
  const c = new Conv2d(1, 64, 4, { stride: 2, padding: 1 });
  assert.is(c.toString(), 'Conv2d(1, 64, kernel=4,4, stride=2, padding=1)  # 1,088 params');
  big.dispose();
  ae.dispose();
  s.dispose();
  c.dispose();
});

m('stateDict has parameter and buffer keys; loadStateDict round-trips and copies', async () => {
  manualSeed(1);
  const a = new AE();
  manualSeed(2);
  const b = new AE();
  const sd = a.stateDict();
  assert.equal(
    [...sd.keys()],
    [...a.namedParameters()].map(([k]) => k),
  );
  assert.is(sd.get('encoder.2.weight'), (a.encoder.at(2) as Linear).weight);
  assert.not.ok(same(await b.decoder.weight.toArray(), await a.decoder.weight.toArray()));
  const live = memory().liveTensors;
  b.loadStateDict(sd);
  assert.is(memory().liveTensors, live, 'loadStateDict leaves no extra live tensors');
  for (const [k, p] of b.stateDict())
    assert.ok(same(await p.toArray(), await sd.get(k)!.toArray()), `${k} loaded`);
  // The loaded values are copies: freeing the source keeps them, and the module still trains.
  const expected = await a.decoder.bias!.toArray();
  a.dispose();
  assert.ok(same(await b.decoder.bias!.toArray(), expected));
  assert.ok(b.parameters().every((p) => p.requiresGrad));
  b.call(fromRef(randRef([2, 4], 3)))
    .sum()
    .backward();
  assert.ok(b.parameters().every((p) => p.grad !== null));

  const s = new Scaled();
  assert.equal([...s.stateDict().keys()].sort(), ['fc.bias', 'fc.weight', 'scale', 'steps']);
  const s2 = new Scaled();
  s2.loadStateDict(s.stateDict());
  b.dispose();
  s.dispose();
  s2.dispose();
});

m('loadStateDict (strict) lists missing and unexpected keys and writes nothing', async () => {
  const a = new AE();
  const b = new AE();
  const before = await b.encoder.at(0).parameters()[0]!.toArray();
  const full = a.stateDict();

  const missing = new Map(full);
  missing.delete('decoder.bias');
  missing.delete('encoder.0.weight');
  const msg = throwsWith(
    () => b.loadStateDict(missing),
    ['missing keys', 'encoder.0.weight', 'decoder.bias'],
    'missing',
  );
  assert.not.ok(msg.includes('unexpected'));

  const extra = new Map(full);
  const stray = zeros([2]);
  extra.set('decoder.gamma', stray);
  throwsWith(() => b.loadStateDict(extra), ['unexpected keys', 'decoder.gamma'], 'unexpected');

  missing.set('encoder.5.weight', stray);
  throwsWith(
    () => b.loadStateDict(missing, { source: 'ckpt.json' }),
    ['ckpt.json', 'missing keys', 'decoder.bias', 'unexpected keys', 'encoder.5.weight'],
    'both',
  );
  assert.ok(same(await b.encoder.at(0).parameters()[0]!.toArray(), before), 'nothing written');

  // Non-strict: missing keys are skipped, present ones load.
  const partial = new Map([['decoder.bias', full.get('decoder.bias')!]]);
  b.loadStateDict(partial, { strict: false });
  assert.ok(same(await b.decoder.bias!.toArray(), await a.decoder.bias!.toArray()));
  assert.ok(same(await b.encoder.at(0).parameters()[0]!.toArray(), before));
  a.dispose();
  b.dispose();
});

m('loadStateDict shape mismatch names the key and both shapes and writes nothing', async () => {
  const a = new AE();
  const b = new AE();
  const before = await (b.encoder.at(0) as Linear).weight.toArray();
  const beforeDec = await b.decoder.weight.toArray();
  const bad = new Map(a.stateDict());
  const wrong = zeros([4, 3]);
  bad.set('decoder.weight', wrong); // the last-but-one key: everything before it is valid
  throwsWith(() => b.loadStateDict(bad), ["'decoder.weight'", '[4,3]', '[4,2]'], 'shape mismatch');
  assert.ok(same(await (b.encoder.at(0) as Linear).weight.toArray(), before), 'encoder.0.weight unchanged');
  assert.ok(same(await b.decoder.weight.toArray(), beforeDec), 'decoder.weight unchanged');
  // Same element count, different shape still fails; so does a dtype mismatch.
  bad.set('decoder.weight', zeros([2, 4]));
  throwsWith(() => b.loadStateDict(bad), ["'decoder.weight'", '[2,4]', '[4,2]'], 'transposed shape');
  bad.set('decoder.weight', zeros([4, 2], 'int32'));
  throwsWith(() => b.loadStateDict(bad), ["'decoder.weight'", 'int32', 'float32'], 'dtype mismatch');
  assert.ok(same(await (b.encoder.at(0) as Linear).weight.toArray(), before));
  a.dispose();
  b.dispose();
});

m.run();

// ---------------------------------------------------------------------------------------------------------
const l = gpuSuite('nn.layers');

const convOpts = (s: number, p: number) => ({
  stride: [s, s] as [number, number],
  padding: [p, p] as [number, number],
  dilation: [1, 1] as [number, number],
  groups: 1,
});

l('Linear: forward equals x·Wᵀ + b (with and without bias, leading dims)', async () => {
  const lin = new Linear(7, 5);
  assert.equal([...lin.weight.shape], [5, 7]);
  assert.equal([...lin.bias!.shape], [5]);
  const xr = randRef([2, 3, 7], 1);
  const W = await toRef(lin.weight);
  const b = await toRef(lin.bias!);
  const y = lin.call(fromRef(xr));
  await expectClose(
    y,
    R.binary(R.matmul(xr, R.permute(W, [1, 0])), b, (p, q) => p + q),
    'Linear',
  );
  const nb = new Linear(7, 3, { bias: false });
  assert.is(nb.bias, null);
  await expectClose(nb.call(fromRef(xr)), R.matmul(xr, R.permute(await toRef(nb.weight), [1, 0])), 'no bias');
  lin.dispose();
  nb.dispose();
});

l('Conv2d / ConvTranspose2d: seed-layer output shapes and values vs reference', async () => {
  const enc = new Conv2d(1, 64, 4, { stride: 2, padding: 1 });
  assert.equal([...enc.weight.shape], [64, 1, 4, 4]);
  const x = fromRef(randRef([2, 1, 28, 28], 2));
  const h = enc.call(x);
  assert.equal([...h.shape], [2, 64, 14, 14]);
  const dec = new ConvTranspose2d(64, 1, 4, { stride: 2, padding: 1 });
  assert.equal([...dec.weight.shape], [64, 1, 4, 4]);
  assert.equal([...dec.call(h).shape], [2, 1, 28, 28]);
  enc.dispose();
  dec.dispose();

  const c = new Conv2d(3, 4, 3, { stride: 2, padding: 1 });
  const xr = randRef([2, 3, 7, 6], 3);
  const y = c.call(fromRef(xr));
  await expectClose(y, R.conv2d(xr, await toRef(c.weight), await toRef(c.bias!), convOpts(2, 1)), 'Conv2d');
  const g = new Conv2d(4, 6, [3, 1], { groups: 2, bias: false });
  assert.equal([...g.weight.shape], [6, 2, 3, 1]);
  assert.is(g.bias, null);
  const gx = randRef([1, 4, 5, 5], 4);
  await expectClose(
    g.call(fromRef(gx)),
    R.conv2d(gx, await toRef(g.weight), null, { ...convOpts(1, 0), groups: 2 }),
    'grouped Conv2d',
  );
  throwsWith(() => new Conv2d(3, 4, 3, { groups: 2 }), ['Conv2d', 'groups=2'], 'bad groups');

  const ct = new ConvTranspose2d(3, 2, 3, { stride: 2, padding: 1, outputPadding: 1 });
  assert.equal([...ct.weight.shape], [3, 2, 3, 3]);
  const tr = randRef([2, 3, 4, 5], 5);
  const ty = ct.call(fromRef(tr));
  assert.equal([...ty.shape], [2, 2, 8, 10]);
  await expectClose(
    ty,
    R.convTranspose2d(tr, await toRef(ct.weight), await toRef(ct.bias!), {
      ...convOpts(2, 1),
      outputPadding: [1, 1],
    }),
    'ConvTranspose2d',
  );
  c.dispose();
  g.dispose();
  ct.dispose();
});

l('MaxPool2d, AvgPool2d, Upsample vs reference', async () => {
  const xr = randRef([2, 3, 6, 7], 6);
  const x = fromRef(xr);
  await expectClose(new MaxPool2d(2).call(x), R.maxPool2d(xr, [2, 2], [2, 2], [0, 0]), 'MaxPool2d(2)');
  await expectClose(
    new MaxPool2d(3, { stride: 2, padding: 1 }).call(x),
    R.maxPool2d(xr, [3, 3], [2, 2], [1, 1]),
    'MaxPool2d(3,2,1)',
  );
  await expectClose(new AvgPool2d(2).call(x), R.avgPool2d(xr, [2, 2], [2, 2], [0, 0]), 'AvgPool2d(2)');
  await expectClose(
    new AvgPool2d(3, { stride: 1, padding: 1, countIncludePad: false }).call(x),
    R.avgPool2d(xr, [3, 3], [1, 1], [1, 1], false),
    'AvgPool2d(3,1,1,countIncludePad=false)',
  );
  await expectClose(new Upsample({ scaleFactor: 2 }).call(x), R.upsampleNearest2d(xr, 12, 14), 'Upsample x2');
  await expectClose(new Upsample({ size: [9, 10] }).call(x), R.upsampleNearest2d(xr, 9, 10), 'Upsample size');
});

l('ReLU, LeakyReLU, Sigmoid, Tanh vs reference (forward and gradient)', async () => {
  const xr = randRef([4, 9], 7, -4, 4);
  const cases: [string, Module, (v: number) => number, (v: number) => number][] = [
    ['ReLU', new ReLU(), (v) => Math.max(v, 0), (v) => (v > 0 ? 1 : 0)],
    ['LeakyReLU', new LeakyReLU(), (v) => (v > 0 ? v : 0.01 * v), (v) => (v > 0 ? 1 : 0.01)],
    ['LeakyReLU(0.2)', new LeakyReLU(0.2), (v) => (v > 0 ? v : 0.2 * v), (v) => (v > 0 ? 1 : 0.2)],
    ['Sigmoid', new Sigmoid(), (v) => 1 / (1 + Math.exp(-v)), (v) => Math.exp(-v) / (1 + Math.exp(-v)) ** 2],
    ['Tanh', new Tanh(), Math.tanh, (v) => 1 - Math.tanh(v) ** 2],
  ];
  for (const [name, mod, f, df] of cases) {
    const x = fromRef(xr, { requiresGrad: true });
    const y = mod.call(x);
    await expectClose(y, R.unary(xr, f), name);
    y.sum().backward();
    await expectClose(x.grad!, R.unary(xr, df), `${name} grad`);
  }
});

l('Flatten, Unflatten, Sequential (composition, at(i), length)', async () => {
  const xr = randRef([2, 3, 4, 5], 8);
  const x = fromRef(xr);
  const f = new Flatten().call(x);
  assert.equal([...f.shape], [2, 60]);
  assert.ok(same(await f.toArray(), await x.toArray()));
  assert.equal([...new Flatten(0).call(x).shape], [120]);
  assert.equal([...new Flatten(1, 2).call(x).shape], [2, 12, 5]);
  assert.equal([...new Unflatten(1, [3, 20]).call(f).shape], [2, 3, 20]);
  assert.equal([...new Unflatten(-1, [4, 5]).call(f.reshape(2, 3, 20)).shape], [2, 3, 4, 5]);

  const l1 = new Linear(60, 8);
  const l2 = new Linear(8, 2);
  const seq = new Sequential(new Flatten(), l1, new Tanh(), l2, new Unflatten(1, [2, 1]));
  assert.is(seq.length, 5);
  assert.is(seq.at(1), l1);
  assert.is(seq.at(3), l2);
  assert.is(seq.at(-2), l2);
  assert.ok(seq.at(0) instanceof Flatten);
  const y = seq.call(x);
  assert.equal([...y.shape], [2, 2, 1]);
  const manual = l2.call(l1.call(x.reshape(2, 60)).tanh()).reshape(2, 2, 1);
  await expectClose(y, await toRef(manual), 'Sequential composes');
  assert.is(seq.numParameters(), 60 * 8 + 8 + 8 * 2 + 2);
  seq.dispose();
});

l('Sequential fuses Linear/Conv + ReLU into one op with the same values and gradients', async () => {
  const seq = new Sequential(
    new Conv2d(2, 3, 3, { padding: 1 }),
    new ReLU(),
    new Flatten(),
    new Linear(48, 5),
    new ReLU(),
  );
  const x = fromRef(randRef([2, 2, 4, 4], 81), { requiresGrad: true });
  const fused = seq.forward(x);
  assert.equal(fused.gradFn?.op, 'linear', 'the last ReLU ran inside linear');
  // The same layers one by one, relu as its own op.
  const h = (seq.at(0) as Conv2d).forward(x).relu().flatten(1);
  const plain = (seq.at(3) as Linear).forward(h).relu();
  same(await fused.toArray(), await plain.toArray());
  const up = fromRef(randRef([2, 5], 82));
  fused.backward(up);
  const gFused = await Promise.all([x, ...seq.parameters()].map((p) => p.grad!.toArray()));
  for (const p of [x, ...seq.parameters()]) {
    p.grad?.dispose();
    p.grad = null;
  }
  plain.backward(up);
  const gPlain = await Promise.all([x, ...seq.parameters()].map((p) => p.grad!.toArray()));
  gFused.forEach((g, i) => {
    R.assertClose(g, gPlain[i]!, { rtol: 1e-5, atol: 1e-6, what: `grad ${i}` });
  });
  seq.dispose();
});

l('Embedding: lookup equals weight rows; gradients accumulate on repeated indices', async () => {
  const emb = new Embedding(5, 3);
  assert.equal([...emb.weight.shape], [5, 3]);
  const W = await emb.weight.toArray();
  const ids = [1, 3, 1, 1, 0, 4];
  const idx = tensor(Int32Array.from(ids), { shape: [2, 3] });
  const y = emb.call(idx);
  assert.equal([...y.shape], [2, 3, 3]);
  const rows = ids.flatMap((i) => Array.from(W.subarray(i * 3, i * 3 + 3)));
  assert.ok(same(await y.toArray(), rows), 'rows of weight');
  const upr = randRef([2, 3, 3], 9);
  y.backward(fromRef(upr));
  const expected = new Float64Array(15);
  ids.forEach((r, j) => {
    for (let k = 0; k < 3; k++) expected[r * 3 + k]! += upr.data[j * 3 + k]!;
  });
  await expectClose(emb.weight.grad!, R.ref([5, 3], expected), 'Embedding weight grad');
  // Index untouched by the forward (it still reads).
  assert.equal(Array.from(await idx.toArray()), ids);
  // Without grad (inference) the same rows come back.
  const inf = noGrad(() => emb.call(idx));
  assert.not.ok(inf.requiresGrad);
  assert.ok(same(await inf.toArray(), rows));
  // 1-D indices too.
  const one = emb.call(tensor(Int32Array.from([2])));
  assert.equal([...one.shape], [1, 3]);
  assert.ok(same(await one.toArray(), W.subarray(6, 9)));
  emb.dispose();
});

l('OneHot: int32 labels to float32 one-hot rows', async () => {
  const oh = new OneHot(4);
  const y = oh.call(tensor(Int32Array.from([2, 0, 3, 3, 1, 0]), { shape: [3, 2] }));
  assert.equal([...y.shape], [3, 2, 4]);
  assert.is(y.dtype, 'float32');
  await expectClose(y, R.reshape(R.oneHot([2, 0, 3, 3, 1, 0], 4), [3, 2, 4]), 'OneHot', 0, 0);
  assert.is(oh.numParameters(), 0);
});

l.run();

// ---------------------------------------------------------------------------------------------------------
const d = gpuSuite('nn.Dropout');

d('same seed gives the same mask; different seeds differ', async () => {
  const drop = new Dropout(0.5);
  const x = ones([4096]);
  manualSeed(11);
  const a = await drop.call(x).toArray();
  manualSeed(11);
  const b = await drop.call(x).toArray();
  manualSeed(12);
  const c = await drop.call(x).toArray();
  assert.ok(same(a, b), 'same seed');
  assert.not.ok(same(a, c), 'different seed');
  // Consecutive calls draw fresh masks.
  manualSeed(11);
  drop.call(x);
  assert.not.ok(same(await drop.call(x).toArray(), a), 'second call differs');
});

d('train: kept fraction ≈ 1−p, kept values scaled by 1/(1−p), gradient is the mask', async () => {
  const n = 200_000;
  for (const p of [0.2, 0.5, 0.8]) {
    manualSeed(3);
    const xr = randRef([n], 20, 0.5, 2); // nonzero inputs
    const x = fromRef(xr, { requiresGrad: true });
    const y = new Dropout(p).call(x);
    const ya = await y.toArray();
    let kept = 0;
    let bad = 0;
    for (let i = 0; i < n; i++) {
      if (ya[i] === 0) continue;
      kept++;
      if (Math.abs(ya[i]! - xr.data[i]! / (1 - p)) > 1e-5 * Math.abs(ya[i]!)) bad++;
    }
    const frac = kept / n;
    // binomial SD is ≤ 0.0012 at n = 200k; allow 5 SD
    assert.ok(Math.abs(frac - (1 - p)) < 0.006, `p=${p}: kept fraction ${frac}`);
    assert.is(bad, 0, `p=${p}: kept values are x/(1-p)`);
    y.sum().backward();
    const g = await x.grad!.toArray();
    for (let i = 0; i < n; i++)
      if (Math.abs(g[i]! - (ya[i] === 0 ? 0 : 1 / (1 - p))) > 1e-6) {
        assert.unreachable(`p=${p}: grad[${i}] = ${g[i]}`);
        break;
      }
  }
});

d('eval() and p = 0 are the identity; invalid p throws', async () => {
  const xr = randRef([3, 50], 21);
  const x = fromRef(xr);
  const drop = new Dropout(0.9);
  drop.eval();
  await expectClose(drop.call(x), xr, 'eval', 0, 0);
  const inSeq = new Sequential(new Linear(50, 50), new Dropout(0.5));
  inSeq.eval();
  const a = await inSeq.call(x).toArray();
  const b = await inSeq.call(x).toArray();
  assert.ok(same(a, b), 'eval() reaches Dropout inside a Sequential');
  inSeq.train();
  manualSeed(1);
  assert.ok((await inSeq.call(x).toArray()).some((v) => v === 0));
  inSeq.dispose();
  await expectClose(new Dropout(0).call(x), xr, 'p=0', 0, 0);
  for (const p of [1, -0.1, 1.5, Number.NaN])
    throwsWith(() => new Dropout(p), ['Dropout', 'p must be in [0, 1)'], `p=${p}`);
});

d.run();

// ---------------------------------------------------------------------------------------------------------
const init = gpuSuite('nn.init');

/** Checks U(±bound): max |w| ≤ bound, the range is filled, mean ≈ 0 and variance ≈ bound²/3 (±10%). */
async function expectUniform(t: Tensor, bound: number, what: string, checkVar = true): Promise<void> {
  const a = await t.toArray();
  let max = 0;
  let sum = 0;
  let sq = 0;
  for (const v of a) {
    max = Math.max(max, Math.abs(v));
    sum += v;
    sq += v * v;
  }
  const mean = sum / a.length;
  const variance = (sq - a.length * mean * mean) / (a.length - 1);
  assert.ok(max <= bound, `${what}: max |w| ${max} > bound ${bound}`);
  assert.ok(max > 0.9 * bound || a.length < 50, `${what}: max |w| ${max} far below bound ${bound}`);
  if (!checkVar) return;
  const want = (bound * bound) / 3;
  assert.ok(Math.abs(variance - want) < 0.1 * want, `${what}: variance ${variance}, want ${want}`);
  // the sample mean has SD bound/√(3n): allow 4 SD
  assert.ok(Math.abs(mean) < (4 * bound) / Math.sqrt(3 * a.length), `${what}: mean ${mean}`);
}

init('Linear: weight and bias in U(±1/√in_features), variance bound²/3', async () => {
  manualSeed(5);
  const lin = new Linear(784, 400);
  const bound = 1 / Math.sqrt(784);
  await expectUniform(lin.weight, bound, 'Linear(784,400).weight');
  await expectUniform(lin.bias!, bound, 'Linear(784,400).bias', false);
  lin.dispose();
});

init('Conv2d: fan_in = Cin/groups·kH·kW', async () => {
  manualSeed(6);
  const c = new Conv2d(16, 32, [3, 5], { groups: 2 });
  const bound = 1 / Math.sqrt(8 * 3 * 5);
  await expectUniform(c.weight, bound, 'Conv2d(16,32,(3,5),groups=2).weight');
  await expectUniform(c.bias!, bound, 'Conv2d bias', false);
  const seed = new Conv2d(1, 64, 4, { stride: 2, padding: 1 });
  await expectUniform(seed.weight, 1 / 4, 'Conv2d(1,64,4).weight');
  await expectUniform(seed.bias!, 1 / 4, 'Conv2d(1,64,4).bias', false);
  c.dispose();
  seed.dispose();
});

init('ConvTranspose2d: fan_in = (Cout/groups)·kH·kW', async () => {
  manualSeed(7);
  const seed = new ConvTranspose2d(64, 1, 4, { stride: 2, padding: 1 });
  await expectUniform(seed.weight, 1 / 4, 'ConvTranspose2d(64,1,4).weight');
  await expectUniform(seed.bias!, 1 / 4, 'ConvTranspose2d(64,1,4).bias', false);
  const g = new ConvTranspose2d(64, 32, 4, { groups: 2 });
  await expectUniform(g.weight, 1 / Math.sqrt(16 * 16), 'ConvTranspose2d(64,32,4,groups=2).weight');
  seed.dispose();
  g.dispose();
});

init('Embedding is N(0, 1); manualSeed makes two constructions identical', async () => {
  manualSeed(8);
  const e = new Embedding(1000, 64);
  const a = await e.weight.toArray();
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / (a.length - 1);
  assert.ok(Math.abs(mean) < 0.02 && Math.abs(variance - 1) < 0.05, `mean ${mean}, var ${variance}`);
  e.dispose();

  const build = () =>
    new Sequential(new Conv2d(1, 4, 3), new Flatten(), new Linear(4, 2), new Embedding(3, 2));
  manualSeed(42);
  const m1 = build();
  manualSeed(42);
  const m2 = build();
  manualSeed(43);
  const m3 = build();
  const p2 = m2.stateDict();
  const p3 = m3.stateDict();
  let differs = 0;
  for (const [k, p] of m1.stateDict()) {
    const v = await p.toArray();
    assert.ok(same(v, await p2.get(k)!.toArray()), `${k} identical under the same seed`);
    if (!same(v, await p3.get(k)!.toArray())) differs++;
  }
  assert.is(differs, 5, 'every tensor differs under another seed');
  m1.dispose();
  m2.dispose();
  m3.dispose();
});

init.run();

// ---------------------------------------------------------------------------------------------------------
const e2e = gpuSuite('nn.train');

e2e('MLP + Adam: 200 steps on a fixed regression cut the MSE by >10x', async () => {
  manualSeed(0);
  const xr = randRef([64, 4], 30);
  const yr = R.ref(
    [64, 1],
    Array.from({ length: 64 }, (_, i) => {
      const [a, b, c, e] = [0, 1, 2, 3].map((k) => xr.data[i * 4 + k]!);
      return a! - 2 * b! + 0.5 * c! * e! + 0.3;
    }),
  );
  const x = fromRef(xr);
  const y = fromRef(yr);
  const mlp = new Sequential(new Linear(4, 16), new ReLU(), new Linear(16, 1));
  const opt = new Adam(mlp.parameters(), { lr: 0.02 });
  const losses: number[] = [];
  for (let s = 0; s < 200; s++) {
    const l = scope(() => {
      opt.zeroGrad();
      const loss = mseLoss(mlp.call(x), y);
      loss.backward();
      opt.step();
      return loss;
    });
    if (s === 0 || s === 199) losses.push(await l.item());
    l.dispose();
  }
  opt.zeroGrad();
  const [first, last] = losses as [number, number];
  assert.ok(last * 10 < first, `MSE ${first} -> ${last}`);
  const final = await mseLoss(mlp.call(x), y).item();
  assert.ok(final < last * 1.5, `final ${final}`);
  mlp.dispose();
  opt.dispose();
});

e2e.run();
