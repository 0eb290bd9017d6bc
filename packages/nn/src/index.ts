// @wgrad/nn: modules, initialisation, losses, optimizers, clipping, checkpoints and data loading. The Node
// entry: everything the browser entry has, plus checkpoint files and the CSV/PNG/IDX/MNIST readers.

export * from './checkpoint.js';
export * from './data/index.js';
export * from './index.browser.js';
