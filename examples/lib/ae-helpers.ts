// Helpers shared by the autoencoder examples (ae-zeros, digits-ae): an image-shaped wrapper for MLP
// autoencoders, class filtering of host arrays, and small formatting helpers.
import { type LabeledArrays, Module } from '@wgrad/nn';
import type { Tensor } from '@wgrad/tensor';

/**
 * Runs an MLP autoencoder (whose Linear layers want (B, D)) on image batches (B, C, H, W): flattens the input
 * and gives x̂ the input's shape, so that the trainer, `scoreAll`, `heatmap` and `anomalyReport`'s example
 * images (which pass (B, C, H, W) batches) all work with `twoLayerAE` / `mlpAE`.
 */
export class FlatIO extends Module {
  constructor(readonly inner: Module) {
    super();
  }
  forward(x: Tensor): Tensor {
    const flat = x.shape.length > 2 ? x.flatten(1) : x;
    const y = this.inner.forward(flat);
    return y.reshape([...x.shape]);
  }
}

/** The samples of `d` whose label passes `keep`, as new host arrays (the DataLoader's fast path). */
export function filterLabels(d: LabeledArrays, keep: (label: number) => boolean): LabeledArrays {
  const idx: number[] = [];
  d.labels.forEach((y, i) => {
    if (keep(y)) idx.push(i);
  });
  return takeRows(d, idx);
}

/** The rows `idx` of `d`, in that order. */
export function takeRows(d: LabeledArrays, idx: ArrayLike<number>): LabeledArrays {
  const D = d.images.length / d.labels.length;
  const images = new Float32Array(idx.length * D);
  const labels = new Int32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k]!;
    images.set(d.images.subarray(i * D, (i + 1) * D), k * D);
    labels[k] = d.labels[i]!;
  }
  return {
    images,
    labels,
    shape: [idx.length, ...d.shape.slice(1)],
    ...(d.classes ? { classes: d.classes } : {}),
  };
}

/** Seconds since `t0` (a performance.now() reading), as "12.3 s" or "2m05s". */
export function since(t0: number): string {
  const s = (performance.now() - t0) / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/**
 * Tiles for one RGB `imageGrid`: grey images in [0, 1] (replicated to RGB) and colour-mapped heatmaps side by
 * side, e.g. input | reconstruction | (x − x̂)² per row, as the seeds' matplotlib subplots show them.
 */
export function rgbTiles(
  tiles: ({ gray: ArrayLike<number> } | { heat: ArrayLike<number>; range: [number, number] })[],
  hw: number,
  cmap: (t: number) => [number, number, number],
): Float32Array {
  const out = new Float32Array(tiles.length * 3 * hw);
  tiles.forEach((t, i) => {
    const base = i * 3 * hw;
    if ('gray' in t) {
      for (let k = 0; k < 3; k++) for (let p = 0; p < hw; p++) out[base + k * hw + p] = t.gray[p]!;
    } else {
      const [lo, hi] = t.range;
      for (let p = 0; p < hw; p++) {
        const rgb = cmap(hi > lo ? (t.heat[p]! - lo) / (hi - lo) : 0);
        for (let k = 0; k < 3; k++) out[base + k * hw + p] = rgb[k]! / 255;
      }
    }
  });
  return out;
}
