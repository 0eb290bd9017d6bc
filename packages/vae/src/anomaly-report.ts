// The standard anomaly-detection report of a run: thresholds, metrics, charts and example images, written
// as one self-contained report.html plus metrics.json, SVG and PNG files in the run folder.
import type { Dataset, Module, Sample } from '@wgrad/nn';
import { noGrad, scope, tensor } from '@wgrad/tensor';
import {
  confusion,
  densityCrossing,
  f1OptimalThreshold,
  percentile,
  prAuc,
  prCurve,
  rocAuc,
  rocCurve,
  youdenThreshold,
} from './metrics.js';
import {
  densityChart,
  heatmapPng,
  histogramChart,
  imageGrid,
  lossChart,
  prChart,
  rocChart,
  writeReport,
} from './report/index.js';
import { pixelErrors, reconstruct } from './score.js';
import type { History } from './trainer.js';

export interface AnomalyReportOptions {
  dir: string;
  title: string;
  subtitle?: string;
  /** What the score is, for axis titles. */
  scoreName: string;
  /** Scores of normal (label 0) and anomalous (label 1) test samples. */
  normal: ArrayLike<number>;
  anomalous: ArrayLike<number>;
  groupNames?: [string, string];
  history?: History;
  /** Shows inputs, reconstructions and (x − x̂)² heatmaps of the first `count` samples of each set. */
  model?: Module;
  examples?: {
    normal: Dataset<Sample>;
    anomalous: Dataset<Sample>;
    count?: number;
    shape?: [number, number, number];
  };
  /** Extra numbers to put in metrics.json and the report's table. */
  extraMetrics?: Record<string, number | string>;
  /** Extra report sections placed after the standard ones. */
  extraSections?: Parameters<typeof writeReport>[1]['sections'];
  /** A first section written from the measured metrics (e.g. the exercise's discussion question). */
  discussion?: (m: AnomalyMetrics) => { title: string; text: string };
}

export interface AnomalyMetrics {
  auroc: number;
  aupr: number;
  threshold: number;
  thresholdRule: string;
  thresholds: Record<string, number>;
  atThreshold: ReturnType<typeof confusion>;
  [k: string]: unknown;
}

async function exampleImages(
  model: Module,
  ds: Dataset<Sample>,
  count: number,
  shape: [number, number, number] | undefined,
) {
  const n = Math.min(count, ds.length);
  const samples = await Promise.all(Array.from({ length: n }, (_, i) => ds.get(i)));
  const [c, h, w] = shape ?? ((ds.sampleShape ?? []) as [number, number, number]);
  if (!c || !h || !w)
    throw new Error('anomalyReport: example datasets need an image sampleShape (C, H, W) or examples.shape');
  const flat = new Float32Array(n * c * h * w);
  samples.forEach((s, i) => {
    flat.set(s.x, i * c * h * w);
  });
  const wasTraining = model.training;
  model.eval();
  const [xhat, heat] = await noGrad(() =>
    scope(async () => {
      const x = tensor(flat, { shape: [n, c, h, w] });
      const r = reconstruct(model, x).reshape([n, c, h, w]);
      const e = pixelErrors(r, x, 'mse').mean(1);
      return [await r.toArray(), await e.toArray()] as const;
    }),
  );
  model.train(wasTraining);
  return {
    inputs: imageGrid(flat, n, c, h, w, { cols: n }),
    recons: imageGrid(xhat, n, c, h, w, { cols: n }),
    heat: heatmapPng(heat, n, h, w, { cols: n, colormap: 'inferno', normalize: 'global' }),
  };
}

/** Computes thresholds and metrics, draws the charts, writes report.html + metrics.json; returns the metrics. */
export async function anomalyReport(o: AnomalyReportOptions): Promise<AnomalyMetrics> {
  const [gn, ga] = o.groupNames ?? ['normal', 'anomalous'];
  const scores = Float64Array.from([...Array.from(o.normal), ...Array.from(o.anomalous)]);
  const labels = Int32Array.from([...Array.from(o.normal, () => 0), ...Array.from(o.anomalous, () => 1)]);
  const auroc = rocAuc(scores, labels);
  const aupr = prAuc(scores, labels);
  const crossing = densityCrossing(o.normal, o.anomalous);
  const f1 = f1OptimalThreshold(scores, labels);
  const youden = youdenThreshold(scores, labels);
  const thresholds = {
    densityCrossing: crossing,
    f1Optimal: f1.threshold,
    youdenJ: youden.threshold,
    normalP95: percentile(o.normal, 95),
    normalP99: percentile(o.normal, 99),
  };
  const atThreshold = confusion(scores, labels, crossing);
  const last = o.history?.epochs[o.history.epochs.length - 1];
  const epochs = o.history?.epochs ?? [];
  const metrics: AnomalyMetrics = {
    auroc,
    aupr,
    threshold: crossing,
    thresholdRule: 'crossing of the two score densities',
    thresholds,
    atThreshold,
    f1AtF1Optimal: f1.f1,
    youdenJ: youden.j,
    [`count_${gn}`]: o.normal.length,
    [`count_${ga}`]: o.anomalous.length,
    [`median_${gn}`]: percentile(o.normal, 50),
    [`median_${ga}`]: percentile(o.anomalous, 50),
    ...(last ? Object.fromEntries(Object.entries(last.means).map(([k, v]) => [`final_train_${k}`, v])) : {}),
    ...(epochs.length
      ? {
          epochs: epochs.length,
          trainSeconds: epochs.reduce((s, e) => s + e.seconds, 0),
          samplesPerSec:
            epochs.reduce((s, e) => s + e.samples, 0) / epochs.reduce((s, e) => s + e.seconds, 0),
          bestEpoch: o.history?.bestEpoch ?? 0,
        }
      : {}),
    ...(o.history?.stopped ? { stopped: o.history.stopped } : {}),
    ...o.extraMetrics,
  };
  const groups = [
    { name: gn, values: Array.from(o.normal) },
    { name: ga, values: Array.from(o.anomalous) },
  ];
  const roc = rocCurve(scores, labels);
  const pr = prCurve(scores, labels);
  const sections: Parameters<typeof writeReport>[1]['sections'] = [
    {
      title: `Distribution of the ${o.scoreName}`,
      text: `Grouped kernel density of the scores of ${o.normal.length} ${gn} and ${o.anomalous.length} ${ga} test samples. Suggested threshold ${crossing.toPrecision(4)} (where the densities cross): it flags ${atThreshold.tp} of ${atThreshold.tp + atThreshold.fn} ${ga} samples and ${atThreshold.fp} of ${atThreshold.fp + atThreshold.tn} ${gn} samples.`,
      svg: await densityChart({
        groups,
        threshold: crossing,
        title: `${o.scoreName}: ${gn} vs ${ga}`,
        xTitle: o.scoreName,
      }),
    },
    {
      title: 'Histogram',
      svg: await histogramChart({
        groups,
        threshold: crossing,
        title: `Histogram of the ${o.scoreName}`,
        xTitle: o.scoreName,
      }),
    },
    { title: 'ROC curve', svg: await rocChart({ fpr: roc.x, tpr: roc.y, auc: auroc }) },
    { title: 'Precision–recall curve', svg: await prChart({ recall: pr.x, precision: pr.y, ap: aupr }) },
  ];
  if (epochs.length) {
    const keys = Object.keys(epochs[0]!.means);
    sections.push({
      title: 'Training curve',
      svg: await lossChart({
        series: keys.map((k) => ({
          name: k,
          x: epochs.map((e) => e.epoch),
          y: epochs.map((e) => e.means[k]!),
        })),
        xTitle: 'epoch',
        yTitle: 'mean loss per batch',
      }),
    });
  }
  if (o.model && o.examples) {
    for (const [name, ds] of [
      [gn, o.examples.normal],
      [ga, o.examples.anomalous],
    ] as const) {
      const im = await exampleImages(o.model, ds, o.examples.count ?? 8, o.examples.shape);
      sections.push(
        { title: `${name}: inputs`, png: im.inputs },
        { title: `${name}: reconstructions`, png: im.recons },
        { title: `${name}: per-pixel error (x − x̂)²`, png: im.heat },
      );
    }
  }
  sections.push(...(o.extraSections ?? []));
  if (o.discussion) sections.unshift(o.discussion(metrics));
  await writeReport(o.dir, { title: o.title, subtitle: o.subtitle, metrics: flatMetrics(metrics), sections });
  return metrics;
}

function flatMetrics(m: AnomalyMetrics): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v === 'number' || typeof v === 'string') out[k] = v;
    else if (v && typeof v === 'object')
      for (const [k2, v2] of Object.entries(v))
        if (typeof v2 === 'number' || typeof v2 === 'string') out[`${k}.${k2}`] = v2;
  }
  return out;
}
