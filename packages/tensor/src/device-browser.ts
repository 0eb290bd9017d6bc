// Acquires a WebGPU device in a browser (or any host that has `navigator.gpu`) and installs it with setDevice.
// No Node APIs: this is the device module of the browser entry (index.browser.ts).
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
  const info = adapter.info as GPUAdapterInfo & {
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    isFallbackAdapter?: boolean;
  };
  const core = adapter.features.has('core-features-and-limits' as GPUFeatureName);
  const wanted = (['timestamp-query', 'shader-f16', 'subgroups'] as GPUFeatureName[]).filter((f) =>
    adapter.features.has(f),
  );
  if (core) wanted.push('core-features-and-limits' as GPUFeatureName);
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: wanted,
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    },
  });
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s?.length);
  const sgMin = info.subgroupMinSize;
  const summary: AdapterSummary = {
    backend: 'browser',
    description: parts.join(' / ') || 'unnamed adapter',
    isFallback: Boolean(info.isFallbackAdapter),
    featureLevel: core ? 'core' : 'compatibility',
    subgroupSize: sgMin && sgMin === info.subgroupMaxSize ? sgMin : undefined,
  };
  setDevice(device, summary);
  return summary;
}
