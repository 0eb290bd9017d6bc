// What both device modules (device-node.ts under Dawn, device-browser.ts with navigator.gpu) do with an
// adapter once they have one: describe it, and request the device wgrad runs on. No Node APIs.
import type { AdapterSummary } from './gpu.js';

type Info = GPUAdapterInfo & {
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  isFallbackAdapter?: boolean;
};

/** The adapter as `adapterSummary()` reports it (`backend` and `featureLevel` are the caller's). */
export function summarize(
  adapter: GPUAdapter,
  backend: string,
  featureLevel: AdapterSummary['featureLevel'],
  wgslFeatures?: { has(name: string): boolean },
): AdapterSummary {
  const info = adapter.info as Info | undefined;
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s?.length);
  const sgMin = info?.subgroupMinSize;
  return {
    backend,
    description: info ? parts.join(' / ') || 'unnamed adapter' : 'unknown adapter',
    isFallback: Boolean(
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? info?.isFallbackAdapter,
    ),
    featureLevel,
    subgroupSize: sgMin && sgMin === info?.subgroupMaxSize ? sgMin : undefined,
    storageTextureReads: wgslFeatures?.has('readonly_and_readwrite_storage_textures') ?? false,
  };
}

/**
 * The device wgrad uses on `adapter`: every optional feature it can use (timestamp-query, shader-f16,
 * subgroups, plus `extra` where the adapter has them) and the adapter's full storage and workgroup limits.
 */
export function requestWgradDevice(adapter: GPUAdapter, extra: string[] = []): Promise<GPUDevice> {
  const wanted = ['timestamp-query', 'shader-f16', 'subgroups', ...extra].filter((f) =>
    adapter.features.has(f),
  ) as GPUFeatureName[];
  const l = adapter.limits;
  return adapter.requestDevice({
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
}
