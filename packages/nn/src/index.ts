// @wgrad/nn: modules, initialisation, losses, optimizers, clipping, checkpoints and data loading.

export * from './checkpoint.js';
export * from './clip.js';
export * from './data/index.js';
export * from './layers.js';
export * from './loss.js';
export * from './module.js';
export * from './optim.js';
