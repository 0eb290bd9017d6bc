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
  // β = 1 (the default) adds the KL as it is: its multiply would be two kernels per step (forward, backward).
  const loss =
    mode === 'recon'
      ? recon.mul(1)
      : mode === 'kl'
        ? kl.mul(beta)
        : recon.add(beta === 1 ? kl : kl.mul(beta));
  return { loss, recon, kl };
}

export interface AELossOptions {
  /** Weight of the L1 penalty on the code, l1·mean|z| (seed 003 part 3(d): nn.L1Loss()(z, 0)); default 0. */
  l1?: number;
}

export interface AELossTerms {
  loss: Tensor;
  /** nn.MSELoss()(x̂, x): mean squared error over all elements. */
  mse: Tensor;
  /** mean |z| over all elements of the code (unweighted). */
  l1: Tensor;
}

/**
 * A regularized autoencoder's objective: mean squared error of x̂ + l1·mean|z|. Weight decay (the seed's
 * Adam weight_decay) belongs to the optimizer, dropout to the model.
 */
export function aeLoss(xhat: Tensor, x: Tensor, z: Tensor, opts: AELossOptions = {}): AELossTerms {
  const l1 = opts.l1 ?? 0;
  if (!(Number.isFinite(l1) && l1 >= 0))
    throw new Error(`aeLoss: l1 must be a finite number >= 0, got ${l1}`);
  const target = x.shape.length === xhat.shape.length ? x : x.reshape([...xhat.shape]);
  const mse = mseLoss(xhat, target);
  const code = z.abs().mean();
  return { loss: l1 ? mse.add(code.mul(l1)) : mse.mul(1), mse, l1: code };
}
