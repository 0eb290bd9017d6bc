// VAEs and autoencoders. Field names follow the seeds' PyTorch code (snake_case where PyTorch used it), so
// stateDict() keys match a PyTorch state_dict of the same architecture and checkpoints move both ways.
import { Conv2d, ConvTranspose2d, Dropout, Linear, Module, ReLU, Sequential, Sigmoid } from '@wgrad/nn';
import { concat, fmtShape, oneHot, randn, reparameterize, type Tensor, zeros } from '@wgrad/tensor';
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

/** A plain autoencoder: xhat = decoder(encoder(x)); `encode` returns the code (for L1 regularisation). */
export class Autoencoder extends Module {
  constructor(
    readonly encoder: Module,
    readonly decoder: Module,
  ) {
    super();
  }
  encode(x: Tensor): Tensor {
    return this.encoder.forward(x);
  }
  forward(x: Tensor): Tensor {
    return this.decoder.forward(this.encoder.forward(x));
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

/**
 * Seed 002's two-layer AE: z = relu(V x + b), x̂ = W z + a, with the seed's init (V ~ N(0, 1/d), W = 0,
 * b = a = 0) when `seedInit` is true.
 */
export function twoLayerAE(
  opts: { inputDim?: number; hidden?: number; seedInit?: boolean } = {},
): Autoencoder {
  const d = opts.inputDim ?? 784;
  const h = opts.hidden ?? 32;
  const enc = new Sequential(new Linear(d, h), new ReLU());
  const dec = new Linear(h, d);
  if (opts.seedInit ?? true) {
    const lin = enc.at(0) as Linear;
    const set = (p: Tensor, v: Tensor) => {
      p.assign(v);
      v.dispose();
    };
    set(lin.weight, randn([h, d], { std: d ** -0.5 }));
    set(lin.bias!, zeros([h]));
    set(dec.weight, zeros([d, h]));
    set(dec.bias!, zeros([d]));
  }
  return new Autoencoder(enc, dec);
}

/**
 * Seed 003's MLP AE on 8×8 digits: Linear(64→h) → (activation) → Linear(h→64); `linear: true` (default)
 * has no nonlinearity, as in the exercise. Optional dropout after the hidden layer for the regularized AE.
 */
export function mlpAE(
  opts: { inputDim?: number; hidden?: number; linear?: boolean; dropout?: number } = {},
): Autoencoder {
  const d = opts.inputDim ?? 64;
  const h = opts.hidden ?? 5;
  const enc: Module[] = [new Linear(d, h)];
  if (!(opts.linear ?? true)) enc.push(new ReLU());
  if (opts.dropout) enc.push(new Dropout(opts.dropout));
  return new Autoencoder(new Sequential(...enc), new Linear(h, d));
}

/** Seed 003's conv AE: Conv2d(1→k, 3, p1) → Conv2d(k→1, 3, p1), no nonlinearity by default. */
export function convAE(
  opts: { kernels?: number; kernelSize?: number; activation?: boolean } = {},
): Autoencoder {
  const k = opts.kernels ?? 1;
  const ks = opts.kernelSize ?? 3;
  const p = (ks - 1) / 2;
  if (!Number.isInteger(p)) throw new Error(`convAE: kernelSize ${ks} must be odd to keep the image size`);
  const enc: Module[] = [new Conv2d(1, k, ks, { padding: p })];
  if (opts.activation) enc.push(new ReLU());
  return new Autoencoder(new Sequential(...enc), new Conv2d(k, 1, ks, { padding: p }));
}

/**
 * Seed 003 part 3(d)'s regularized AE: an MLP AE (z = Linear(d→h)(x), optionally ReLU) whose code is
 * penalised by `l1`·mean|z| in `loss()`, with dropout (`dropout` > 0, training mode only) between the code
 * and the decoder Linear(h→d). Parameter names are mlpAE's (encoder.0.*, decoder.*), so the two load each
 * other's checkpoints. Weight decay is the optimizer's: `new Adam(ae.parameters(), { weightDecay })`.
 */
export class RegularizedAE extends Autoencoder {
  readonly dropout: Dropout | null;
  constructor(
    encoder: Module,
    decoder: Module,
    readonly l1: number,
    dropout = 0,
  ) {
    super(encoder, decoder);
    if (!(Number.isFinite(l1) && l1 >= 0)) throw new Error(`RegularizedAE: l1 must be >= 0, got ${l1}`);
    this.dropout = dropout ? new Dropout(dropout) : null;
  }
  private decodeCode(z: Tensor): Tensor {
    return this.decoder.forward(this.dropout ? this.dropout.forward(z) : z);
  }
  override forward(x: Tensor): Tensor {
    return this.decodeCode(this.encode(x));
  }
  /** MSE(x̂, x) + l1·mean|z| for a batch, with the terms (for the trainer's `step`: `{ loss, terms }`). */
  loss(x: Tensor): AELossTerms {
    const z = this.encode(x);
    return aeLoss(this.decodeCode(z), x, z, { l1: this.l1 });
  }
}

/** Seed 003 part 3(d): a regularized MLP AE (64 → 40 → 64 by default; see RegularizedAE). */
export function regularizedAE(
  opts: { inputDim?: number; hidden?: number; dropout?: number; l1?: number; linear?: boolean } = {},
): RegularizedAE {
  const d = opts.inputDim ?? 64;
  const h = opts.hidden ?? 40;
  const l1 = opts.l1 ?? 0;
  const p = opts.dropout ?? 0;
  // Checked before any parameter is made, so a bad option leaves nothing on the GPU.
  if (!(Number.isFinite(l1) && l1 >= 0)) throw new Error(`regularizedAE: l1 must be >= 0, got ${l1}`);
  if (!(p >= 0 && p < 1)) throw new Error(`regularizedAE: dropout must be in [0, 1), got ${p}`);
  const enc: Module[] = [new Linear(d, h)];
  if (!(opts.linear ?? true)) enc.push(new ReLU());
  return new RegularizedAE(new Sequential(...enc), new Linear(h, d), l1, p);
}
