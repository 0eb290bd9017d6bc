// Reporting layer (host only, no GPU): Vega-Lite charts rendered to SVG, PNG grids and heatmaps, the HTML
// report with metrics.json, and atomic writes.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { prAuc, prCurve, rocAuc, rocCurve } from '../packages/vae/src/metrics.js';
import {
  colormap,
  compactSvg,
  densityChart,
  formatNumber,
  heatmapPng,
  histogramChart,
  imageGrid,
  lineChart,
  lossChart,
  overlayPng,
  pngDataUri,
  prChart,
  rocChart,
  scatterChart,
  scopeSvgIds,
  slugify,
  writeFileAtomic,
  writePng,
  writeReport,
} from '../packages/vae/src/report/index.js';

const { PNG } = pngjs;

/** Checks the outline of a standalone SVG document and returns it. */
function svgOk(svg: string): string {
  assert.ok(svg.startsWith('<svg'), 'starts with <svg');
  assert.ok(svg.trimEnd().endsWith('</svg>'), 'ends with </svg>');
  assert.ok(svg.includes('xmlns="http://www.w3.org/2000/svg"'), 'SVG namespace');
  const open = (svg.match(/<g[\s>]/g) ?? []).length;
  const selfClosed = (svg.match(/<g\b[^>]*\/>/g) ?? []).length;
  assert.is(open - selfClosed, (svg.match(/<\/g>/g) ?? []).length, 'balanced <g> elements');
  const [, w, h] = svg.match(/^<svg[^>]*\bwidth="(\d+)" height="(\d+)"/)!;
  assert.ok(Number(w) > 300 && Number(w) < 1000 && Number(h) > 200 && Number(h) < 800, `sane size ${w}×${h}`);
  return svg;
}

/** Number of items of Vega marks of `type` ('line', 'area', 'symbol', 'rect', 'rule', 'text') in the plot. */
function marks(svg: string, type: string): number {
  let n = 0;
  const re = new RegExp(`<g class="mark-${type} role-mark[^"]*"[^>]*?(?:/>|>(.*?)</g>)`, 'g');
  for (const m of svg.matchAll(re)) n += (m[1]?.match(/<(path|line|text)\b/g) ?? []).length;
  return n;
}

/** The texts of the text items of Vega marks of `role` ('mark', 'axis-title', 'title-text', 'legend-label', …). */
function texts(svg: string, role: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<g class="mark-text role-${role}[^"]*"[^>]*?(?:/>|>(.*?)</g>)`, 'g');
  for (const m of svg.matchAll(re))
    for (const t of (m[1] ?? '').matchAll(/<text[^>]*>(.*?)<\/text>/g)) out.push(t[1]!);
  return out;
}

function decode(png: Buffer) {
  const img = PNG.sync.read(png);
  const px = (x: number, y: number) =>
    Array.from(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4));
  return { width: img.width, height: img.height, px, colorType: png[25] };
}

async function rejects(p: Promise<unknown>, what = 'rejects'): Promise<void> {
  let ok = false;
  try {
    await p;
  } catch {
    ok = true;
  }
  assert.ok(ok, what);
}

const tmp = () => mkdtempSync(join(tmpdir(), 'wgrad-report-'));

test('densityChart: one filled curve per group, threshold rule with its label, titles', async () => {
  const svg = svgOk(
    await densityChart({
      groups: [
        { name: 'normal', values: [0.1, 0.2, 0.22, 0.3, 0.25, 0.18] },
        { name: 'anomalous', values: [0.6, 0.7, 0.8, 0.75] },
        { name: 'empty', values: [] },
      ],
      threshold: 0.45,
      title: 'Scores by class',
      xTitle: 'anomaly score',
    }),
  );
  assert.is(marks(svg, 'line'), 2);
  assert.is(marks(svg, 'area'), 2);
  assert.is(marks(svg, 'rule'), 1);
  assert.equal(texts(svg, 'mark'), ['threshold = 0.45']);
  assert.equal(texts(svg, 'title-text'), ['Scores by class']);
  assert.ok(texts(svg, 'axis-title').includes('anomaly score'));
  assert.ok(texts(svg, 'axis-title').includes('density'));
  assert.equal(texts(svg, 'legend-label'), ['normal', 'anomalous']);
  // No threshold: no rule; a custom label replaces the default one.
  const plain = await densityChart({ groups: [{ name: 'a', values: [1, 2, 3] }], title: 't', xTitle: 'x' });
  assert.is(marks(plain, 'rule'), 0);
  assert.is(marks(plain, 'line'), 1);
  assert.equal(texts(plain, 'legend-label'), [], 'no legend for one group');
  const labelled = await densityChart({
    groups: [{ name: 'a', values: [1, 2, 3] }],
    threshold: 2.9,
    thresholdLabel: 'F1-optimal',
    title: 't',
    xTitle: 'x',
  });
  assert.equal(texts(labelled, 'mark'), ['F1-optimal']);
  await rejects(densityChart({ groups: [{ name: 'a', values: [Number.NaN] }], title: 't', xTitle: 'x' }));
});

test('histogramChart: one bar per non-empty bin and group on common bins', async () => {
  const svg = svgOk(
    await histogramChart({
      groups: [
        { name: 'a', values: [0, 0, 1] },
        { name: 'b', values: [2, 2, 2, 3] },
      ],
      bins: 3,
      threshold: 1.5,
      title: 'Histogram',
      xTitle: 'value',
      normalize: 'count',
    }),
  );
  // bins [0,1) [1,2) [2,3]: a → 2, 1; b → 4 (3 falls in the closed last bin)
  assert.is(marks(svg, 'rect'), 3);
  assert.is(marks(svg, 'rule'), 1);
  assert.ok(texts(svg, 'axis-title').includes('count'));
  assert.ok(
    svg.includes('aria-label="value: 0; count: 2; x1: 1; group: a"'),
    'bar values in the aria labels',
  );
  const dens = await histogramChart({
    groups: [{ name: 'a', values: [0, 0, 1, 1] }],
    bins: 2,
    title: 'h',
    xTitle: 'v',
  });
  // density: 2 / (4 · 0.5) = 1
  assert.ok(dens.includes('v: 0; density: 1; x1: 0.5; group: a'), 'density normalisation');
  assert.ok(texts(dens, 'axis-title').includes('density'));
});

test('rocChart and prChart: curve, chance line, AUC/AP in the subtitle', async () => {
  const scores = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.05, 0.6];
  const labels = [0, 0, 1, 1, 0, 1, 0, 1];
  const roc = rocCurve(scores, labels);
  const svg = svgOk(await rocChart({ fpr: roc.x, tpr: roc.y, auc: rocAuc(scores, labels) }));
  assert.is(marks(svg, 'line'), 2, 'curve and diagonal');
  assert.is(marks(svg, 'area'), 1);
  assert.equal(texts(svg, 'title-text'), ['ROC curve']);
  assert.equal(texts(svg, 'title-subtitle'), [`AUC = ${formatNumber(rocAuc(scores, labels))}`]);
  assert.ok(texts(svg, 'axis-title').includes('False positive rate'));
  assert.ok(texts(svg, 'axis-title').includes('True positive rate'));
  // Many tied FPR values (vertical steps) must not be stacked: the plot keeps its size.
  const n = 2000;
  const big = rocCurve(
    Array.from({ length: n }, (_, i) => (i % 7) + (i % 3 === 0 ? 2 : 0)),
    Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0)),
  );
  svgOk(await rocChart({ fpr: big.x, tpr: big.y }));

  const pr = prCurve(scores, labels);
  const p = svgOk(await prChart({ recall: pr.x, precision: pr.y, ap: prAuc(scores, labels) }));
  assert.is(marks(p, 'line'), 1);
  assert.is(marks(p, 'rule'), 1, 'chance baseline');
  assert.equal(texts(p, 'mark'), ['chance = 0.5']);
  assert.equal(texts(p, 'title-subtitle'), [`AP = ${formatNumber(prAuc(scores, labels))}`]);
  assert.ok(texts(p, 'axis-title').includes('Recall'));
  const noBase = await prChart({ recall: [0.5, 0.9], precision: [1, 0.8], title: 'PR' });
  assert.is(marks(noBase, 'rule'), 0, 'no baseline without recall 1');
  await rejects(rocChart({ fpr: [0, 1], tpr: [0] }));
});

test('lossChart / lineChart: one line per series, points for short series, log axes drop values ≤ 0', async () => {
  const x = Array.from({ length: 100 }, (_, i) => i);
  const svg = svgOk(
    await lossChart({
      series: [
        { name: 'train', x, y: x.map((i) => 1 / (i + 1)) },
        { name: 'validation', x, y: x.map((i) => (i === 5 ? 0 : i === 6 ? Number.NaN : 1.2 / (i + 1))) },
      ],
      xTitle: 'step',
      yTitle: 'loss',
      logY: true,
    }),
  );
  assert.is(marks(svg, 'line'), 2);
  assert.is(marks(svg, 'symbol'), 0, 'no point markers on long curves');
  assert.equal(texts(svg, 'title-text'), ['Training curves']);
  assert.equal(texts(svg, 'legend-label'), ['train', 'validation']);
  assert.ok(texts(svg, 'axis-title').includes('loss'));
  assert.ok(!svg.includes('NaN'), 'non-finite and non-positive values left out');

  const sweep = svgOk(
    await lineChart({
      series: [
        { name: 'ROC AUC', x: [2, 4, 8, 16], y: [0.8, 0.86, 0.91, 0.93] },
        { name: 'PR AUC', x: [2, 4, 8, 16], y: [0.5, 0.6, 0.7, 0.74] },
      ],
      title: 'Latent size sweep',
      xTitle: 'latent size',
      yTitle: 'score',
      logX: true,
    }),
  );
  assert.is(marks(sweep, 'line'), 2);
  assert.is(marks(sweep, 'symbol'), 8, 'a marker per point');
  assert.equal(texts(sweep, 'axis-label').slice(0, 4), ['2', '4', '8', '16'], 'ticks at the swept values');
  await rejects(
    lineChart({ series: [{ name: 'a', x: [1, 2], y: [1] }], title: 't', xTitle: 'x', yTitle: 'y' }),
  );
});

test('scatterChart: a symbol per point coloured by label, legend in numeric order, subsampling', async () => {
  const points = Array.from({ length: 30 }, (_, i) => ({
    x: Math.cos(i),
    y: Math.sin(i * 1.3),
    label: [10, 2, 1][i % 3]!,
  }));
  const svg = svgOk(await scatterChart({ points, title: 'Latent space', legendTitle: 'class' }));
  assert.is(marks(svg, 'symbol'), 30);
  assert.equal(texts(svg, 'legend-label'), ['1', '2', '10']);
  assert.equal(texts(svg, 'legend-title'), ['class']);
  assert.equal(texts(svg, 'title-text'), ['Latent space']);
  const fills = new Set(
    [...svg.matchAll(/<path transform="translate[^>]*fill="(#[0-9a-f]+)"/g)].map((m) => m[1]),
  );
  assert.is(fills.size, 3, 'three class colours');
  const sub = await scatterChart({ points, title: 's', maxPoints: 20 });
  assert.is(marks(sub, 'symbol'), 20);
  assert.equal(texts(sub, 'title-subtitle'), ['showing 20 of 30 points']);
  const strings = await scatterChart({
    points: points.map((p, i) => ({ ...p, label: i % 2 ? 'odd' : 'even' })),
    title: 's',
  });
  assert.equal(texts(strings, 'legend-label'), ['even', 'odd']);
});

test('chart text is escaped', async () => {
  const svg = svgOk(
    await densityChart({ groups: [{ name: 'a<b', values: [1, 2] }], title: 'x & <y>', xTitle: '"q"' }),
  );
  assert.ok(svg.includes('x &amp; &lt;y&gt;'));
  assert.ok(!svg.includes('<y>'));
});

test('imageGrid: layout, padding, value mapping, scale, invert, grey and RGB PNGs', () => {
  // three 2×2 grey images in 2 columns with 1 px padding: 7×7
  const imgs = Float32Array.from([0, 0.5, 1, 0.25, 2, -1, Number.NaN, 1, 0.1, 0.2, 0.3, 0.4]);
  const png = imageGrid(imgs, 3, 1, 2, 2, { cols: 2, pad: 1 });
  const d = decode(png);
  assert.is(d.colorType, 0, 'greyscale PNG');
  assert.is(d.width, 7);
  assert.is(d.height, 7);
  assert.equal(d.px(0, 0), [255, 255, 255, 255], 'white padding');
  assert.equal([d.px(1, 1)[0], d.px(2, 1)[0], d.px(1, 2)[0], d.px(2, 2)[0]], [0, 128, 255, 64]);
  assert.equal(
    [d.px(4, 1)[0], d.px(5, 1)[0], d.px(4, 2)[0], d.px(5, 2)[0]],
    [255, 0, 0, 255],
    'clamped, NaN → 0',
  );
  assert.equal([d.px(1, 4)[0], d.px(2, 5)[0]], [26, 102], 'third image on the second row');
  assert.equal(d.px(4, 4), [255, 255, 255, 255], 'empty slot is padding');
  assert.equal(d.px(3, 1), [255, 255, 255, 255], 'gap between columns');

  const inv = decode(imageGrid(imgs, 3, 1, 2, 2, { cols: 3, pad: 0, invert: true, scale: 2 }));
  assert.is(inv.width, 12);
  assert.is(inv.height, 4);
  assert.equal(
    [inv.px(0, 0)[0], inv.px(1, 1)[0], inv.px(2, 0)[0], inv.px(3, 1)[0]],
    [255, 255, 128, 128],
    '2× nearest',
  );
  const padded = decode(imageGrid(imgs, 3, 1, 2, 2, { cols: 3, invert: true }));
  assert.is(padded.px(0, 0)[0], 204, 'light grey padding for inverted grids');

  // two 1×2 RGB images, planar (CHW): R, G, B rows of 2 pixels each
  const rgb = Float32Array.from([1, 0, 0, 1, 0, 0, 0, 0.5, 0.2, 0.2, 0.2, 1]);
  const r = decode(imageGrid(rgb, 2, 3, 1, 2, { cols: 2, pad: 0 }));
  assert.is(r.colorType, 2, 'RGB PNG');
  assert.equal([r.width, r.height], [4, 1]);
  assert.equal(r.px(0, 0), [255, 0, 0, 255]);
  assert.equal(r.px(1, 0), [0, 255, 0, 255]);
  assert.equal(r.px(2, 0), [0, 51, 51, 255]);
  assert.equal(r.px(3, 0), [128, 51, 255, 255]);
  assert.throws(() => imageGrid(imgs, 3, 2, 2, 1), /c must be 1/);
  assert.throws(() => imageGrid(imgs, 4, 1, 2, 2), /not 4×1×2×2/);
});

test('heatmapPng: colormap endpoints, per-image and global normalisation', () => {
  assert.equal(colormap('inferno', 0), [0, 0, 4]);
  assert.equal(colormap('inferno', 1), [252, 255, 164]);
  assert.equal(colormap('viridis', 0), [68, 1, 84]);
  assert.equal(colormap('viridis', 1), [253, 231, 37]);
  assert.equal(colormap('viridis', 2), [253, 231, 37], 'clamped');
  // matplotlib: inferno(0.5) = #bc3754, viridis(0.5) = #21918c
  const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) <= 3);
  assert.ok(near(colormap('inferno', 0.5), [188, 55, 84]), `${colormap('inferno', 0.5)}`);
  assert.ok(near(colormap('viridis', 0.5), [33, 145, 140]), `${colormap('viridis', 0.5)}`);

  // two 1×3 maps: [0, 1, 2] and [0, 2, 4]
  const v = Float32Array.from([0, 1, 2, 0, 2, 4]);
  const img = decode(heatmapPng(v, 2, 1, 3, { cols: 2, pad: 0 }));
  assert.is(img.colorType, 2);
  assert.equal([img.width, img.height], [6, 1]);
  assert.equal(img.px(0, 0).slice(0, 3), [0, 0, 4], 'per-image minimum');
  assert.equal(img.px(2, 0).slice(0, 3), [252, 255, 164], 'per-image maximum');
  assert.equal(img.px(5, 0).slice(0, 3), [252, 255, 164]);
  assert.equal(img.px(1, 0), img.px(4, 0), 'same relative value, same colour');
  const g = decode(heatmapPng(v, 2, 1, 3, { cols: 2, pad: 0, colormap: 'viridis', normalize: 'global' }));
  assert.equal(g.px(2, 0).slice(0, 3), colormap('viridis', 0.5), 'global: 2 of 0..4');
  assert.equal(g.px(5, 0).slice(0, 3), [253, 231, 37]);
  assert.equal(g.px(2, 0), g.px(4, 0), 'equal values, equal colours');
  const fixed = decode(heatmapPng(v, 2, 1, 3, { cols: 2, pad: 0, range: [0, 8] }));
  assert.equal(fixed.px(5, 0).slice(0, 3), colormap('inferno', 0.5));
  const flat = decode(heatmapPng(new Float32Array(4).fill(3), 1, 2, 2, { pad: 0 }));
  assert.equal(flat.px(1, 1).slice(0, 3), [0, 0, 4], 'constant map → low end, no NaN');
});

test('overlayPng: heat blended over the dimmed image, image shows where the heat is 0', () => {
  const img = Float32Array.from([1, 1, 0.5, 0]);
  const heat = Float32Array.from([0, 1, 0, 0.5]);
  const d = decode(overlayPng(img, heat, 1, 1, 2, 2, { pad: 0, alpha: 1, dim: 0.5 }));
  assert.equal(d.px(0, 0).slice(0, 3), [128, 128, 128], 'no heat: dimmed image');
  assert.equal(d.px(1, 0).slice(0, 3), [252, 255, 164], 'full heat, alpha 1: colormap top');
  assert.equal(d.px(0, 1).slice(0, 3), [64, 64, 64]);
  const mid = colormap('inferno', 0.5).map((c) => Math.round(c * 0.5));
  assert.equal(d.px(1, 1).slice(0, 3), mid, 'half heat over black: half-opaque colour');
});

test('pngDataUri and writePng (atomic: no temporary files left, failures clean up)', async () => {
  const png = imageGrid(Float32Array.from([0, 1, 1, 0]), 1, 1, 2, 2, { pad: 0 });
  const uri = pngDataUri(png);
  assert.ok(uri.startsWith('data:image/png;base64,iVBORw0KGgo'));
  assert.equal(Buffer.from(uri.split(',')[1]!, 'base64'), png);
  const dir = tmp();
  try {
    await writePng(join(dir, 'a.png'), png);
    await writePng(join(dir, 'a.png'), png); // overwrite
    await writePng(join(dir, 'sub', 'b.png'), png); // creates folders
    assert.equal(readdirSync(dir).sort(), ['a.png', 'sub']);
    assert.equal(readFileSync(join(dir, 'a.png')), png);
    mkdirSync(join(dir, 'taken'));
    await rejects(writeFileAtomic(join(dir, 'taken'), 'x'), 'renaming over a folder fails');
    assert.equal(readdirSync(dir).sort(), ['a.png', 'sub', 'taken'], 'temporary file removed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('formatNumber, slugify, scopeSvgIds, compactSvg', () => {
  assert.is(
    compactSvg('<path d="M1.23456,2.5e-7L3,-4.4444" transform="translate(1.006,2)"/><text>0.12345</text>'),
    '<path d="M1.23,0L3,-4.44" transform="translate(1.01,2)"/><text>0.12345</text>',
  );
  assert.is(formatNumber(0.953123), '0.9531');
  assert.is(formatNumber(12000), '12,000');
  assert.is(formatNumber(784), '784');
  assert.is(formatNumber(1.234e-6), '1.23e-6');
  assert.is(formatNumber(1234.5678), '1235');
  assert.is(formatNumber(123456.78), '123,456.8');
  assert.is(formatNumber(Number.NaN), 'NaN');
  assert.is(formatNumber(-Infinity), '−∞');
  assert.is(formatNumber(0), '0');
  assert.is(slugify('ROC curve (test set) — Café VAE'), 'roc-curve-test-set-cafe-vae');
  assert.is(slugify('!!!'), 'section');
  assert.is(
    scopeSvgIds('<svg><clipPath id="clip1"/><g clip-path="url(#clip1)"><use href="#clip1"/></g></svg>', 's0'),
    '<svg><clipPath id="s0-clip1"/><g clip-path="url(#s0-clip1)"><use href="#s0-clip1"/></g></svg>',
  );
});

test('writeReport: self-contained HTML, metrics.json, chart and image files, atomic', async () => {
  const dir = tmp();
  try {
    const roc = await rocChart({ fpr: [0, 0.5, 1], tpr: [0, 1, 1], auc: 0.75 });
    const png = imageGrid(new Float32Array(2 * 4 * 4).fill(0.5), 2, 1, 4, 4, { cols: 2 });
    writeFileSync(join(dir, 'existing.png'), png);
    const files = await writeReport(dir, {
      title: 'MNIST VAE <anomaly>',
      subtitle: 'digit 0 held out',
      metrics: {
        rocAuc: 0.953123,
        steps: 12000,
        lr: 1.234e-6,
        model: 'conv-vae',
        best: true,
        broken: Number.NaN,
      },
      sections: [
        {
          title: 'ROC curve',
          text: 'First `score` paragraph.\n\nSecond <script>alert(1)</script>.',
          svg: roc,
        },
        { title: 'ROC curve', svg: roc },
        { title: 'Samples', png },
        { title: 'Existing image', png: 'existing.png' },
        {
          title: 'Sweep',
          table: {
            columns: ['latent', 'AUC'],
            rows: [
              [2, 0.81234],
              [4, null],
            ],
          },
        },
      ],
    });
    assert.is(files.html, join(dir, 'report.html'));
    assert.equal(
      files.assets.map((f) => f.slice(dir.length + 1)),
      ['roc-curve.svg', 'roc-curve-2.svg', 'samples.png'],
    );
    assert.equal(readdirSync(dir).sort(), [
      'existing.png',
      'metrics.json',
      'report.html',
      'roc-curve-2.svg',
      'roc-curve.svg',
      'samples.png',
    ]);
    assert.is(readFileSync(join(dir, 'roc-curve.svg'), 'utf8'), roc);
    assert.equal(readFileSync(join(dir, 'samples.png')), png);

    const metrics = JSON.parse(readFileSync(files.metrics, 'utf8'));
    assert.equal(metrics, {
      rocAuc: 0.953123,
      steps: 12000,
      lr: 1.234e-6,
      model: 'conv-vae',
      best: true,
      broken: null,
    });
    assert.ok(readFileSync(files.metrics, 'utf8').includes('\n  "rocAuc": 0.953123,'), 'pretty-printed');

    const html = readFileSync(files.html, 'utf8');
    assert.ok(html.startsWith('<!doctype html>'));
    assert.ok(html.includes('<title>MNIST VAE &lt;anomaly&gt;</title>'));
    for (const s of [
      '<td>rocAuc</td>',
      '0.9531',
      '12,000',
      '1.23e-6',
      'conv-vae',
      'true',
      'NaN',
      'digit 0 held out',
    ])
      assert.ok(html.includes(s), `html shows ${s}`);
    assert.is((html.match(/<svg /g) ?? []).length, 2, 'charts inline');
    assert.is((html.match(/src="data:image\/png;base64,/g) ?? []).length, 2, 'images as data URIs');
    assert.ok(html.includes(pngDataUri(png)));
    assert.ok(html.includes('<code>score</code>'));
    assert.ok(html.includes('&lt;script&gt;') && !html.includes('<script>'), 'text escaped');
    assert.ok(
      html.includes('<td class="num">0.8123</td>') && html.includes('<td class="num">—</td>'),
      'table cells',
    );
    assert.ok(!/(src|href)="(?!data:|#)/.test(html), 'no external references');
    assert.ok(html.includes('id="roc-curve-2"'));

    await rejects(
      writeReport(dir, { title: 't', metrics: {}, sections: [{ title: 'x', png: 'missing.png' }] }),
    );
    assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temporary files');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
