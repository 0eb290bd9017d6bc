// @wgrad/vae models, loss and scores: the builders' output shapes and PyTorch state_dict names (seeds 001-004),
// VAE encode/decode/sample/run, vaeLoss and aeLoss against hand computation, the anomaly scores
// (reconstruction, k-sample negative ELBO, heatmaps, scoreAll) against manual computation, and a few
// training steps of every model kind lowering its loss.
import { Adam, type Module } from '@wgrad/nn';
import { manualSeed, noGrad, randn, scope, type Tensor, tensor } from '@wgrad/tensor';
import {
  aeLoss,
  conditionalVAE,
  convAE,
  convVAE,
  heatmap,
  mlpAE,
  mlpVAE,
  negativeElbo,
  pixelErrors,
  RegularizedAE,
  reconstructionScore,
  regularizedAE,
  scoreAll,
  twoLayerAE,
  type VAE,
  vaeLoss,
} from '@wgrad/vae';
import * as assert from 'uvu/assert';
import { gpuSuite } from './helpers.js';

const test = gpuSuite('vae-models');

/** name → shape of every parameter, in namedParameters() order. */
function shapes(m: Module): [string, number[]][] {
  return [...m.namedParameters()].map(([k, p]) => [k, [...p.shape]]);
}

function host(values: number[], shape: number[]): Tensor {
  return tensor(Float32Array.from(values), { shape });
}

function labels(values: number[]): Tensor {
  return tensor(Int32Array.from(values), { shape: [values.length], dtype: 'int32' });
}

/** Deterministic values in [lo, hi) (a small LCG), exactly representable in float32. */
function values(n: number, seed: number, lo = 0, hi = 1): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround(lo + ((hi - lo) * s) / 2 ** 32);
  });
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string, rtol = 1e-5, atol = 1e-6): void {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    if (!(Math.abs(a[i]! - b[i]!) <= atol + rtol * Math.abs(b[i]!)))
      assert.unreachable(`${what}[${i}]: ${a[i]} != expected ${b[i]}`);
}

/** y = x Wᵀ + b on the host, x (B, I), W (O, I). */
/** (R, C) row-major → (C, R). */
function transpose(m: ArrayLike<number>, R: number, C: number): Float64Array {
  const t = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) t[c * R + r] = m[r * C + c]!;
  return t;
}

function linear(x: ArrayLike<number>, B: number, W: ArrayLike<number>, b: ArrayLike<number>, O: number) {
  const I = W.length / O;
  const y = new Float64Array(B * O);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++) {
      let acc = b[o]!;
      for (let i = 0; i < I; i++) acc += x[n * I + i]! * W[o * I + i]!;
      y[n * O + o] = acc;
    }
  return y;
}

async function param(m: Module, name: string): Promise<Float32Array> {
  const p = new Map(m.namedParameters()).get(name);
  if (!p) throw new Error(`no parameter '${name}' in [${[...m.namedParameters()].map(([k]) => k)}]`);
  return p.toArray();
}

/** Runs `n` Adam steps of `loss()`; returns the losses. Frees the optimizer. */
async function fit(model: Module, loss: () => Tensor, n: number, lr: number): Promise<number[]> {
  const opt = new Adam(model.parameters(), { lr });
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const l = scope(() => {
        opt.zeroGrad();
        const v = loss();
        v.backward();
        opt.step();
        return v.detach();
      });
      out.push((await l.toArray())[0]!);
      l.dispose();
    }
  } finally {
    opt.dispose();
  }
  return out;
}

/** The last 3 losses average below `ratio` × the first. */
function decreased(losses: number[], what: string, ratio = 0.9): void {
  const tail = losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
  assert.ok(
    Number.isFinite(tail) && tail < ratio * losses[0]!,
    `${what}: loss ${losses[0]} -> ${tail} (${losses.map((l) => l.toFixed(4)).join(', ')})`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Builders: PyTorch names and shapes.

test('mlpVAE: seed 004 names (hidden_layers, mu_layer, log_sigma_squared_layer, layers) and shapes', async () => {
  manualSeed(1);
  const vae = mlpVAE();
  try {
    assert.equal(shapes(vae), [
      ['encoder.hidden_layers.0.weight', [400, 784]],
      ['encoder.hidden_layers.0.bias', [400]],
      ['encoder.mu_layer.weight', [20, 400]],
      ['encoder.mu_layer.bias', [20]],
      ['encoder.log_sigma_squared_layer.weight', [20, 400]],
      ['encoder.log_sigma_squared_layer.bias', [20]],
      ['decoder.layers.0.weight', [400, 20]],
      ['decoder.layers.0.bias', [400]],
      ['decoder.layers.2.weight', [784, 400]],
      ['decoder.layers.2.bias', [784]],
    ]);
    assert.equal(
      [...vae.stateDict().keys()],
      [...vae.namedParameters()].map(([k]) => k),
    );
    const x = randn([2, 1, 28, 28]);
    const o = vae.run(x);
    assert.equal(o.xhat.shape, [2, 1, 28, 28]);
    assert.equal(o.mu.shape, [2, 20]);
    assert.equal(o.logvar.shape, [2, 20]);
    assert.equal(o.z.shape, [2, 20]);
    assert.equal(vae.forward(x).shape, [2, 1, 28, 28]);
  } finally {
    vae.dispose();
  }
  const deep = mlpVAE({ inputDim: 12, hiddenDim: 8, latentDim: 3, hiddenLayers: 2, imageShape: [1, 3, 4] });
  try {
    assert.equal(
      shapes(deep).map(([k]) => k),
      [
        'encoder.hidden_layers.0.weight',
        'encoder.hidden_layers.0.bias',
        'encoder.hidden_layers.2.weight',
        'encoder.hidden_layers.2.bias',
        'encoder.mu_layer.weight',
        'encoder.mu_layer.bias',
        'encoder.log_sigma_squared_layer.weight',
        'encoder.log_sigma_squared_layer.bias',
        'decoder.layers.0.weight',
        'decoder.layers.0.bias',
        'decoder.layers.2.weight',
        'decoder.layers.2.bias',
        'decoder.layers.4.weight',
        'decoder.layers.4.bias',
      ],
    );
    assert.equal(deep.forward(randn([5, 12])).shape, [5, 1, 3, 4]);
    assert.equal(deep.sample(4).shape, [4, 1, 3, 4]);
    const xhat = await deep.sample(4).toArray();
    assert.ok(
      xhat.every((v) => v >= 0 && v <= 1),
      'sigmoid output in [0, 1]',
    );
    assert.throws(
      () => deep.encode(randn([2, 13])),
      /MLPEncoder: expected 12 input features, got \[2, ?13\]/,
    );
  } finally {
    deep.dispose();
  }
});

test('conditionalVAE: one-hot label joined to encoder input and z; a clear error without labels', async () => {
  manualSeed(2);
  const full = conditionalVAE();
  try {
    const s = new Map(shapes(full));
    assert.equal(s.get('encoder.hidden_layers.0.weight'), [400, 794]);
    assert.equal(s.get('decoder.layers.0.weight'), [400, 30]);
    assert.equal(s.get('decoder.layers.2.weight'), [784, 400]);
    assert.is(full.numClasses, 10);
  } finally {
    full.dispose();
  }
  const vae = conditionalVAE({ inputDim: 12, hiddenDim: 8, latentDim: 3, numClasses: 4 });
  try {
    const x = randn([3, 12]);
    const y = labels([0, 3, 1]);
    const o = vae.run(x, y);
    assert.equal(o.xhat.shape, [3, 12]);
    assert.equal(o.mu.shape, [3, 3]);
    assert.equal(vae.sample(2, labels([1, 2])).shape, [2, 12]);
    assert.throws(() => vae.run(x), /VAE\.encode: this VAE is conditional \(4 classes\) and needs labels/);
    assert.throws(() => vae.sample(2), /VAE\.decode: this VAE is conditional \(4 classes\) and needs labels/);
    assert.throws(() => vae.decode(randn([2, 3])), /needs labels/);
    // The label changes the reconstruction of the same x.
    const { mu } = vae.encode(x, y);
    const a = await vae.decode(mu, labels([0, 0, 0])).toArray();
    const b = await vae.decode(mu, labels([1, 1, 1])).toArray();
    assert.ok(
      a.some((v, i) => v !== b[i]),
      'decoding depends on the label',
    );
  } finally {
    vae.dispose();
  }
});

test('convVAE: seed 004 names (encoder.conv1/conv2/fc_mu/fc_logvar, decoder.fc/conv2/conv1) and shapes', async () => {
  manualSeed(3);
  const vae = convVAE();
  try {
    assert.equal(shapes(vae), [
      ['encoder.conv1.weight', [64, 1, 4, 4]],
      ['encoder.conv1.bias', [64]],
      ['encoder.conv2.weight', [128, 64, 4, 4]],
      ['encoder.conv2.bias', [128]],
      ['encoder.fc_mu.weight', [20, 6272]],
      ['encoder.fc_mu.bias', [20]],
      ['encoder.fc_logvar.weight', [20, 6272]],
      ['encoder.fc_logvar.bias', [20]],
      ['decoder.fc.weight', [6272, 20]],
      ['decoder.fc.bias', [6272]],
      // ConvTranspose2d weights are (in, out, kH, kW), as in PyTorch.
      ['decoder.conv2.weight', [128, 64, 4, 4]],
      ['decoder.conv2.bias', [64]],
      ['decoder.conv1.weight', [64, 1, 4, 4]],
      ['decoder.conv1.bias', [1]],
    ]);
    const o = vae.run(randn([2, 1, 28, 28]));
    assert.equal(o.xhat.shape, [2, 1, 28, 28]);
    assert.equal(o.mu.shape, [2, 20]);
  } finally {
    vae.dispose();
  }
  const rgb = convVAE({ channels: 3, latentDim: 4, imageSize: 8 });
  try {
    const o = rgb.run(randn([2, 3, 8, 8]));
    assert.equal(o.xhat.shape, [2, 3, 8, 8]);
    assert.equal(o.logvar.shape, [2, 4]);
    assert.equal(rgb.sample(3).shape, [3, 3, 8, 8]);
  } finally {
    rgb.dispose();
  }
  assert.throws(() => convVAE({ imageSize: 10 }), /ConvEncoder: image size 10 must be divisible by 4/);
});

test('VAE.run: z = μ + ε·exp(½ log σ²) with ε from the seeded RNG (same seed, same z)', async () => {
  const vae = mlpVAE({ inputDim: 6, hiddenDim: 5, latentDim: 2 });
  try {
    const x = host(values(12, 1), [2, 6]);
    manualSeed(7);
    const a = vae.run(x);
    manualSeed(7);
    const b = vae.run(x);
    assert.equal(await a.z.toArray(), await b.z.toArray());
    const [mu, lv, z] = await Promise.all([a.mu.toArray(), a.logvar.toArray(), a.z.toArray()]);
    manualSeed(7);
    const eps = await randn([2, 2]).toArray();
    close(
      z,
      Array.from(mu, (m, i) => m + eps[i]! * Math.exp(0.5 * lv[i]!)),
      'z',
    );
  } finally {
    vae.dispose();
  }
});

test('twoLayerAE: seed 002 parameters V, W, b, a, its init (V ~ N(0, 1/d), W = b = a = 0), relu(x·V + b)·W + a', async () => {
  manualSeed(4);
  const ae = twoLayerAE({ inputDim: 256, hidden: 64 });
  try {
    assert.equal(shapes(ae), [
      ['V', [256, 64]],
      ['W', [64, 256]],
      ['b', [64]],
      ['a', [256]],
    ]);
    const V = await param(ae, 'V');
    const mean = V.reduce((a, b) => a + b, 0) / V.length;
    const std = Math.sqrt(V.reduce((a, b) => a + (b - mean) ** 2, 0) / V.length);
    assert.ok(Math.abs(mean) < 0.01 && Math.abs(std - 1 / 16) < 0.004, `V mean ${mean}, std ${std} (1/16)`);
    for (const k of ['b', 'W', 'a'])
      assert.ok(
        (await param(ae, k)).every((v) => v === 0),
        `${k} = 0`,
      );
    const out = await ae.forward(randn([3, 256])).toArray();
    assert.ok(
      out.every((v) => v === 0),
      'W = 0, a = 0: x̂ = 0',
    );
  } finally {
    ae.dispose();
  }
  const ae2 = twoLayerAE({ inputDim: 5, hidden: 3, seedInit: false });
  try {
    const xv = values(10, 5, -1, 1);
    const [V, b, W, a] = await Promise.all(['V', 'b', 'W', 'a'].map((k) => param(ae2, k)));
    // x·V + b with V (in, out) is linear() of Vᵀ.
    const z = linear(xv, 2, transpose(V!, 5, 3), b!, 3).map((v) => Math.max(v, 0));
    const xhat = ae2.forward(host(xv, [2, 5]));
    assert.equal(xhat.shape, [2, 5]);
    close(await xhat.toArray(), linear(z, 2, transpose(W!, 3, 5), a!, 5), 'x̂');
    close(await ae2.encode(host(xv, [2, 5])).toArray(), z, 'code');
  } finally {
    ae2.dispose();
  }
});

test('mlpAE: seed 003 names (linear_1, linear_2), 64 → h → 64, linear by default; ReLU and dropout options', async () => {
  manualSeed(5);
  const ae = mlpAE();
  try {
    assert.equal(shapes(ae), [
      ['linear_1.weight', [5, 64]],
      ['linear_1.bias', [5]],
      ['linear_2.weight', [64, 5]],
      ['linear_2.bias', [64]],
    ]);
    const xv = values(2 * 64, 6, -2, 2);
    const [W1, b1, W2, b2] = await Promise.all(
      ['linear_1.weight', 'linear_1.bias', 'linear_2.weight', 'linear_2.bias'].map((k) => param(ae, k)),
    );
    const expected = linear(linear(xv, 2, W1!, b1!, 5), 2, W2!, b2!, 64); // no nonlinearity
    close(await ae.forward(host(xv, [2, 64])).toArray(), expected, 'linear AE', 1e-4, 1e-5);
  } finally {
    ae.dispose();
  }
  const relu = mlpAE({ inputDim: 8, hidden: 4, linear: false, dropout: 0.5 });
  try {
    assert.equal(
      [...relu.namedChildren()].map(([k, m]) => `${k}:${m.constructor.name}`),
      ['linear_1:Linear', 'linear_2:Linear', 'dropout:Dropout'],
    );
    const code = await relu
      .eval()
      .encode(randn([4, 8]))
      .toArray();
    assert.ok(
      code.every((v) => v >= 0),
      'ReLU code',
    );
    relu.train();
  } finally {
    relu.dispose();
  }
});

test('convAE: seed 003 names (conv1, conv2), Conv2d(1→k, 3, p1) → Conv2d(k→1, 3, p1); odd kernels only', async () => {
  manualSeed(6);
  const ae = convAE({ kernels: 4 });
  try {
    assert.equal(shapes(ae), [
      ['conv1.weight', [4, 1, 3, 3]],
      ['conv1.bias', [4]],
      ['conv2.weight', [1, 4, 3, 3]],
      ['conv2.bias', [1]],
    ]);
    assert.equal(ae.forward(randn([2, 1, 8, 8])).shape, [2, 1, 8, 8]);
    assert.equal(ae.encode(randn([2, 1, 8, 8])).shape, [2, 4, 8, 8]);
  } finally {
    ae.dispose();
  }
  const five = convAE({ kernelSize: 5, activation: true });
  try {
    assert.equal(shapes(five)[0], ['conv1.weight', [1, 1, 5, 5]]);
    const code = await five.encode(randn([1, 1, 6, 6])).toArray();
    assert.ok(
      code.every((v) => v >= 0),
      'activation: the code is relu(conv1(x))',
    );
    assert.equal(five.forward(randn([1, 1, 6, 6])).shape, [1, 1, 6, 6]);
  } finally {
    five.dispose();
  }
  assert.throws(() => convAE({ kernelSize: 4 }), /convAE: kernelSize 4 must be odd/);
});

test('regularizedAE: seed 003 MyRegAE names (linear_1, linear_2), loss = MSE + l1·mean|z|, dropout only in training mode', async () => {
  manualSeed(8);
  const ae = regularizedAE({ inputDim: 6, hidden: 4, l1: 0.25, dropout: 0.5 });
  try {
    assert.ok(ae instanceof RegularizedAE);
    assert.equal(shapes(ae), [
      ['linear_1.weight', [4, 6]],
      ['linear_1.bias', [4]],
      ['linear_2.weight', [6, 4]],
      ['linear_2.bias', [6]],
    ]);
    const xv = values(18, 9, -1, 1);
    const x = host(xv, [3, 6]);
    const [W1, b1, W2, b2] = await Promise.all(
      ['linear_1.weight', 'linear_1.bias', 'linear_2.weight', 'linear_2.bias'].map((k) => param(ae, k)),
    );
    const z = linear(xv, 3, W1!, b1!, 4);
    const xhat = linear(z, 3, W2!, b2!, 6);
    const mse = xhat.reduce((s, v, i) => s + (v - xv[i]!) ** 2, 0) / 18;
    const l1 = z.reduce((s, v) => s + Math.abs(v), 0) / 12;
    ae.eval();
    close(await ae.forward(x).toArray(), xhat, 'eval forward (no dropout)', 1e-5, 1e-6);
    const t = ae.loss(x);
    close(await t.mse.toArray(), [mse], 'mse');
    close(await t.l1.toArray(), [l1], 'mean |z|');
    close(await t.loss.toArray(), [mse + 0.25 * l1], 'loss');
    // Training mode: dropout zeroes some code units (scaled by 2) before the decoder.
    ae.train();
    manualSeed(10);
    const a = await ae.forward(x).toArray();
    assert.ok(
      a.some((v, i) => Math.abs(v - xhat[i]!) > 1e-4),
      'dropout changes x̂ in training mode',
    );
  } finally {
    ae.dispose();
  }
  const plain = regularizedAE();
  try {
    assert.equal(shapes(plain)[0], ['linear_1.weight', [40, 64]]);
    assert.is(plain.dropout, null);
    assert.is(plain.l1, 0);
  } finally {
    plain.dispose();
  }
  assert.throws(() => regularizedAE({ l1: -1 }), /RegularizedAE: l1 must be >= 0, got -1/);
  assert.throws(() => regularizedAE({ dropout: 1 }), /RegularizedAE: dropout must be in \[0, 1\), got 1/);
});

// ---------------------------------------------------------------------------------------------------------
// Losses.

const XHAT = [0.2, 0.7, 0.9, 0.4, 0.1, 0.6];
const X = [0, 0.25, 1, 1, 0, 0.5];
const MU = [0.5, -1, 0.25, 2];
const LOGVAR = [0, 0.5, -1, 0.2];
const sum = (a: number[]) => a.reduce((p, q) => p + q, 0);
const MSE_SUM = sum(XHAT.map((v, i) => (v - X[i]!) ** 2));
const BCE_SUM = sum(XHAT.map((p, i) => -(X[i]! * Math.log(p) + (1 - X[i]!) * Math.log(1 - p))));
const KL_SUM = sum(MU.map((m, i) => -0.5 * (1 + LOGVAR[i]! - m * m - Math.exp(LOGVAR[i]!))));

test('vaeLoss: recon (mse/bce) and KL, sum and mean reductions, β, modes, against hand computation', async () => {
  const xhat = host(XHAT, [2, 3]);
  const x = host(X, [2, 3]);
  const mu = host(MU, [2, 2]);
  const logvar = host(LOGVAR, [2, 2]);
  const get = async (t: { loss: Tensor; recon: Tensor; kl: Tensor }) =>
    [(await t.loss.toArray())[0]!, (await t.recon.toArray())[0]!, (await t.kl.toArray())[0]!] as const;
  // Defaults: MSE, 'sum', β = 1, 'full'.
  close(await get(vaeLoss(xhat, x, mu, logvar)), [MSE_SUM + KL_SUM, MSE_SUM, KL_SUM], 'mse sum');
  // 'mean': recon over all 6 elements, KL per sample averaged over the batch of 2.
  close(
    await get(vaeLoss(xhat, x, mu, logvar, { reduction: 'mean' })),
    [MSE_SUM / 6 + KL_SUM / 2, MSE_SUM / 6, KL_SUM / 2],
    'mse mean',
  );
  close(
    await get(vaeLoss(xhat, x, mu, logvar, { recon: 'bce', beta: 4 })),
    [BCE_SUM + 4 * KL_SUM, BCE_SUM, KL_SUM],
    'bce sum β=4',
  );
  close(
    await get(vaeLoss(xhat, x, mu, logvar, { recon: 'bce', reduction: 'mean', beta: 0.5 })),
    [BCE_SUM / 6 + (0.5 * KL_SUM) / 2, BCE_SUM / 6, KL_SUM / 2],
    'bce mean β=0.5',
  );
  close(
    await get(vaeLoss(xhat, x, mu, logvar, { mode: 'recon', beta: 3 })),
    [MSE_SUM, MSE_SUM, KL_SUM],
    "mode 'recon'",
  );
  close(
    await get(vaeLoss(xhat, x, mu, logvar, { mode: 'kl', beta: 3 })),
    [3 * KL_SUM, MSE_SUM, KL_SUM],
    "mode 'kl'",
  );
  // x in another shape of the same size (e.g. images vs a flat decoder) is reshaped to x̂'s.
  close(
    await get(vaeLoss(xhat, host(X, [2, 1, 3]), mu, logvar)),
    [MSE_SUM + KL_SUM, MSE_SUM, KL_SUM],
    'x reshaped',
  );
  // Gradients reach x̂, μ and log σ² in 'full' mode: d/dμ (β·KL) = β·μ.
  const m = host(MU, [2, 2]);
  m.requiresGrad = true;
  vaeLoss(xhat, x, m, logvar, { beta: 2 }).loss.backward();
  close(
    await m.grad!.toArray(),
    MU.map((v) => 2 * v),
    'dKL/dμ',
  );
  // β = 1 adds the KL without a multiply: the same gradient, μ.
  const m1 = host(MU, [2, 2]);
  m1.requiresGrad = true;
  vaeLoss(xhat, x, m1, logvar).loss.backward();
  close(await m1.grad!.toArray(), MU, 'dKL/dμ, β = 1');
});

test('aeLoss: MSE (mean) + l1·mean|z|', async () => {
  const xhat = host(XHAT, [2, 3]);
  const x = host(X, [2, 3]);
  const z = host([1, -2, 0.5, -0.5], [2, 2]);
  const t = aeLoss(xhat, x, z, { l1: 0.1 });
  close(await t.mse.toArray(), [MSE_SUM / 6], 'mse');
  close(await t.l1.toArray(), [1], 'mean |z|');
  close(await t.loss.toArray(), [MSE_SUM / 6 + 0.1], 'loss');
  close(await aeLoss(xhat, x, z).loss.toArray(), [MSE_SUM / 6], 'l1 = 0');
  assert.throws(() => aeLoss(xhat, x, z, { l1: Number.NaN }), /aeLoss: l1 must be a finite number >= 0/);
});

// ---------------------------------------------------------------------------------------------------------
// Scores.

test('pixelErrors: squared error and BCE per pixel', async () => {
  const xhat = host(XHAT, [2, 3]);
  const x = host(X, [2, 3]);
  close(
    await pixelErrors(xhat, x).toArray(),
    XHAT.map((v, i) => (v - X[i]!) ** 2),
    'mse',
  );
  close(
    await pixelErrors(xhat, x, 'bce').toArray(),
    XHAT.map((p, i) => -(X[i]! * Math.log(p) + (1 - X[i]!) * Math.log(1 - p))),
    'bce',
    1e-5,
    1e-5,
  );
});

test('reconstructionScore: per-sample mean/sum of the error of x̂ (VAE: decoded μ; AE: forward)', async () => {
  manualSeed(11);
  const vae = mlpVAE({ inputDim: 6, hiddenDim: 5, latentDim: 2, imageShape: [1, 2, 3] });
  const ae = twoLayerAE({ inputDim: 6, hidden: 3, seedInit: false });
  try {
    const xv = values(18, 12);
    const x = host(xv, [3, 1, 2, 3]);
    vae.eval();
    const xhat = await noGrad(() => vae.decode(vae.encode(x).mu)).toArray();
    const err = xhat.map((v, i) => (v - xv[i]!) ** 2);
    const perSample = (e: ArrayLike<number>, n: number, mean: boolean) =>
      [0, 1, 2].map((b) => {
        const s = sum(Array.from(e).slice(b * n, (b + 1) * n));
        return mean ? s / n : s;
      });
    const score = reconstructionScore(vae, x);
    assert.equal(score.shape, [3]);
    close(await score.toArray(), perSample(err, 6, true), 'vae mean');
    close(
      await reconstructionScore(vae, x, { reduction: 'sum' }).toArray(),
      perSample(err, 6, false),
      'vae sum',
    );
    const bce = xhat.map((p, i) => -(xv[i]! * Math.log(p) + (1 - xv[i]!) * Math.log(1 - p)));
    close(await reconstructionScore(vae, x, { recon: 'bce' }).toArray(), perSample(bce, 6, true), 'vae bce');
    // sample: true decodes a sampled z (the RNG decides which).
    manualSeed(3);
    const s1 = await reconstructionScore(vae, x, { sample: true }).toArray();
    manualSeed(3);
    const s2 = await reconstructionScore(vae, x, { sample: true }).toArray();
    assert.equal(s1, s2);
    const flat = host(xv, [3, 6]);
    const aeOut = await ae.forward(flat).toArray();
    close(
      await reconstructionScore(ae, flat).toArray(),
      perSample(
        aeOut.map((v, i) => (v - xv[i]!) ** 2),
        6,
        true,
      ),
      'ae',
    );
    assert.not.ok(score.requiresGrad, 'scores carry no graph');
  } finally {
    vae.dispose();
    ae.dispose();
  }
});

test('negativeElbo: mean over k draws of the summed BCE + KL per sample; k is checked', async () => {
  manualSeed(13);
  const vae = mlpVAE({ inputDim: 6, hiddenDim: 5, latentDim: 2 });
  try {
    vae.eval();
    const xv = values(12, 14);
    const x = host(xv, [2, 6]);
    const k = 3;
    manualSeed(21);
    const score = await negativeElbo(vae, x, { k }).toArray();
    // The same draws by hand: encode, then k times reparameterize + decode.
    manualSeed(21);
    const expected = await (async () => {
      const { mu, logvar } = vae.encode(x);
      const [m, lv] = [await mu.toArray(), await logvar.toArray()];
      const out = [0, 0];
      for (let i = 0; i < k; i++) {
        const p = await vae.decode(vae.reparameterize(mu, logvar)).toArray();
        for (let b = 0; b < 2; b++)
          for (let j = 0; j < 6; j++) {
            const t = xv[b * 6 + j]!;
            const q = p[b * 6 + j]!;
            out[b] = out[b]! - (t * Math.log(q) + (1 - t) * Math.log(1 - q)) / k;
          }
      }
      for (let b = 0; b < 2; b++)
        for (let j = 0; j < 2; j++) {
          const i = b * 2 + j;
          out[b] = out[b]! - 0.5 * (1 + lv[i]! - m[i]! ** 2 - Math.exp(lv[i]!));
        }
      return out;
    })();
    close(score, expected, 'negative ELBO', 1e-5, 1e-5);
    // MSE recon and k = 1.
    manualSeed(22);
    const mse = await negativeElbo(vae, x, { recon: 'mse' }).toArray();
    assert.ok(
      mse.every((v) => Number.isFinite(v) && v > 0),
      `mse elbo ${mse}`,
    );
    assert.throws(() => negativeElbo(vae, x, { k: 0 }), /negativeElbo: k must be a positive integer, got 0/);
    assert.throws(() => negativeElbo(vae, x, { k: 1.5 }), /got 1\.5/);
  } finally {
    vae.dispose();
  }
});

test('heatmap: (x − x̂)² shaped like x, for a VAE (μ decoded) and an AE', async () => {
  manualSeed(15);
  const vae = mlpVAE({ inputDim: 12, hiddenDim: 6, latentDim: 2, imageShape: [1, 3, 4] });
  const ae = convAE();
  try {
    vae.eval();
    const xv = values(24, 16);
    const x = host(xv, [2, 1, 3, 4]);
    const h = heatmap(vae, x);
    assert.equal(h.shape, [2, 1, 3, 4]);
    const xhat = await noGrad(() => vae.decode(vae.encode(x).mu)).toArray();
    close(
      await h.toArray(),
      xhat.map((v, i) => (v - xv[i]!) ** 2),
      'vae heatmap',
    );
    const flatX = host(xv, [2, 12]);
    assert.equal(heatmap(vae, flatX).shape, [2, 12], 'shaped like x, not like x̂');
    const hc = heatmap(ae, x);
    const out = await ae.forward(x).toArray();
    assert.equal(hc.shape, [2, 1, 3, 4]);
    close(
      await hc.toArray(),
      out.map((v, i) => (v - xv[i]!) ** 2),
      'ae heatmap',
    );
  } finally {
    vae.dispose();
    ae.dispose();
  }
});

test('scoreAll: every batch scored in eval mode, labels kept, batches freed, mode restored', async () => {
  manualSeed(17);
  const vae = conditionalVAE({ inputDim: 6, hiddenDim: 5, latentDim: 2, numClasses: 3 });
  try {
    const xv = values(30, 18);
    const ys = [0, 1, 2, 0, 1];
    const batches = () => [
      { x: host(xv.slice(0, 18), [3, 6]), y: labels(ys.slice(0, 3)) },
      { x: host(xv.slice(18), [2, 6]), y: labels(ys.slice(3)) },
    ];
    assert.ok(vae.training);
    const r = await scoreAll(vae, batches(), { conditional: true });
    assert.ok(vae.training, 'training mode restored');
    assert.instance(r.scores, Float32Array);
    assert.equal([...r.labels], ys);
    vae.eval();
    const direct = [
      ...(await reconstructionScore(vae, host(xv.slice(0, 18), [3, 6]), {
        labels: labels([0, 1, 2]),
      }).toArray()),
      ...(await reconstructionScore(vae, host(xv.slice(18), [2, 6]), { labels: labels([0, 1]) }).toArray()),
    ];
    close(r.scores, direct, 'scores');
    // ELBO scores with the same RNG position match negativeElbo.
    manualSeed(5);
    const e = await scoreAll(vae, batches(), { kind: 'elbo', k: 2, conditional: true });
    manualSeed(5);
    const e1 = await negativeElbo(vae, host(xv.slice(0, 18), [3, 6]), {
      k: 2,
      labels: labels([0, 1, 2]),
    }).toArray();
    const e2 = await negativeElbo(vae, host(xv.slice(18), [2, 6]), {
      k: 2,
      labels: labels([0, 1]),
    }).toArray();
    close(e.scores, [...e1, ...e2], 'elbo scores');
    assert.not.ok(vae.training, 'eval mode kept');
    // Without `conditional`, the conditional VAE gets no labels: the error says so (and the mode is restored).
    vae.train();
    try {
      await scoreAll(vae, batches());
      assert.unreachable('expected an error');
    } catch (err) {
      assert.match((err as Error).message, /conditional \(3 classes\) and needs labels/);
    }
    assert.ok(vae.training);
  } finally {
    vae.dispose();
  }
  const ae = mlpAE({ inputDim: 6, hidden: 2 });
  try {
    try {
      await scoreAll(ae, [], { kind: 'elbo' });
      assert.unreachable('expected an error');
    } catch (err) {
      assert.match((err as Error).message, /scoreAll: kind 'elbo' needs a VAE, got MLPAE/);
    }
  } finally {
    ae.dispose();
  }
});

test('scoreAll frees every batch, also when scoring fails', async () => {
  const vae = conditionalVAE({ inputDim: 6, hiddenDim: 5, latentDim: 2, numClasses: 3 });
  try {
    const xv = values(12, 25);
    await scope(async () => {
      const made = [
        { x: host(xv.slice(0, 6), [1, 6]), y: labels([0]) },
        { x: host(xv.slice(6), [1, 6]), y: labels([1]) },
      ];
      try {
        await scoreAll(vae, made); // no labels for a conditional VAE: fails on the first batch
        assert.unreachable('expected an error');
      } catch (err) {
        assert.match((err as Error).message, /needs labels/);
      }
      assert.ok(made[0]!.x.isDisposed && made[0]!.y.isDisposed, 'the failing batch was freed');
    });
  } finally {
    vae.dispose();
  }
});

// ---------------------------------------------------------------------------------------------------------
// A few training steps lower the loss.

test('training: mlpVAE, conditionalVAE and convVAE lower their loss in a few Adam steps', async () => {
  // Binary images, one pattern per class (pixel j is on for j ≡ class mod 4): BCE can approach 0.
  const ys = [0, 1, 2, 3, 0, 1, 2, 3];
  const xv = Array.from({ length: 8 * 16 }, (_, i) => ((i % 16) % 4 === ys[Math.floor(i / 16)] ? 1 : 0));
  const kinds: [string, () => VAE, number[], number][] = [
    ['mlpVAE', () => mlpVAE({ inputDim: 16, hiddenDim: 16, latentDim: 3 }), [8, 16], 1e-2],
    [
      'conditionalVAE',
      () => conditionalVAE({ inputDim: 16, hiddenDim: 16, latentDim: 3, numClasses: 4 }),
      [8, 16],
      1e-2,
    ],
    ['convVAE', () => convVAE({ latentDim: 3, imageSize: 4 }), [8, 1, 4, 4], 3e-3],
  ];
  for (const [name, build, shape, lr] of kinds) {
    manualSeed(20);
    const vae = build();
    try {
      const x = host(xv, shape);
      const y = vae.numClasses ? labels(ys) : undefined;
      const losses = await fit(
        vae,
        () => {
          const o = vae.run(x, y);
          return vaeLoss(o.xhat, x, o.mu, o.logvar, { recon: 'bce' }).loss.div(8);
        },
        30,
        lr,
      );
      decreased(losses, name);
    } finally {
      vae.dispose();
    }
  }
});

test('training: twoLayerAE, mlpAE, convAE and regularizedAE lower their loss in a few Adam steps', async () => {
  const xv = values(8 * 16, 23, -1, 1);
  const kinds: [string, () => Module, number[]][] = [
    ['twoLayerAE', () => twoLayerAE({ inputDim: 16, hidden: 8 }), [8, 16]],
    ['mlpAE', () => mlpAE({ inputDim: 16, hidden: 4 }), [8, 16]],
    ['convAE', () => convAE({ kernels: 2 }), [8, 1, 4, 4]],
    ['regularizedAE', () => regularizedAE({ inputDim: 16, hidden: 8, l1: 0.1, dropout: 0.2 }), [8, 16]],
  ];
  for (const [name, build, shape] of kinds) {
    manualSeed(24);
    const ae = build();
    try {
      const x = host(xv, shape);
      const loss = () =>
        ae instanceof RegularizedAE ? ae.loss(x).loss : ae.forward(x).sub(x).square().mean();
      decreased(await fit(ae, loss, 25, 1e-2), name);
    } finally {
      ae.dispose();
    }
  }
});

test.run();
