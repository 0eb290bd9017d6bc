// Shared test helpers: GPU tests that must not leak, conversion between GPU tensors and CPU references,
// and gradient checks against finite differences of the float64 reference.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memory, scope, sync, type Tensor, tensor } from '@wgrad/tensor';
import * as R from '@wgrad/tensor/reference';
import { suite } from 'uvu';

export { R };

/**
 * A uvu suite whose tests run inside `scope()` and fail if, after the scope, more GPU buffers or tensors are
 * alive than before the test (so every test proves it leaks nothing).
 */
export function gpuSuite(name: string) {
  const s = suite(name);
  const wrapped = (title: string, fn: () => unknown | Promise<unknown>) =>
    s(title, async () => {
      await sync();
      const before = memory();
      await scope(async () => {
        await fn();
      });
      await sync();
      const after = memory();
      if (after.liveTensors !== before.liveTensors || after.buffersInUse !== before.buffersInUse)
        throw new Error(
          `leak in '${title}': live tensors ${before.liveTensors} -> ${after.liveTensors}, buffers ${before.buffersInUse} -> ${after.buffersInUse}`,
        );
    });
  return Object.assign(wrapped, { run: () => s.run(), skip: s.skip, only: s.only });
}

/** Uploads a reference tensor. */
export function fromRef(r: R.RefTensor, opts: { requiresGrad?: boolean } = {}): Tensor {
  return tensor(Float32Array.from(r.data), { shape: r.shape, requiresGrad: opts.requiresGrad ?? false });
}

/** Reads a GPU tensor back as a reference tensor. */
export async function toRef(t: Tensor): Promise<R.RefTensor> {
  return R.ref([...t.shape], Float64Array.from(await t.toArray()));
}

/** A random reference tensor whose values are exactly representable in float32. */
export function randRef(shape: number[], seed: number, lo = -1, hi = 1): R.RefTensor {
  const r = R.randomRef(shape, seed, lo, hi);
  return R.ref(shape, Float32Array.from(r.data));
}

/** Compares a GPU tensor to a reference (shape and values). */
export async function expectClose(
  actual: Tensor,
  expected: R.RefTensor,
  what: string,
  rtol = 1e-4,
  atol = 1e-5,
): Promise<void> {
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i]))
    throw new Error(`${what}: shape [${actual.shape}] != expected [${expected.shape}]`);
  R.assertClose(await actual.toArray(), expected.data, { rtol, atol, what });
}

/**
 * Checks forward and backward of `gpuFn` against `refFn`: forward values against the reference, and every
 * input gradient (for upstream gradient `up`) against central differences of the float64 reference.
 */
export async function checkGrad(
  what: string,
  inputs: R.RefTensor[],
  gpuFn: (xs: Tensor[]) => Tensor,
  refFn: (xs: R.RefTensor[]) => R.RefTensor,
  opts: { rtol?: number; atol?: number; seed?: number; eps?: number } = {},
): Promise<void> {
  const { rtol = 1e-3, atol = 1e-4, seed = 7 } = opts;
  const xs = inputs.map((r) => fromRef(r, { requiresGrad: true }));
  const y = gpuFn(xs);
  const yRef = refFn(inputs);
  await expectClose(y, yRef, `${what} forward`, 1e-4, 1e-5);
  const up = randRef(yRef.shape, seed);
  y.backward(fromRef(up));
  const num = R.numericGrad(refFn, inputs, up, opts.eps ?? 1e-6);
  for (let i = 0; i < xs.length; i++) {
    const g = xs[i]!.grad;
    if (!g) throw new Error(`${what}: input ${i} got no gradient`);
    await expectClose(g, num[i]!, `${what} d/dx${i}`, rtol, atol);
  }
}

/** A fresh temp folder (name starting with `prefix`) for `fn`, removed afterwards. */
export async function withTempDir(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface FixtureRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The stdout lines that start with '{', parsed as JSON. */
  json: unknown[];
}

/**
 * Runs `test/fixtures/<script>` in a child Node process (TypeScript through tsx, like the tests), with `args`,
 * `--expose-gc` when `gc` is set, and kills it with SIGKILL after `timeoutMs` (rejecting: it hung). Resolves
 * when it exits, with its output and the JSON lines it printed; a JSON line that does not parse rejects.
 */
export function runFixture(
  script: string,
  args: string[] = [],
  opts: { gc?: boolean; timeoutMs?: number } = {},
): Promise<FixtureRun> {
  const root = new URL('..', import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        ...(opts.gc ? ['--expose-gc'] : []),
        '--conditions=source',
        '--import',
        'tsx',
        `test/fixtures/${script}`,
        ...args,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer =
      opts.timeoutMs &&
      setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(
            `${script} ${args.join(' ')} hung (killed after ${opts.timeoutMs} ms); stdout:\n${stdout}\nstderr:\n${stderr}`,
          ),
        );
      }, opts.timeoutMs);
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    // 'close', not 'exit': stdout may still hold the child's last lines at 'exit'.
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      try {
        const json = stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as unknown);
        resolve({ code, signal, stdout, stderr, json });
      } catch (e) {
        reject(new Error(`${script}: ${(e as Error).message}; stdout:\n${stdout}\nstderr:\n${stderr}`));
      }
    });
  });
}

/** runFixture, for a script that must exit 0 and print one JSON report line: that report. */
export async function fixtureReport<T>(
  script: string,
  args: string[] = [],
  opts: { gc?: boolean } = {},
): Promise<T> {
  const r = await runFixture(script, args, { timeoutMs: 600_000, ...opts }); // a hung fixture must not hang npm test
  if (r.code !== 0 || !r.json.length)
    throw new Error(`${script} ${args.join(' ')}: exit ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.json[0] as T;
}
