// Starts Debian's Chromium headless through playwright-core (never a downloaded browser) with WebGPU on, for
// the browser test, the README screenshot and the browser-vs-Node throughput numbers.
//
// Measured on this machine (Chromium 156, Mesa 25.0.7, no GPU, 2026-12-04): WebGPU needs only
// --enable-unsafe-webgpu in headless mode (without it requestAdapter() returns null). The adapter is then
// Chromium's bundled SwiftShader (software Vulkan, "google / swiftshader", isFallbackAdapter, subgroup size 4).
// Flags that switch Chromium's GL/compositing to Mesa's lavapipe (--enable-features=Vulkan --use-vulkan=native
// --use-angle=vulkan --ignore-gpu-blocklist, with playwright's --use-angle=swiftshader-webgl dropped) do not
// change the WebGPU adapter: chrome://gpu then shows llvmpipe for GL, and WebGPU stays on SwiftShader. The only
// lavapipe/llvmpipe-backed WebGPU adapter Chromium offered was Dawn's OpenGL ES one, in compatibility mode
// (--use-webgpu-adapter=opengles and requestAdapter({ featureLevel: 'compatibility' })); see CHROMIUM_GLES.
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.WGRAD_CHROMIUM ?? '/usr/bin/chromium';

/** No network here (and none wanted): nothing in the background, fresh temporary profile (playwright's). */
const QUIET = [
  '--no-sandbox', // Chromium refuses to start its sandbox as root
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * The flags that gave a WebGPU adapter (SwiftShader, core features). WGRAD_CHROMIUM_FLAGS (space-separated)
 * replaces them, to try others.
 */
export const CHROMIUM_WEBGPU =
  process.env.WGRAD_CHROMIUM_FLAGS !== undefined
    ? process.env.WGRAD_CHROMIUM_FLAGS.split(/\s+/).filter(Boolean)
    : ['--enable-unsafe-webgpu'];

/** Dawn's OpenGL ES backend on Mesa (llvmpipe through ANGLE on lavapipe): request featureLevel 'compatibility'. */
export const CHROMIUM_GLES = {
  flags: [
    '--enable-unsafe-webgpu',
    '--enable-features=Vulkan',
    '--use-vulkan=native',
    '--use-angle=vulkan',
    '--ignore-gpu-blocklist',
    '--use-webgpu-adapter=opengles',
  ],
  ignoreDefaultArgs: ['--use-angle=swiftshader-webgl', '--enable-unsafe-swiftshader'],
};

/** Why Chromium cannot run here, or null when the executable exists. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM)
    ? null
    : `${CHROMIUM} not found: install Debian's chromium (npm run setup does; or apt-get install chromium), or set WGRAD_CHROMIUM`;
}

export async function launchChromium(
  o: { flags?: string[]; ignoreDefaultArgs?: string[] } = {},
): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...QUIET, ...(o.flags ?? CHROMIUM_WEBGPU)],
    ignoreDefaultArgs: o.ignoreDefaultArgs ?? [],
    timeout: 60_000,
  });
}
