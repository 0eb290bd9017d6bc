// The reporting layer: SVG charts (Vega-Lite, rendered headlessly), PNG image grids and heatmaps, and the
// self-contained HTML report with metrics.json.
export * from './charts.js';
export * from './format.js';
export * from './fs.js';
export * from './html.js';
export * from './images.js';
