// The platform-independent part of the data pipeline (no Node APIs): datasets, the DataLoader, the
// shuffling PRNG and the error type.
export * from './dataset.js';
export * from './errors.js';
export * from './loader.js';
export * from './rng.js';
