// Shared benchmark helpers: command-line options, the run header, GPU timing, accuracy and markdown tables.
// Used by bench/matmul.ts (and later by the conv and training benches).
//
// Timing method (`measure`): one warm-up call (compiles the pipelines, touches the buffers) and a sync; then a
// calibration that grows the iteration count N until one batch takes ≥ the target time (0.5 s; --quick 0.2 s);
// then `reps` measurements (3; --quick 1), each encoding N iterations back-to-back and awaiting `sync()` once
// at the end. The reported time per iteration is the median of the reps. Cases compared with each other are
// measured interleaved (`measureAll`).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { adapterSummary, sync } from '@wgrad/tensor';

// ---------------------------------------------------------------------------------------------------------
// Options

export interface CommonOptions {
  /** Fewer and shorter measurements (smoke runs, CI). */
  quick: boolean;
  /** Where to write the results as JSON (null: don't). */
  json: string | null;
  /** Minimum seconds one measurement (N iterations + one sync) should take. */
  targetSeconds: number;
  /** Number of measurements; the median is reported. */
  reps: number;
}

type StringOpts = Record<string, { default?: string; help: string }>;

/**
 * Parses `--quick`, `--json FILE`, `--help` and the bench's own string options (`extra`). Exits with usage on
 * `--help` or an unknown option.
 */
export function parseBenchArgs<S extends StringOpts>(
  usage: string,
  extra: S,
  argv: string[] = process.argv.slice(2),
): CommonOptions & { [K in keyof S]: string | undefined } {
  const options: Record<string, { type: 'string' | 'boolean'; default?: string }> = {
    quick: { type: 'boolean' },
    json: { type: 'string' },
    help: { type: 'boolean' },
  };
  for (const [k, o] of Object.entries(extra))
    options[k] = o.default === undefined ? { type: 'string' } : { type: 'string', default: o.default };
  const help = [
    usage,
    'options:',
    '  --quick            fewer, shorter measurements',
    '  --json FILE        also write the results as JSON to FILE',
    ...Object.entries(extra).map(([k, o]) => `  ${`--${k} VALUE`.padEnd(18)} ${o.help}`),
  ].join('\n');
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${help}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(help);
    process.exit(0);
  }
  const quick = values.quick === true;
  const out: Record<string, unknown> = {
    quick,
    json: typeof values.json === 'string' ? values.json : null,
    targetSeconds: quick ? 0.2 : 0.5,
    reps: quick ? 1 : 3,
  };
  for (const k of Object.keys(extra)) out[k] = values[k];
  return out as CommonOptions & { [K in keyof S]: string | undefined };
}

// ---------------------------------------------------------------------------------------------------------
// Header / metadata

/**
 * A header line saying where `@wgrad/*` came from: `npm run bench*` runs the sources through tsx, whose keepNames
 * wrappers add ≈ 2 µs of host time per dispatch (README, host cost per dispatch); plain
 * `node --import tsx bench/….ts` resolves the built dist instead.
 */
export function packagesLine(): string {
  const fromSource = import.meta.resolve('@wgrad/tensor').includes('/src/');
  return `- packages: ${fromSource ? 'source through tsx (its keepNames wrappers add ≈ 2 µs of host time per dispatch)' : 'dist (built)'}`;
}

export interface BenchMeta {
  bench: string;
  device: string;
  backend: string;
  isFallback: boolean;
  featureLevel: string;
  date: string;
  node: string;
  platform: string;
  cpu: string;
  cpus: number;
  commit: string | null;
  env: Record<string, string>;
  argv: string[];
  timing: string;
}

/** What /proc/cpuinfo says about the CPU (Linux; nulls elsewhere): model name, vendor family/model numbers,
 * the AMD core generation those imply, and whether it has AVX2 / AVX-512F. The model name alone ("AMD EPYC"
 * under KVM) does not tell a Zen 4 from a Zen 5, whose AVX-512 units differ (PyTorch's speed with them). */
export interface CpuInfo {
  model: string;
  family: number | null;
  modelNumber: number | null;
  /** e.g. 'Zen 5' for AMD family 26; null when not known. */
  core: string | null;
  avx2: boolean | null;
  avx512f: boolean | null;
}

/** AMD core generations by family and model range (AMD's published family 23/25/26 ranges). */
const AMD_CORES: readonly [family: number, lo: number, hi: number, core: string][] = [
  [23, 0x00, 0xff, 'Zen / Zen 2'],
  [25, 0x00, 0x0f, 'Zen 3'],
  [25, 0x20, 0x2f, 'Zen 3'],
  [25, 0x40, 0x5f, 'Zen 3'],
  [25, 0x10, 0x1f, 'Zen 4'],
  [25, 0x60, 0x7f, 'Zen 4'],
  [25, 0xa0, 0xaf, 'Zen 4'],
  [26, 0x00, 0xff, 'Zen 5'],
];
const amdCore = (family: number, model: number): string | null =>
  AMD_CORES.find(([f, lo, hi]) => f === family && model >= lo && model <= hi)?.[3] ?? null;

export function cpuInfo(): CpuInfo {
  const fallback = os.cpus()[0]?.model.trim() ?? 'unknown';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
    const num = (name: string) => {
      const v = Number(field(name));
      return Number.isInteger(v) ? v : null;
    };
    const family = num('cpu family');
    const modelNumber = num('model');
    const flags = new Set((field('flags') ?? '').split(/\s+/));
    const amd = field('vendor_id') === 'AuthenticAMD';
    return {
      model: field('model name') ?? fallback,
      family,
      modelNumber,
      core: amd && family !== null && modelNumber !== null ? amdCore(family, modelNumber) : null,
      avx2: flags.has('avx2'),
      avx512f: flags.has('avx512f'),
    };
  } catch {
    return { model: fallback, family: null, modelNumber: null, core: null, avx2: null, avx512f: null };
  }
}

/** One line for a report: "AMD EPYC (family 26, model 2: Zen 5); avx2 yes, avx512f yes". */
export function cpuLine(c: CpuInfo = cpuInfo()): string {
  const yn = (b: boolean | null) => (b === null ? 'unknown' : b ? 'yes' : 'no');
  const id =
    c.family === null ? '' : ` (family ${c.family}, model ${c.modelNumber}${c.core ? `: ${c.core}` : ''})`;
  return `${c.model}${id}; avx2 ${yn(c.avx2)}, avx512f ${yn(c.avx512f)}`;
}

function gitCommit(): string | null {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return null;
  }
}

export function benchMeta(bench: string, opts: CommonOptions): BenchMeta {
  const a = adapterSummary();
  const env: Record<string, string> = {};
  for (const k of ['WGRAD_BACKEND', 'LP_NUM_THREADS', 'LP_NATIVE_VECTOR_WIDTH', 'MESA_SHADER_CACHE_DISABLE'])
    if (process.env[k] !== undefined) env[k] = process.env[k]!;
  return {
    bench,
    device: a.description,
    backend: a.backend,
    isFallback: a.isFallback,
    featureLevel: a.featureLevel,
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: cpuLine(),
    cpus: os.cpus().length,
    commit: gitCommit(),
    env,
    argv: process.argv.slice(2),
    timing: `median of ${opts.reps} measurement(s), each ≥ ${opts.targetSeconds} s of back-to-back iterations + one sync`,
  };
}

/** An environment's variables as `K=V` words, for headers; removed (undefined) ones left out. */
export const envWords = (env: Record<string, string | undefined>): string[] =>
  Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));

/** Markdown header lines for a run. */
export function formatHeader(title: string, m: BenchMeta): string {
  const envs = envWords(m.env);
  return [
    `## ${title}`,
    '',
    `- device: ${m.backend} — ${m.device}${m.isFallback ? ' (fallback adapter)' : ''}, feature level ${m.featureLevel}`,
    `- host: ${m.cpus} × ${m.cpu}; ${m.platform}`,
    `- date: ${m.date}; node ${m.node}; commit ${m.commit ?? 'unknown'}${envs.length ? `; ${envs.join(' ')}` : ''}`,
    `- timing: ${m.timing}`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Timing

export interface Timing {
  /** Median milliseconds per iteration. */
  ms: number;
  /** Milliseconds per iteration of every measurement. */
  samples: number[];
  /** Iterations per measurement. */
  iters: number;
  /** Seconds of the warm-up call (pipeline compile + first buffer use). */
  warmupSeconds: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Seconds to encode `run(iters)` and wait for the GPU to finish it. */
async function timeBatch(run: (iters: number) => void, iters: number): Promise<number> {
  const t0 = performance.now();
  run(iters);
  await sync();
  return (performance.now() - t0) / 1000;
}

export interface MeasureOptions {
  targetSeconds: number;
  reps: number;
  maxIters?: number;
}

/** Warm-up and calibration of one case: returns the iteration count for one measurement. */
async function calibrate(
  run: (iters: number) => void,
  opts: MeasureOptions,
): Promise<{ iters: number; warmupSeconds: number }> {
  await sync();
  const warmupSeconds = await timeBatch(run, 1);
  const maxIters = opts.maxIters ?? 100_000;
  // Grow N until one batch takes ≥ 40% of the target, then scale N to reach the target.
  let iters = 1;
  let t = await timeBatch(run, iters);
  while (t < opts.targetSeconds * 0.4 && iters < maxIters) {
    iters = Math.min(maxIters, Math.max(iters * 2, Math.ceil((iters * opts.targetSeconds * 0.5) / t)));
    t = await timeBatch(run, iters);
  }
  if (t < opts.targetSeconds) iters = Math.min(maxIters, Math.ceil((iters * opts.targetSeconds * 1.1) / t));
  return { iters, warmupSeconds };
}

/**
 * Times several cases that are to be compared: each is warmed up and calibrated, then the measurements are
 * interleaved (a b c, a b c, …) so that a change in machine load affects every case alike. Each `run` must
 * encode `iters` iterations of its work (no readback, no sync: the timer syncs once per measurement).
 */
export async function measureAll<K extends string>(
  runs: Record<K, (iters: number) => void>,
  opts: MeasureOptions,
): Promise<Record<K, Timing>> {
  const keys = Object.keys(runs) as K[];
  const cal = {} as Record<K, { iters: number; warmupSeconds: number }>;
  for (const k of keys) cal[k] = await calibrate(runs[k], opts);
  const samples = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < opts.reps; r++)
    for (const k of keys) samples[k].push(((await timeBatch(runs[k], cal[k].iters)) * 1000) / cal[k].iters);
  const out = {} as Record<K, Timing>;
  for (const k of keys) out[k] = { ms: median(samples[k]), samples: samples[k], ...cal[k] };
  return out;
}

/** Times one case (see `measureAll`). */
export async function measure(run: (iters: number) => void, opts: MeasureOptions): Promise<Timing> {
  return (await measureAll({ run }, opts)).run;
}

/** (max − min) / median of a timing's measurements: a rough noise indicator (NaN with one measurement). */
export function spread(t: Timing): number {
  if (t.samples.length < 2) return Number.NaN;
  return (Math.max(...t.samples) - Math.min(...t.samples)) / t.ms;
}

// ---------------------------------------------------------------------------------------------------------
// Accuracy

/** max_i |a_i − ref_i| / max_i |ref_i| (relative to the largest reference magnitude; NaN-safe: NaN → Infinity). */
export function maxRelErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) throw new Error(`maxRelErr: lengths differ (${a.length} vs ${ref.length})`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - ref[i]!);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

// ---------------------------------------------------------------------------------------------------------
// Formatting

/** A number with `digits` significant digits, without exponent for ordinary magnitudes. */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const ax = Math.abs(x);
  if (ax >= 1e-3 && ax < 1e6) {
    const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(ax)));
    return x.toFixed(decimals);
  }
  return x.toExponential(digits - 1);
}

/** A GitHub-flavoured markdown table; `align` per column: 'l' (default for the first column) or 'r'. */
export function markdownTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  align?: readonly ('l' | 'r')[],
): string {
  const al = headers.map((_, i) => align?.[i] ?? (i === 0 ? 'l' : 'r'));
  const widths = headers.map((h, i) => Math.max(h.length, 3, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number) => (al[i] === 'r' ? s.padStart(widths[i]!) : s.padEnd(widths[i]!));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => cell(c, i)).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (al[i] === 'r' ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`;
  return [line(headers), sep, ...rows.map((r) => line(headers.map((_, i) => r[i] ?? '')))].join('\n');
}

/** Writes `{ meta, results }` as pretty JSON. */
export function writeJson(path: string, data: unknown): void {
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// PyTorch comparisons (optional: Debian's python3-torch)

/** A python3 that can `import torch` ($WGRAD_TORCH_PYTHON, /usr/bin/python3, python3), or null (or 'off'). */
export function findTorchPython(mode: string | undefined = 'auto'): string | null {
  if (mode === 'off') return null;
  if (mode !== 'auto') {
    console.error(`--torch must be 'auto' or 'off', got '${mode}'`);
    process.exit(2);
  }
  const candidates = [process.env.WGRAD_TORCH_PYTHON, '/usr/bin/python3', 'python3'];
  for (const py of candidates.filter((p): p is string => !!p))
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
      return py;
    } catch {}
  return null;
}

/**
 * PyTorch's environment in the benches. "As installed" clears an inherited OPENBLAS_CORETYPE and OMP_WAIT_POLICY
 * (other inherited variables, e.g. ONEDNN_MAX_CPU_ISA, pass through). "Tuned" adds two settings:
 * - OPENBLAS_CORETYPE=SkylakeX: AVX-512 kernels where OpenBLAS does not pick them itself.
 * - OMP_WAIT_POLICY=PASSIVE: PyTorch's OpenMP threads (libgomp) sleep at once when idle instead of
 *   spinning. With the default policy they spin on both cores while OpenBLAS's own threads run a product.
 *   On the 2-core Zen 5 VM (2026-12-06, `bench/torch_kernels.py` and `bench/torch_train.py`) PASSIVE gave:
 *   - torch.mm 1024³: 11.5 ms against 22.6.
 *   - MLP VAE training: 12,800–15,500 samples/s against 7,300–7,800.
 *   - AE training: 39,000–41,000 samples/s against 16,000–19,000.
 *   - conv VAE training: 530–570 samples/s against 320–420.
 * With --isa avx2 both runs also get `avx2` (ISA caps and OpenBLAS core for AVX2).
 * A value of `undefined` removes the variable.
 */
export function torchEnv(
  tuned: boolean,
  avx2: Record<string, string> | null = null,
): Record<string, string | undefined> {
  const core = avx2 ?? { OPENBLAS_CORETYPE: tuned ? 'SkylakeX' : '' };
  return { ...core, OMP_WAIT_POLICY: tuned ? 'PASSIVE' : undefined };
}

/** Runs `py script args…` and parses the last line of its output as JSON (an Error's message on failure). */
export function runPythonJson<T>(
  py: string,
  script: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): T | string {
  const merged: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  try {
    const out = execFileSync(py, [script, ...args], {
      encoding: 'utf8',
      env: merged,
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 1 << 26,
    });
    return JSON.parse(out.trim().split('\n').at(-1)!) as T;
  } catch (e) {
    return `failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** The BLAS shared libraries torch loads (OpenBLAS, reference BLAS, …), for the bench header. */
export function torchBlas(py: string): string {
  try {
    const libs = execFileSync(
      py,
      [
        '-c',
        'import torch,os;print(", ".join(sorted({os.path.basename(l.split()[-1]) for l in open("/proc/self/maps") if "blas" in l.lower()})))',
      ],
      { encoding: 'utf8' },
    ).trim();
    // Debian's python3-torch alone runs on the reference BLAS, many times slower than OpenBLAS: say so in the
    // header, since every ratio against PyTorch would then flatter us.
    return /openblas/i.test(libs)
      ? libs
      : `${libs || 'none found'} — no OpenBLAS, so PyTorch runs on the slow reference BLAS (apt-get install libopenblas0-pthread)`;
  } catch {
    return 'unknown';
  }
}
