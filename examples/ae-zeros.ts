// Seed 002 (exercise sheet 8): the two-layer autoencoder z = relu(V x + b), x̂ = W z + a on MNIST (h = 32,
// V ~ d^-½·N(0, 1), W = 0, b = a = 0; Adam lr 1e-4, batch 64, objective = mean over the batch of ‖x − x̂‖²).
//   (a) 5 epochs on all 60,000 training images; reconstructions of the first 5 test images.
//   (b) anomaly detection: 20 epochs on the training zeros only (normal class 0); anomaly score = ‖x − x̂‖²
//       of each test image; ROC AUC of zeros vs the other digits (the exercise reports 0.9878), histograms
//       of the scores, and (x − x̂)² heatmaps of the first 5 test images.
// The report (report.html, metrics.json, SVG/PNG files) goes to --out (default runs/ae-zeros).
//
// Defaults are the seed's; the only differences are the random streams (our seeded GPU RNG and data order
// instead of torch's), so epoch losses and the AUROC agree statistically, not digit for digit.
// --quick (CI) deviates on purpose: (a) 1 epoch on the first 4,096 training images, (b) 3 epochs on the
// zeros, scored on the first 2,000 test images; its AUROC is not checked against the seed's.
//
//   npm run example:ae-zeros                       # the seed's settings (about 6 minutes on 2 CPU cores)
//   npm run example:ae-zeros -- --quick            # CI smoke run (well under a minute)
//   npm run example:ae-zeros -- --epochs-all 0     # skip part (a)
import { join, resolve } from 'node:path';
import { Adam, DataLoader, loadMnist, TensorDataset } from '@wgrad/nn';
import { adapterSummary, manualSeed, noGrad, scope, type Tensor, tensor } from '@wgrad/tensor';
import {
  anomalyReport,
  colormap,
  type EpochRecord,
  type History,
  heatmap,
  histogramChart,
  imageGrid,
  lossChart,
  reconstruct,
  rocAuc,
  scoreAll,
  train,
  twoLayerAE,
} from '@wgrad/vae';
import { FlatIO, filterLabels, rgbTiles, since } from './lib/ae-helpers.js';
import { exampleArgs } from './lib/cli.js';

const USAGE = `usage: npm run example:ae-zeros -- [--epochs N] [--epochs-all N] [--hidden N] [--batch N] [--lr X]
                                    [--normal D] [--out DIR] [--seed N] [--quick]
  --epochs N      epochs of the one-class (zeros only) training, part (b) (default 20; --quick: 3)
  --epochs-all N  epochs on all training digits, part (a) (default 5; --quick: 1 on 4,096 images; 0 skips it)
  --hidden N      hidden units h (default 32)
  --batch N       batch size (default 64)
  --lr X          Adam learning rate (default 1e-4)
  --normal D      the normal class of part (b) (default 0)`;

const SEED_AUROC = 0.9877751255712929;
const SEED_LOSSES_ALL = [27.89, 19.0, 14.07, 14.76, 13.09];
const SEED_LOSSES_ZEROS = [
  48.78, 44.07, 40.7, 34.89, 29.79, 29.04, 28.04, 24.56, 24.82, 24.84, 20.79, 21.96, 19.79, 19.85, 16.88,
  15.9, 18.63, 18.49, 16.06, 16.37,
];

const args = exampleArgs('ae-zeros', USAGE, {
  'epochs-all': { type: 'string' },
  hidden: { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
  normal: { type: 'string' },
});
const int = (flag: string, def: number, min: number): number => {
  const raw = args.values[flag];
  const v = raw === undefined ? def : Number(raw);
  if (!Number.isInteger(v) || v < min) {
    console.error(`ae-zeros: --${flag} must be an integer ≥ ${min}, got '${String(raw)}'`);
    process.exit(2);
  }
  return v;
};
const quick = args.quick;
const epochsZeros = args.epochs ?? (quick ? 3 : 20);
const epochsAll = int('epochs-all', quick ? 1 : 5, 0);
const hidden = int('hidden', 32, 1);
const batchSize = int('batch', 64, 1);
const normalClass = int('normal', 0, 0);
if (normalClass > 9) {
  console.error(`ae-zeros: --normal must be a digit 0..9, got ${normalClass}`);
  process.exit(2);
}
const lr = Number(args.values.lr ?? 1e-4);
if (!(lr > 0)) {
  console.error(`ae-zeros: --lr must be a positive number, got '${String(args.values.lr)}'`);
  process.exit(2);
}
const out = resolve(args.out);
const T0 = performance.now();
console.log(`[ae-zeros] device: ${adapterSummary().backend} (${adapterSummary().description})`);
if (quick)
  console.log(
    '[ae-zeros] --quick: part (a) 1 epoch on 4,096 images, part (b) 3 epochs, 2,000 test images (not the seed settings)',
  );

// Data: MNIST as float32 in [0, 1] (torchvision's ToTensor), [N, 1, 28, 28].
const trainAll = await loadMnist({ split: 'train', ...(quick ? { limit: 4096 } : {}) });
const testAll = await loadMnist({ split: 'test', ...(quick ? { limit: 2000 } : {}) });
const trainZeros = filterLabels(
  quick ? await loadMnist({ split: 'train' }) : trainAll,
  (y) => y === normalClass,
);
const testNormal = filterLabels(testAll, (y) => y === normalClass);
const testAnomalous = filterLabels(testAll, (y) => y !== normalClass);
console.log(
  `[ae-zeros] MNIST: ${trainAll.labels.length} training images, ${trainZeros.labels.length} training ${normalClass}s; ` +
    `test: ${testNormal.labels.length} ${normalClass}s (normal), ${testAnomalous.labels.length} other digits (anomalies)`,
);

/** Mean over the batch of ‖x − x̂‖² (summed over the 784 pixels): the exercise's objective. */
const objective =
  (model: FlatIO) =>
  ({ x }: { x: Tensor }) => {
    const xhat = model.forward(x);
    return { loss: xhat.sub(x).square().sum().div(x.shape[0]!) };
  };

/** The seed's train(): torch.manual_seed(0), the seed's init, Adam(lr), one line per epoch. */
async function trainAE(name: string, data: TensorDataset, epochs: number, seedLosses: number[]) {
  manualSeed(args.seed);
  const model = new FlatIO(twoLayerAE({ hidden, inputDim: 784 }));
  const optimizer = new Adam(model.parameters(), { lr });
  const loader = new DataLoader(data, { batchSize, shuffle: true, seed: args.seed });
  const lastBatch: number[] = [];
  const t0 = performance.now();
  const history = await train({
    model,
    optimizer,
    data: () => loader,
    batchesPerEpoch: loader.length,
    epochs,
    outDir: join(out, name),
    log: () => {},
    step: objective(model),
    onEpoch: (rec: EpochRecord, h: History) => {
      // The seed prints the loss of the epoch's last batch; the epoch mean is steadier.
      const last = h.steps.filter((s) => s.epoch === rec.epoch).at(-1)?.values.loss ?? Number.NaN;
      lastBatch.push(last);
      const ref = seedLosses[rec.epoch - 1];
      console.log(
        `Epoch ${String(rec.epoch - 1).padStart(3)} ${last.toFixed(2).padStart(8)}   (epoch mean ${rec.means.loss!.toFixed(2)}` +
          `${ref !== undefined ? `; seed ${ref.toFixed(2)}` : ''}; ${rec.seconds.toFixed(1)} s, ${rec.samplesPerSec.toFixed(0)} img/s)`,
      );
    },
  });
  if (history.stopped) throw new Error(`ae-zeros: training ${name} stopped: ${history.stopped}`);
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `[ae-zeros] ${name}: ${epochs} epochs in ${secs.toFixed(1)} s (${(secs / Math.max(epochs, 1)).toFixed(1)} s/epoch)`,
  );
  return { model, history, lastBatch, secs };
}

/** Mean over `data` of ‖x − x̂‖² (the objective on held-out images). */
async function meanScore(model: FlatIO, data: TensorDataset): Promise<number> {
  const { scores } = await scoreAll(model, new DataLoader(data, { batchSize: 500 }), {
    recon: 'mse',
    reduction: 'sum',
  });
  return scores.reduce((a, b) => a + b, 0) / scores.length;
}

/** The first n test images, their reconstructions and (x − x̂)² as host arrays. */
async function firstImages(model: FlatIO, d: { images: Float32Array }, n: number) {
  const flat = d.images.subarray(0, n * 784);
  model.eval();
  const [xhat, heat] = await noGrad(() =>
    scope(async () => {
      const x = tensor(flat, { shape: [n, 1, 28, 28] });
      return [await reconstruct(model, x).toArray(), await heatmap(model, x).toArray()] as const;
    }),
  );
  model.train();
  return { x: flat, xhat, heat };
}

const sections: NonNullable<Parameters<typeof anomalyReport>[0]['extraSections']> = [];
const extra: Record<string, number | string> = {};
const cmap = (t: number) => colormap('inferno', t);

// (a) All digits, 5 epochs.
if (epochsAll > 0) {
  console.log(
    `\n[ae-zeros] (a) training on all ${trainAll.labels.length} training digits, ${epochsAll} epochs (seed: ${SEED_LOSSES_ALL.join(', ')})`,
  );
  const a = await trainAE('train-all', TensorDataset.from(trainAll), epochsAll, SEED_LOSSES_ALL);
  const testLoss = await meanScore(a.model, TensorDataset.from(testAll));
  console.log(
    `[ae-zeros] (a) test objective (mean ‖x − x̂‖² over ${testAll.labels.length} test images): ${testLoss.toFixed(2)}`,
  );
  const n = 5;
  const im = await firstImages(a.model, testAll, n);
  const tiles = Array.from({ length: n }, (_, i) => [
    { gray: im.x.subarray(i * 784, (i + 1) * 784) },
    { gray: im.xhat.subarray(i * 784, (i + 1) * 784) },
  ]).flat();
  const recPng = imageGrid(rgbTiles(tiles, 784, cmap), 2 * n, 3, 28, 28, { cols: 2, scale: 4 });
  Object.assign(extra, {
    'a.epochs': epochsAll,
    'a.trainImages': trainAll.labels.length,
    'a.finalLastBatchLoss': a.lastBatch.at(-1)!,
    'a.finalEpochMeanLoss': a.history.epochs.at(-1)!.means.loss!,
    'a.seedFinalLastBatchLoss': SEED_LOSSES_ALL[SEED_LOSSES_ALL.length - 1]!,
    'a.testObjective': testLoss,
    'a.secondsPerEpoch': a.secs / epochsAll,
  });
  sections.push(
    {
      title: '(a) Training on all digits',
      text: `The exercise's two-layer AE (h = ${hidden}) trained on all ${trainAll.labels.length} training images for ${epochsAll} epochs. The seed prints the loss of each epoch's last batch: ${SEED_LOSSES_ALL.join(', ')}; ours: ${a.lastBatch.map((v) => v.toFixed(2)).join(', ')}. Mean ‖x − x̂‖² over the ${testAll.labels.length} test images: ${testLoss.toFixed(2)}.`,
      svg: await lossChart({
        title: '(a) Training loss, all digits',
        series: [
          {
            name: 'epoch mean',
            x: a.history.epochs.map((e) => e.epoch - 1),
            y: a.history.epochs.map((e) => e.means.loss!),
          },
          { name: 'last batch', x: a.lastBatch.map((_, i) => i), y: a.lastBatch },
          ...(quick
            ? []
            : [{ name: 'seed (last batch)', x: SEED_LOSSES_ALL.map((_, i) => i), y: SEED_LOSSES_ALL }]),
        ],
        xTitle: 'epoch',
        yTitle: 'mean ‖x − x̂‖² per image',
        points: true,
      }),
    },
    {
      title: '(a) Reconstructions of the first 5 test images',
      text: 'Left: input; right: reconstruction x̂ = W relu(V x + b) + a (clamped to [0, 1] for display).',
      png: recPng,
    },
  );
  a.model.dispose();
}

// (b) One-class training on the zeros.
console.log(
  `\n[ae-zeros] (b) training on the ${trainZeros.labels.length} training ${normalClass}s only, ${epochsZeros} epochs (seed: ${SEED_LOSSES_ZEROS.slice(0, 5).join(', ')}, … ${SEED_LOSSES_ZEROS.at(-1)})`,
);
const b = await trainAE('train-zeros', TensorDataset.from(trainZeros), epochsZeros, SEED_LOSSES_ZEROS);
const model = b.model;

// Anomaly score of every test image: ‖x − x̂‖² (sum over the pixels), label 1 where the digit is not normal.
const tScore = performance.now();
const test = await scoreAll(model, new DataLoader(TensorDataset.from(testAll), { batchSize: 500 }), {
  recon: 'mse',
  reduction: 'sum',
});
const isAnomaly = Int32Array.from(test.labels, (y) => (y !== normalClass ? 1 : 0));
const auc = rocAuc(test.scores, isAnomaly);
console.log(`[ae-zeros] scored ${test.scores.length} test images in ${since(tScore)}`);
const normalScores = test.scores.filter((_, i) => !isAnomaly[i]);
const anomalousScores = test.scores.filter((_, i) => isAnomaly[i]);

// The seed's figure: the first 5 test images (7, 2, 1, 0, 4), reconstruction, heatmap (x − x̂)².
const n = 5;
const im = await firstImages(model, testAll, n);
let hmax = 0;
for (const v of im.heat) hmax = Math.max(hmax, v);
const heatTiles = Array.from({ length: n }, (_, i) => {
  const s = (a: Float32Array) => a.subarray(i * 784, (i + 1) * 784);
  const h = s(im.heat);
  // Each heatmap on its own scale, as matplotlib's imshow does.
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of h) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [{ gray: s(im.x) }, { gray: s(im.xhat) }, { heat: h, range: [lo, hi] as [number, number] }];
}).flat();
const heatPng = imageGrid(rgbTiles(heatTiles, 784, cmap), 3 * n, 3, 28, 28, { cols: 3, scale: 4 });
const firstLabels = Array.from(testAll.labels.subarray(0, n));

const groupNames: [string, string] = ['normal', 'anomalies'];
const metrics = await anomalyReport({
  dir: out,
  title: `Seed 002: two-layer autoencoder, anomaly detection with the ${normalClass}s as the normal class`,
  subtitle: `MNIST · z = relu(Vx + b), x̂ = Wz + a, h = ${hidden} · Adam lr ${lr}, batch ${batchSize} · ${epochsZeros} epochs on ${trainZeros.labels.length} training ${normalClass}s${quick ? ' · --quick' : ''} · ${adapterSummary().backend}`,
  scoreName: 'anomaly score ‖x − x̂‖²',
  normal: normalScores,
  anomalous: anomalousScores,
  groupNames,
  history: b.history,
  model,
  examples: {
    normal: TensorDataset.from(testNormal),
    anomalous: TensorDataset.from(testAnomalous),
    count: 8,
  },
  extraMetrics: {
    seedAuroc: SEED_AUROC,
    hidden,
    lr,
    batchSize,
    normalClass,
    'b.finalLastBatchLoss': b.lastBatch.at(-1)!,
    'b.seedFinalLastBatchLoss': SEED_LOSSES_ZEROS[SEED_LOSSES_ZEROS.length - 1]!,
    'b.secondsPerEpoch': b.secs / Math.max(epochsZeros, 1),
    ...extra,
    quick: quick ? 'yes' : 'no',
    totalSeconds: (performance.now() - T0) / 1000,
  },
  extraSections: [
    {
      title: 'Histogram of the anomaly scores (as in the exercise)',
      text: `30 bins, counts, as the exercise's plt.hist. AUC ${auc.toFixed(4)} (exercise: ${SEED_AUROC.toFixed(4)}).`,
      svg: await histogramChart({
        groups: [
          { name: 'anomalies', values: anomalousScores },
          { name: 'normal', values: normalScores },
        ],
        bins: 30,
        normalize: 'count',
        title: 'Anomaly scores of the test set',
        xTitle: 'Anomaly Score',
        yTitle: 'Occurrence',
      }),
    },
    {
      title: 'Anomaly heatmaps of the first 5 test images',
      text: `Rows: test images 0–4 (digits ${firstLabels.join(', ')}). Columns: input, reconstruction by the AE trained on ${normalClass}s only, heatmap (x − x̂)² (each on its own colour scale, as imshow; the largest pixel error is ${hmax.toFixed(3)}).`,
      png: heatPng,
    },
    {
      title: '(b) Training loss, zeros only (last batch of each epoch)',
      svg: await lossChart({
        title: '(b) Training loss on the normal class',
        series: [
          { name: 'last batch', x: b.lastBatch.map((_, i) => i), y: b.lastBatch },
          ...(quick
            ? []
            : [{ name: 'seed (last batch)', x: SEED_LOSSES_ZEROS.map((_, i) => i), y: SEED_LOSSES_ZEROS }]),
        ],
        xTitle: 'epoch',
        yTitle: 'mean ‖x − x̂‖² per image',
        points: true,
      }),
    },
    ...sections,
  ],
});

console.log(`\nAUC: ${metrics.auroc}`);
console.log(
  `[ae-zeros] AUROC ${metrics.auroc.toFixed(4)} (exercise ${SEED_AUROC.toFixed(4)}) · AUPR ${metrics.aupr.toFixed(4)} · ` +
    `median score ${groupNames[0]} ${Number(metrics[`median_${groupNames[0]}`]).toFixed(2)}, ${groupNames[1]} ${Number(metrics[`median_${groupNames[1]}`]).toFixed(2)} · ` +
    `threshold ${metrics.threshold.toFixed(2)} (${metrics.thresholdRule})`,
);
if (!quick && epochsZeros >= 20 && hidden === 32 && normalClass === 0) {
  const ok = metrics.auroc >= 0.98;
  console.log(`[ae-zeros] check AUROC ≥ 0.98: ${ok ? 'ok' : 'FAILED'}`);
  if (!ok) process.exitCode = 1;
}
console.log(`[ae-zeros] report: ${join(out, 'report.html')} (total ${since(T0)})`);
process.exit(process.exitCode ?? 0);
