// Losses (torch.nn.functional names in camelCase): fused elementwise terms (one kernel each way, see
// @wgrad/tensor's ops/fused.ts) or compositions of tensor ops, then the reduction.
import { bceTerms, fmtShape, fusedSum, klTerms, sqDiff, type Tensor } from '@wgrad/tensor';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(t: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return t;
  if (reduction === 'sum') return t.sum();
  if (reduction === 'mean') return t.mean();
  throw new Error(`loss: reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
}

/** A fused op's terms reduced: 'sum'/'mean' as one reduction reading the inputs (fusedSum), 'none' elementwise. */
function reduceFused(
  op: 'bceTerms' | 'sqDiff' | 'klTerms',
  a: Tensor,
  b: Tensor,
  reduction: Reduction,
  meanOver = a.size,
): Tensor {
  if (reduction === 'none')
    return op === 'sqDiff' ? sqDiff(a, b) : op === 'bceTerms' ? bceTerms(a, b) : klTerms(a, b);
  if (reduction === 'sum') return fusedSum(op, [a, b]);
  if (reduction === 'mean') return fusedSum(op, [a, b], meanOver === 0 ? Number.NaN : 1 / meanOver);
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
  return reduceFused('sqDiff', input, target, opts.reduction ?? 'mean');
}

export function l1Loss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  sameShape('l1Loss', input, target);
  return reduce(input.sub(target).abs(), opts.reduction ?? 'mean');
}

/**
 * Binary cross-entropy on probabilities; like PyTorch, each log term is clamped at −100 and the gradient is
 * (p − y) / max(p(1 − p), 1e-12).
 */
export function bceLoss(
  input: Tensor,
  target: Tensor,
  opts: { reduction?: Reduction; weight?: Tensor } = {},
): Tensor {
  sameShape('bceLoss', input, target);
  if (!opts.weight) return reduceFused('bceTerms', input, target, opts.reduction ?? 'mean');
  return reduce(bceTerms(input, target).mul(opts.weight), opts.reduction ?? 'mean');
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
  // 'mean': per-sample sums averaged over the batch = the total over the first dim's length.
  if (reduction !== 'none')
    return reduceFused('klTerms', mu, logvar, reduction, mu.shape.length > 1 ? mu.shape[0]! : mu.size);
  // 'none': the KL per sample (summed over the non-batch dims).
  const terms = klTerms(mu, logvar);
  return mu.shape.length > 1
    ? terms.sum(Array.from({ length: mu.shape.length - 1 }, (_, i) => i + 1))
    : terms;
}
