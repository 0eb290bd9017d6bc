// The platform-independent part of the web example: the conv-VAE training step the page runs, a seeded
// short training and a throughput run (run by test/browser.test.ts both in Chromium and in Node, to compare),
// and op-vs-reference checks ("oracle tests") that run wherever WebGPU does. No DOM and no Node APIs here.
import { Adam, clipGradNorm } from '@wgrad/nn';
import { conv2d, convTranspose2d, manualSeed, memory, scope, sync, type Tensor, tensor } from '@wgrad/tensor';
import * as R from '@wgrad/tensor/reference';
import { convVAE, reconstructionScore, type VAE, vaeLoss } from '@wgrad/vae';

// ---------------------------------------------------------------------------------------------------------
// Training.

export interface ModelConfig {
  channels: number;
  imageSize: number;
  latentDim: number;
  lr: number;
  seed: number;
  /** clip_grad_norm (0: off). */
  clip: number;
}

export interface Trainer {
  model: VAE;
  optimizer: Adam;
  config: ModelConfig;
  /** One Adam step on a batch x (B, C, H, W); returns the loss per sample (on the GPU, not read back). */
  step(x: Tensor): Tensor;
  dispose(): void;
}

/** A seeded conv VAE (seed 004's architecture) with Adam; MSE(sum) + KL, divided by the batch size. */
export function makeTrainer(config: ModelConfig): Trainer {
  manualSeed(config.seed);
  const model = convVAE({
    channels: config.channels,
    latentDim: config.latentDim,
    imageSize: config.imageSize,
  });
  const optimizer = new Adam(model.parameters(), { lr: config.lr });
  return {
    model,
    optimizer,
    config,
    step(x) {
      return scope(() => {
        optimizer.zeroGrad();
        const o = model.run(x); // xhat (B, C, H, W), mu/logvar (B, Z)
        const { loss } = vaeLoss(o.xhat, x, o.mu, o.logvar, { recon: 'mse', reduction: 'sum' });
        loss.backward();
        if (config.clip > 0) clipGradNorm(model.parameters(), config.clip);
        optimizer.step();
        return loss.detach().div(x.shape[0]!);
      });
    },
    dispose() {
      model.dispose();
      optimizer.dispose();
    },
  };
}

/**
 * n synthetic images (C, S, S) in [0, 1] from a seed: one or two soft blobs per image on a faint gradient,
 * the same values on every platform (mulberry32 from the reference module, float64 then float32).
 */
export function blobImages(seed: number, n: number, channels: number, size: number): Float32Array {
  const r = R.rng(seed);
  const out = new Float32Array(n * channels * size * size);
  for (let i = 0; i < n; i++) {
    const blobs = Array.from({ length: 1 + Math.floor(r() * 2) }, () => ({
      cx: r() * size,
      cy: r() * size,
      s: 1.5 + r() * size * 0.15,
      a: 0.5 + r() * 0.5,
    }));
    const tint = Array.from({ length: channels }, () => 0.6 + 0.4 * r());
    for (let c = 0; c < channels; c++)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          let v = 0.05 * (x / size);
          for (const b of blobs) v += b.a * Math.exp(-((x - b.cx) ** 2 + (y - b.cy) ** 2) / (2 * b.s * b.s));
          out[((i * channels + c) * size + y) * size + x] = Math.min(1, v * tint[c]!);
        }
  }
  return out;
}

export interface ShortTraining {
  config: ModelConfig;
  steps: number;
  batch: number;
  /** How many synthetic images; batches go through them in order, wrapping around. */
  images: number;
}

/**
 * The seeded short training the browser test compares with Node: the per-sample loss of every step. `after`
 * sees the trained model before it is freed (e.g. to save a checkpoint).
 */
export async function shortTraining(
  o: ShortTraining,
  after?: (t: Trainer) => Promise<void>,
): Promise<number[]> {
  const { channels, imageSize } = o.config;
  const per = channels * imageSize * imageSize;
  const data = blobImages(o.config.seed + 1, o.images, channels, imageSize);
  const t = makeTrainer(o.config);
  const losses: Tensor[] = [];
  try {
    for (let s = 0; s < o.steps; s++) {
      const start = ((s * o.batch) % o.images) * per;
      const batch = new Float32Array(o.batch * per);
      for (let b = 0; b < o.batch; b++) {
        const from = (start + b * per) % data.length;
        batch.set(data.subarray(from, from + per), b * per);
      }
      const x = tensor(batch, { shape: [o.batch, channels, imageSize, imageSize] });
      losses.push(t.step(x));
      x.dispose();
    }
    const out: number[] = [];
    for (const l of losses) out.push(await l.item());
    await after?.(t);
    return out;
  } finally {
    for (const l of losses) l.dispose();
    t.dispose();
  }
}

/**
 * Training throughput: `warmup` steps (pipeline compilation), then steps until `seconds` have passed (at least
 * `minSteps`), synchronised at the end. Same batch every step (host → GPU upload included each step).
 */
export async function throughput(o: {
  config: ModelConfig;
  batch: number;
  warmup: number;
  seconds: number;
  minSteps: number;
}): Promise<{ samplesPerSec: number; steps: number; seconds: number; lastLoss: number }> {
  const { channels, imageSize } = o.config;
  const data = blobImages(o.config.seed + 1, o.batch, channels, imageSize);
  const shape = [o.batch, channels, imageSize, imageSize];
  const t = makeTrainer(o.config);
  const run = (steps: number) => {
    let last: Tensor | null = null;
    for (let s = 0; s < steps; s++) {
      const x = tensor(data, { shape });
      last?.dispose();
      last = t.step(x);
      x.dispose();
    }
    return last!;
  };
  try {
    (await run(o.warmup)).dispose();
    await sync();
    const t0 = performance.now();
    let steps = 0;
    let lastLoss = Number.NaN;
    while (steps < o.minSteps || performance.now() - t0 < o.seconds * 1000) {
      const l = run(1);
      steps++;
      // Read back every 4 steps so that encoding does not run far ahead of the GPU.
      if (steps % 4 === 0 || steps >= o.minSteps) lastLoss = await l.item();
      l.dispose();
      if (steps >= o.minSteps && performance.now() - t0 >= o.seconds * 1000) break;
    }
    await sync();
    const seconds = (performance.now() - t0) / 1000;
    return { samplesPerSec: (steps * o.batch) / seconds, steps, seconds, lastLoss };
  } finally {
    t.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Oracle tests: GPU ops against @wgrad/tensor/reference (float64) forward, and their gradients against
// central finite differences of the reference.

export interface OracleResult {
  name: string;
  /** max over elements of |gpu − ref| / (atol + rtol·|ref|): ≤ 1 passes. */
  worst: number;
  ok: boolean;
  detail: string;
}

/** A reference tensor of uniform values in [lo, hi), rounded to float32 so both sides start equal. */
function rnd(shape: number[], seed: number, lo = -1, hi = 1): R.RefTensor {
  return R.ref(shape, Float32Array.from(R.randomRef(shape, seed, lo, hi).data));
}
const up = (r: R.RefTensor, requiresGrad = false) =>
  tensor(Float32Array.from(r.data), { shape: r.shape, requiresGrad });

async function compare(
  name: string,
  actual: Tensor | null,
  expected: R.RefTensor,
  rtol: number,
  atol: number,
): Promise<OracleResult> {
  if (!actual) return { name, worst: Infinity, ok: false, detail: 'no tensor (missing gradient)' };
  const shapeOk =
    actual.shape.length === expected.shape.length && actual.shape.every((d, i) => d === expected.shape[i]);
  if (!shapeOk)
    return { name, worst: Infinity, ok: false, detail: `shape [${actual.shape}] != [${expected.shape}]` };
  const a = await actual.toArray();
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = expected.data[i]!;
    const r = Math.abs(a[i]! - e) / (atol + rtol * Math.abs(e));
    if (!(r <= worst)) {
      worst = Number.isNaN(r) ? Infinity : r;
      at = i;
    }
  }
  const detail =
    at < 0 ? `${a.length} values` : `${a.length} values; worst at ${at}: ${a[at]} vs ${expected.data[at]}`;
  return { name, worst, ok: worst <= 1, detail };
}

type RefFn = (xs: R.RefTensor[]) => R.RefTensor;
type GpuFn = (xs: Tensor[]) => Tensor;

/** Forward against the reference, then every input's gradient against finite differences of the reference. */
async function forwardAndGrad(
  name: string,
  inputs: R.RefTensor[],
  gpu: GpuFn,
  ref: RefFn,
  seed: number,
): Promise<OracleResult[]> {
  const out: OracleResult[] = [];
  const expected = ref(inputs);
  const upstream = rnd(expected.shape, seed);
  const grads = R.numericGrad(ref, inputs, upstream);
  await scope(async () => {
    const xs = inputs.map((r) => up(r, true));
    const y = gpu(xs);
    out.push(await compare(`${name}: forward`, y, expected, 1e-4, 1e-5));
    y.backward(up(upstream));
    for (const [i, x] of xs.entries())
      out.push(await compare(`${name}: grad of input ${i}`, x.grad ?? null, grads[i]!, 2e-3, 1e-4));
    for (const x of xs) x.grad?.dispose();
  });
  return out;
}

const conv = { stride: [2, 2] as [number, number], padding: [1, 1] as [number, number] };
const refConv = { ...conv, dilation: [1, 1] as [number, number], groups: 1 };

/**
 * Deterministic reconstruction scores (mean squared error of μ decoded) of the first `n` synthetic images of a
 * training setup, for comparing one model on two platforms.
 */
export async function evalScores(t: Trainer, o: ShortTraining, n: number): Promise<number[]> {
  const { channels, imageSize } = o.config;
  const x = blobImages(o.config.seed + 1, n, channels, imageSize);
  return scope(async () => [
    ...(await reconstructionScore(
      t.model,
      tensor(x, { shape: [n, channels, imageSize, imageSize] }),
    ).toArray()),
  ]);
}

/** The op-vs-reference checks (elementwise, reductions, matmul, conv2d / convTranspose2d, softmax). */
export async function oracleTests(): Promise<OracleResult[]> {
  const before = memory().liveTensors;
  const results: OracleResult[] = [];
  const sq = (v: number) => v * v;
  results.push(
    ...(await forwardAndGrad(
      'elementwise (a·b + exp(a)/(1+b²), relu, tanh·sigmoid; b broadcast over rows)',
      [rnd([3, 5], 1), rnd([5], 2)],
      ([a, b]) =>
        a!
          .mul(b!)
          .add(a!.exp().div(b!.mul(b!).add(1)))
          .relu()
          .add(a!.tanh().mul(b!.sigmoid())),
      ([a, b]) =>
        R.binary(
          R.unary(
            R.binary(
              R.binary(a!, b!, (x, y) => x * y),
              R.binary(a!, b!, (x, y) => Math.exp(x) / (1 + sq(y))),
              (p, q) => p + q,
            ),
            (v) => Math.max(0, v),
          ),
          R.binary(a!, b!, (x, y) => Math.tanh(x) * (1 / (1 + Math.exp(-y)))),
          (p, q) => p + q,
        ),
      3,
    )),
  );
  results.push(
    ...(await forwardAndGrad(
      'reduce: sum over dim 1 (keepdim) + mean over dim 2',
      [rnd([2, 6, 7], 4)],
      ([x]) => x!.sum(1, true).add(x!.mean(2, true)),
      ([x]) => {
        const s = R.reduce(x!, [1], true, 'sum');
        const m = R.reduce(x!, [2], true, 'mean');
        return R.binary(s, m, (p, q) => p + q);
      },
      5,
    )),
  );
  results.push(
    ...(await forwardAndGrad(
      'reduce: max over dim 0',
      [rnd([5, 4], 6)],
      ([x]) => x!.max(0),
      ([x]) => R.reduce(x!, [0], false, 'max'),
      7,
    )),
  );
  results.push(
    ...(await forwardAndGrad(
      'matmul (17×33)·(33×9)',
      [rnd([17, 33], 8), rnd([33, 9], 9)],
      ([a, b]) => a!.matmul(b!),
      ([a, b]) => R.matmul(a!, b!),
      10,
    )),
  );
  results.push(
    ...(await forwardAndGrad(
      'conv2d x(2,3,8,8) w(4,3,4,4) + bias, stride 2, padding 1',
      [rnd([2, 3, 8, 8], 11), rnd([4, 3, 4, 4], 12, -0.5, 0.5), rnd([4], 13)],
      ([x, w, b]) => conv2d(x!, w!, b!, conv),
      ([x, w, b]) => R.conv2d(x!, w!, b!, refConv),
      14,
    )),
  );
  results.push(
    ...(await forwardAndGrad(
      'convTranspose2d x(2,4,4,4) w(4,3,4,4) + bias, stride 2, padding 1',
      [rnd([2, 4, 4, 4], 15), rnd([4, 3, 4, 4], 16, -0.5, 0.5), rnd([3], 17)],
      ([x, w, b]) => convTranspose2d(x!, w!, b!, conv),
      ([x, w, b]) => R.convTranspose2d(x!, w!, b!, { ...refConv, outputPadding: [0, 0] }),
      18,
    )),
  );
  results.push(
    ...(await forwardAndGrad(
      'softmax over dim 1',
      [rnd([3, 10], 19, -3, 3)],
      ([x]) => x!.softmax(1),
      ([x]) => {
        const m = R.reduce(x!, [1], true, 'max');
        const e = R.binary(x!, m, (p, q) => Math.exp(p - q));
        return R.binary(e, R.reduce(e, [1], true, 'sum'), (p, q) => p / q);
      },
      20,
    )),
  );
  await sync();
  const leaked = memory().liveTensors - before;
  results.push({
    name: 'no tensors left alive by the checks',
    worst: leaked === 0 ? 0 : Infinity,
    ok: leaked === 0,
    detail: `${leaked} live tensors added`,
  });
  return results;
}
