// Charts for the reports: Vega-Lite specs compiled to Vega and rendered to SVG strings headlessly in Node
// (renderer 'none' + toSVG: no canvas or other native module is needed; text is measured by estimate).
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { kde, kdeGrid } from '../metrics.js';
import { formatNumber } from './format.js';

/** Default plot-area size of the charts, in pixels (axes, titles and legends come on top). */
export const CHART_WIDTH = 560;
export const CHART_HEIGHT = 320;

const FONT = 'Helvetica Neue, Helvetica, Arial, sans-serif';
const TABLEAU10 = [
  '#4c78a8',
  '#f58518',
  '#e45756',
  '#72b7b2',
  '#54a24b',
  '#eeca3b',
  '#b279a2',
  '#ff9da6',
  '#9d755d',
  '#bab0ac',
];

const CONFIG = {
  font: FONT,
  background: 'white',
  padding: 12,
  view: { stroke: '#d0d0d0' },
  title: {
    fontSize: 15,
    fontWeight: 600,
    anchor: 'start',
    offset: 10,
    color: '#222',
    subtitleFontSize: 12,
    subtitleColor: '#555',
    subtitlePadding: 4,
  },
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 500,
    titleColor: '#333',
    labelColor: '#444',
    gridColor: '#ececec',
    domainColor: '#888',
    tickColor: '#888',
    titlePadding: 8,
  },
  legend: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 500,
    symbolSize: 120,
    symbolOpacity: 1,
    labelLimit: 220,
  },
  range: { category: TABLEAU10 },
} as const;

/** Common options of every chart. */
export interface ChartOptions {
  title?: string;
  subtitle?: string;
  /** Plot-area width in pixels (default 560). */
  width?: number;
  /** Plot-area height in pixels (default 320). */
  height?: number;
}

/** A named sample, e.g. the anomaly scores of the normal or of the anomalous test set. */
export interface ValueGroup {
  name: string;
  values: ArrayLike<number>;
}

/** A named x/y series. */
export interface Series {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/** Compiles a Vega-Lite spec to Vega and renders it to a standalone SVG string (geometry rounded to 0.01 px). */
export async function renderSpec(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return compactSvg(await view.toSVG());
  } finally {
    view.finalize();
  }
}

/**
 * Rounds the coordinates in path data and transforms to 2 decimals (Vega writes full doubles): about 1/6 off the
 * size of a 20 000-point scatter plot, with no visible difference. Text and labels are left alone.
 */
export function compactSvg(svg: string): string {
  return svg.replace(/ (d|transform)="([^"]*)"/g, (_, attr: string, value: string) => {
    const v = value.replace(/-?(?:\d*\.?\d+e[-+]?\d+|\d*\.\d{3,})/g, (x) => {
      const r = Math.round(Number(x) * 100) / 100;
      return String(r === 0 ? 0 : r);
    });
    return ` ${attr}="${v}"`;
  });
}

type Spec = Record<string, unknown>;

function frame(o: ChartOptions, defaults: { title: string; width?: number; height?: number }): Spec {
  const text = o.title ?? defaults.title;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.subtitle ? { text, subtitle: o.subtitle } : text,
    width: o.width ?? defaults.width ?? CHART_WIDTH,
    height: o.height ?? defaults.height ?? CHART_HEIGHT,
    config: CONFIG,
  };
}

const render = (spec: Spec): Promise<string> => renderSpec(spec as unknown as TopLevelSpec);

function finite(values: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i]!)) out.push(values[i]!);
  return out;
}

function colorEncoding(names: string[], title: string | null = null, scheme?: string): Spec {
  return {
    field: 'group',
    type: 'nominal',
    sort: names,
    scale: scheme ? { domain: names, scheme } : { domain: names },
    // Above the plot, left-aligned under the title: never hides data.
    legend:
      names.length > 1
        ? {
            title,
            orient: 'top',
            direction: 'horizontal',
            symbolType: 'square',
            columnPadding: 14,
            offset: 6,
          }
        : null,
  };
}

/** A single empty datum: annotation layers (rules, labels at fixed positions) render once per datum. */
const ONE = { values: [{}] };

/**
 * A vertical dashed rule at x = `threshold` with a label at the top of the plot, on the rule's right unless the
 * rule is in the right third of the x range [lo, hi] (then on its left, so the label stays inside the plot).
 */
function thresholdLayers(
  threshold: number | undefined,
  label: string | undefined,
  lo: number,
  hi: number,
): Spec[] {
  if (threshold === undefined || !Number.isFinite(threshold)) return [];
  const text = label ?? `threshold = ${formatNumber(threshold)}`;
  const left = hi > lo && (threshold - lo) / (hi - lo) > 2 / 3;
  return [
    {
      data: ONE,
      mark: { type: 'rule', color: '#333', strokeDash: [6, 4], size: 1.5 },
      encoding: { x: { datum: threshold, type: 'quantitative' } },
    },
    {
      data: ONE,
      mark: {
        type: 'text',
        align: left ? 'right' : 'left',
        baseline: 'top',
        dx: left ? -5 : 5,
        dy: 4,
        fontSize: 11,
        color: '#333',
        fontWeight: 500,
      },
      encoding: { x: { datum: threshold, type: 'quantitative' }, y: { value: 0 }, text: { value: text } },
    },
  ];
}

export interface DensityChartOptions extends ChartOptions {
  groups: ValueGroup[];
  /** Draws a dashed vertical rule here, labelled `thresholdLabel` (default "threshold = …"). */
  threshold?: number;
  thresholdLabel?: string;
  title: string;
  xTitle: string;
  yTitle?: string;
  /** Number of grid points the densities are evaluated at (default 256). */
  points?: number;
  /** Kernel bandwidth (default: Scott's rule per group). */
  bandwidth?: number;
}

/** Grouped Gaussian kernel-density plot (filled curves, one colour per group), with an optional threshold rule. */
export async function densityChart(o: DensityChartOptions): Promise<string> {
  const groups = o.groups
    .map((g) => ({ name: g.name, values: finite(g.values) }))
    .filter((g) => g.values.length);
  if (!groups.length) throw new Error('densityChart: no finite values in any group');
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const g of groups) {
    const ends = kdeGrid(g.values, g.values, 2);
    lo = Math.min(lo, ends[0]!);
    hi = Math.max(hi, ends[1]!);
  }
  const n = Math.max(16, o.points ?? 256);
  const grid = Float64Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
  const rows: { group: string; x: number; density: number }[] = [];
  for (const g of groups) {
    const d = o.bandwidth ? kde(g.values, grid, o.bandwidth) : kde(g.values, grid);
    for (let i = 0; i < n; i++) rows.push({ group: g.name, x: grid[i]!, density: d[i]! });
  }
  const names = groups.map((g) => g.name);
  const x = { field: 'x', type: 'quantitative', title: o.xTitle, scale: { zero: false, nice: false } };
  const y = { field: 'density', type: 'quantitative', title: o.yTitle ?? 'density', stack: null };
  return render({
    ...frame(o, { title: o.title }),
    layer: [
      {
        data: { values: rows },
        layer: [
          {
            mark: { type: 'area', opacity: 0.22, aria: false },
            encoding: { x, y, color: colorEncoding(names) },
          },
          { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y, color: colorEncoding(names) } },
        ],
      },
      ...thresholdLayers(o.threshold, o.thresholdLabel, lo, hi),
    ],
  });
}

export interface HistogramChartOptions extends ChartOptions {
  groups: ValueGroup[];
  /** Number of bins over the common range (default 40). */
  bins?: number;
  /** Binned range (default: min..max of all values); values outside it are left out. */
  extent?: [number, number];
  /** 'density' (default; areas integrate to 1, so groups of different sizes compare), 'fraction' or 'count'. */
  normalize?: 'density' | 'fraction' | 'count';
  threshold?: number;
  thresholdLabel?: string;
  title: string;
  xTitle: string;
  yTitle?: string;
  /** Bar opacity (default 0.55), so overlapping groups stay visible. */
  opacity?: number;
}

/** Overlaid histograms of several groups on common bins, semi-transparent, with an optional threshold rule. */
export async function histogramChart(o: HistogramChartOptions): Promise<string> {
  const groups = o.groups
    .map((g) => ({ name: g.name, values: finite(g.values) }))
    .filter((g) => g.values.length);
  if (!groups.length) throw new Error('histogramChart: no finite values in any group');
  let [lo, hi] = o.extent ?? [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  if (!o.extent)
    for (const g of groups)
      for (const v of g.values) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, hi + 0.5];
  const bins = Math.max(1, Math.floor(o.bins ?? 40));
  const width = (hi - lo) / bins;
  const norm = o.normalize ?? 'density';
  const rows: { group: string; x0: number; x1: number; y: number }[] = [];
  for (const g of groups) {
    const counts = new Float64Array(bins);
    for (const v of g.values)
      if (v >= lo && v <= hi) counts[Math.min(bins - 1, Math.floor((v - lo) / width))]!++;
    const scale =
      norm === 'count' ? 1 : norm === 'fraction' ? 1 / g.values.length : 1 / (g.values.length * width);
    counts.forEach((c, b) => {
      if (c > 0) rows.push({ group: g.name, x0: lo + b * width, x1: lo + (b + 1) * width, y: c * scale });
    });
  }
  const names = groups.map((g) => g.name);
  return render({
    ...frame(o, { title: o.title }),
    layer: [
      {
        data: { values: rows },
        mark: {
          type: 'rect',
          opacity: o.opacity ?? 0.55,
          stroke: 'white',
          strokeWidth: 0.5,
          strokeOpacity: 0.6,
        },
        encoding: {
          x: {
            field: 'x0',
            type: 'quantitative',
            title: o.xTitle,
            scale: { zero: false, nice: false, domain: [lo, hi] },
          },
          x2: { field: 'x1' },
          y: { field: 'y', type: 'quantitative', title: o.yTitle ?? norm, stack: null },
          y2: { datum: 0 },
          color: colorEncoding(names),
        },
      },
      ...thresholdLayers(o.threshold, o.thresholdLabel, lo, hi),
    ],
  });
}

export interface RocChartOptions extends ChartOptions {
  /** False-positive rates (x), e.g. `rocCurve(...).x`. */
  fpr: ArrayLike<number>;
  /** True-positive rates (y), e.g. `rocCurve(...).y`. */
  tpr: ArrayLike<number>;
  /** Area under the curve, shown in the subtitle. */
  auc?: number;
}

/** ROC curve with the shaded area under it and the chance diagonal; AUC in the subtitle. */
export async function rocChart(o: RocChartOptions): Promise<string> {
  if (o.fpr.length !== o.tpr.length)
    throw new Error(`rocChart: ${o.fpr.length} FPR but ${o.tpr.length} TPR values`);
  const rows = Array.from(o.fpr, (f, i) => ({ x: f, y: o.tpr[i]! }));
  const subtitle = o.subtitle ?? (o.auc !== undefined ? `AUC = ${formatNumber(o.auc)}` : undefined);
  // stack: null — areas are stacked by default, which piles up the points sharing an x (vertical segments).
  const axis = (title: string) => ({
    type: 'quantitative',
    title,
    scale: { domain: [0, 1], nice: false },
    stack: null,
  });
  return render({
    ...frame({ ...o, subtitle }, { title: 'ROC curve', width: 420, height: 340 }),
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', color: '#999', strokeDash: [5, 4], strokeWidth: 1.2 },
        encoding: {
          x: { field: 'x', ...axis('False positive rate') },
          y: { field: 'y', ...axis('True positive rate') },
        },
      },
      {
        data: { values: rows },
        layer: [
          { mark: { type: 'area', color: TABLEAU10[0], opacity: 0.12, aria: false } },
          { mark: { type: 'line', color: TABLEAU10[0], strokeWidth: 2.2 } },
        ],
        encoding: {
          x: { field: 'x', ...axis('False positive rate') },
          y: { field: 'y', ...axis('True positive rate') },
        },
      },
    ],
  });
}

export interface PrChartOptions extends ChartOptions {
  /** Recall values (x), e.g. `prCurve(...).x`, from the highest threshold down. */
  recall: ArrayLike<number>;
  /** Precision values (y), e.g. `prCurve(...).y`. */
  precision: ArrayLike<number>;
  /** Average precision, shown in the subtitle. */
  ap?: number;
  /** Precision of a random ranking (the positive rate); default: the precision at recall 1, if present. */
  baseline?: number;
}

/** Precision–recall curve (step-wise, as average precision integrates it) with the chance baseline. */
export async function prChart(o: PrChartOptions): Promise<string> {
  const n = o.recall.length;
  if (n !== o.precision.length)
    throw new Error(`prChart: ${n} recall but ${o.precision.length} precision values`);
  const rows = Array.from(o.recall, (r, i) => ({ x: r, y: o.precision[i]! }));
  if (n && rows[0]!.x > 0) rows.unshift({ x: 0, y: rows[0]!.y });
  const baseline = o.baseline ?? (n && o.recall[n - 1] === 1 ? o.precision[n - 1] : undefined);
  const subtitle = o.subtitle ?? (o.ap !== undefined ? `AP = ${formatNumber(o.ap)}` : undefined);
  // stack: null — areas are stacked by default, which piles up the points sharing an x (vertical segments).
  const axis = (title: string) => ({
    type: 'quantitative',
    title,
    scale: { domain: [0, 1], nice: false },
    stack: null,
  });
  const layers: Spec[] = [
    {
      data: { values: rows },
      layer: [
        {
          mark: { type: 'area', color: TABLEAU10[1], opacity: 0.12, interpolate: 'step-before', aria: false },
        },
        { mark: { type: 'line', color: TABLEAU10[1], strokeWidth: 2.2, interpolate: 'step-before' } },
      ],
      encoding: { x: { field: 'x', ...axis('Recall') }, y: { field: 'y', ...axis('Precision') } },
    },
  ];
  if (baseline !== undefined && Number.isFinite(baseline))
    layers.push(
      {
        data: ONE,
        mark: { type: 'rule', color: '#999', strokeDash: [5, 4], size: 1.2 },
        encoding: { y: { datum: baseline, type: 'quantitative' } },
      },
      {
        data: ONE,
        mark: {
          type: 'text',
          align: 'right',
          baseline: 'bottom',
          dx: -4,
          dy: -3,
          fontSize: 11,
          color: '#666',
        },
        encoding: {
          x: { value: o.width ?? 420 },
          y: { datum: baseline, type: 'quantitative' },
          text: { value: `chance = ${formatNumber(baseline)}` },
        },
      },
    );
  return render({
    ...frame({ ...o, subtitle }, { title: 'Precision–recall curve', width: 420, height: 340 }),
    layer: layers,
  });
}

export interface LineChartOptions extends ChartOptions {
  series: Series[];
  title: string;
  xTitle: string;
  yTitle: string;
  logX?: boolean;
  logY?: boolean;
  /** Marks every data point (default: when no series has more than 60 points). */
  points?: boolean;
  /** Legend title (default none). */
  legendTitle?: string;
}

/** Generic x/y line chart with one coloured line per series (e.g. a metric against hidden size). */
export async function lineChart(o: LineChartOptions): Promise<string> {
  const rows: { group: string; x: number; y: number }[] = [];
  let longest = 0;
  for (const s of o.series) {
    if (s.x.length !== s.y.length)
      throw new Error(`lineChart: series '${s.name}' has ${s.x.length} x but ${s.y.length} y values`);
    longest = Math.max(longest, s.x.length);
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i]!;
      const y = s.y[i]!;
      if (!Number.isFinite(x) || !Number.isFinite(y) || (o.logX && x <= 0) || (o.logY && y <= 0)) continue;
      rows.push({ group: s.name, x, y });
    }
  }
  if (!rows.length) throw new Error('lineChart: no finite points to plot');
  const names = [...new Set(o.series.map((s) => s.name))];
  const showPoints = o.points ?? longest <= 60;
  // Few distinct x values (a sweep): ticks exactly at them.
  const xs = [...new Set(rows.map((r) => r.x))].sort((a, b) => a - b);
  const xAxis = xs.length <= 12 ? { values: xs } : {};
  const xScale = o.logX
    ? { type: 'log', nice: false, padding: 16 }
    : { zero: false, ...(xs.length <= 12 ? { nice: false, padding: 16 } : {}) };
  return render({
    ...frame(o, { title: o.title }),
    data: { values: rows },
    mark: { type: 'line', strokeWidth: 2, point: showPoints ? { size: 36, filled: true } : false },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.xTitle, scale: xScale, axis: xAxis },
      y: {
        field: 'y',
        type: 'quantitative',
        title: o.yTitle,
        scale: o.logY ? { type: 'log' } : { zero: false, padding: 8 },
      },
      color: colorEncoding(names, o.legendTitle ?? null),
      order: { field: 'x', type: 'quantitative' },
    },
  });
}

export interface LossChartOptions extends Omit<LineChartOptions, 'title'> {
  title?: string;
}

/** Training curves (e.g. train and validation loss against step or epoch), optionally on a log y axis. */
export function lossChart(o: LossChartOptions): Promise<string> {
  return lineChart({ ...o, title: o.title ?? 'Training curves', points: o.points ?? false });
}

export interface ScatterPoint {
  x: number;
  y: number;
  label: string | number;
}

export interface ScatterChartOptions extends ChartOptions {
  points: ScatterPoint[];
  title: string;
  xTitle?: string;
  yTitle?: string;
  legendTitle?: string;
  /** Plots at most this many points (default 20 000): a seeded random subset beyond it, noted in the subtitle. */
  maxPoints?: number;
  /** Symbol area in square pixels (default 14) and opacity (default 0.7). */
  size?: number;
  opacity?: number;
}

/** Scatter plot (e.g. a 2-D latent projection) coloured by class label, with a legend. */
export async function scatterChart(o: ScatterChartOptions): Promise<string> {
  const all = o.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  // Shuffled draw order (seeded) so that no class systematically hides the others; the first maxPoints are kept.
  let seed = 0x9e3779b9;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = all.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const max = o.maxPoints ?? 20000;
  const kept = order.slice(0, max).map((i) => all[i]!);
  const labels = [...new Set(kept.map((p) => p.label))].sort((a, b) =>
    typeof a === 'number' && typeof b === 'number'
      ? a - b
      : String(a).localeCompare(String(b), 'en', { numeric: true }),
  );
  const names = labels.map(String);
  const rows = kept.map((p) => ({ x: p.x, y: p.y, group: String(p.label) }));
  const note =
    all.length > kept.length
      ? `showing ${kept.length.toLocaleString('en-US')} of ${all.length.toLocaleString('en-US')} points`
      : undefined;
  const subtitle = [o.subtitle, note].filter(Boolean).join(' · ') || undefined;
  const color = colorEncoding(names, o.legendTitle ?? null, names.length > 10 ? 'tableau20' : undefined);
  if (color.legend) color.legend = { title: o.legendTitle ?? null, orient: 'right', symbolOpacity: 1 };
  return render({
    ...frame({ ...o, subtitle }, { title: o.title, width: o.width ?? 480, height: o.height ?? 400 }),
    data: { values: rows },
    mark: { type: 'circle', size: o.size ?? 14, opacity: o.opacity ?? 0.7, aria: false },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.xTitle ?? 'z₁', scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: o.yTitle ?? 'z₂', scale: { zero: false } },
      color,
    },
  });
}
