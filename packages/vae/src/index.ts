// @wgrad/vae: VAEs and autoencoders for anomaly detection: models, loss, trainer, scores, metrics.

export * from './anomaly-report.js';
export * from './loss.js';
export * from './metrics.js';
export * from './models.js';
export * from './report/index.js';
export * from './score.js';
export * from './trainer.js';
