// VAEs and autoencoders. Field names follow the seeds' PyTorch code (snake_case where PyTorch used it), so
// stateDict() keys match a PyTorch state_dict of the same architecture and checkpoints move both ways.
import {
  Conv2d,
  ConvTranspose2d,
  Dropout,
  kaimingUniformBound,
  Linear,
  Module,
  Parameter,
  ReLU,
  Sequential,
  Sigmoid,
  uniformParam,
} from '@wgrad/nn';
import { addmm, concat, fmtShape, oneHot, randn, reparameterize, type Tensor, zeros } from '@wgrad/tensor';
import { type AELossTerms, aeLoss } from './loss.js';

/** An encoder producing the parameters of a diagonal Gaussian q(z|x). */
export abstract class GaussianEncoder extends Module {
  abstract encode(x: Tensor): { mu: Tensor; logvar: Tensor };
  /** forward returns μ (what a deterministic embedding uses). */
  forward(x: Tensor): Tensor {
    const { mu, logvar } = this.encode(x);
    logvar.dispose();
    return mu;
  }
}

/** MLP encoder of seed 004: hidden_layers (Linear+ReLU)×n, then mu_layer and log_sigma_squared_layer. */
export class MLPEncoder extends GaussianEncoder {
  hidden_layers: Sequential;
  mu_layer: Linear;
  log_sigma_squared_layer: Linear;
  constructor(
    readonly inputDim: number,
    readonly latentDim: number,
    readonly hiddenDim: number,
    numHiddenLayers = 1,
  ) {
    super();
    const layers: Module[] = [new Linear(inputDim, hiddenDim), new ReLU()];
    for (let i = 1; i < numHiddenLayers; i++) layers.push(new Linear(hiddenDim, hiddenDim), new ReLU());
    this.hidden_layers = new Sequential(...layers);
    this.mu_layer = new Linear(hiddenDim, latentDim);
    this.log_sigma_squared_layer = new Linear(hiddenDim, latentDim);
  }
  encode(x: Tensor): { mu: Tensor; logvar: Tensor } {
    const flat = x.shape.length > 2 ? x.flatten(1) : x;
    if (flat.shape[1] !== this.inputDim)
      throw new Error(`MLPEncoder: expected ${this.inputDim} input features, got ${fmtShape(x.shape)}`);
    const h = this.hidden_layers.forward(flat);
    return { mu: this.mu_layer.forward(h), logvar: this.log_sigma_squared_layer.forward(h) };
  }
}

/** MLP decoder of seed 004: layers = (Linear+ReLU)×n, Linear, Sigmoid (optional). */
export class MLPDecoder extends Module {
  layers: Sequential;
  constructor(
    readonly latentDim: number,
    readonly hiddenDim: number,
    readonly outputDim: number,
    numHiddenLayers = 1,
    readonly outShape: number[] = [outputDim],
    sigmoid = true,
  ) {
    super();
    const layers: Module[] = [new Linear(latentDim, hiddenDim), new ReLU()];
    for (let i = 1; i < numHiddenLayers; i++) layers.push(new Linear(hiddenDim, hiddenDim), new ReLU());
    layers.push(new Linear(hiddenDim, outputDim));
    if (sigmoid) layers.push(new Sigmoid());
    this.layers = new Sequential(...layers);
  }
  forward(z: Tensor): Tensor {
    const y = this.layers.forward(z);
    return y.reshape([z.shape[0]!, ...this.outShape]);
  }
}

/** Conv encoder of seed 004: conv1 (C→64, 4, s2, p1), conv2 (64→128, 4, s2, p1), fc_mu, fc_logvar. */
export class ConvEncoder extends GaussianEncoder {
  conv1: Conv2d;
  conv2: Conv2d;
  fc_mu: Linear;
  fc_logvar: Linear;
  constructor(
    readonly channels: number,
    readonly latentDim: number,
    readonly imageSize = 28,
  ) {
    super();
    const s = imageSize / 4;
    if (!Number.isInteger(s)) throw new Error(`ConvEncoder: image size ${imageSize} must be divisible by 4`);
    this.conv1 = new Conv2d(channels, 64, 4, { stride: 2, padding: 1 });
    this.conv2 = new Conv2d(64, 128, 4, { stride: 2, padding: 1 });
    this.fc_mu = new Linear(128 * s * s, latentDim);
    this.fc_logvar = new Linear(128 * s * s, latentDim);
  }
  encode(x: Tensor): { mu: Tensor; logvar: Tensor } {
    const relu = { activation: 'relu' } as const; // fused into the convolutions' GEMM epilogue
    const h = this.conv2.forward(this.conv1.forward(x, relu), relu).flatten(1);
    return { mu: this.fc_mu.forward(h), logvar: this.fc_logvar.forward(h) };
  }
}

/** Conv decoder of seed 004: fc (Z→128·s·s), conv2 (128→64, 4, s2, p1)+ReLU, conv1 (64→C, 4, s2, p1)+Sigmoid. */
export class ConvDecoder extends Module {
  fc: Linear;
  conv2: ConvTranspose2d;
  conv1: ConvTranspose2d;
  constructor(
    readonly latentDim: number,
    readonly channels = 1,
    readonly imageSize = 28,
  ) {
    super();
    const s = imageSize / 4;
    this.fc = new Linear(latentDim, 128 * s * s);
    this.conv2 = new ConvTranspose2d(128, 64, 4, { stride: 2, padding: 1 });
    this.conv1 = new ConvTranspose2d(64, channels, 4, { stride: 2, padding: 1 });
  }
  forward(z: Tensor): Tensor {
    const s = this.imageSize / 4;
    const h = this.fc.forward(z).reshape([z.shape[0]!, 128, s, s]);
    return this.conv1.forward(this.conv2.forward(h, { activation: 'relu' })).sigmoid();
  }
}

export interface VAEOutput {
  xhat: Tensor;
  mu: Tensor;
  logvar: Tensor;
  z: Tensor;
}

/**
 * A VAE: q(z|x) from `encoder`, z = μ + ε·exp(½ log σ²) with ε from the seeded GPU RNG, p(x|z) from
 * `decoder`. With `numClasses` it is conditional (seed 001): the one-hot label is joined to the flattened
 * encoder input and to z.
 */
export class VAE extends Module {
  constructor(
    readonly encoder: GaussianEncoder,
    readonly decoder: Module,
    readonly latentDim: number,
    readonly numClasses = 0,
  ) {
    super();
  }

  private withLabel(t: Tensor, labels: Tensor | undefined, what: string): Tensor {
    if (!this.numClasses) return t;
    if (!labels)
      throw new Error(`VAE.${what}: this VAE is conditional (${this.numClasses} classes) and needs labels`);
    const oh = oneHot(labels, this.numClasses);
    const flat = t.shape.length > 2 ? t.flatten(1) : t;
    const joined = concat([flat, oh], 1);
    oh.dispose();
    return joined;
  }

  encode(x: Tensor, labels?: Tensor): { mu: Tensor; logvar: Tensor } {
    return this.encoder.encode(this.withLabel(x, labels, 'encode'));
  }

  /** z = μ + ε·exp(½ log σ²), ε ~ N(0, I). */
  reparameterize(mu: Tensor, logvar: Tensor): Tensor {
    // ε stays alive with the graph: the logvar gradient reads it.
    return reparameterize(mu, logvar, randn([...mu.shape]));
  }

  decode(z: Tensor, labels?: Tensor): Tensor {
    return this.decoder.forward(this.withLabel(z, labels, 'decode'));
  }

  /** Encoder, reparameterization and decoder in one pass (training and scoring). */
  run(x: Tensor, labels?: Tensor): VAEOutput {
    const { mu, logvar } = this.encode(x, labels);
    const z = this.reparameterize(mu, logvar);
    const xhat = this.decode(z, labels);
    return { xhat, mu, logvar, z };
  }

  forward(x: Tensor, labels?: Tensor): Tensor {
    return this.run(x, labels).xhat;
  }

  /** n samples from the prior (optionally all of one class), decoded. */
  sample(n: number, labels?: Tensor): Tensor {
    const z = randn([n, this.latentDim]);
    return this.decode(z, labels);
  }
}

/** An autoencoder: x̂ = decode(encode(x)); `encode` returns the code (L1 regularisation, embeddings). */
export abstract class AE extends Module {
  abstract encode(x: Tensor): Tensor;
  abstract decode(z: Tensor): Tensor;
  forward(x: Tensor): Tensor {
    return this.decode(this.encode(x));
  }
}

/** An autoencoder from any encoder and decoder modules (parameter names encoder.*, decoder.*). */
export class Autoencoder extends AE {
  constructor(
    readonly encoder: Module,
    readonly decoder: Module,
  ) {
    super();
  }
  encode(x: Tensor): Tensor {
    return this.encoder.forward(x);
  }
  decode(z: Tensor): Tensor {
    return this.decoder.forward(z);
  }
}

/**
 * Seed 002's two-layer AE with the seed's own parameters V (d, h), W (h, d), b (h), a (d):
 * z = relu(x·V + b), x̂ = z·W + a, for x (B, d). `seedInit` (default) draws the seed's init V ~ N(0, 1/d),
 * W = 0, b = a = 0; otherwise U(±1/√fan_in) like torch.nn.Linear.
 */
export class TwoLayerAE extends AE {
  V: Parameter;
  W: Parameter;
  b: Parameter;
  a: Parameter;
  constructor(
    readonly inputDim = 784,
    readonly hidden = 32,
    seedInit = true,
  ) {
    super();
    const d = inputDim;
    const h = hidden;
    if (seedInit) {
      this.V = new Parameter(randn([d, h], { std: d ** -0.5 }));
      this.W = new Parameter(zeros([h, d]));
      this.b = new Parameter(zeros([h]));
      this.a = new Parameter(zeros([d]));
    } else {
      this.V = uniformParam([d, h], kaimingUniformBound(d));
      this.W = uniformParam([h, d], kaimingUniformBound(h));
      this.b = uniformParam([h], kaimingUniformBound(d));
      this.a = uniformParam([d], kaimingUniformBound(h));
    }
  }
  // relu(x·V + b) and z·W + a, each one GEMM with the bias (and relu) in its epilogue.
  encode(x: Tensor): Tensor {
    return addmm(this.b, x, this.V, { activation: 'relu' });
  }
  decode(z: Tensor): Tensor {
    return addmm(this.a, z, this.W);
  }
}

/**
 * Seed 003's MLP AE (MyMLPAE): linear_1 (d → h), then optionally ReLU and dropout (training only), then
 * linear_2 (h → d); `linear: true` (default) has no nonlinearity, as in the exercise.
 */
export class MLPAE extends AE {
  linear_1: Linear;
  linear_2: Linear;
  readonly dropout: Dropout | null;
  private readonly relu: boolean;
  constructor(
    readonly inputDim = 64,
    readonly hidden = 5,
    opts: { linear?: boolean; dropout?: number } = {},
  ) {
    super();
    const p = opts.dropout ?? 0;
    // Checked before any parameter is made, so a bad option leaves nothing on the GPU.
    if (!(p >= 0 && p < 1)) throw new Error(`${this.constructor.name}: dropout must be in [0, 1), got ${p}`);
    this.relu = !(opts.linear ?? true);
    this.linear_1 = new Linear(inputDim, hidden);
    this.linear_2 = new Linear(hidden, inputDim);
    this.dropout = p ? new Dropout(p) : null;
  }
  encode(x: Tensor): Tensor {
    return this.linear_1.forward(x, this.relu ? { activation: 'relu' } : undefined);
  }
  decode(z: Tensor): Tensor {
    return this.linear_2.forward(this.dropout ? this.dropout.forward(z) : z);
  }
}

/** Seed 003's conv AE (MyCAE): conv1 (1 → k, 3, padding 1), conv2 (k → 1, 3, padding 1), no nonlinearity. */
export class ConvAE extends AE {
  conv1: Conv2d;
  conv2: Conv2d;
  constructor(
    readonly kernels = 1,
    readonly kernelSize = 3,
    readonly activation = false,
  ) {
    super();
    const p = (kernelSize - 1) / 2;
    if (!Number.isInteger(p))
      throw new Error(`convAE: kernelSize ${kernelSize} must be odd to keep the image size`);
    this.conv1 = new Conv2d(1, kernels, kernelSize, { padding: p });
    this.conv2 = new Conv2d(kernels, 1, kernelSize, { padding: p });
  }
  encode(x: Tensor): Tensor {
    return this.conv1.forward(x, this.activation ? { activation: 'relu' } : undefined);
  }
  decode(z: Tensor): Tensor {
    return this.conv2.forward(z);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Ready builders for the seeds' architectures.

/** PyTorch's VAE example: 784-400-20 MLP encoder/decoder, sigmoid output (sizes configurable). */
export function mlpVAE(
  opts: {
    inputDim?: number;
    hiddenDim?: number;
    latentDim?: number;
    hiddenLayers?: number;
    imageShape?: number[];
    numClasses?: number;
  } = {},
): VAE {
  const inputDim = opts.inputDim ?? 784;
  const hidden = opts.hiddenDim ?? 400;
  const latent = opts.latentDim ?? 20;
  const layers = opts.hiddenLayers ?? 1;
  const k = opts.numClasses ?? 0;
  const shape = opts.imageShape ?? (inputDim === 784 ? [1, 28, 28] : [inputDim]);
  return new VAE(
    new MLPEncoder(inputDim + k, latent, hidden, layers),
    new MLPDecoder(latent + k, hidden, inputDim, layers, shape),
    latent,
    k,
  );
}

/** Seed 001's conditional VAE on MNIST: an MLP VAE with the one-hot label joined to both inputs. */
export function conditionalVAE(
  opts: { latentDim?: number; hiddenDim?: number; numClasses?: number; inputDim?: number } = {},
): VAE {
  return mlpVAE({
    inputDim: opts.inputDim ?? 784,
    hiddenDim: opts.hiddenDim ?? 400,
    latentDim: opts.latentDim ?? 20,
    numClasses: opts.numClasses ?? 10,
  });
}

/** Seed 004's conv VAE (28×28 by default; any size divisible by 4 and any channel count). */
export function convVAE(opts: { channels?: number; latentDim?: number; imageSize?: number } = {}): VAE {
  const c = opts.channels ?? 1;
  const z = opts.latentDim ?? 20;
  const s = opts.imageSize ?? 28;
  return new VAE(new ConvEncoder(c, z, s), new ConvDecoder(z, c, s), z);
}

/** Seed 002's two-layer AE (see TwoLayerAE): d = 784, h = 32, the seed's init. */
export function twoLayerAE(
  opts: { inputDim?: number; hidden?: number; seedInit?: boolean } = {},
): TwoLayerAE {
  return new TwoLayerAE(opts.inputDim ?? 784, opts.hidden ?? 32, opts.seedInit ?? true);
}

/** Seed 003's MLP AE on 8×8 digits (see MLPAE): 64 → h → 64. */
export function mlpAE(
  opts: { inputDim?: number; hidden?: number; linear?: boolean; dropout?: number } = {},
): MLPAE {
  return new MLPAE(opts.inputDim ?? 64, opts.hidden ?? 5, opts);
}

/** Seed 003's conv AE (see ConvAE). */
export function convAE(opts: { kernels?: number; kernelSize?: number; activation?: boolean } = {}): ConvAE {
  return new ConvAE(opts.kernels ?? 1, opts.kernelSize ?? 3, opts.activation ?? false);
}

/**
 * Seed 003 part 3(d)'s regularized AE (MyRegAE): an MLP AE (linear_1, linear_2, so it loads MLPAE
 * checkpoints and the seed's) whose code z is penalised by `l1`·mean|z| in `loss()`, with dropout (training
 * mode only) between the code and linear_2. Weight decay is the optimizer's:
 * `new Adam(ae.parameters(), { weightDecay })`.
 */
export class RegularizedAE extends MLPAE {
  readonly l1: number;
  constructor(
    inputDim: number,
    hidden: number,
    l1: number,
    opts: { linear?: boolean; dropout?: number } = {},
  ) {
    // Checked before any parameter is made, so a bad option leaves nothing on the GPU.
    if (!(Number.isFinite(l1) && l1 >= 0)) throw new Error(`RegularizedAE: l1 must be >= 0, got ${l1}`);
    super(inputDim, hidden, opts);
    this.l1 = l1;
  }
  /** MSE(x̂, x) + l1·mean|z| for a batch, with the terms (for the trainer's `step`: `{ loss, terms }`). */
  loss(x: Tensor): AELossTerms {
    const z = this.encode(x);
    return aeLoss(this.decode(z), x, z, { l1: this.l1 });
  }
}

/** Seed 003 part 3(d): a regularized MLP AE (64 → 40 → 64 by default; see RegularizedAE). */
export function regularizedAE(
  opts: { inputDim?: number; hidden?: number; dropout?: number; l1?: number; linear?: boolean } = {},
): RegularizedAE {
  return new RegularizedAE(opts.inputDim ?? 64, opts.hidden ?? 40, opts.l1 ?? 0, opts);
}
