// @wgrad/vae in a browser: models, the VAE loss, scores and metrics. The trainer (which writes history and
// checkpoint files), the HTML/PNG/chart report writers and the CLI are Node-only; a page writes its own
// training loop and downloads checkpoints with @wgrad/nn's checkpointToBytes.

export * from './loss.js';
export * from './metrics.js';
export * from './models.js';
export { formatNumber } from './report/format.js';
export * from './score.js';
