// The data pipeline of @wgrad/nn: datasets, the DataLoader, and readers for IDX, PNG and CSV manifests.
// ./core.js is the platform-independent part; the readers and loaders below use Node APIs (fs, zlib).
export * from './core.js';
export * from './csv.js';
export * from './digits.js';
export * from './idx.js';
export * from './mnist.js';
export * from './png.js';
