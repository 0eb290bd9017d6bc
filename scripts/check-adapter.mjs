#!/usr/bin/env node
// Checks that Dawn (npm package `webgpu`) can find a WebGPU adapter on this machine.
//
//   node scripts/check-adapter.mjs                 default backend (Vulkan on Linux), then OpenGL ES compat
//   node scripts/check-adapter.mjs --vulkan-only   default backend only (setup.sh uses it to decide on apt)
//   node scripts/check-adapter.mjs --force-opengl  OpenGL compat backend only
//   add --verbose to see Dawn's own stderr output
//
// Prints one line describing the adapter and exits 0, or explains what failed and exits 1.
// Each backend is probed in a child process, so a driver that crashes or hangs while the adapter
// is requested cannot stop the other backend from being tried.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PROBE_TIMEOUT_MS = 60_000;
const RESULT_TAG = '@@wgrad-probe ';
// Dawn / Mesa messages that are expected on a headless machine and say nothing about success.
const HARMLESS = [/artificially reduced/, /XDG_RUNTIME_DIR/, /^\s*$/];

const defaultBackend =
  process.platform === 'linux' ? 'vulkan' : process.platform === 'darwin' ? 'metal' : 'd3d12';

const BACKENDS = {
  default: { label: `${defaultBackend} (default backend)`, flags: [], adapterOptions: {} },
  opengl: {
    label: 'opengl (compatibility, EGL surfaceless)',
    flags: ['backend=opengl'],
    adapterOptions: { featureLevel: 'compatibility' },
    env: { EGL_PLATFORM: 'surfaceless' },
  },
};

async function probe(name) {
  const backend = BACKENDS[name];
  for (const [k, v] of Object.entries(backend.env ?? {})) process.env[k] = v;
  const report = (result) => {
    process.stdout.write(`${RESULT_TAG}${JSON.stringify(result)}\n`);
    process.exit(0);
  };
  let webgpu;
  try {
    webgpu = await import('webgpu');
  } catch (err) {
    report({ ok: false, reason: `cannot load the 'webgpu' package (run npm ci): ${err.message}` });
  }
  Object.assign(globalThis, webgpu.globals);
  // Kept in a module-level variable: Dawn tears the instance down if it is garbage-collected.
  globalThis.__wgradGpu = webgpu.create(backend.flags);
  const adapter = await globalThis.__wgradGpu.requestAdapter(backend.adapterOptions);
  if (!adapter) report({ ok: false, reason: 'requestAdapter() returned null' });
  const info = adapter.info ?? {};
  let device;
  try {
    device = await adapter.requestDevice();
  } catch (err) {
    report({ ok: false, reason: `adapter found but requestDevice() failed: ${err.message}` });
  }
  device.destroy();
  report({
    ok: true,
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    fallback: info.isFallbackAdapter === true,
  });
}

function runProbe(name, verbose) {
  const backend = BACKENDS[name];
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--probe', name], {
    env: { ...process.env, ...backend.env },
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  const stderr = (child.stderr ?? '').split('\n');
  const noise = stderr.filter((line) => !HARMLESS.some((re) => re.test(line)));
  if (verbose) for (const line of stderr.filter(Boolean)) console.error(`  [${name}] ${line}`);
  const tagged = (child.stdout ?? '').split('\n').find((line) => line.startsWith(RESULT_TAG));
  if (tagged) return { ...JSON.parse(tagged.slice(RESULT_TAG.length)), noise };
  let reason;
  if (child.error?.code === 'ETIMEDOUT') reason = `probe timed out after ${PROBE_TIMEOUT_MS / 1000}s`;
  else if (child.error) reason = `probe could not run: ${child.error.message}`;
  else if (child.signal) reason = `probe crashed (signal ${child.signal})`;
  else reason = `probe exited with status ${child.status} without a result`;
  return { ok: false, reason, noise };
}

function describe(r) {
  const parts = [r.vendor, r.architecture, r.device].filter(Boolean).join(' / ');
  return [parts, r.description && `"${r.description}"`, r.fallback && '(software/fallback adapter)']
    .filter(Boolean)
    .join(' ');
}

async function main(argv) {
  const args = new Set(argv);
  const probeIdx = argv.indexOf('--probe');
  if (probeIdx >= 0) return probe(argv[probeIdx + 1]);
  if (args.has('--help') || args.has('-h')) {
    console.log('usage: node scripts/check-adapter.mjs [--vulkan-only | --force-opengl] [--verbose]');
    process.exit(0);
  }
  const verbose = args.has('--verbose');
  let order = ['default', 'opengl'];
  if (args.has('--vulkan-only')) order = ['default'];
  if (args.has('--force-opengl')) order = ['opengl'];
  const failures = [];
  for (const name of order) {
    const r = runProbe(name, verbose);
    if (r.ok) {
      console.log(`WebGPU adapter OK via ${BACKENDS[name].label}: ${describe(r)}`);
      process.exit(0);
    }
    failures.push(`  ${BACKENDS[name].label}: ${r.reason}`);
    if (!verbose) for (const line of r.noise.slice(-10)) failures.push(`    | ${line}`);
  }
  console.error(`No WebGPU adapter found. Tried:\n${failures.join('\n')}`);
  process.exit(1);
}

await main(process.argv.slice(2));
