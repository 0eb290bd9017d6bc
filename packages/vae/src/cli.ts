#!/usr/bin/env node
// wgrad-vae: train an anomaly detector on normal images only, score new images, and write reports.
//
//   wgrad-vae train  --csv trainDF.csv --normal background --model conv-vae --epochs 30 --out runs/x
//   wgrad-vae train  --dataset mnist --normal 0 --model ae --out runs/zeros
//   wgrad-vae train  --csv parts.csv --label-column grade --labels ok=0,defect=1 --normal ok --out runs/p
//   wgrad-vae score  --run runs/x --csv testDF.csv [--out runs/x/scored]   (a manifest without labels works too)
//   wgrad-vae report --run runs/x/scored
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  Adam,
  DataError,
  DataLoader,
  type Dataset,
  digitsDataset,
  Flatten,
  fashionMnistDataset,
  ImageCsvDataset,
  Linear,
  load,
  type Module,
  mnistDataset,
  ReLU,
  type Sample,
  Sequential,
  Subset,
  save,
  type TensorDataset,
  TOPO_DL_LABELS,
  Unflatten,
} from '@wgrad/nn';
import { adapterSummary, manualSeed } from '@wgrad/tensor';
import { anomalyReport } from './anomaly-report.js';
import { type LossTerms, vaeLoss } from './loss.js';
import { percentile } from './metrics.js';
import { type AE, Autoencoder, convAE, convVAE, mlpVAE, type VAE } from './models.js';
import { densityChart, histogramChart, writeFileAtomic, writeReport } from './report/index.js';
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
  'labels',
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
  --labels MAP          manifest label -> class code, e.g. ok=0,scratch=1,dent=1 (case-insensitive; default
                        background=0,positive=1 plus the topoDL misspellings); the reports name each code by
                        its first label here
  --normal LABEL        the normal class trained on (a label of the map, e.g. background, or its code;
                        for a dataset its class index or name)
  --model KIND          ${MODELS.join(' | ')} (default conv-vae)
  --epochs N            (default 30)   --batch N (default 32)   --lr X (default 1e-3)
  --latent N            latent size (default 20)   --hidden N (MLP hidden size, default 400)
  --limit N             use at most N training images
  --seed N              (default 0)
  --out DIR             run folder (default runs/train): model.safetensors, run.json, history.json/csv`,
  score: `wgrad-vae score [options]
  --run DIR             a folder written by 'wgrad-vae train'
  --csv PATH            manifest to score, labeled or not, or
  --dataset NAME        ${DATASETS.join(', ')} (test split)
  --label-column NAME   (default: as in training; a manifest without that column is scored without labels,
                        a column named here must exist)
  --labels MAP          (default: as in training)   --normal LABEL (default: as in training)
  --limit N             score at most N images
  --out DIR             (default <run>/scored): scores.csv (row,label,anomaly,score; row,score without
                        labels), report.html + metrics.json (without labels: the score distribution only)`,
  report: `wgrad-vae report --run DIR
  rebuilds report.html and metrics.json of a scored folder from its scores.csv (with labels: metrics,
  ROC and PR curves; without: the score distribution)`,
};

/** Manifest label (matched case-insensitively) → class code. */
type LabelMap = Record<string, number>;

interface RunConfig {
  model: ModelKind;
  latent: number;
  hidden: number;
  sampleShape: number[];
  source: {
    csv?: string;
    dataset?: string;
    imageColumn: string;
    labelColumn: string;
    /** --labels of a manifest run; absent: the topoDL labels. */
    labels?: LabelMap;
    normal: string;
  };
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

function buildModel(kind: ModelKind, shape: number[], latent: number, hidden: number): VAE | AE {
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
      return new Autoencoder(
        new Sequential(new Flatten(), new Linear(d, latent), new ReLU()),
        new Sequential(new Linear(latent, d), new Unflatten(1, shape)),
      );
    }
    case 'conv-ae':
      if (shape.length !== 3 || c !== 1)
        throw new UsageError(`--model conv-ae needs 1-channel images, got [${shape}]`);
      return convAE({ kernels: latent });
  }
}

/** Parses `--labels NAME=CODE,...`; errors name the option, the item and the value. */
function parseLabels(text: string): LabelMap {
  const map: LabelMap = {};
  const seen = new Set<string>();
  const items = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (!items.length)
    throw new UsageError(`--labels must be NAME=CODE pairs (e.g. ok=0,defect=1), got '${text}'`);
  for (const item of items) {
    const m = /^([^=]*)=(.*)$/.exec(item);
    const name = m?.[1]?.trim();
    if (!m || !name)
      throw new UsageError(
        `--labels: '${item}' is not NAME=CODE (e.g. --labels ok=0,defect=1), in --labels '${text}'`,
      );
    const code = m[2]!.trim();
    if (!/^\d+$/.test(code))
      throw new UsageError(
        `--labels: the code of '${name}' must be a non-negative integer, got '${code}' (in --labels '${text}')`,
      );
    if (seen.has(name.toLowerCase()))
      throw new UsageError(`--labels: label '${name}' is given twice (labels are case-insensitive)`);
    seen.add(name.toLowerCase());
    map[name] = Number(code);
  }
  return map;
}

const formatLabels = (map: LabelMap) =>
  Object.entries(map)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** The name of each code of a label map: its first label, as written. */
function mapNames(map: LabelMap): (y: number) => string {
  const byCode = new Map<number, string>();
  for (const [k, v] of Object.entries(map)) if (!byCode.has(v)) byCode.set(v, k);
  return (y) => byCode.get(y) ?? String(y);
}

interface DataSource {
  csv?: string;
  dataset?: string;
  imageColumn: string;
  labelColumn: string;
  labels?: LabelMap;
}

interface OpenedData {
  ds: Dataset<Sample>;
  /** False for a manifest without its label column (every y is -1). */
  labeled: boolean;
  /** Name of a class code, for scores.csv and the reports. */
  names: (y: number) => string;
  /** The code that a --normal value (a label, case-insensitive, or a code) stands for; undefined if none. */
  codeOf: (normal: string) => number | undefined;
  /** The labels --normal may name, for messages. */
  known: string;
}

/** The header list of a DataError "missing column" reason, for a CLI message. */
function headerOf(e: DataError): string {
  return /\(the header has: (.*)\);/.exec(e.reason)?.[1] ?? '?';
}

/**
 * Loads the samples of a manifest or named dataset. A manifest without its label column is opened unlabeled
 * when `labelsOptional`, else is an error naming `labelFlag` (then `labelHint`).
 */
async function openData(
  src: DataSource,
  split: 'train' | 'test',
  limit: number | undefined,
  how: { labelsOptional: boolean; imageFlag: string; labelFlag: string; labelHint: string },
): Promise<OpenedData> {
  if (src.csv) {
    const file = resolve(src.csv);
    const map = src.labels ?? TOPO_DL_LABELS;
    const open = (labelColumn: string | null) =>
      ImageCsvDataset.fromCsv(file, {
        imageColumn: src.imageColumn,
        labelColumn,
        labelMap: map,
        cache: true,
      });
    let ds: ImageCsvDataset;
    let labeled = true;
    try {
      try {
        ds = await open(src.labelColumn);
      } catch (e) {
        if (
          how.labelsOptional &&
          e instanceof DataError &&
          e.reason.startsWith(`missing column '${src.labelColumn}'`)
        ) {
          ds = await open(null);
          labeled = false;
        } else throw e;
      }
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      if (e.reason.startsWith(`missing column '${src.imageColumn}'`))
        throw new UsageError(`${how.imageFlag}: ${file} has no such column (its header: ${headerOf(e)})`);
      if (e.reason.startsWith(`missing column '${src.labelColumn}'`))
        throw new UsageError(
          `${how.labelFlag}: ${file} has no such column (its header: ${headerOf(e)}); ${how.labelHint}`,
        );
      if (e.reason.startsWith('unknown label'))
        throw new UsageError(
          `${e.message}; map the manifest's labels to codes with --labels NAME=CODE,... (now ${formatLabels(map)})`,
        );
      throw e;
    }
    const names = mapNames(map);
    const codes = new Map(Object.entries(map).map(([k, v]) => [k.trim().toLowerCase(), v]));
    const sub =
      limit && limit < ds.length
        ? new Subset(
            ds,
            Array.from({ length: limit }, (_, i) => i),
          )
        : ds;
    return {
      ds: sub,
      labeled,
      names,
      codeOf: (normal) => {
        const c = codes.get(normal.trim().toLowerCase());
        if (c !== undefined) return c;
        return /^\d+$/.test(normal) && [...codes.values()].includes(Number(normal))
          ? Number(normal)
          : undefined;
      },
      known: formatLabels(map),
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
    labeled: true,
    names,
    codeOf: (normal) => {
      if (/^\d+$/.test(normal) && (!classes || Number(normal) < classes.length)) return Number(normal);
      const i = classes?.findIndex((c) => c.toLowerCase() === normal.trim().toLowerCase()) ?? -1;
      return i >= 0 ? i : undefined;
    },
    known: classes ? classes.map((c, i) => `${i} (${c})`).join(', ') : 'class indices',
  };
}

/** How a column option is named in messages: `--label-column 'x'`, marked as the default when not given. */
function columnFlag(
  values: Record<string, unknown>,
  name: string,
  value: string,
  from = 'the default',
): string {
  return `--${name} '${value}'${opt(values, name) === undefined ? ` (${from})` : ''}`;
}

async function labelsOf(ds: Dataset<Sample>): Promise<Int32Array> {
  const out = new Int32Array(ds.length);
  for (let i = 0; i < ds.length; i++) out[i] = (await ds.get(i)).y;
  return out;
}

/** A scores.csv field: quoted when it holds a comma, quote or line break. */
const csvField = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

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
  const labelsText = opt(values, 'labels');
  if (labelsText !== undefined && !csv) throw new UsageError('--labels applies to --csv manifests only');
  const labels = labelsText === undefined ? undefined : parseLabels(labelsText);
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
      ...(labels ? { labels } : {}),
      normal,
    },
    epochs: intOpt(values, 'epochs', 30),
    batch: intOpt(values, 'batch', 32),
    lr,
    seed: intOpt(values, 'seed', 0, 0),
    trainCount: 0,
  };
  manualSeed(cfg.seed);
  const { ds, names, codeOf, known } = await openData(
    cfg.source,
    'train',
    opt(values, 'limit') ? intOpt(values, 'limit', 0) : undefined,
    {
      labelsOptional: false,
      imageFlag: columnFlag(values, 'image-column', cfg.source.imageColumn),
      labelFlag: columnFlag(values, 'label-column', cfg.source.labelColumn),
      labelHint: 'training needs labels to pick the --normal images',
    },
  );
  const normalCode = codeOf(normal);
  if (normalCode === undefined)
    throw new UsageError(`--normal '${normal}' is not one of the labels (${known})`);
  const ys = await labelsOf(ds);
  const keepIdx = [...ys.keys()].filter((i) => ys[i] === normalCode);
  if (!keepIdx.length)
    throw new UsageError(
      `--normal '${normal}' matches no training image (labels seen: ${[...new Set(ys)].map(names).join(', ')})`,
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
    await writeFileAtomic(join(out, 'run.json'), `${JSON.stringify(cfg, null, 2)}\n`);
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
  const labelsText = opt(values, 'labels');
  if (labelsText !== undefined && !csv) throw new UsageError('--labels applies to --csv manifests only');
  const labelMap = labelsText === undefined ? cfg.source.labels : parseLabels(labelsText);
  const src: DataSource = {
    csv: csv && resolve(csv),
    dataset,
    imageColumn: cfg.source.imageColumn,
    labelColumn: opt(values, 'label-column') ?? cfg.source.labelColumn,
    ...(labelMap ? { labels: labelMap } : {}),
  };
  const normal = opt(values, 'normal') ?? cfg.source.normal;
  const data = await openData(src, 'test', opt(values, 'limit') ? intOpt(values, 'limit', 0) : undefined, {
    // A column the user names must exist; the run's own label column is optional.
    labelsOptional: opt(values, 'label-column') === undefined,
    imageFlag: `the run's image column '${src.imageColumn}'`,
    labelFlag: columnFlag(values, 'label-column', src.labelColumn),
    labelHint: 'leave --label-column out to score the manifest without labels',
  });
  let normalCode = -1;
  if (data.labeled) {
    const c = data.codeOf(normal);
    if (c === undefined)
      throw new UsageError(
        `--normal '${normal}'${opt(values, 'normal') === undefined ? ' (as in training)' : ''} is not one of the labels (${data.known})`,
      );
    normalCode = c;
  }
  const out = resolve(opt(values, 'out') ?? join(runDir, 'scored'));
  await mkdir(out, { recursive: true });
  const loader = new DataLoader(data.ds, { batchSize: 64, sampleShape: cfg.sampleShape });
  const { scores, labels } = await scoreAll(net, loader, { recon: 'mse', reduction: 'sum' });
  const rows = data.labeled
    ? Array.from(
        scores,
        (s, i) => `${i + 1},${csvField(data.names(labels[i]!))},${labels[i] === normalCode ? 0 : 1},${s}`,
      )
    : Array.from(scores, (s, i) => `${i + 1},${s}`);
  const header = data.labeled ? 'row,label,anomaly,score' : 'row,score';
  await writeFileAtomic(join(out, 'scores.csv'), `${header}\n${rows.join('\n')}\n`);
  console.log(
    `[wgrad-vae] scored ${scores.length} images${data.labeled ? '' : ` (no labels: the manifest has no column '${src.labelColumn}')`} -> ${join(out, 'scores.csv')}`,
  );
  await writeFileAtomic(
    join(out, 'scored.json'),
    `${JSON.stringify({ run: resolve(runDir), labeled: data.labeled, ...(data.labeled ? { normal } : {}), source: src }, null, 2)}\n`,
  );
  await reportFromScores(out);
}

interface ScoreRow {
  score: number;
  /** Labeled scores only. */
  label?: string;
  anomaly?: 0 | 1;
}

const LABELED_HEADER = 'row,label,anomaly,score';
const UNLABELED_HEADER = 'row,score';

/** Parses a scores.csv written by scoreWith (labeled or not). */
function parseScores(text: string, file: string): { labeled: boolean; rows: ScoreRow[] } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  const header = lines[0]?.trim() ?? '';
  const labeled = header === LABELED_HEADER;
  if (!labeled && header !== UNLABELED_HEADER)
    throw new Error(`${file}: header '${header}' is neither '${LABELED_HEADER}' nor '${UNLABELED_HEADER}'`);
  const rows = lines.slice(1).map((line, i): ScoreRow => {
    const f = line.split(',');
    const s = f[f.length - 1]!.trim();
    const score = Number(s);
    const bad = () => new Error(`${file}: bad row ${i + 1}: '${line}'`);
    if (!s || !Number.isFinite(score)) throw bad();
    if (!labeled) {
      if (f.length !== 2) throw bad();
      return { score };
    }
    const a = f[f.length - 2];
    if (f.length < 4 || (a !== '0' && a !== '1')) throw bad();
    let label = f.slice(1, -2).join(',');
    if (label.length >= 2 && label.startsWith('"') && label.endsWith('"'))
      label = label.slice(1, -1).replaceAll('""', '"');
    return { score, label, anomaly: a === '0' ? 0 : 1 };
  });
  if (!rows.length) throw new Error(`${file}: no score rows`);
  return { labeled, rows };
}

const SCORE_NAME = 'reconstruction error (sum)';

async function reportFromScores(dir: string): Promise<void> {
  const file = join(dir, 'scores.csv');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `--run ${dir}: no scores.csv (${(e as Error).message}); run 'wgrad-vae score' first`,
    );
  }
  const { labeled, rows } = parseScores(text, file);
  if (!labeled)
    return distributionReport(
      dir,
      'unlabeled',
      rows.map((r) => r.score),
      'no labels',
      'The scored manifest has no labels, so there is no ROC or precision–recall curve and no threshold from labels: only the distribution of the scores.',
    );
  const normal = rows.filter((r) => r.anomaly === 0);
  const anomalous = rows.filter((r) => r.anomaly === 1);
  /** The label of a group when it has one only. */
  const nameOf = (rs: ScoreRow[]) => {
    const s = new Set(rs.map((r) => r.label!));
    return s.size === 1 ? [...s][0]! : undefined;
  };
  if (!normal.length || !anomalous.length) {
    const only = normal.length ? normal : anomalous;
    const kind = normal.length ? 'normal' : 'anomalous';
    return distributionReport(
      dir,
      nameOf(only) ?? kind,
      only.map((r) => r.score),
      `${kind} images only`,
      `Every scored image is ${kind}, so there is no ROC or precision–recall curve: only the distribution of the scores.`,
    );
  }
  let groupNames: [string, string] = [nameOf(normal) ?? 'normal', nameOf(anomalous) ?? 'anomalous'];
  if (groupNames[0] === groupNames[1]) groupNames = ['normal', 'anomalous'];
  const m = await anomalyReport({
    dir,
    title: 'wgrad-vae anomaly scores',
    scoreName: SCORE_NAME,
    normal: normal.map((r) => r.score),
    anomalous: anomalous.map((r) => r.score),
    groupNames,
  });
  console.log(
    `[wgrad-vae] ${groupNames[0]} vs ${groupNames[1]}: AUROC ${m.auroc.toFixed(4)} · AUPR ${m.aupr.toFixed(4)} · threshold ${m.threshold.toPrecision(4)} -> ${join(dir, 'report.html')}`,
  );
}

/** report.html + metrics.json of scores without both classes: summary statistics, density and histogram. */
async function distributionReport(
  dir: string,
  group: string,
  values: number[],
  why: string,
  note: string,
): Promise<void> {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(values.length - 1, 1));
  const metrics = {
    group,
    count: values.length,
    mean,
    std: sd,
    min: percentile(values, 0),
    median: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    max: percentile(values, 100),
  };
  const groups = [{ name: group, values }];
  await writeReport(dir, {
    title: 'wgrad-vae anomaly scores',
    subtitle: `${values.length} ${group} images`,
    metrics,
    sections: [
      {
        title: `Distribution of the ${SCORE_NAME}`,
        text: `${note} Median ${metrics.median.toPrecision(4)}, 95th percentile ${metrics.p95.toPrecision(4)}, 99th percentile ${metrics.p99.toPrecision(4)}.`,
        svg: await densityChart({ groups, title: `${SCORE_NAME}: ${group}`, xTitle: SCORE_NAME }),
      },
      {
        title: 'Histogram',
        svg: await histogramChart({ groups, title: `Histogram of the ${SCORE_NAME}`, xTitle: SCORE_NAME }),
      },
    ],
  });
  console.log(
    `[wgrad-vae] ${values.length} ${group} scores (no ROC: ${why}): median ${metrics.median.toPrecision(4)} · p99 ${metrics.p99.toPrecision(4)} -> ${join(dir, 'report.html')}`,
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
