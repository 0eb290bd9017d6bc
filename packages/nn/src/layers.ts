// Layers, with PyTorch's default initialisation drawn from the seeded GPU RNG.
import {
  avgPool2d,
  conv2d,
  convTranspose2d,
  type FusedActivation,
  flatten,
  indexSelect,
  interpolate,
  linear,
  maxPool2d,
  oneHot,
  type Pair,
  rand,
  randn,
  reshape,
  type Tensor,
} from '@wgrad/tensor';
import { Module, Parameter } from './module.js';

/** U(−bound, bound) as a Parameter. */
export function uniformParam(shape: number[], bound: number): Parameter {
  return new Parameter(rand(shape, { low: -bound, high: bound }));
}

/**
 * PyTorch's default for Linear/Conv weights: kaiming_uniform_(a=√5), i.e. U(±1/√fan_in); biases use the
 * same bound.
 */
export function kaimingUniformBound(fanIn: number): number {
  return fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
}

const pairOf = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

export class Linear extends Module {
  weight: Parameter; // (out, in)
  bias: Parameter | null; // (out)
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    const bound = kaimingUniformBound(inFeatures);
    this.weight = uniformParam([outFeatures, inFeatures], bound);
    this.bias = (opts.bias ?? true) ? uniformParam([outFeatures], bound) : null;
  }
  /** `opts.activation: 'relu'` applies relu in the GEMM's epilogue (what Sequential does for Linear, ReLU). */
  forward(x: Tensor, opts?: FusedActivation): Tensor {
    return linear(x, this.weight, this.bias, opts);
  }
  override extraRepr(): string {
    return `in=${this.inFeatures}, out=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

export interface Conv2dArgs {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/**
 * What Conv2d and ConvTranspose2d share (PyTorch's _ConvNd): the weight (Cout, Cin/groups, kH, kW), or
 * (Cin, Cout/groups, kH, kW) when transposed, and PyTorch's init with fan_in = weight dim 1 · kH · kW.
 */
abstract class ConvNd<O extends Conv2dArgs> extends Module {
  abstract override forward(x: Tensor, opts?: FusedActivation): Tensor;
  weight: Parameter;
  bias: Parameter | null; // (Cout)
  readonly kernelSize: [number, number];
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    readonly opts: O,
    transposed: boolean,
  ) {
    super();
    const g = opts.groups ?? 1;
    if (inChannels % g || outChannels % g)
      throw new Error(
        `${this.constructor.name}: channels ${inChannels}->${outChannels} not divisible by groups=${g}`,
      );
    this.kernelSize = pairOf(kernelSize);
    const shape = transposed ? [inChannels, outChannels / g] : [outChannels, inChannels / g];
    const bound = kaimingUniformBound(shape[1]! * this.kernelSize[0] * this.kernelSize[1]);
    this.weight = uniformParam([...shape, ...this.kernelSize], bound);
    this.bias = (opts.bias ?? true) ? uniformParam([outChannels], bound) : null;
  }
  override extraRepr(): string {
    const o = this.opts;
    return `${this.inChannels}, ${this.outChannels}, kernel=${this.kernelSize}, stride=${o.stride ?? 1}, padding=${o.padding ?? 0}${o.groups ? `, groups=${o.groups}` : ''}`;
  }
}

export class Conv2d extends ConvNd<Conv2dArgs> {
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dArgs = {}) {
    super(inChannels, outChannels, kernelSize, opts, false);
  }
  /** `opts.activation: 'relu'` applies relu in the GEMM's epilogue (what Sequential does for Conv2d, ReLU). */
  forward(x: Tensor, opts?: FusedActivation): Tensor {
    return conv2d(x, this.weight, this.bias, opts ? { ...this.opts, ...opts } : this.opts);
  }
}

export class ConvTranspose2d extends ConvNd<Conv2dArgs & { outputPadding?: Pair }> {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: Pair,
    opts: Conv2dArgs & { outputPadding?: Pair } = {},
  ) {
    super(inChannels, outChannels, kernelSize, opts, true);
  }
  /** `opts.activation: 'relu'` applies relu in col2im (what Sequential does for ConvTranspose2d, ReLU). */
  forward(x: Tensor, opts?: FusedActivation): Tensor {
    return convTranspose2d(x, this.weight, this.bias, opts ? { ...this.opts, ...opts } : this.opts);
  }
}

export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly opts: { stride?: Pair; padding?: Pair } = {},
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.opts);
  }
  override extraRepr(): string {
    return `kernel=${this.kernelSize}`;
  }
}

export class AvgPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly opts: { stride?: Pair; padding?: Pair; countIncludePad?: boolean } = {},
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.opts);
  }
  override extraRepr(): string {
    return `kernel=${this.kernelSize}`;
  }
}

export class Upsample extends Module {
  constructor(readonly opts: { size?: Pair; scaleFactor?: number; mode?: 'nearest' }) {
    super();
  }
  forward(x: Tensor): Tensor {
    return interpolate(x, this.opts);
  }
  override extraRepr(): string {
    return this.opts.size ? `size=${this.opts.size}` : `scaleFactor=${this.opts.scaleFactor}`;
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}
export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.leakyRelu(this.negativeSlope);
  }
  override extraRepr(): string {
    return `negativeSlope=${this.negativeSlope}`;
  }
}
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return x.sigmoid();
  }
}
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return x.tanh();
  }
}
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Zeroes each element with probability p while training (seeded RNG) and scales the rest by 1/(1−p). */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const u = rand([...x.shape]);
    const keepMask = u.ge(this.p);
    u.dispose();
    const y = x.mul(keepMask.mul(1 / (1 - this.p)));
    return y;
  }
  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}

export class Unflatten extends Module {
  constructor(
    readonly dim: number,
    readonly sizes: number[],
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    const d = this.dim < 0 ? this.dim + x.shape.length : this.dim;
    return reshape(x, [...x.shape.slice(0, d), ...this.sizes, ...x.shape.slice(d + 1)]);
  }
  override extraRepr(): string {
    return `dim=${this.dim}, sizes=[${this.sizes}]`;
  }
}

/** Runs its children in order; they are named '0', '1', … like torch.nn.Sequential. */
export class Sequential extends Module {
  [key: string]: unknown;
  readonly length: number;
  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => {
      this[String(i)] = m;
    });
    this.length = layers.length;
  }
  at(i: number): Module {
    return this[String(i < 0 ? i + this.length : i)] as Module;
  }
  /** Runs the layers in order; a Linear/Conv2d/ConvTranspose2d followed by a ReLU runs as one fused op. */
  forward(x: Tensor): Tensor {
    let h = x;
    for (let i = 0; i < this.length; i++) {
      const m = this[String(i)] as Module;
      if (this[String(i + 1)] instanceof ReLU && (m instanceof Linear || m instanceof ConvNd)) {
        h = m.forward(h, { activation: 'relu' });
        i++;
      } else h = m.forward(h);
    }
    return h;
  }
}

/** A lookup table (torch.nn.Embedding): int32 indices (…) → (…, dim), initialised N(0, 1). */
export class Embedding extends Module {
  weight: Parameter; // (num, dim)
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
  ) {
    super();
    this.weight = new Parameter(randn([numEmbeddings, embeddingDim]));
  }
  forward(idx: Tensor): Tensor {
    const flat = reshape(idx, [idx.size]);
    const rows = indexSelect(this.weight, 0, flat);
    // indexSelect's backward reads the index: keep it while the result is on the tape.
    if (!rows.requiresGrad) flat.dispose();
    return reshape(rows, [...idx.shape, this.embeddingDim]);
  }
  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}`;
  }
}

/** One-hot encoding as a module (int32 labels → float32 (…, numClasses)), for class-conditioned models. */
export class OneHot extends Module {
  constructor(readonly numClasses: number) {
    super();
  }
  forward(labels: Tensor): Tensor {
    return oneHot(labels, this.numClasses);
  }
}
