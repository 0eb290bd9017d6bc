// DataLoader: batches a dataset into GPU tensors, with seeded per-epoch shuffling and one batch of host-side
// prefetch.
import { type Tensor, tensor } from '@wgrad/tensor';
import type { Batch, Dataset, HostBatch, Sample } from './dataset.js';
import { permutation } from './rng.js';

export interface DataLoaderOptions {
  /** Samples per batch (default 1). */
  batchSize?: number;
  /** Visit the samples in a random order, a new one each epoch (default false). */
  shuffle?: boolean;
  /** Seed of the shuffle: epoch e uses the permutation of seed + e (default 0). */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /**
   * Prepare the next batch on the host (read, decode, collate) while the caller works on the current one
   * (default true). Costs the memory of one more host batch.
   */
  prefetch?: boolean;
  /** Shape of one sample's x (overrides the dataset's `sampleShape`); default: the dataset's, else [D]. */
  sampleShape?: readonly number[];
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Iterates over a dataset in batches of GPU tensors:
 *
 * ```ts
 * const loader = new DataLoader(dataset, { batchSize: 64, shuffle: true, seed: 1 });
 * for (let epoch = 0; epoch < 10; epoch++)
 *   for await (const { x, y } of loader) {
 *     await scope(async () => { … train on x (B, C, H, W) and y (B) … });
 *     x.dispose(); // the caller owns every batch: dispose it, or iterate inside scope()
 *     y.dispose();
 *   }
 * ```
 *
 * Each `for await` (each call of `[Symbol.asyncIterator]`) is one epoch: the first uses the permutation of
 * `seed`, the next of `seed + 1`, and so on (`epoch` / `setEpoch` read and set the counter), so a run is
 * reproducible from its seed. Samples are `{ x: Float32Array, y: number }`; a batch is
 * `{ x: float32 (B, ...sampleShape), y: int32 (B) }`. While the caller works on batch k, batch k+1 is read
 * and collated on the host (`prefetch`); it is uploaded to the GPU only when the caller asks for it.
 */
export class DataLoader<T extends Sample = Sample> implements AsyncIterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: boolean;
  private readonly shapeOverride: readonly number[] | undefined;
  private nextEpoch = 0;
  /** First batch of the next iteration (set by `seek` to resume mid-epoch; back to 0 once used). */
  private nextBatch = 0;

  constructor(
    readonly dataset: Dataset<T>,
    opts: DataLoaderOptions = {},
  ) {
    const { batchSize = 1, shuffle = false, seed = 0, dropLast = false, prefetch = true } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new Error(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isFinite(seed)) throw new Error(`DataLoader: seed must be a finite number, got ${seed}`);
    if (opts.sampleShape?.some((d) => !Number.isInteger(d) || d < 0))
      throw new Error(`DataLoader: invalid sampleShape ${fmt(opts.sampleShape)}`);
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.prefetch = prefetch;
    this.shapeOverride = opts.sampleShape ? [...opts.sampleShape] : undefined;
  }

  /** Number of batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch the next iteration will be (0 at first). */
  get epoch(): number {
    return this.nextEpoch;
  }
  /** Sets the epoch of the next iteration (to resume a run, say). */
  setEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0)
      throw new Error(`DataLoader.setEpoch: epoch must be a non-negative integer, got ${epoch}`);
    this.nextEpoch = epoch;
    this.nextBatch = 0;
  }

  /**
   * Makes the next iteration run `epoch` from its batch `batch` (0-based), with the same order as an
   * uninterrupted epoch: how a run resumed from a mid-epoch checkpoint continues where it stopped.
   */
  seek(epoch: number, batch: number): void {
    this.setEpoch(epoch);
    if (!Number.isInteger(batch) || batch < 0 || batch > this.length)
      throw new Error(`DataLoader.seek: batch must be an integer in [0, ${this.length}], got ${batch}`);
    this.nextBatch = batch;
  }

  /** The sample order of `epoch`: a permutation of seed + epoch when shuffling, else 0..N-1. */
  order(epoch: number): Int32Array {
    const n = this.dataset.length;
    if (this.shuffle) return permutation(n, this.seed + epoch);
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    return a;
  }

  /** The dataset indices of each batch of `epoch`. */
  batchIndices(epoch: number): Int32Array[] {
    const order = this.order(epoch);
    return Array.from({ length: this.length }, (_, b) =>
      order.subarray(b * this.batchSize, Math.min((b + 1) * this.batchSize, order.length)),
    );
  }

  [Symbol.asyncIterator](): AsyncGenerator<Batch, void, undefined> {
    const epoch = this.nextEpoch++;
    const from = this.nextBatch;
    this.nextBatch = 0;
    return this.iterate(epoch, from);
  }

  /** Iterates over the batches of `epoch` (from its batch `from`) without advancing the epoch counter. */
  async *iterate(epoch: number, from = 0): AsyncGenerator<Batch, void, undefined> {
    const batches = this.batchIndices(epoch).slice(from);
    const gpuBatch = this.dataset.gpuBatch;
    if (gpuBatch) {
      for (const idx of batches) {
        const batch = gpuBatch.call(this.dataset, idx);
        if (this.shapeOverride) {
          const shape = [idx.length, ...this.shapeOverride];
          try {
            const x = batch.x.reshape(shape);
            batch.x.dispose();
            batch.x = x;
          } catch (e) {
            batch.x.dispose();
            batch.y.dispose();
            throw e;
          }
        }
        yield batch;
      }
      return;
    }
    let pending: Promise<HostBatch> | null = null;
    for (let b = 0; b < batches.length; b++) {
      const host: HostBatch = await (pending ?? this.collate(batches[b]!));
      pending = null;
      if (this.prefetch && b + 1 < batches.length) {
        pending = this.collate(batches[b + 1]!);
        // Its failure surfaces when the caller asks for that batch; until then it is not "unhandled".
        pending.catch(() => {});
      }
      yield this.uploadChecked(host, batches[b]!, epoch, from + b);
    }
  }

  /** upload(), with a non-finite value reported by the dataset index of its sample. */
  private uploadChecked(host: HostBatch, indices: Int32Array, epoch: number, batch: number): Batch {
    try {
      return upload(host);
    } catch (e) {
      const j = host.x.findIndex((v) => !Number.isFinite(v));
      if (j < 0) throw e;
      const D = host.x.length / Math.max(indices.length, 1);
      throw new Error(
        `DataLoader: sample ${indices[Math.floor(j / D)]} (epoch ${epoch}, batch ${batch}) has a non-finite value ${host.x[j]} at element ${j % D} of its x`,
        { cause: e },
      );
    }
  }

  /** Reads the samples `indices` and collates them on the host. */
  async collate(indices: Int32Array): Promise<HostBatch> {
    const ds = this.dataset;
    if (ds.hostBatch) {
      const h = await ds.hostBatch.call(ds, indices);
      if (this.shapeOverride) {
        const D = this.shapeOverride.reduce((a, b) => a * b, 1);
        if (D * indices.length !== h.x.length)
          throw new Error(
            `DataLoader: sampleShape ${fmt(this.shapeOverride)} does not fit the dataset's samples ${fmt(h.shape.slice(1))}`,
          );
        return { ...h, shape: [indices.length, ...this.shapeOverride] };
      }
      return h;
    }
    const samples = await Promise.all(Array.from(indices, (i) => ds.get(i)));
    const shape = this.shapeOverride ?? ds.sampleShape ?? [samples[0]?.x.length ?? 0];
    const D = shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(indices.length * D);
    const y = new Int32Array(indices.length);
    samples.forEach((s, b) => {
      const i = indices[b]!;
      if (!s || !(s.x instanceof Float32Array))
        throw new Error(`DataLoader: sample ${i} is not { x: Float32Array, y: number }`);
      if (s.x.length !== D)
        throw new Error(
          `DataLoader: sample ${i} has ${s.x.length} values, expected ${D} (sample shape ${fmt(shape)})`,
        );
      if (!Number.isInteger(s.y) || s.y < -(2 ** 31) || s.y >= 2 ** 31)
        throw new Error(`DataLoader: sample ${i} has label ${s.y}, not a 32-bit integer`);
      x.set(s.x, b * D);
      y[b] = s.y;
    });
    return { x, y, shape: [indices.length, ...shape] };
  }
}

/** Uploads a host batch: x float32 with its shape, y int32 (B). */
export function upload(h: HostBatch): Batch {
  const x: Tensor = tensor(h.x, { shape: h.shape });
  try {
    return { x, y: tensor(h.y, { shape: [h.y.length], dtype: 'int32' }) };
  } catch (e) {
    x.dispose();
    throw e;
  }
}
