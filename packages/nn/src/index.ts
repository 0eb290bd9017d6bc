// @wgrad/nn: modules, initialisation, losses, optimizers, clipping, checkpoints and data loading.

export * from './checkpoint.js';
export * from './clip.js';
export * from './data/index.js';
export * from './layers.js';
export * from './loss.js';
export * from './module.js';
export * from './optim.js';
export {
  type ByteSource,
  bytesSource,
  type CheckpointContents,
  checkpointToBytes,
  encodeSafetensors,
  loadBytes,
  loadCheckpointBytes,
  parseSafetensorsHeader,
  SafetensorsError,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
  safetensorsDTypeToWgrad,
  saveBytes,
  tensorsFromBytes,
  tensorsToBytes,
} from './safetensors.js';
