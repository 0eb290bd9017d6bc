#!/usr/bin/env node
// wgrad-vae: train an anomaly detector on normal images only, score new images, and write reports.
//
//   wgrad-vae train  --csv trainDF.csv --normal background --model conv-vae --epochs 30 --out runs/x
//   wgrad-vae train  --dataset mnist --normal 0 --model ae --out runs/zeros
//   wgrad-vae score  --run runs/x --csv testDF.csv [--out runs/x/scored]
//   wgrad-vae report --run runs/x/scored
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  Adam,
  DataLoader,
  type Dataset,
  digitsDataset,
  Flatten,
  fashionMnistDataset,
  ImageCsvDataset,
  load,
  type Module,
  mnistDataset,
  type Sample,
  Sequential,
  Subset,
  save,
  type TensorDataset,
  Unflatten,
} from '@wgrad/nn';
import { adapterSummary, manualSeed } from '@wgrad/tensor';
import { anomalyReport } from './anomaly-report.js';
import { type LossTerms, vaeLoss } from './loss.js';
import { Autoencoder, convAE, convVAE, mlpAE, mlpVAE, type VAE } from './models.js';
import { scoreAll } from './score.js';
import { train } from './trainer.js';

const MODELS = ['conv-vae', 'mlp-vae', 'ae', 'conv-ae'] as const;
type ModelKind = (typeof MODELS)[number];
const DATASETS = ['mnist', 'fashion-mnist', 'digits'] as const;

class UsageError extends Error {}

const STRING_OPTIONS = [
  'csv',
  'dataset',
  'image-column',
  'label-column',
  'normal',
  'model',
  'epochs',
  'batch',
  'lr',
  'latent',
  'hidden',
  'limit',
  'seed',
  'out',
  'run',
];

const HELP: Record<string, string> = {
  main: `wgrad-vae: VAE / autoencoder anomaly detection on images (WebGPU)

commands:
  train    train on the normal images of a CSV manifest or a named dataset
  score    score a CSV manifest (or dataset split) with a trained run: scores.csv + report
  report   rebuild the report of a scored folder from its scores.csv

run 'wgrad-vae <command> --help' for the options of a command`,
  train: `wgrad-vae train [options]
  --csv PATH            CSV manifest (topoDL layout: chpN, chpPth, mskPth, division; paths relative to the CSV)
  --dataset NAME        or a named dataset: ${DATASETS.join(', ')} (train split)
  --image-column NAME   manifest column with image paths (default chpPth)
  --label-column NAME   manifest column with labels (default division)
  --normal LABEL        the normal class trained on (manifest label, e.g. background; dataset class index)
  --model KIND          ${MODELS.join(' | ')} (default conv-vae)
  --epochs N            (default 30)   --batch N (default 32)   --lr X (default 1e-3)
  --latent N            latent size (default 20)   --hidden N (MLP hidden size, default 400)
  --limit N             use at most N training images
  --seed N              (default 0)
  --out DIR             run folder (default runs/train): model.safetensors, run.json, history.json/csv`,
  score: `wgrad-vae score [options]
  --run DIR             a folder written by 'wgrad-vae train'
  --csv PATH            manifest to score (labels optional), or
  --dataset NAME        ${DATASETS.join(', ')} (test split)
  --label-column NAME   (default: as in training)   --normal LABEL (default: as in training)
  --limit N             score at most N images
  --out DIR             (default <run>/scored): scores.csv, and with labels report.html + metrics.json`,
  report: `wgrad-vae report --run DIR
  rebuilds report.html and metrics.json of a scored folder (needs its scores.csv with labels)`,
};

interface RunConfig {
  model: ModelKind;
  latent: number;
  hidden: number;
  sampleShape: number[];
  source: { csv?: string; dataset?: string; imageColumn: string; labelColumn: string; normal: string };
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
  trainCount: number;
}

function opt(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

function intOpt(values: Record<string, unknown>, name: string, dflt: number, min = 1): number {
  const s = opt(values, name);
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${s}'`);
  return n;
}

function buildModel(kind: ModelKind, shape: number[], latent: number, hidden: number): VAE | Autoencoder {
  const [c, h, w] = shape as [number, number, number];
  const d = shape.reduce((a, b) => a * b, 1);
  switch (kind) {
    case 'conv-vae':
      if (shape.length !== 3 || h !== w || h % 4)
        throw new UsageError(
          `--model conv-vae needs square C×H×W images with H divisible by 4, got [${shape}]`,
        );
      return convVAE({ channels: c, latentDim: latent, imageSize: h });
    case 'mlp-vae':
      return mlpVAE({ inputDim: d, hiddenDim: hidden, latentDim: latent, imageShape: shape });
    case 'ae': {
      // An MLP AE on flattened images: Flatten → Linear(d, latent) → ReLU → Linear(latent, d) → image shape.
      const ae = mlpAE({ inputDim: d, hidden: latent, linear: false });
      return new Autoencoder(
        new Sequential(new Flatten(), ae.encoder),
        new Sequential(ae.decoder, new Unflatten(1, shape)),
      );
    }
    case 'conv-ae':
      if (shape.length !== 3 || c !== 1)
        throw new UsageError(`--model conv-ae needs 1-channel images, got [${shape}]`);
      return convAE({ kernels: latent });
  }
}

/** Loads the samples of a manifest or named dataset; `normal` keeps only that class. */
async function openData(
  src: { csv?: string; dataset?: string; imageColumn: string; labelColumn: string },
  split: 'train' | 'test',
  limit: number | undefined,
): Promise<{
  ds: Dataset<Sample>;
  names: (y: number) => string;
  isNormal: (y: number, normal: string) => boolean;
}> {
  if (src.csv) {
    const ds = await ImageCsvDataset.fromCsv(resolve(src.csv), {
      imageColumn: src.imageColumn,
      labelColumn: src.labelColumn,
      cache: true,
    });
    const names = (y: number) => (y === 0 ? 'background' : y === 1 ? 'positive' : String(y));
    const sub =
      limit && limit < ds.length
        ? new Subset(
            ds,
            Array.from({ length: limit }, (_, i) => i),
          )
        : ds;
    return {
      ds: sub,
      names,
      isNormal: (y, normal) => names(y) === normal.toLowerCase() || String(y) === normal,
    };
  }
  const name = src.dataset;
  if (!name || !(DATASETS as readonly string[]).includes(name))
    throw new UsageError(`--dataset must be one of ${DATASETS.join(', ')}, got '${name}'`);
  const opts = { split, ...(limit ? { limit } : {}) };
  const ds: TensorDataset =
    name === 'mnist'
      ? await mnistDataset(opts)
      : name === 'fashion-mnist'
        ? await fashionMnistDataset(opts)
        : await digitsDataset(limit ? { limit } : {});
  const classes = ds.classes;
  const names = (y: number) => classes?.[y] ?? String(y);
  return {
    ds,
    names,
    isNormal: (y, normal) => String(y) === normal || names(y).toLowerCase() === normal.toLowerCase(),
  };
}

async function labelsOf(ds: Dataset<Sample>): Promise<Int32Array> {
  const out = new Int32Array(ds.length);
  for (let i = 0; i < ds.length; i++) out[i] = (await ds.get(i)).y;
  return out;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp-${process.pid}`, text);
  await rename(`${path}.tmp-${process.pid}`, path);
}

async function cmdTrain(values: Record<string, unknown>): Promise<void> {
  const csv = opt(values, 'csv');
  const dataset = opt(values, 'dataset');
  if (!csv === !dataset) throw new UsageError('give exactly one of --csv and --dataset');
  const normal = opt(values, 'normal');
  if (normal === undefined) throw new UsageError('--normal is required (the class to train on)');
  const model = (opt(values, 'model') ?? 'conv-vae') as ModelKind;
  if (!MODELS.includes(model))
    throw new UsageError(`--model must be one of ${MODELS.join(', ')}, got '${model}'`);
  const lr = Number(opt(values, 'lr') ?? 1e-3);
  if (!(lr > 0)) throw new UsageError(`--lr must be a positive number, got '${opt(values, 'lr')}'`);
  const out = resolve(opt(values, 'out') ?? 'runs/train');
  const cfg: RunConfig = {
    model,
    latent: intOpt(values, 'latent', 20),
    hidden: intOpt(values, 'hidden', 400),
    sampleShape: [],
    source: {
      csv: csv && resolve(csv),
      dataset,
      imageColumn: opt(values, 'image-column') ?? 'chpPth',
      labelColumn: opt(values, 'label-column') ?? 'division',
      normal,
    },
    epochs: intOpt(values, 'epochs', 30),
    batch: intOpt(values, 'batch', 32),
    lr,
    seed: intOpt(values, 'seed', 0, 0),
    trainCount: 0,
  };
  manualSeed(cfg.seed);
  const { ds, isNormal } = await openData(
    cfg.source,
    'train',
    opt(values, 'limit') ? intOpt(values, 'limit', 0) : undefined,
  );
  const labels = await labelsOf(ds);
  const keepIdx = [...labels.keys()].filter((i) => isNormal(labels[i]!, normal));
  if (!keepIdx.length)
    throw new UsageError(
      `--normal '${normal}' matches no training image (labels seen: ${[...new Set(labels)].join(', ')})`,
    );
  const trainSet = new Subset(ds, keepIdx);
  const first = await trainSet.get(0);
  cfg.sampleShape = [...(ds.sampleShape ?? [first.x.length])];
  cfg.trainCount = trainSet.length;
  const net = buildModel(model, cfg.sampleShape, cfg.latent, cfg.hidden);
  console.log(
    `[wgrad-vae] ${adapterSummary().backend}: training ${model} on ${trainSet.length} '${normal}' images [${cfg.sampleShape}] for ${cfg.epochs} epochs`,
  );
  const loader = new DataLoader(trainSet, {
    batchSize: cfg.batch,
    shuffle: true,
    seed: cfg.seed,
    sampleShape: cfg.sampleShape,
  });
  const optimizer = new Adam(net.parameters(), { lr });
  await mkdir(out, { recursive: true });
  const isVae = model.endsWith('vae');
  try {
    await train({
      model: net,
      optimizer,
      data: () => loader,
      batchesPerEpoch: loader.length,
      epochs: cfg.epochs,
      clipGradNorm: 5,
      outDir: out,
      seed: cfg.seed,
      step: ({ x }) => {
        const n = x.shape[0]!;
        if (isVae) {
          const o = (net as VAE).run(x);
          const t: LossTerms = vaeLoss(o.xhat, x, o.mu, o.logvar, { recon: 'mse', reduction: 'sum' });
          return { loss: t.loss.div(n), terms: { recon: t.recon.div(n), kl: t.kl.div(n) } };
        }
        const xhat = net.forward(x);
        return {
          loss: xhat
            .sub(x.reshape([...xhat.shape]))
            .square()
            .sum()
            .div(n),
        };
      },
    });
    await save(net, join(out, 'model.safetensors'), { metadata: { 'wgrad.run': JSON.stringify(cfg) } });
    await writeAtomic(join(out, 'run.json'), `${JSON.stringify(cfg, null, 2)}\n`);
    console.log(`[wgrad-vae] saved ${join(out, 'model.safetensors')} and run.json`);
  } finally {
    optimizer.dispose();
    net.dispose();
  }
}

async function readRun(dir: string): Promise<{ cfg: RunConfig; net: Module }> {
  let cfg: RunConfig;
  try {
    cfg = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as RunConfig;
  } catch (e) {
    throw new UsageError(
      `--run ${dir}: cannot read run.json (${(e as Error).message}); train with 'wgrad-vae train --out ${dir}' first`,
    );
  }
  const net = buildModel(cfg.model, cfg.sampleShape, cfg.latent, cfg.hidden);
  try {
    await load(net, join(dir, 'model.safetensors'));
  } catch (e) {
    net.dispose();
    throw e;
  }
  return { cfg, net };
}

async function cmdScore(values: Record<string, unknown>): Promise<void> {
  const runDir = opt(values, 'run');
  if (!runDir) throw new UsageError('--run is required');
  const { cfg, net } = await readRun(resolve(runDir));
  try {
    await scoreWith(values, runDir, cfg, net);
  } finally {
    net.dispose();
  }
}

async function scoreWith(
  values: Record<string, unknown>,
  runDir: string,
  cfg: RunConfig,
  net: Module,
): Promise<void> {
  const csv = opt(values, 'csv');
  const dataset = opt(values, 'dataset');
  if (!csv === !dataset) throw new UsageError('give exactly one of --csv and --dataset');
  const src = {
    csv: csv && resolve(csv),
    dataset,
    imageColumn: cfg.source.imageColumn,
    labelColumn: opt(values, 'label-column') ?? cfg.source.labelColumn,
  };
  const normal = opt(values, 'normal') ?? cfg.source.normal;
  const { ds, names, isNormal } = await openData(
    src,
    'test',
    opt(values, 'limit') ? intOpt(values, 'limit', 0) : undefined,
  );
  const out = resolve(opt(values, 'out') ?? join(runDir, 'scored'));
  await mkdir(out, { recursive: true });
  const loader = new DataLoader(ds, { batchSize: 64, sampleShape: cfg.sampleShape });
  const { scores, labels } = await scoreAll(net, loader, { recon: 'mse', reduction: 'sum' });
  const rows = Array.from(
    scores,
    (s, i) => `${i + 1},${names(labels[i]!)},${isNormal(labels[i]!, normal) ? 0 : 1},${s}`,
  );
  await writeAtomic(join(out, 'scores.csv'), `row,label,anomaly,score\n${rows.join('\n')}\n`);
  console.log(`[wgrad-vae] scored ${scores.length} images -> ${join(out, 'scores.csv')}`);
  await writeAtomic(
    join(out, 'scored.json'),
    `${JSON.stringify({ run: resolve(runDir), normal, source: src }, null, 2)}\n`,
  );
  await reportFromScores(out);
}

async function reportFromScores(dir: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(join(dir, 'scores.csv'), 'utf8');
  } catch (e) {
    throw new UsageError(
      `--run ${dir}: no scores.csv (${(e as Error).message}); run 'wgrad-vae score' first`,
    );
  }
  const normal: number[] = [];
  const anomalous: number[] = [];
  text
    .trim()
    .split('\n')
    .slice(1)
    .forEach((line, i) => {
      const [, , a, s] = line.split(',');
      const v = Number(s);
      if (!Number.isFinite(v) || (a !== '0' && a !== '1'))
        throw new Error(`${join(dir, 'scores.csv')}: bad row ${i + 1}: '${line}'`);
      (a === '0' ? normal : anomalous).push(v);
    });
  if (!normal.length || !anomalous.length) {
    console.log(
      `[wgrad-vae] ${normal.length} normal and ${anomalous.length} anomalous rows: no report (needs both)`,
    );
    return;
  }
  const m = await anomalyReport({
    dir,
    title: 'wgrad-vae anomaly scores',
    scoreName: 'reconstruction error (sum)',
    normal,
    anomalous,
  });
  console.log(
    `[wgrad-vae] AUROC ${m.auroc.toFixed(4)} · AUPR ${m.aupr.toFixed(4)} · threshold ${m.threshold.toPrecision(4)} -> ${join(dir, 'report.html')}`,
  );
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(HELP.main);
    return cmd ? 0 : 2;
  }
  if (!(cmd in HELP) || cmd === 'main') {
    console.error(`wgrad-vae: unknown command '${cmd}'\n\n${HELP.main}`);
    return 2;
  }
  try {
    const { values } = parseArgs({
      args: rest,
      options: {
        ...Object.fromEntries(STRING_OPTIONS.map((k) => [k, { type: 'string' as const }])),
        help: { type: 'boolean' as const },
      },
      strict: true,
    });
    if ((values as Record<string, unknown>).help) {
      console.log(HELP[cmd]);
      return 0;
    }
    if (cmd === 'train') await cmdTrain(values as Record<string, unknown>);
    else if (cmd === 'score') await cmdScore(values as Record<string, unknown>);
    else {
      const run = opt(values as Record<string, unknown>, 'run');
      if (!run) throw new UsageError('--run is required');
      await reportFromScores(resolve(run));
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`wgrad-vae ${cmd}: ${(e as Error).message}\n\n${HELP[cmd]}`);
      return 2;
    }
    console.error(`wgrad-vae ${cmd}: ${(e as Error).message}`);
    return 1;
  }
}

if (
  import.meta.url === `file://${process.argv[1]}` ||
  process.argv[1]?.endsWith('cli.ts') ||
  process.argv[1]?.endsWith('wgrad-vae')
)
  process.exit(await main(process.argv.slice(2)));
