// Acquires a WebGPU device in a browser (or any host that has `navigator.gpu`) and installs it with setDevice.
// No Node APIs: this is the device module of the browser entry (index.browser.ts).
import { requestWgradDevice, summarize } from './adapter.js';
import { type AdapterSummary, setDevice } from './gpu.js';

export interface BrowserDeviceOptions extends GPURequestAdapterOptions {
  /** The GPU object to use (default `navigator.gpu`). */
  gpu?: GPU;
}

const HINT = [
  'WebGPU needs a browser that supports it in a secure context (https:// or http://localhost).',
  'Chromium without a GPU: start it with --enable-unsafe-webgpu (see the README section "In the browser").',
].join(' ');

/**
 * Requests an adapter (options as for `navigator.gpu.requestAdapter`, e.g. `{ featureLevel: 'compatibility' }`)
 * and a device with the adapter's full storage/workgroup limits and the optional features wgrad uses
 * (timestamp-query, shader-f16, subgroups), installs it, and returns what was found.
 */
export async function acquireDevice(opts: BrowserDeviceOptions = {}): Promise<AdapterSummary> {
  const { gpu: given, ...adapterOptions } = opts;
  const gpu = given ?? (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new Error(`wgrad: navigator.gpu is missing: this page has no WebGPU. ${HINT}`);
  const adapter = await gpu.requestAdapter(adapterOptions);
  if (!adapter)
    throw new Error(
      `wgrad: navigator.gpu.requestAdapter(${JSON.stringify(adapterOptions)}) found no adapter. ${HINT}`,
    );
  const core = adapter.features.has('core-features-and-limits' as GPUFeatureName);
  const device = await requestWgradDevice(adapter, core ? ['core-features-and-limits'] : []);
  const summary = summarize(adapter, 'browser', core ? 'core' : 'compatibility', gpu.wgslLanguageFeatures);
  setDevice(device, summary);
  return summary;
}
