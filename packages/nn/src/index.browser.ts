// @wgrad/nn in a browser: everything but the Node-only parts (checkpoint files, the CSV/PNG/IDX/MNIST readers);
// checkpoints go to and from bytes in the same safetensors format (saveBytes/loadBytes,
// checkpointToBytes/loadCheckpointBytes), which a page downloads and uploads.

export * from './clip.js';
export * from './data/core.js';
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
