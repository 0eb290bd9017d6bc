// Fused elementwise primitives for losses and VAEs: one kernel forward and one per input backward, where the
// composed versions (kept in the tests as the reference) take 5–12 kernels and as many temporaries. Each rule
// holds its WGSL expression of v0, v1, … and, per input, the expression of its gradient in the inputs and the
// upstream gradient `$g` (the last operand). Operands must have the same shape (losses check it first).
import { keepNan } from '../gpu.js';
import { record, type Tensor } from '../tensor.js';
import { assertSameShape, mapElementwise } from './elementwise.js';
import { sumOfExpr } from './reduce.js';

interface FusedRule {
  arity: number;
  expr: string;
  /** Per input: the gradient expression (v0… the inputs, $g the upstream gradient), or null: no gradient. */
  grads: (string | null)[];
}

// log clamped at −100 like PyTorch's binary_cross_entropy (log(0) = −inf → −100); a NaN probability stays NaN
// (PyTorch refuses it outright) so that a NaN loss reaches the trainer's guard instead of a finite −100.
const CLOG = `fn clog(v: f32) -> f32 { return ${keepNan('v', 'select(-100.0, max(log(v), -100.0), v > 0.0)')}; }`;

export type FusedOp = 'bceTerms' | 'sqDiff' | 'klTerms' | 'reparameterize';

const FUSED: Record<FusedOp, FusedRule> = {
  // −(y·log p + (1 − y)·log(1 − p)), each log clamped at −100; ∂/∂p as PyTorch: (p − y) / max(p(1 − p), 1e-12).
  bceTerms: {
    arity: 2,
    expr: '-(v1 * clog(v0) + (1.0 - v1) * clog(1.0 - v0))',
    grads: ['$g * (v0 - v1) / max(v0 * (1.0 - v0), 1e-12)', '$g * (clog(1.0 - v0) - clog(v0))'],
  },
  // (a − b)²
  sqDiff: {
    arity: 2,
    expr: '(v0 - v1) * (v0 - v1)',
    grads: ['$g * 2.0 * (v0 - v1)', '$g * 2.0 * (v1 - v0)'],
  },
  // −½(1 + logvar − μ² − exp(logvar)): the KL of N(μ, σ²) from N(0, 1) per element.
  klTerms: {
    arity: 2,
    expr: '-0.5 * (1.0 + v1 - v0 * v0 - exp(v1))',
    grads: ['$g * v0', '$g * 0.5 * (exp(v1) - 1.0)'],
  },
  // z = μ + ε·exp(½ logvar)
  reparameterize: {
    arity: 3,
    expr: 'v0 + v2 * exp(0.5 * v1)',
    grads: ['$g', '$g * 0.5 * v2 * exp(0.5 * v1)', '$g * exp(0.5 * v1)'],
  },
};

function check(op: string, rule: FusedRule, inputs: readonly Tensor[]): void {
  if (inputs.length !== rule.arity)
    throw new Error(`${op}: expected ${rule.arity} inputs, got ${inputs.length}`);
  for (const t of inputs) {
    assertSameShape(op, inputs[0]!, t);
    if (t.dtype !== 'float32') throw new Error(`${op}: expected float32 inputs, got ${t.dtype}`);
  }
}

export function fused(op: FusedOp, inputs: readonly Tensor[]): Tensor {
  const rule = FUSED[op];
  check(op, rule, inputs);
  const prelude = op === 'bceTerms' ? CLOG : '';
  const y = mapElementwise(op, rule.expr, inputs, { prelude });
  const g = `v${rule.arity}`;
  return record(op, y, inputs, (grad) =>
    rule.grads.map((e, i) =>
      e && inputs[i]!.requiresGrad
        ? mapElementwise(`${op}_grad${i}`, e.replaceAll('$g', g), [...inputs, grad], { prelude })
        : null,
    ),
  );
}

/**
 * scale · Σ of a fused op's terms over all elements, as a 0-d tensor: the reduction reads the inputs directly
 * (no tensor of terms), and the backward is the op's gradient with the upstream scalar read as one element
 * (no expanded gradient). Losses use it for their 'sum' and 'mean' reductions.
 */
export function fusedSum(
  op: 'bceTerms' | 'sqDiff' | 'klTerms',
  inputs: readonly Tensor[],
  scale = 1,
): Tensor {
  const rule = FUSED[op];
  const name = `${op}_sum`;
  check(name, rule, inputs);
  const prelude = op === 'bceTerms' ? CLOG : '';
  const y = sumOfExpr(name, rule.expr, inputs, scale, prelude);
  const g = `(v${rule.arity} * v${rule.arity + 1})`; // upstream scalar · scale
  return record(name, y, inputs, (grad) =>
    rule.grads.map((e, i) =>
      e && inputs[i]!.requiresGrad
        ? mapElementwise(`${name}_grad${i}`, e.replaceAll('$g', g), [...inputs, grad, scale], { prelude })
        : null,
    ),
  );
}

/** Elementwise binary cross-entropy terms of probabilities p against targets y (PyTorch's clamping). */
export const bceTerms = (p: Tensor, y: Tensor) => fused('bceTerms', [p, y]);
/** Elementwise (a − b)². */
export const sqDiff = (a: Tensor, b: Tensor) => fused('sqDiff', [a, b]);
/** Elementwise −½(1 + logvar − μ² − exp(logvar)). */
export const klTerms = (mu: Tensor, logvar: Tensor) => fused('klTerms', [mu, logvar]);
/** z = μ + ε·exp(½ logvar) in one kernel (the VAE reparameterization). */
export const reparameterize = (mu: Tensor, logvar: Tensor, eps: Tensor) =>
  fused('reparameterize', [mu, logvar, eps]);
