// Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_), on the GPU without readback.
import { full, keep, keepNan, mapElementwise, noGrad, sumOfSquares, type Tensor } from '@wgrad/tensor';
import type { Parameter } from './module.js';

/**
 * Scales all gradients so that their global L2 norm is at most `maxNorm` (coefficient
 * min(1, maxNorm / (norm + 1e-6)), as PyTorch). Returns the norm before clipping (a scalar tensor; the caller
 * owns it).
 */
export function clipGradNorm(params: readonly Parameter[], maxNorm: number): Tensor {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be positive, got ${maxNorm}`);
  return noGrad(() => {
    const withGrad = params.filter((p) => p.grad);
    if (!withGrad.length) return full([], 0);
    // One pass per gradient into shared partial sums (sumOfSquares), then min(1, maxNorm / (total + 1e-6)) in
    // one kernel. A NaN norm gives a NaN coefficient, so every gradient turns NaN as in PyTorch (WGSL's min and
    // clamp may drop a NaN; the test is on the bits, which lavapipe cannot fold away).
    const sumSq = sumOfSquares(withGrad.map((p) => p.grad!));
    const total = sumSq.sqrt();
    sumSq.dispose();
    const coef = mapElementwise('clip_coef', keepNan('v0', 'min(v1 / (v0 + 1e-6), 1.0)'), [total, maxNorm]);
    for (const p of withGrad) {
      const g = p.grad!;
      p.grad = keep(g.mul(coef));
      g.dispose();
    }
    coef.dispose();
    return total;
  });
}

/** Clamps every gradient element to [−clipValue, clipValue]. */
export function clipGradValue(params: readonly Parameter[], clipValue: number): void {
  if (!(clipValue > 0)) throw new Error(`clipGradValue: clipValue must be positive, got ${clipValue}`);
  noGrad(() => {
    for (const p of params) {
      if (!p.grad) continue;
      const g = p.grad;
      p.grad = keep(g.clamp(-clipValue, clipValue));
      g.dispose();
    }
  });
}
