// Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_), on the GPU without readback.
import { full, keep, noGrad, stack, type Tensor } from '@wgrad/tensor';
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
    const sq = withGrad.map((p) => p.grad!.square().sum());
    const total = stack(sq).sum().sqrt();
    for (const s of sq) s.dispose();
    const coef = total.add(1e-6).reciprocal().mul(maxNorm).clamp(undefined, 1);
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
