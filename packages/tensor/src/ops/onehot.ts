// One-hot encoding of integer labels: (…) int32 -> (…, C) float32, built from arange and a broadcast compare.
import { arange } from '../creation.js';
import type { Tensor } from '../tensor.js';
import { eq } from './elementwise.js';
import { unsqueeze } from './movement.js';

export function oneHot(labels: Tensor, numClasses: number): Tensor {
  if (labels.dtype !== 'int32') throw new Error(`oneHot: labels must be int32, got ${labels.dtype}`);
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new Error(`oneHot: numClasses must be a positive integer, got ${numClasses}`);
  const classes = arange(numClasses);
  const col = unsqueeze(labels, -1);
  const y = eq(col, classes);
  classes.dispose();
  col.dispose();
  return y;
}
