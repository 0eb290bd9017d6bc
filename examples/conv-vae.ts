// Seed 004: the conv VAE (Conv2d 1→64→128, 4×4 stride 2, fc_mu/fc_logvar; ConvTranspose2d back, sigmoid) and
// the MLP VAE (two hidden Linear+ReLU layers, mu_layer / log_sigma_squared_layer) of the seed, trained with the
// seed's training_loop: Adam (lr 1e-3), batch 128 (drop_last), reconstruction(sum) + KL, clip_grad_norm 0.5, a NaN
// guard, and the encoder and decoder of the best epoch saved separately (safetensors, the seed's .pth). The
// encoder and decoder are then loaded back into fresh modules (the seed's load_encoder / load_decoder), the
// reloaded decoder is checked to give identical outputs, and the reloaded models are used for
// - plot_latent_space_pca: μ of the MNIST test images, PCA to 2-D, coloured by digit;
// - plot_generated_images: a 10×10 grid decoded from z ~ N(0, I);
// - anomaly detection: trained on MNIST, MNIST test images (normal) vs Fashion-MNIST test images (anomalous)
//   scored by reconstruction error (summed over the image): AUROC, threshold, density plot; and the reverse
//   direction, trained on Fashion-MNIST with MNIST as the "anomaly", where MNIST is rated *more* likely than the
//   training distribution (AUROC well below 0.5; Nalisnick et al. 2019), shown as it is.
// Deviations (printed and listed in the report): BCE, the seed's commented-out reconstruction_loss, instead of
// its active MSE line; latent 20 (the seed's PCA plot implies a latent larger than 2; 2 is only
// plot_generated_images' default); 10,000 images × 5 epochs instead of 60,000 × 50 (minutes, not hours).
// Measured with latent 20 on 10k × 5 epochs (2026-12-01, lavapipe): BCE gives AUROC 0.9994 and a reverse
// AUROC of 0.25; MSE gives 0.987 and 0.97 (it does not show the likelihood effect); latent 2 with MSE: 0.90.
// Writes report.html + metrics.json (and the checkpoints) under the run folder.
//
//   npm run example:conv-vae                 # defaults: see USAGE (≈ 7 min on 2 CPU cores with lavapipe)
//   npm run example:conv-vae -- --quick      # tiny subsets, 1 epoch (CI)
import { join, resolve } from 'node:path';
import {
  Adam,
  DataLoader,
  fashionMnistDataset,
  load,
  type Module,
  mnistDataset,
  save,
  type TensorDataset,
} from '@wgrad/nn';
import { adapterSummary, manualSeed, noGrad, scope, tensor } from '@wgrad/tensor';
import {
  anomalyReport,
  ConvDecoder,
  ConvEncoder,
  densityChart,
  type GaussianEncoder,
  type History,
  imageGrid,
  lossChart,
  MLPDecoder,
  MLPEncoder,
  pca,
  rocAuc,
  rocChart,
  rocCurve,
  scatterChart,
  scoreAll,
  train,
  VAE,
  vaeLoss,
} from '@wgrad/vae';
import { exampleArgs } from './lib/cli.js';
import {
  decodeHost,
  encodeAll,
  firstN,
  fmtSeconds,
  hostRandn,
  intFlag,
  numberFlag,
  since,
} from './lib/mnist-common.js';

const USAGE = `usage: npm run example:conv-vae -- [options]
  --epochs N          epochs of the conv VAEs (default 5; --quick: 1)
  --mlp-epochs N      epochs of the MLP VAE (default 5; --quick: 1)
  --train-limit N     MNIST training images for the conv VAE (default 10000; --quick: 64)
  --fashion-limit N   Fashion-MNIST training images for the reverse-direction conv VAE (default: --train-limit)
  --mlp-train-limit N MNIST training images for the MLP VAE (default 20000; --quick: 512)
  --test-limit N      test images of each set scored and embedded (default 2000; --quick: 64)
  --latent N          latent size of both VAEs (default 20; see the header for why not 2)
  --hidden N          hidden units of the MLP VAE (default 512; the seed leaves it open)
  --batch N           batch size (default 128; --quick: 32)
  --clip X            clip_grad_norm max norm (default 0.5)
  --recon bce|mse     reconstruction term of the loss and of the anomaly score (default bce: the seed's
                      commented-out alternative, the Bernoulli likelihood; mse is its active line)
  --no-reverse        skip the Fashion-MNIST-trained model (reverse direction)
  --out DIR --seed N --quick`;

const t0 = performance.now();
const args = exampleArgs('conv-vae', USAGE, {
  'mlp-epochs': { type: 'string' },
  'train-limit': { type: 'string' },
  'fashion-limit': { type: 'string' },
  'mlp-train-limit': { type: 'string' },
  'test-limit': { type: 'string' },
  latent: { type: 'string' },
  hidden: { type: 'string' },
  batch: { type: 'string' },
  clip: { type: 'string' },
  'no-reverse': { type: 'boolean' },
  recon: { type: 'string' },
});
const v = args.values;
const q = args.quick;
const epochs = args.epochs ?? (q ? 1 : 5);
const mlpEpochs = intFlag('conv-vae', v, 'mlp-epochs', q ? 1 : 5);
const trainLimit = intFlag('conv-vae', v, 'train-limit', q ? 64 : 10000);
const fashionLimit = intFlag('conv-vae', v, 'fashion-limit', trainLimit);
const mlpTrainLimit = intFlag('conv-vae', v, 'mlp-train-limit', q ? 512 : 20000);
const testLimit = intFlag('conv-vae', v, 'test-limit', q ? 64 : 2000);
const latentDim = intFlag('conv-vae', v, 'latent', 20);
const hiddenDim = intFlag('conv-vae', v, 'hidden', 512);
const batchSize = intFlag('conv-vae', v, 'batch', q ? 32 : 128);
const maxGradNorm = numberFlag('conv-vae', v, 'clip', 0.5);
const reverse = !v['no-reverse'];
const recon = (v.recon ?? 'bce') as 'mse' | 'bce';
if (recon !== 'mse' && recon !== 'bce') {
  console.error(`conv-vae: --recon must be mse or bce, got '${String(v.recon)}'`);
  process.exit(2);
}
const RECON = recon === 'mse' ? 'MSE' : 'BCE';
/** Where this run departs from the seed (printed now and listed in the report). */
const DEVIATIONS = [
  recon === 'bce'
    ? "reconstruction_loss is BCE (the seed's commented-out alternative) instead of its active MSE line: the Bernoulli likelihood of [0, 1] images, and the one whose likelihoods show the reverse-direction effect"
    : "reconstruction_loss is MSE, the seed's active line",
  `latent_dim ${latentDim}${latentDim === 2 ? " (plot_generated_images' default)" : ' (the seed leaves it open: its PCA plot implies more than 2; 2 is only plot_generated_images’ default)'}`,
  `${trainLimit.toLocaleString('en-US')} MNIST training images × ${epochs} epochs for the conv VAE and ${mlpTrainLimit.toLocaleString('en-US')} × ${mlpEpochs} for the MLP VAE, instead of all 60,000 × max_epoch 50 (minutes instead of hours on 2 CPU cores)`,
  'MNIST vs Fashion-MNIST anomaly detection and the reverse direction are additions (the seed trains and plots only)',
];
const out = resolve(args.out);
manualSeed(args.seed);
const dev = adapterSummary();
const log = (s: string) => console.log(`[conv-vae] ${s}`);
log(`device: ${dev.backend} (${dev.description})`);
log(`deviations from the seed:\n${DEVIATIONS.map((d) => `  - ${d}`).join('\n')}`);

// Data (host arrays in [0, 1], (N, 1, 28, 28)). Fashion-MNIST: Debian's dataset-fashion-mnist, see the loader.
const mnistTrain = await mnistDataset({ split: 'train', limit: Math.max(trainLimit, mlpTrainLimit) });
const mnistTest = await mnistDataset({ split: 'test', limit: testLimit });
const fashionTest = await fashionMnistDataset({ split: 'test', limit: testLimit });
const fashionTrain = reverse ? await fashionMnistDataset({ split: 'train', limit: fashionLimit }) : null;
const convTrainSet = firstN(mnistTrain, Math.min(trainLimit, mnistTrain.length));
const mlpTrainSet = firstN(mnistTrain, Math.min(mlpTrainLimit, mnistTrain.length));
log(
  `conv VAE: ${convTrainSet.length} MNIST training images × ${epochs} epochs; MLP VAE: ${mlpTrainSet.length} × ${mlpEpochs}; ` +
    `${reverse ? `reverse conv VAE: ${fashionTrain!.length} Fashion-MNIST images × ${epochs}; ` : ''}test: ${mnistTest.length} MNIST + ${fashionTest.length} Fashion-MNIST`,
);

// The seed's modules. Field names follow the seed, so the safetensors keys are the seed's state_dict keys.
type Kind = 'conv' | 'mlp';
const makeEncoder = (kind: Kind): GaussianEncoder =>
  kind === 'conv' ? new ConvEncoder(1, latentDim, 28) : new MLPEncoder(784, latentDim, hiddenDim, 2);
const makeDecoder = (kind: Kind): Module =>
  kind === 'conv'
    ? new ConvDecoder(latentDim, 1, 28)
    : new MLPDecoder(latentDim, hiddenDim, 784, 2, [1, 28, 28]);

/** The trained models (weights of the best epoch), by name, for the identity check of the reloaded ones. */
const reference = new Map<string, VAE>();

interface Trained {
  name: string;
  kind: Kind;
  dir: string;
  history: History;
  seconds: number;
  encoderPath: string;
  decoderPath: string;
  trainImages: number;
}

/** The seed's training_loop (Adam, drop_last batches, MSE(sum) + KL, clip_grad_norm, NaN guard, best saved). */
async function trainingLoop(
  name: string,
  kind: Kind,
  dataset: TensorDataset,
  maxEpoch: number,
): Promise<Trained> {
  const dir = join(out, name);
  const vae = new VAE(makeEncoder(kind), makeDecoder(kind), latentDim);
  const optimizer = new Adam(vae.parameters(), { lr: 1e-3 });
  const loader = new DataLoader(dataset, { batchSize, shuffle: true, dropLast: true, seed: args.seed });
  if (!loader.length)
    throw new Error(`conv-vae: ${dataset.length} images make no full batch of ${batchSize}`);
  const encoderPath = join(dir, `encoder_${name}.safetensors`);
  const decoderPath = join(dir, `decoder_${name}.safetensors`);
  log(
    `training ${name} (${kind}, ${vae
      .parameters()
      .reduce((s, p) => s + p.size, 0)
      .toLocaleString('en-US')} parameters) on ${dataset.length} images, ${loader.length} steps per epoch`,
  );
  const t = performance.now();
  const history = await train({
    model: vae,
    optimizer,
    data: () => loader,
    batchesPerEpoch: loader.length,
    epochs: maxEpoch,
    clipGradNorm: maxGradNorm,
    outDir: dir,
    log: (s) => log(`${name}: ${s}`),
    // The seed's loss: reconstruction_loss (MSE, sum over the batch) + KL (sum), clipped at 0.5 as it is.
    step: ({ x }) => {
      const { xhat, mu, logvar } = vae.run(x);
      const { loss, recon: r, kl } = vaeLoss(xhat, x, mu, logvar, { recon, reduction: 'sum' });
      const n = x.shape[0]!;
      return { loss, terms: { perImage: loss.div(n), recon: r.div(n), kl: kl.div(n) } };
    },
    onEpoch: async (rec, h) => {
      if (h.bestEpoch === rec.epoch) {
        await save(vae.encoder, encoderPath, { metadata: { epoch: String(rec.epoch), model: name } });
        await save(vae.decoder, decoderPath, { metadata: { epoch: String(rec.epoch), model: name } });
        log(`${name}: Updated best model with loss: ${rec.means.perImage!.toFixed(4)} (epoch ${rec.epoch})`);
      }
      log(
        `${name}: Epoch ${rec.epoch}/${maxEpoch}, Average Loss: ${rec.means.perImage!.toFixed(4)} (${RECON} ${rec.means.recon!.toFixed(2)} + KL ${rec.means.kl!.toFixed(2)}), ${rec.seconds.toFixed(1)} s`,
      );
    },
  });
  if (history.stopped) log(`${name}: NaN guard stopped training: ${history.stopped}`);
  if (!history.epochs.length)
    throw new Error(`conv-vae: ${name} finished no epoch (${history.stopped ?? 'no data'})`);
  const trained: Trained = {
    name,
    kind,
    dir,
    history,
    seconds: since(t),
    encoderPath,
    decoderPath,
    trainImages: dataset.length,
  };
  // Keep the trained weights in memory as best.safetensors holds them (for the identity check below).
  await load(vae, join(dir, 'best.safetensors'));
  reference.set(name, vae);
  return trained;
}

/** The seed's load_encoder / load_decoder: fresh modules, weights from the separate files, eval mode. */
async function loadVae(t: Trained): Promise<VAE> {
  const encoder = makeEncoder(t.kind);
  const decoder = makeDecoder(t.kind);
  await load(encoder, t.encoderPath);
  await load(decoder, t.decoderPath);
  encoder.eval();
  decoder.eval();
  return new VAE(encoder, decoder, latentDim);
}

/** Max |difference| between the reloaded and the trained decoder (on 100 prior draws) and encoder μ. */
async function identityCheck(trained: VAE, reloaded: VAE): Promise<{ decoder: number; encoder: number }> {
  const z = hostRandn(100 * latentDim, 7);
  const [a, b] = [await decodeHost(trained, z), await decodeHost(reloaded, z)];
  const x = mnistTest.images!.subarray(0, Math.min(64, mnistTest.length) * 784);
  const mu = async (m: VAE) =>
    noGrad(() => scope(() => m.encode(tensor(x, { shape: [x.length / 784, 1, 28, 28] })).mu.toArray()));
  const [c, d] = [await mu(trained), await mu(reloaded)];
  const maxDiff = (p: Float32Array, r: Float32Array) =>
    p.reduce((m, val, i) => Math.max(m, Math.abs(val - r[i]!)), 0);
  return { decoder: maxDiff(a, b), encoder: maxDiff(c, d) };
}

/** Reconstruction error (--recon, summed over the image, decoder of μ) of every image of a dataset. */
async function scores(vae: VAE, ds: TensorDataset): Promise<Float32Array> {
  return (await scoreAll(vae, new DataLoader(ds, { batchSize: 250 }), { recon, reduction: 'sum' })).scores;
}

// 1. Train: conv VAE and MLP VAE on MNIST, conv VAE on Fashion-MNIST.
const runs: Trained[] = [];
runs.push(await trainingLoop('conv_mnist', 'conv', convTrainSet, epochs));
runs.push(await trainingLoop('mlp_mnist', 'mlp', mlpTrainSet, mlpEpochs));
if (fashionTrain) runs.push(await trainingLoop('conv_fashion', 'conv', fashionTrain, epochs));

// 2. Load the encoders and decoders back from their files; check the outputs are identical.
const loaded = new Map<string, VAE>();
const checks: { name: string; decoder: number; encoder: number }[] = [];
for (const r of runs) {
  const vae = await loadVae(r);
  loaded.set(r.name, vae);
  const c = await identityCheck(reference.get(r.name)!, vae);
  checks.push({ name: r.name, ...c });
  log(
    `${r.name}: reloaded from ${r.encoderPath.replace(`${out}/`, '')} + ${r.decoderPath.replace(`${out}/`, '')}: max |Δ| decoder ${c.decoder}, encoder μ ${c.encoder}`,
  );
}
const identical = checks.every((c) => c.decoder === 0 && c.encoder === 0);

// 3. plot_latent_space_pca and plot_generated_images for the two MNIST models.
const te = performance.now();
const pictures: { name: string; scatter: string; grid: Uint8Array; variance: number[] }[] = [];
for (const name of ['conv_mnist', 'mlp_mnist']) {
  const vae = loaded.get(name)!;
  const { mu, labels, n, d } = await encodeAll(vae, mnistTest);
  const { projected, variance } = pca(mu, n, d, 2);
  const points = Array.from(labels, (y, i) => ({ x: projected[2 * i]!, y: projected[2 * i + 1]!, label: y }));
  const scatter = await scatterChart({
    points,
    title: `PCA of the latent space (μ) · ${name}`,
    subtitle: `${n} MNIST test images · latent ${d} · variance along the PCs ${variance.map((x) => x.toPrecision(3)).join(', ')}`,
    xTitle: 'PC 1',
    yTitle: 'PC 2',
    legendTitle: 'digit',
  });
  const z = hostRandn(100 * latentDim, 42 + args.seed);
  const grid = imageGrid(await decodeHost(vae, z), 100, 1, 28, 28, { cols: 10, scale: 2 });
  pictures.push({ name, scatter, grid, variance });
}

// 4. Anomaly scores: trained on MNIST (MNIST normal, Fashion anomalous), and the reverse direction.
const conv = loaded.get('conv_mnist')!;
const normal = await scores(conv, mnistTest);
const anomalous = await scores(conv, fashionTest);
const mlpN = await scores(loaded.get('mlp_mnist')!, mnistTest);
const mlpA = await scores(loaded.get('mlp_mnist')!, fashionTest);
const auc = (n: ArrayLike<number>, a: ArrayLike<number>) => {
  const s = Float64Array.from([...Array.from(n), ...Array.from(a)]);
  const l = Int32Array.from({ length: s.length }, (_, i) => (i < n.length ? 0 : 1));
  return { auroc: rocAuc(s, l), roc: rocCurve(s, l) };
};
const mlpAuc = auc(mlpN, mlpA).auroc;
let rev: {
  normal: Float32Array;
  anomalous: Float32Array;
  auroc: number;
  roc: { x: number[]; y: number[] };
} | null = null;
if (fashionTrain) {
  const fv = loaded.get('conv_fashion')!;
  const n = await scores(fv, fashionTest);
  const a = await scores(fv, mnistTest);
  const r = auc(n, a);
  rev = { normal: n, anomalous: a, auroc: r.auroc, roc: r.roc };
}
const evalSeconds = since(te);

// 5. Report.
const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((s, x) => s + x, 0) / xs.length;
const perImage = (h: History): History => ({
  ...h,
  epochs: h.epochs.map((e) => ({
    ...e,
    means: { loss: e.means.perImage!, recon: e.means.recon!, kl: e.means.kl! },
  })),
});
const convRun = runs[0]!;
const wallSeconds = since(t0);
const trainTable = runs.flatMap((r) =>
  r.history.epochs.map((e) => [
    r.name,
    r.trainImages,
    e.epoch,
    e.means.perImage!,
    e.means.recon!,
    e.means.kl!,
    Number(e.seconds.toFixed(1)),
    Math.round(e.samplesPerSec),
    e.epoch === r.history.bestEpoch ? 'best (saved)' : '',
  ]),
);
const extraMetrics: Record<string, number | string> = {
  auroc_mlp_mnist_vs_fashion: mlpAuc,
  ...(rev ? { auroc_reverse_fashion_trained: rev.auroc } : {}),
  reloaded_outputs_identical: identical ? 'yes' : 'NO',
  latentDim,
  mlpHiddenDim: hiddenDim,
  conv_train_images: convTrainSet.length,
  conv_epochs: epochs,
  mlp_train_images: mlpTrainSet.length,
  mlp_epochs: mlpEpochs,
  ...(fashionTrain ? { fashion_train_images: fashionTrain.length } : {}),
  test_images_per_set: mnistTest.length,
  ...Object.fromEntries(
    runs.map((r) => [`final_loss_per_image_${r.name}`, r.history.epochs.at(-1)!.means.perImage!]),
  ),
  ...Object.fromEntries(runs.map((r) => [`train_seconds_${r.name}`, r.seconds])),
  ...Object.fromEntries(
    runs.map((r) => [
      `seconds_per_epoch_${r.name}`,
      r.history.epochs.reduce((s, e) => s + e.seconds, 0) / r.history.epochs.length,
    ]),
  ),
  eval_seconds: evalSeconds,
  wall_seconds: wallSeconds,
  device: `${dev.backend} (${dev.description})`,
  ...Object.fromEntries(
    runs.filter((r) => r.history.stopped).map((r) => [`stopped_${r.name}`, r.history.stopped!]),
  ),
};
const sections: NonNullable<Parameters<typeof anomalyReport>[0]['extraSections']> = [
  { title: 'Deviations from the seed', text: DEVIATIONS.map((d) => `• ${d}`).join('\n') },
];
if (rev) {
  const groups = [
    { name: 'Fashion-MNIST (training distribution)', values: Array.from(rev.normal) },
    { name: 'MNIST ("anomalous")', values: Array.from(rev.anomalous) },
  ];
  sections.push(
    {
      title: 'Reverse direction: trained on Fashion-MNIST, MNIST scored',
      text: `The same conv VAE trained on ${fashionTrain!.length} Fashion-MNIST images, scoring Fashion-MNIST test images (normal) against MNIST test images (anomalous): AUROC ${rev.auroc.toFixed(4)}. Below 0.5 means the MNIST digits, which the model never saw, get a *lower* reconstruction error (mean ${RECON} ${mean(rev.anomalous).toFixed(1)}) than the clothes it was trained on (mean ${mean(rev.normal).toFixed(1)}): simple images (mostly black background, few lit pixels) are easy for any decoder, and under the Bernoulli likelihood (BCE) near-binary pixels cost little while the clothes' grey tones cost much. This is the failure mode Nalisnick et al. (2019, "Do deep generative models know what they don't know?") report for likelihoods; a reconstruction-error detector is not symmetric, and the MNIST-vs-Fashion AUROC above says as much about Fashion-MNIST being harder as about the model.${recon === 'mse' ? ' (With MSE, which does not weigh grey tones that way, this effect is weaker or absent: measured 0.97 at latent 20.)' : ''}`,
      svg: await densityChart({
        groups,
        title: 'Reconstruction error (MSE sum): Fashion-trained conv VAE',
        xTitle: `reconstruction error (${RECON}, sum over the image)`,
      }),
    },
    {
      title: 'Reverse direction: ROC curve',
      svg: await rocChart({
        fpr: rev.roc.x,
        tpr: rev.roc.y,
        auc: rev.auroc,
        title: 'ROC: Fashion-MNIST normal, MNIST anomalous',
      }),
    },
  );
}
sections.push(
  {
    title: 'MLP VAE of the seed: MNIST vs Fashion-MNIST',
    text: `The seed's MLP VAE (784-${hiddenDim}-${hiddenDim}-${latentDim}, trained on ${mlpTrainSet.length} MNIST images for ${mlpEpochs} epochs), same scores and test images: AUROC ${mlpAuc.toFixed(4)} (conv VAE: see the metrics above).`,
    svg: await densityChart({
      groups: [
        { name: 'MNIST (normal)', values: Array.from(mlpN) },
        { name: 'Fashion-MNIST (anomalous)', values: Array.from(mlpA) },
      ],
      title: 'Reconstruction error (MSE sum): MNIST-trained MLP VAE',
      xTitle: `reconstruction error (${RECON}, sum over the image)`,
    }),
  },
  {
    title: 'Training of the three models (the seed training_loop)',
    text: `Adam (lr 1e-3), batch ${batchSize} with drop_last, loss MSE(sum) + KL summed over the batch, clip_grad_norm ${maxGradNorm} on that sum, NaN guard; "Average Loss" is per image. The encoder and decoder of the best epoch were saved separately (encoder_<name>.safetensors, decoder_<name>.safetensors in each model's folder). Subset sizes keep the run within minutes on a 2-core software GPU (lavapipe); raise --train-limit/--epochs on real hardware.`,
    svg: await lossChart({
      title: 'Average loss per image (MSE sum + KL)',
      series: runs.map((r) => ({
        name: r.name,
        x: r.history.epochs.map((e) => e.epoch),
        y: r.history.epochs.map((e) => e.means.perImage!),
      })),
      xTitle: 'epoch',
      yTitle: 'loss per image',
      points: true,
    }),
    table: {
      columns: ['model', 'train images', 'epoch', 'loss / image', 'MSE', 'KL', 'seconds', 'images/s', ''],
      rows: trainTable,
    },
  },
  {
    title: 'Encoder and decoder saved and loaded separately',
    text: `Each model's encoder and decoder were loaded from their own safetensors files into freshly built modules (the seed's load_encoder / load_decoder). Max |difference| against the trained model (best epoch): decoder on 100 prior draws, encoder μ on 64 test images. ${identical ? 'All identical.' : 'NOT identical.'}`,
    table: {
      columns: ['model', 'decoder max |Δ|', 'encoder μ max |Δ|', 'files'],
      rows: runs.map((r, i) => [
        r.name,
        checks[i]!.decoder,
        checks[i]!.encoder,
        `${r.name}/encoder_${r.name}.safetensors, ${r.name}/decoder_${r.name}.safetensors`,
      ]),
    },
  },
  ...pictures.flatMap((p) => [
    { title: `Latent space (PCA of μ): ${p.name}`, svg: p.scatter },
    { title: `Generated images (10×10, z ~ N(0, I)): ${p.name}`, png: p.grid },
  ]),
);
const metrics = await anomalyReport({
  dir: out,
  title: 'Seed 004: conv VAE and MLP VAE on MNIST; MNIST vs Fashion-MNIST',
  subtitle: `conv VAE (latent ${latentDim}) · ${epochs} epochs on ${convTrainSet.length} MNIST images · scored on ${mnistTest.length} MNIST + ${fashionTest.length} Fashion-MNIST test images · ${dev.backend} · ${fmtSeconds(wallSeconds)} wall`,
  scoreName: `reconstruction error (${RECON}, sum over the image)`,
  normal,
  anomalous,
  groupNames: ['MNIST (normal)', 'Fashion-MNIST (anomalous)'],
  history: perImage(convRun.history),
  model: conv,
  examples: { normal: mnistTest, anomalous: fashionTest, count: 10 },
  extraMetrics,
  extraSections: sections,
});
log(
  `MNIST-trained conv VAE: AUROC ${metrics.auroc.toFixed(4)} (MNIST normal vs Fashion-MNIST anomalous; target ≥ 0.99) · AUPR ${metrics.aupr.toFixed(4)} · threshold ${metrics.threshold.toFixed(2)}`,
);
log(`MNIST-trained MLP VAE: AUROC ${mlpAuc.toFixed(4)}`);
if (rev)
  log(
    `Fashion-trained conv VAE, MNIST as anomaly: AUROC ${rev.auroc.toFixed(4)} (≈ 0.3 expected with BCE: MNIST is rated more likely)`,
  );
log(`reloaded encoders/decoders identical: ${identical ? 'yes' : 'NO'}`);
log(
  `training ${runs.map((r) => `${r.name} ${fmtSeconds(r.seconds)}`).join(', ')}; evaluation ${fmtSeconds(evalSeconds)}; wall ${fmtSeconds(since(t0))}`,
);
// The default setting must reach the target (exit 1 otherwise); other settings only report.
const defaults =
  !q && recon === 'bce' && latentDim === 20 && epochs >= 5 && trainLimit >= 10000 && testLimit >= 2000;
const targetMet = metrics.auroc >= 0.99;
if (defaults) log(`check AUROC ≥ 0.99 (MNIST-trained conv VAE): ${targetMet ? 'ok' : 'FAILED'}`);
log(`report: ${join(out, 'report.html')}`);
process.exit(identical && (!defaults || targetMet) ? 0 : 1);
