// Per-sample anomaly scores and per-pixel heatmaps, computed on the GPU without gradients.
import type { Module } from '@wgrad/nn';
import { noGrad, scope, type Tensor } from '@wgrad/tensor';
import { AE, VAE } from './models.js';

export type ScoreKind = 'mse' | 'bce';

export interface ScoreOptions {
  /** Per-pixel error: squared error ('mse', default) or binary cross-entropy ('bce'). */
  recon?: ScoreKind;
  /** Average (default) or sum the per-pixel errors of a sample. */
  reduction?: 'mean' | 'sum';
  /** VAE only: decode a sampled z instead of μ (default false: deterministic scores). */
  sample?: boolean;
}

/** Per-pixel reconstruction error (B, …) of x and x̂. */
export function pixelErrors(xhat: Tensor, x: Tensor, recon: ScoreKind = 'mse'): Tensor {
  const t = x.shape.length === xhat.shape.length ? x : x.reshape([...xhat.shape]);
  if (recon === 'mse') return xhat.sub(t).square();
  const lp = xhat.log().clamp(-100);
  const lq = xhat.neg().add(1).log().clamp(-100);
  return t.mul(lp).add(t.neg().add(1).mul(lq)).neg();
}

/** x̂ for any model: VAE (μ decoded, or a sample), autoencoder, or a module whose forward reconstructs. */
export function reconstruct(model: Module, x: Tensor, labels?: Tensor, sample = false): Tensor {
  if (model instanceof VAE) {
    if (sample) return model.run(x, labels).xhat;
    const { mu } = model.encode(x, labels);
    return model.decode(mu, labels);
  }
  if (model instanceof AE) return model.forward(x);
  return model.forward(x);
}

function perSample(err: Tensor, reduction: 'mean' | 'sum'): Tensor {
  const axes = Array.from({ length: err.shape.length - 1 }, (_, i) => i + 1);
  return reduction === 'sum' ? err.sum(axes) : err.mean(axes);
}

/** Reconstruction-error scores (B) for one batch. */
export function reconstructionScore(
  model: Module,
  x: Tensor,
  opts: ScoreOptions & { labels?: Tensor } = {},
): Tensor {
  return noGrad(() =>
    scope(() =>
      perSample(
        pixelErrors(reconstruct(model, x, opts.labels, opts.sample), x, opts.recon),
        opts.reduction ?? 'mean',
      ),
    ),
  );
}

/**
 * Negative ELBO per sample, estimated with k Monte-Carlo draws of z: E_q[−log p(x|z)] + KL(q(z|x) ‖ p(z)),
 * with −log p(x|z) the summed BCE (default) or squared error of the sample.
 */
export function negativeElbo(
  vae: VAE,
  x: Tensor,
  opts: { k?: number; recon?: ScoreKind; labels?: Tensor } = {},
): Tensor {
  const k = opts.k ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new Error(`negativeElbo: k must be a positive integer, got ${k}`);
  return noGrad(() =>
    scope(() => {
      const { mu, logvar } = vae.encode(x, opts.labels);
      const kl = logvar.add(1).sub(mu.square()).sub(logvar.exp()).mul(-0.5).sum(1);
      let rec: Tensor | null = null;
      for (let i = 0; i < k; i++) {
        const z = vae.reparameterize(mu, logvar);
        const r = perSample(pixelErrors(vae.decode(z, opts.labels), x, opts.recon ?? 'bce'), 'sum');
        rec = rec ? rec.add(r) : r;
      }
      return rec!.div(k).add(kl);
    }),
  );
}

/** Per-pixel heatmap (x − x̂)², shaped like x. */
export function heatmap(model: Module, x: Tensor, labels?: Tensor): Tensor {
  return noGrad(() =>
    scope(() => pixelErrors(reconstruct(model, x, labels), x, 'mse').reshape([...x.shape])),
  );
}

/**
 * Scores every batch of a loader (model in eval mode, restored afterwards); returns host arrays of scores
 * and labels. Every batch is freed, also when scoring fails. `kind: 'elbo'` needs a VAE.
 */
export async function scoreAll(
  model: Module,
  batches: AsyncIterable<{ x: Tensor; y: Tensor }> | Iterable<{ x: Tensor; y: Tensor }>,
  opts: ScoreOptions & { kind?: 'recon' | 'elbo'; k?: number; conditional?: boolean } = {},
): Promise<{ scores: Float32Array; labels: Int32Array }> {
  if (opts.kind === 'elbo' && !(model instanceof VAE))
    throw new Error(`scoreAll: kind 'elbo' needs a VAE, got ${model.constructor.name}`);
  const wasTraining = model.training;
  model.eval();
  const scores: number[] = [];
  const labels: number[] = [];
  try {
    for await (const b of batches) {
      try {
        const s =
          opts.kind === 'elbo' && model instanceof VAE
            ? negativeElbo(model, b.x, {
                k: opts.k,
                recon: opts.recon,
                labels: opts.conditional ? b.y : undefined,
              })
            : reconstructionScore(model, b.x, { ...opts, labels: opts.conditional ? b.y : undefined });
        try {
          scores.push(...(await s.toArray()));
        } finally {
          s.dispose();
        }
        labels.push(...(await b.y.data()));
      } finally {
        b.x.dispose();
        b.y.dispose();
      }
    }
  } finally {
    model.train(wasTraining);
  }
  return { scores: Float32Array.from(scores), labels: Int32Array.from(labels) };
}
