// @wgrad/tensor under Node: acquires the WebGPU device (Dawn) when the package loads, then exports the API.
import { acquireDevice } from './device-node.js';

export * from './api.js';
export { acquireDevice };

await acquireDevice();
