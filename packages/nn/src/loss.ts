// Losses (torch.nn.functional names in camelCase), composed from tensor ops (no backward rules of their own).
import { fmtShape, type Tensor } from '@wgrad/tensor';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(t: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return t;
  if (reduction === 'sum') return t.sum();
  if (reduction === 'mean') return t.mean();
  throw new Error(`loss: reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
}

function sameShape(op: string, input: Tensor, target: Tensor): void {
  if (input.shape.length !== target.shape.length || input.shape.some((d, i) => d !== target.shape[i]))
    throw new Error(
      `${op}: input ${fmtShape(input.shape)} and target ${fmtShape(target.shape)} must have the same shape`,
    );
}

export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  sameShape('mseLoss', input, target);
  return reduce(input.sub(target).square(), opts.reduction ?? 'mean');
}

export function l1Loss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  sameShape('l1Loss', input, target);
  return reduce(input.sub(target).abs(), opts.reduction ?? 'mean');
}

/**
 * max(log p, −100). Where p = 0 the log is taken of 1 instead and replaced by −100, so the gradient there is
 * 0 rather than 0/0 = NaN (log's backward divides by p even when the clamp passes no gradient).
 */
function clampedLog(p: Tensor): Tensor {
  const pos = p.gt(0);
  return p.where(pos, 1).log().clamp(-100).where(pos, -100);
}

/** Binary cross-entropy on probabilities; like PyTorch, each log term is clamped at −100. */
export function bceLoss(
  input: Tensor,
  target: Tensor,
  opts: { reduction?: Reduction; weight?: Tensor } = {},
): Tensor {
  sameShape('bceLoss', input, target);
  const logP = clampedLog(input);
  const log1mP = clampedLog(input.neg().add(1));
  let l = target.mul(logP).add(target.neg().add(1).mul(log1mP)).neg();
  if (opts.weight) l = l.mul(opts.weight);
  return reduce(l, opts.reduction ?? 'mean');
}

/** Binary cross-entropy on logits, computed stably as softplus(x) − x·y. */
export function bceWithLogitsLoss(
  input: Tensor,
  target: Tensor,
  opts: { reduction?: Reduction; posWeight?: Tensor } = {},
): Tensor {
  sameShape('bceWithLogitsLoss', input, target);
  let l: Tensor;
  if (opts.posWeight) {
    // (1 − y)·x + (1 + (pw − 1)·y)·softplus(−x)
    const w = opts.posWeight.sub(1).mul(target).add(1);
    l = target.neg().add(1).mul(input).add(w.mul(input.neg().softplus()));
  } else l = input.softplus().sub(input.mul(target));
  return reduce(l, opts.reduction ?? 'mean');
}

/**
 * KL(N(mu, exp(logvar)) ‖ N(0, I)) = −½ Σ (1 + logvar − mu² − exp(logvar)).
 * reduction: 'sum' (default, as in PyTorch's VAE example) over everything; 'mean' averages the per-sample
 * KL over the batch (dim 0); 'none' returns the per-sample KL (B).
 */
export function klNormal(mu: Tensor, logvar: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  sameShape('klNormal', mu, logvar);
  const reduction = opts.reduction ?? 'sum';
  if (reduction !== 'sum' && reduction !== 'mean' && reduction !== 'none')
    throw new Error(`klNormal: reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
  const terms = logvar.add(1).sub(mu.square()).sub(logvar.exp()).mul(-0.5);
  if (reduction === 'sum') return terms.sum();
  const perSample =
    mu.shape.length > 1 ? terms.sum(Array.from({ length: mu.shape.length - 1 }, (_, i) => i + 1)) : terms;
  return reduction === 'none' ? perSample : perSample.mean();
}
