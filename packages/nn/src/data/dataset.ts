// Datasets: indexable collections of samples, and TensorDataset over host arrays or GPU tensors.
import { indexSelect, noGrad, type Tensor, tensor } from '@wgrad/tensor';
import { Rng } from './rng.js';

/** One sample: the input as a flat float32 array (CHW order for images) and an integer label. */
export interface Sample {
  x: Float32Array;
  y: number;
}

/**
 * A batch on the GPU: `x` float32 of shape (B, ...sampleShape), e.g. (B, C, H, W) or (B, D), and `y` int32
 * labels of shape (B). The caller owns both tensors: dispose them (`x.dispose(); y.dispose()`) when done
 * with the batch, or create and use them inside `scope()`, which disposes them at its end.
 */
export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** Host-side (CPU) form of a batch, before upload. */
export interface HostBatch {
  x: Float32Array;
  y: Int32Array;
  /** Shape of x: (B, ...sampleShape). */
  shape: number[];
}

/** An indexable collection of samples; `get` may be async (decoding from disk, say). */
export interface Dataset<T = Sample> {
  readonly length: number;
  get(i: number): T | Promise<T>;
  /**
   * Shape of one sample's x without the batch dimension (e.g. [1, 28, 28]); the DataLoader reads it when
   * it collates a batch, so a dataset may set it once its first sample is known. Without it, batches are
   * (B, D).
   */
  readonly sampleShape?: readonly number[] | undefined;
  /** Class names, indexed by label. */
  readonly classes?: readonly string[] | undefined;
  /** Optional fast path: collates the samples `indices` on the host (the DataLoader then skips `get`). */
  readonly hostBatch?: ((indices: Int32Array) => HostBatch | Promise<HostBatch>) | undefined;
  /** Optional GPU path: makes the batch directly as GPU tensors (the DataLoader then skips host collation). */
  readonly gpuBatch?: ((indices: Int32Array) => Batch) | undefined;
}

/** Images or feature vectors with labels, as the loaders return them. */
export interface LabeledArrays {
  /** Flat float32 values, N·prod(shape[1:]) of them. */
  images: Float32Array;
  labels: Int32Array;
  /** (N, ...sampleShape), e.g. [N, 1, 28, 28]. */
  shape: number[];
  classes?: readonly string[];
}

export function checkIndex(what: string, i: number, length: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= length)
    throw new RangeError(`${what}: index ${i} out of range [0, ${length})`);
}

function toLabels(what: string, y: ArrayLike<number>): Int32Array {
  if (y instanceof Int32Array) return y;
  const out = new Int32Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31)
      throw new Error(`${what}: label ${i} is ${v}, not a 32-bit integer`);
    out[i] = v;
  }
  return out;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * A dataset over in-memory data: either host arrays (`fromArrays`, `from`), whose samples are views into
 * the arrays, or GPU tensors (`fromTensors`), which the DataLoader batches on the GPU with `indexSelect`
 * (no host round trip). A TensorDataset never disposes the tensors it was given.
 */
export class TensorDataset implements Dataset<Sample> {
  readonly length: number;
  readonly sampleShape: readonly number[];
  readonly classes: readonly string[] | undefined;
  /** Host data (host mode). */
  readonly images: Float32Array | null;
  readonly labels: Int32Array | null;
  /** GPU data (tensor mode). */
  readonly x: Tensor | null;
  readonly y: Tensor | null;
  readonly hostBatch: ((indices: Int32Array) => HostBatch) | undefined;
  readonly gpuBatch: ((indices: Int32Array) => Batch) | undefined;
  private readonly dim: number;

  private constructor(
    src: { images: Float32Array; labels: Int32Array } | { x: Tensor; y: Tensor },
    shape: readonly number[],
    classes?: readonly string[],
  ) {
    this.length = shape[0]!;
    this.sampleShape = Object.freeze(shape.slice(1));
    this.dim = prod(this.sampleShape);
    this.classes = classes;
    this.images = 'images' in src ? src.images : null;
    this.labels = 'images' in src ? src.labels : null;
    this.x = 'x' in src ? src.x : null;
    this.y = 'x' in src ? src.y : null;
    if (this.images) this.hostBatch = (indices) => this.collate(indices);
    else this.gpuBatch = (indices) => this.getBatch(indices);
  }

  /** Host arrays: `x` holds N samples of shape `shape.slice(1)` back to back; `shape[0]` = N. */
  static fromArrays(
    x: Float32Array,
    y: ArrayLike<number>,
    shape: readonly number[],
    opts: { classes?: readonly string[] } = {},
  ): TensorDataset {
    if (!shape.length || shape.some((d) => !Number.isInteger(d) || d < 0))
      throw new Error(`TensorDataset: invalid shape ${fmt(shape)}`);
    if (prod(shape) !== x.length)
      throw new Error(`TensorDataset: ${x.length} values do not fill shape ${fmt(shape)}`);
    if (y.length !== shape[0])
      throw new Error(`TensorDataset: ${y.length} labels for ${shape[0]} samples (shape ${fmt(shape)})`);
    return new TensorDataset({ images: x, labels: toLabels('TensorDataset', y) }, shape, opts.classes);
  }

  /** The `{ images, labels, shape }` that loadMnist/loadDigits/… return. */
  static from(d: LabeledArrays): TensorDataset {
    return TensorDataset.fromArrays(d.images, d.labels, d.shape, d.classes ? { classes: d.classes } : {});
  }

  /** GPU tensors: x of shape (N, ...) and y of shape (N) (int32 labels, typically). */
  static fromTensors(x: Tensor, y: Tensor, opts: { classes?: readonly string[] } = {}): TensorDataset {
    if (x.ndim < 1) throw new Error('TensorDataset: x must have a leading sample dimension');
    if (y.ndim !== 1 || y.shape[0] !== x.shape[0])
      throw new Error(
        `TensorDataset: y must have shape [${x.shape[0]}] to match x ${fmt(x.shape)}, got ${fmt(y.shape)}`,
      );
    return new TensorDataset({ x, y }, x.shape, opts.classes);
  }

  get onGpu(): boolean {
    return this.x !== null;
  }

  get(i: number): Sample | Promise<Sample> {
    checkIndex('TensorDataset.get', i, this.length);
    if (this.images && this.labels)
      return { x: this.images.subarray(i * this.dim, (i + 1) * this.dim), y: this.labels[i]! };
    return this.readBack(i);
  }

  private async readBack(i: number): Promise<Sample> {
    const b = this.getBatch(Int32Array.of(i));
    try {
      const [x, y] = await Promise.all([b.x.toArray(), b.y.toArray()]);
      return { x, y: y[0]! };
    } finally {
      b.x.dispose();
      b.y.dispose();
    }
  }

  /** The samples `indices` as one batch of GPU tensors (uploaded from host arrays, or gathered on the GPU). */
  getBatch(indices: Int32Array): Batch {
    for (const i of indices) checkIndex('TensorDataset.getBatch', i, this.length);
    const B = indices.length;
    if (this.images && this.labels) {
      const h = this.collate(indices);
      return { x: tensor(h.x, { shape: h.shape }), y: tensor(h.y, { shape: [B] }) };
    }
    return noGrad(() => {
      const idx = tensor(indices, { shape: [B], dtype: 'int32' });
      try {
        return { x: indexSelect(this.x!, 0, idx), y: indexSelect(this.y!, 0, idx) };
      } finally {
        idx.dispose();
      }
    });
  }

  /** Host-side collation of `indices` (host mode only). */
  private collate(indices: Int32Array): HostBatch {
    if (!this.images || !this.labels) throw new Error('TensorDataset: this dataset is on the GPU');
    const D = this.dim;
    const x = new Float32Array(indices.length * D);
    const y = new Int32Array(indices.length);
    indices.forEach((i, b) => {
      checkIndex('TensorDataset.getBatch', i, this.length);
      x.set(this.images!.subarray(i * D, (i + 1) * D), b * D);
      y[b] = this.labels![i]!;
    });
    return { x, y, shape: [indices.length, ...this.sampleShape] };
  }
}

/** The samples `indices` of another dataset, in that order. */
export class Subset<T = Sample> implements Dataset<T> {
  readonly indices: Int32Array;
  constructor(
    readonly dataset: Dataset<T>,
    indices: ArrayLike<number>,
  ) {
    this.indices = Int32Array.from(indices);
    for (const i of this.indices) checkIndex('Subset', i, dataset.length);
  }
  get length(): number {
    return this.indices.length;
  }
  get sampleShape(): readonly number[] | undefined {
    return this.dataset.sampleShape;
  }
  get classes(): readonly string[] | undefined {
    return this.dataset.classes;
  }
  get(i: number): T | Promise<T> {
    checkIndex('Subset.get', i, this.indices.length);
    return this.dataset.get(this.indices[i]!);
  }
}

/**
 * Splits a dataset at random into disjoint subsets of the given sizes (which must add up to its length), like
 * torch.utils.data.random_split; the same seed gives the same split.
 */
export function randomSplit<T>(dataset: Dataset<T>, sizes: readonly number[], seed = 0): Subset<T>[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (sizes.some((s) => !Number.isInteger(s) || s < 0) || total !== dataset.length)
    throw new Error(
      `randomSplit: sizes [${sizes.join(', ')}] must be non-negative integers adding up to ${dataset.length}`,
    );
  const perm = new Int32Array(dataset.length);
  for (let i = 0; i < perm.length; i++) perm[i] = i;
  new Rng(seed).shuffle(perm);
  let start = 0;
  return sizes.map((s) => {
    const sub = new Subset(dataset, perm.subarray(start, start + s));
    start += s;
    return sub;
  });
}
