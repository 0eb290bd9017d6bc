// @wgrad/tensor in a browser: the same API as under Node, without Dawn or any Node API. Call
// `await acquireDevice()` (navigator.gpu) once before the first op.
export * from './api.js';
export { acquireDevice, type BrowserDeviceOptions } from './device-browser.js';
