// A single self-contained HTML report (charts inline as SVG, images as data URIs) plus metrics.json, and each
// chart and image as its own file beside them so that a README can embed them.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { formatNumber } from './format.js';
import { slugify, writeFileAtomic } from './fs.js';
import { pngDataUri } from './images.js';

export type MetricValue = number | string | boolean | null;
export type Cell = number | string | boolean | null | undefined;

export interface ReportTable {
  columns: string[];
  rows: Cell[][];
}

export interface ReportSection {
  title: string;
  /** Plain text; blank lines separate paragraphs and `backticks` mark code. */
  text?: string;
  /** A chart, e.g. from densityChart(): inlined, and written to `<slug>.svg`. */
  svg?: string;
  /** A PNG: bytes (embedded, and written to `<slug>.png`) or the path of one relative to the report folder. */
  png?: Uint8Array | string;
  /** Alt text of the image (default: the section title). */
  alt?: string;
  table?: ReportTable;
  /** File-name stem of the section's files (default: a slug of the title, made unique). */
  slug?: string;
}

export interface ReportOptions {
  title: string;
  subtitle?: string;
  metrics: Record<string, MetricValue>;
  sections: ReportSection[];
}

export interface ReportFiles {
  /** Absolute paths of report.html and metrics.json. */
  html: string;
  metrics: string;
  /** Absolute paths of the charts and images written beside them, in section order. */
  assets: string[];
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c]!);
}

/** A cell or metric as display text: numbers through formatNumber, null/undefined as an em dash. */
export function formatValue(v: Cell): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return formatNumber(v);
  return String(v);
}

function paragraphs(text: string): string {
  return text
    .trim()
    .split(/\n\s*\n/)
    .map((p) => `<p>${escapeHtml(p.trim()).replace(/`([^`]+)`/g, '<code>$1</code>')}</p>`)
    .join('\n');
}

function table(columns: string[], rows: Cell[][], cls = ''): string {
  // Columns of numbers (blanks allowed) are right-aligned, header included.
  const numeric = columns.map(
    (_, j) =>
      rows.some((r) => typeof r[j] === 'number') &&
      rows.every((r) => typeof r[j] === 'number' || r[j] == null),
  );
  const num = (j: number) => (numeric[j] ? ' class="num"' : '');
  const head = `<tr>${columns.map((c, j) => `<th${num(j)}>${escapeHtml(c)}</th>`).join('')}</tr>`;
  const body = rows
    .map((r) => `<tr>${r.map((v, j) => `<td${num(j)}>${escapeHtml(formatValue(v))}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/**
 * Prefixes every id in an SVG (and the url(#…)/href="#…" references to them), so that several inline SVGs
 * with the same generated ids (Vega's clip paths, gradients) do not collide in one HTML document.
 */
export function scopeSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/^\s*<\?xml[^>]*>\s*/, '')
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: #1d2330; font: 15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 32px 24px 64px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header .subtitle { margin: 0; color: #5a6272; }
section { background: #fff; border: 1px solid #e3e6eb; border-radius: 10px; padding: 20px 24px; margin-top: 20px; }
h2 { margin: 0 0 12px; font-size: 18px; font-weight: 620; }
p { margin: 0 0 10px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f0f2f5; padding: 1px 4px; border-radius: 4px; }
figure { margin: 12px 0 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; display: block; }
figure img { max-width: 100%; display: block; image-rendering: pixelated; border: 1px solid #e3e6eb; }
table { border-collapse: collapse; margin-top: 8px; font-size: 14px; }
th, td { padding: 5px 14px 5px 0; text-align: left; border-bottom: 1px solid #eceef1; vertical-align: top; }
th { font-weight: 600; color: #5a6272; font-size: 12px; text-transform: uppercase; letter-spacing: 0.03em; }
th.num, td.num { text-align: right; }
td.num { font-variant-numeric: tabular-nums; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
table.metrics { min-width: 360px; }
table.metrics td, table.metrics th { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; text-align: left; }
table.metrics th { font-size: 11px; }
table.metrics td:first-child { color: #2c3445; padding-right: 40px; }
footer { margin-top: 28px; color: #8a909c; font-size: 12px; }
`;

/**
 * Writes `<dir>/report.html` (self-contained: metrics table, then the sections with inline SVG charts and PNG
 * data URIs), `<dir>/metrics.json` (every metric, pretty-printed; non-finite numbers as null), and each
 * section's chart as `<dir>/<slug>.svg` and image as `<dir>/<slug>.png`. Every file is written atomically.
 */
export async function writeReport(dir: string, o: ReportOptions): Promise<ReportFiles> {
  dir = resolve(dir);
  const used = new Set<string>(['report', 'metrics']);
  const assets: string[] = [];
  const parts: string[] = [];
  for (const [i, s] of o.sections.entries()) {
    let slug = slugify(s.slug ?? s.title);
    for (let k = 2; used.has(slug); k++) slug = `${slugify(s.slug ?? s.title)}-${k}`;
    used.add(slug);
    const body: string[] = [`<h2>${escapeHtml(s.title)}</h2>`];
    if (s.text) body.push(paragraphs(s.text));
    if (s.svg) {
      const file = join(dir, `${slug}.svg`);
      await writeFileAtomic(file, s.svg);
      assets.push(file);
      body.push(`<figure class="chart">${scopeSvgIds(s.svg, `s${i}`)}</figure>`);
    }
    if (s.png !== undefined) {
      let bytes: Uint8Array;
      if (typeof s.png === 'string') bytes = await readFile(resolve(dir, s.png));
      else {
        bytes = s.png;
        const file = join(dir, `${slug}.png`);
        await writeFileAtomic(file, bytes);
        assets.push(file);
      }
      body.push(
        `<figure class="image"><img src="${pngDataUri(bytes)}" alt="${escapeHtml(s.alt ?? s.title)}"></figure>`,
      );
    }
    if (s.table) body.push(table(s.table.columns, s.table.rows));
    parts.push(`<section id="${slug}">\n${body.join('\n')}\n</section>`);
  }
  const metricRows = Object.entries(o.metrics).map(([k, v]): Cell[] => [k, v]);
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(o.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>${escapeHtml(o.title)}</h1>
${o.subtitle ? `<p class="subtitle">${escapeHtml(o.subtitle)}</p>` : ''}
</header>
${metricRows.length ? `<section id="metrics">\n<h2>Metrics</h2>\n${table(['metric', 'value'], metricRows, 'metrics')}\n</section>` : ''}
${parts.join('\n')}
<footer>Generated ${escapeHtml(new Date().toISOString())} · metrics also in <code>metrics.json</code></footer>
</main>
</body>
</html>
`;
  const htmlPath = join(dir, 'report.html');
  const metricsPath = join(dir, 'metrics.json');
  const json = JSON.stringify(
    o.metrics,
    (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
    2,
  );
  await writeFileAtomic(metricsPath, `${json}\n`);
  await writeFileAtomic(htmlPath, html);
  return { html: htmlPath, metrics: metricsPath, assets };
}
