// Helpers shared by the MNIST examples (mlp-vae, conv-vae, cvae-mnist): data loading with a helpful message,
// integer flags, host-side encode/decode/reconstruct over a dataset in batches, image rows for the grids, and
// timing. Everything that touches the GPU runs without gradients, in eval mode, and frees what it makes.
import { type Dataset, type Module, type Sample, TensorDataset } from '@wgrad/nn';
import { noGrad, scope, type Tensor, tensor } from '@wgrad/tensor';
import type { History, VAE } from '@wgrad/vae';

/** An integer flag (`--name N`) with a default; exits with a message when it is not an integer ≥ min. */
export function intFlag(
  example: string,
  values: Record<string, string | boolean | undefined>,
  name: string,
  fallback: number,
  min = 1,
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`${example}: --${name} must be an integer ≥ ${min}, got '${String(raw)}'`);
    process.exit(2);
  }
  return n;
}

/** A positive number flag (`--name X`, e.g. 1e-4) with a default. */
export function numberFlag(
  example: string,
  values: Record<string, string | boolean | undefined>,
  name: string,
  fallback: number,
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`${example}: --${name} must be a non-negative number, got '${String(raw)}'`);
    process.exit(2);
  }
  return n;
}

/** Seconds since `t0` (performance.now()). */
export const since = (t0: number): number => (performance.now() - t0) / 1000;

/** 75 → "75 s", 125 → "2 min 05 s". */
export function fmtSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
}

/** The images (flat, CHW each) of the samples `indices` of a dataset, back to back. */
export async function imagesAt(ds: Dataset<Sample>, indices: readonly number[]): Promise<Float32Array> {
  const samples = await Promise.all(indices.map((i) => ds.get(i)));
  const d = samples[0]!.x.length;
  const out = new Float32Array(indices.length * d);
  samples.forEach((s, k) => {
    out.set(s.x, k * d);
  });
  return out;
}

/** The labels of the samples `indices` of a dataset. */
export async function labelsAt(ds: Dataset<Sample>, indices: readonly number[]): Promise<Int32Array> {
  const samples = await Promise.all(indices.map((i) => ds.get(i)));
  return Int32Array.from(samples, (s) => s.y);
}

/** The first n samples of a host dataset as a new TensorDataset (views, no copy). */
export function firstN(ds: TensorDataset, n: number): TensorDataset {
  const m = Math.min(n, ds.length);
  const d = ds.sampleShape.reduce((a, b) => a * b, 1);
  return TensorDataset.fromArrays(
    ds.images!.subarray(0, m * d),
    ds.labels!.subarray(0, m),
    [m, ...ds.sampleShape],
    ds.classes ? { classes: ds.classes } : {},
  );
}

/** The first index of each class 0..k−1 in a labelled host dataset (e.g. one test image per digit). */
export function firstOfEachClass(ds: TensorDataset, k = 10): number[] {
  const out: number[] = [];
  for (let c = 0; c < k; c++) {
    const i = ds.labels!.indexOf(c);
    if (i < 0) throw new Error(`firstOfEachClass: no sample of class ${c}`);
    out.push(i);
  }
  return out;
}

/** Runs `fn` in eval mode without gradients inside a scope, restoring the training flag. */
export async function evaluate<T>(model: Module, fn: () => Promise<T>): Promise<T> {
  const was = model.training;
  model.eval();
  try {
    return await noGrad(() => scope(fn));
  } finally {
    model.train(was);
  }
}

/**
 * μ of q(z|x) for every sample of `ds`, in order (n × latentDim, row-major), with the labels. With
 * `conditional`, the label is joined to the input (seed 001's CVAE).
 */
export async function encodeAll(
  vae: VAE,
  ds: TensorDataset,
  opts: { batchSize?: number; conditional?: boolean } = {},
): Promise<{ mu: Float32Array; labels: Int32Array; n: number; d: number }> {
  const bs = opts.batchSize ?? 500;
  const n = ds.length;
  const d = vae.latentDim;
  const mu = new Float32Array(n * d);
  for (let start = 0; start < n; start += bs) {
    const idx = Int32Array.from({ length: Math.min(bs, n - start) }, (_, i) => start + i);
    const host = await evaluate(vae, async () => {
      const b = ds.getBatch(idx);
      return vae.encode(b.x, opts.conditional ? b.y : undefined).mu.toArray();
    });
    mu.set(host, start * d);
  }
  return { mu, labels: Int32Array.from(ds.labels!), n, d };
}

/** Decodes host latents (n × latentDim) to host images; `labels` for a conditional VAE. */
export async function decodeHost(vae: VAE, z: Float32Array, labels?: Int32Array): Promise<Float32Array> {
  const n = z.length / vae.latentDim;
  return evaluate(vae, async () => {
    const y = labels ? tensor(labels, { shape: [n] }) : undefined;
    return vae.decode(tensor(z, { shape: [n, vae.latentDim] }), y).toArray();
  });
}

/**
 * Reconstructions x̂ = decoder(μ) of host images (n × 1 × 28 × 28) and the per-image reconstruction errors:
 * squared error summed over the pixels, and binary cross-entropy summed over the pixels.
 */
export async function reconstructHost(
  vae: VAE,
  images: Float32Array,
  shape: readonly number[],
  labels?: Int32Array,
): Promise<{ xhat: Float32Array; mse: Float32Array; bce: Float32Array }> {
  const n = shape[0]!;
  return evaluate(vae, async () => {
    const x = tensor(images, { shape: [...shape] });
    const y = labels ? tensor(labels, { shape: [n] }) : undefined;
    const xhat = vae.decode(vae.encode(x, y).mu, y).reshape([...shape]);
    const axes = shape.slice(1).map((_, i) => i + 1);
    const mse = xhat.sub(x).square().sum(axes);
    const p = xhat.clamp(1e-7, 1 - 1e-7);
    const bce = x
      .mul(p.log())
      .add(x.neg().add(1).mul(p.neg().add(1).log()))
      .neg()
      .sum(axes);
    const [a, b, c] = await Promise.all([xhat.toArray(), mse.toArray(), bce.toArray()]);
    return { xhat: a, mse: b, bce: c };
  });
}

/** Interleaves rows of images: [a-row, b-row] per group of `cols`, for "input above reconstruction" grids. */
export function interleaveRows(
  a: Float32Array,
  b: Float32Array,
  n: number,
  cols: number,
  d = 784,
): Float32Array {
  const out = new Float32Array(2 * n * d);
  let o = 0;
  for (let start = 0; start < n; start += cols) {
    const m = Math.min(cols, n - start);
    out.set(a.subarray(start * d, (start + m) * d), o);
    o += m * d;
    out.set(b.subarray(start * d, (start + m) * d), o);
    o += m * d;
  }
  return out;
}

/** A standard-normal host array (Box–Muller on a seeded mulberry32), for fixed latent grids. */
export function hostRandn(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const u = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const th = 2 * Math.PI * u();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

/**
 * A copy of a history whose epoch means and step values are divided by `perImage` for the keys given
 * (e.g. a loss summed over a batch of 128 → per image), for charts and tables in nats per image.
 */
export function scaleHistory(h: History, keys: Record<string, number>): History {
  const scale = (rec: Record<string, number>) =>
    Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, keys[k] ? v / keys[k] : v]));
  return {
    ...h,
    epochs: h.epochs.map((e) => ({ ...e, means: scale(e.means) })),
    steps: h.steps.map((s) => ({ ...s, values: scale(s.values) })),
  };
}

/** Every `every`-th point of a per-step series (keeps the last), to keep step charts light. */
export function thin<T>(xs: readonly T[], max = 1500): T[] {
  if (xs.length <= max) return [...xs];
  const every = Math.ceil(xs.length / max);
  const out = xs.filter((_, i) => i % every === 0);
  if (out[out.length - 1] !== xs[xs.length - 1]) out.push(xs[xs.length - 1]!);
  return out;
}

/** Frees a tensor if given (for optional labels). */
export function free(...ts: (Tensor | undefined)[]): void {
  for (const t of ts) t?.dispose();
}
