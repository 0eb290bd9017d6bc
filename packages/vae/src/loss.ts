// The VAE objective: reconstruction (MSE or BCE, summed or averaged) + β·KL, with each term returned.
import { bceLoss, klNormal, mseLoss } from '@wgrad/nn';
import type { Tensor } from '@wgrad/tensor';

export type ReconKind = 'mse' | 'bce';
/** 'full' = recon + β·KL; 'recon' and 'kl' train on one term only (seed 001, task 2). */
export type LossMode = 'full' | 'recon' | 'kl';

export interface VAELossOptions {
  recon?: ReconKind;
  /** 'sum' over pixels and batch (PyTorch's VAE example) or 'mean' over all elements. */
  reduction?: 'sum' | 'mean';
  beta?: number;
  mode?: LossMode;
}

export interface LossTerms {
  loss: Tensor;
  recon: Tensor;
  kl: Tensor;
}

export function vaeLoss(
  xhat: Tensor,
  x: Tensor,
  mu: Tensor,
  logvar: Tensor,
  opts: VAELossOptions = {},
): LossTerms {
  const reduction = opts.reduction ?? 'sum';
  const target = x.shape.length === xhat.shape.length ? x : x.reshape([...xhat.shape]);
  const recon =
    (opts.recon ?? 'mse') === 'bce'
      ? bceLoss(xhat, target, { reduction })
      : mseLoss(xhat, target, { reduction });
  // KL: summed like the reconstruction ('sum'), or per sample averaged over the batch ('mean').
  const kl = klNormal(mu, logvar, { reduction: reduction === 'sum' ? 'sum' : 'mean' });
  const beta = opts.beta ?? 1;
  const mode = opts.mode ?? 'full';
  const loss = mode === 'recon' ? recon.mul(1) : mode === 'kl' ? kl.mul(beta) : recon.add(kl.mul(beta));
  return { loss, recon, kl };
}
