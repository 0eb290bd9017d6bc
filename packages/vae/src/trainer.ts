// A training loop for any Module: progress output, loss history (JSON + CSV), per-epoch hooks, gradient
// clipping, a NaN/Inf guard that names the step, atomic best/last checkpoints, and resume.
// Losses stay on the GPU and are read back every `logEvery` steps, so steps are not serialised by readback.
//
// The guard: a non-finite loss (or term), or a non-finite parameter at the end of an epoch, stops training.
// `history.stopped` names the epoch and step and the checkpoint that holds the last good state. When one
// exists (`<outDir>/last.safetensors`, written at the end of every finished epoch, or the checkpoint the run
// resumed from), the model, the optimizer and the RNG are restored from it before train() returns
// (`history.restoredFrom`); otherwise the model keeps the weights of the failing step, which are likely
// non-finite, and the message says that no checkpoint exists yet.
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { clipGradNorm, loadCheckpoint, type Module, type Optimizer, saveCheckpoint } from '@wgrad/nn';
import {
  concat,
  type KernelSource,
  manualSeed,
  noGrad,
  precompile,
  recordKernels,
  rngState,
  scope,
  setRngState,
  stack,
  type Tensor,
  verifyGemmOnce,
} from '@wgrad/tensor';
import { writeFileAtomic } from './report/fs.js';

export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** The loss of one batch: `loss` is minimised; `terms` (e.g. recon, kl) are logged. */
/**
 * One step's loss (and named terms to log). Unless `precompile: false`, train() also calls it once as a dry run
 * before the first step (`ctx.dryRun` true), on the first batch, to learn which GPU pipelines to compile: its
 * GPU work is not run then, so a step function with JS side effects (counters, logging) should skip them when
 * `ctx.dryRun` is set.
 */
export type StepFn = (batch: Batch, ctx: StepContext) => { loss: Tensor; terms?: Record<string, Tensor> };
export interface StepContext {
  /** True for the dry run that lists the step's pipelines before the first step (see TrainOptions.precompile). */
  dryRun: boolean;
}

export interface EpochRecord {
  epoch: number;
  steps: number;
  samples: number;
  /** Mean over the epoch's batches of each logged quantity (loss first). */
  means: Record<string, number>;
  seconds: number;
  samplesPerSec: number;
}

export interface History {
  epochs: EpochRecord[];
  steps: { step: number; epoch: number; values: Record<string, number> }[];
  /** Why training stopped early (non-finite loss or parameter): epoch, step and the last good checkpoint. */
  stopped?: string;
  /** After a stop: the checkpoint the model, optimizer and RNG were restored from (none: not restored). */
  restoredFrom?: string;
  /** 1-based epoch with the lowest mean loss so far (the one in best.safetensors). */
  bestEpoch?: number;
  bestLoss?: number;
}

export interface TrainOptions {
  model: Module;
  optimizer: Optimizer;
  /**
   * A fresh pass over the training batches for epoch `e` (0-based; e.g. `() => loader` for a DataLoader).
   * When the returned iterable has a `setEpoch(e)` method (a DataLoader), train() calls it with `e` before
   * iterating, so epoch e shuffles the same way in an uninterrupted run and in one resumed at epoch e.
   */
  data: (epoch: number) => AsyncIterable<Batch> | Iterable<Batch>;
  step: StepFn;
  epochs: number;
  /** Batches per epoch, for the progress bar's ETA (optional). */
  batchesPerEpoch?: number;
  clipGradNorm?: number;
  seed?: number;
  /** Where history.json/csv and best/last checkpoints go; nothing is written without it. */
  outDir?: string;
  /**
   * `true`: continue from `<outDir>/last.safetensors`, or start fresh when there is no such file; a file
   * that exists but cannot be loaded (corrupt, another model or optimizer) is an error naming it.
   * A path: continue from that checkpoint, which must exist. Model, optimizer state, RNG position, epoch,
   * step and history all continue, so the resumed run matches the uninterrupted one.
   */
  resume?: boolean | string;
  /**
   * Compile the GPU pipelines the step needs before the first step (default true): one dry run of the step
   * lists them, then they compile in parallel with a progress line. On lavapipe with a cold shader cache this
   * is most of the first epoch's time; with Mesa's on-disk cache warm it takes well under a second.
   * Without this option, WGRAD_PRECOMPILE=0 in the environment turns it off.
   */
  precompile?: boolean;
  /**
   * Also write `<outDir>/last.safetensors` every this many steps inside an epoch (default: only at the end of
   * each epoch). Such a checkpoint records how far into its epoch the run was (batches, samples, loss sums);
   * a run resumed from it skips those batches (a DataLoader is `seek`-ed there; another source is iterated
   * and its first batches dropped) and continues bit for bit like the uninterrupted run.
   */
  checkpointEvery?: number;
  logEvery?: number;
  progress?: boolean;
  onEpoch?: (rec: EpochRecord, history: History) => void | Promise<void>;
  /** Free the batch tensors after each step (default true). */
  disposeBatches?: boolean;
  /**
   * Check the GEMM kernels against the float64 reference before the first step (once per process, default
   * true; see @wgrad/tensor's verifyGemm): a kernel path that fails is switched off and the run says so.
   */
  verifyKernels?: boolean;
  log?: (line: string) => void;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(3) : v.toFixed(a >= 100 ? 1 : 4);
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

function historyCsv(h: History): string {
  const keys = [...new Set(h.epochs.flatMap((e) => Object.keys(e.means)))];
  const rows = h.epochs.map((e) =>
    [
      e.epoch,
      e.steps,
      e.samples,
      ...keys.map((k) => e.means[k] ?? ''),
      e.seconds.toFixed(3),
      e.samplesPerSec.toFixed(1),
    ].join(','),
  );
  return `${['epoch', 'steps', 'samples', ...keys, 'seconds', 'samples_per_sec'].join(',')}\n${rows.join('\n')}\n`;
}

/** What train() keeps in a checkpoint's metadata. */
interface TrainMeta {
  epoch?: number;
  step?: number;
  bestLoss?: number;
  seed?: number;
  history?: History;
  /** A mid-epoch checkpoint: the 0-based epoch it was written in and how far into it the run was. */
  inEpoch?: {
    epoch: number;
    batches: number;
    samples: number;
    sums: Record<string, number>;
    seconds: number;
  };
}

const isMissingFile = (e: unknown) => (e as { code?: unknown } | null)?.code === 'ENOENT';

async function fileExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The name of the first float parameter holding a NaN or ±Inf (its sum is not finite), or null. */
async function nonFiniteParameter(model: Module): Promise<string | null> {
  const named = [...model.namedParameters()].filter(([, p]) => p.dtype === 'float32');
  if (!named.length) return null;
  const sums = noGrad(() => scope(() => stack(named.map(([, p]) => p.sum().reshape([])))));
  const host = await sums.toArray();
  sums.dispose();
  const i = host.findIndex((v) => !Number.isFinite(v));
  return i < 0 ? null : named[i]![0];
}

/**
 * Trains `model`; returns the history (also written to outDir). After a non-finite loss or parameter the
 * run stops and, when a checkpoint of the last good state exists, model, optimizer and RNG are restored
 * from it (see the top of this file).
 */
export async function train(opts: TrainOptions): Promise<History> {
  const { model, optimizer } = opts;
  const log = opts.log ?? ((l: string) => console.log(l));
  const logEvery = opts.logEvery ?? 20;
  const tty = (opts.progress ?? true) && Boolean(process.stdout.isTTY);
  const history: History = { epochs: [], steps: [] };
  let startEpoch = 0;
  let step = 0;
  /** One training step (inside a scope): gradients, clipping, the optimizer; returns [loss, ...terms]. */
  const runStep = (batch: Batch, dryRun = false): Tensor => {
    optimizer.zeroGrad();
    const { loss, terms = {} } = opts.step(batch, { dryRun });
    if (loss.size !== 1)
      throw new Error(`train: the step function must return a scalar loss, got shape [${loss.shape}]`);
    loss.backward();
    if (opts.clipGradNorm) clipGradNorm(optimizer.params, opts.clipGradNorm).dispose();
    optimizer.step();
    keys = ['loss', ...Object.keys(terms)];
    return stack([loss, ...Object.values(terms)].map((t) => t.detach().reshape([])));
  };
  let keys: string[] = [];
  // Before the first step: the pipelines the step needs are compiled up front, in parallel where the adapter
  // allows (see @wgrad/tensor's precompile), with a progress line, instead of one by one inside the first
  // step. The dry run that lists them changes nothing: RNG position and optimizer state are put back.
  let precompiled = !(opts.precompile ?? process.env.WGRAD_PRECOMPILE !== '0');
  /** Compiles the pipelines `runStep(batch)` needs; returns the milliseconds it took. */
  const precompileStep = async (batch: Batch): Promise<number> => {
    const rng = rngState();
    let sources: KernelSource[];
    try {
      sources = optimizer.restoreAfter(() => recordKernels(() => scope(() => void runStep(batch, true))));
    } finally {
      setRngState(rng);
      optimizer.zeroGrad(); // the dry run's gradients were never written
    }
    if (!sources.length) return 0;
    const t0 = performance.now();
    let last = 0;
    const line = (done: number, total: number) =>
      `[train] compiling ${total} GPU pipelines: ${done}/${total} | ${((performance.now() - t0) / 1000).toFixed(1)} s`;
    const r = await precompile(sources, {
      onProgress: (done, total) => {
        const now = performance.now();
        if (tty && now - last > 200) {
          process.stdout.write(`\r\x1b[K${line(done, total)}`);
          last = now;
        }
      },
    });
    if (tty) process.stdout.write('\r\x1b[K');
    log(
      `[train] compiled ${r.pipelines} GPU pipelines in ${(r.ms / 1000).toFixed(1)} s${r.warmupDevices > 1 ? ` (${r.warmupDevices} devices in parallel)` : ''}`,
    );
    return r.ms;
  };
  if (opts.verifyKernels ?? true) {
    const checks = await verifyGemmOnce();
    for (const c of checks)
      if (c.failed.length)
        log(
          `[train] GEMM ${c.body} body (texture ${c.texture}) failed its check and is off: ${c.failed.join('; ')}`,
        );
  }
  // (The check draws no random numbers: seeded runs are unchanged by it.)
  if (opts.seed !== undefined) manualSeed(opts.seed);
  if (opts.outDir) await mkdir(opts.outDir, { recursive: true });
  const lastPath = opts.outDir ? join(opts.outDir, 'last.safetensors') : null;
  const bestPath = opts.outDir ? join(opts.outDir, 'best.safetensors') : null;
  /** The checkpoint holding the latest good state and where in the run it was written. */
  let lastGood: { path: string; at: string } | null = null;
  /** Progress into the first epoch of a run resumed from a mid-epoch checkpoint. */
  let resumedInEpoch: TrainMeta['inEpoch'] | null = null;
  const checkpointEvery = opts.checkpointEvery ?? 0;
  if (!Number.isInteger(checkpointEvery) || checkpointEvery < 0)
    throw new Error(`train: checkpointEvery must be a non-negative integer, got ${opts.checkpointEvery}`);
  /** Whether best.safetensors was written by this run (or by the run it resumes). */
  let bestWritten = false;
  if (opts.resume) {
    const explicit = typeof opts.resume === 'string';
    const path = typeof opts.resume === 'string' ? opts.resume : lastPath;
    if (!path) throw new Error('train: resume needs outDir or a checkpoint path');
    let meta: TrainMeta | null = null;
    try {
      meta = await loadCheckpoint<TrainMeta & Record<string, unknown>>(path, { model, optimizer });
    } catch (e) {
      if (!explicit && isMissingFile(e)) log(`[train] no checkpoint at ${path} yet: starting fresh`);
      else {
        const msg = (e as Error).message;
        throw new Error(`train: cannot resume from ${msg.startsWith(path) ? msg : `${path}: ${msg}`}`, {
          cause: e,
        });
      }
    }
    if (meta) {
      startEpoch = (meta.epoch ?? -1) + 1;
      step = meta.step ?? 0;
      if (meta.history) Object.assign(history, meta.history);
      lastGood = { path, at: `end of epoch ${startEpoch}` };
      const ie = meta.inEpoch;
      if (ie) {
        if (
          !Number.isInteger(ie.epoch) ||
          ie.epoch !== startEpoch ||
          !Number.isInteger(ie.batches) ||
          ie.batches < 0
        )
          throw new Error(`train: cannot resume from ${path}: bad mid-epoch position ${JSON.stringify(ie)}`);
        resumedInEpoch = ie;
        lastGood = { path, at: `epoch ${ie.epoch + 1}, step ${step}` };
      }
      bestWritten =
        path === lastPath &&
        history.bestEpoch !== undefined &&
        bestPath !== null &&
        (await fileExists(bestPath));
      log(
        `[train] resumed from ${path} at epoch ${startEpoch + 1}${resumedInEpoch ? `, batch ${resumedInEpoch.batches + 1} (step ${step + 1})` : ''}`,
      );
    }
  }
  /** Stops the run: the reason, where the last good state is, and the restore from it. */
  const stop = async (what: string) => {
    let where: string;
    if (lastGood) {
      where = `; the last good state (${lastGood.at}) is in ${lastGood.path}`;
      if (bestWritten && bestPath && bestPath !== lastGood.path)
        where += `, the best epoch (${history.bestEpoch}) in ${bestPath}`;
      try {
        await loadCheckpoint(lastGood.path, { model, optimizer });
        history.restoredFrom = lastGood.path;
        where += `; model and optimizer were restored from ${lastGood.path}`;
      } catch (e) {
        where += `; restoring the model from it failed (${(e as Error).message}): the model holds the weights of the failing step`;
      }
    } else
      where = opts.outDir
        ? `; no checkpoint exists yet (epoch ${startEpoch + 1}, the first of this run, did not finish): the model holds the weights of the failing step`
        : '; no checkpoint is written without outDir: the model holds the weights of the failing step';
    history.stopped = `${what}${where}`;
    log(`[train] stopped: ${history.stopped}`);
  };
  model.train();
  for (let epoch = startEpoch; epoch < opts.epochs; epoch++) {
    // A run resumed mid-epoch starts with that epoch's progress (and skips its first batches).
    const done = epoch === resumedInEpoch?.epoch ? resumedInEpoch : null;
    // The epoch's clock (minus the pipeline compile before its first step, reported on its own line).
    let t0 = performance.now() - (done?.seconds ?? 0) * 1000;
    let samples = done?.samples ?? 0;
    let steps = done?.batches ?? 0;
    const sums: Record<string, number> = { ...done?.sums };
    // The loss keys of a resumed epoch (runStep sets them, but a resumed epoch may have no step left to run).
    if (done && !keys.length) keys = Object.keys(done.sums);
    let skip = done?.batches ?? 0;
    let pending: { step: number; values: Tensor }[] = [];
    let lastLine = 0;
    let bad: string | null = null;
    const flushPending = async () => {
      if (!pending.length) return;
      const all = concat(pending.map((p) => p.values));
      const host = await all.toArray();
      all.dispose();
      const width = keys.length;
      pending.forEach((p, i) => {
        const values: Record<string, number> = {};
        keys.forEach((k, j) => {
          values[k] = host[i * width + j]!;
        });
        const k = keys.find((k) => !Number.isFinite(values[k]!));
        if (k && !bad) bad = `non-finite ${k} (${values[k]}) at epoch ${epoch + 1}, step ${p.step}`;
        for (const k of keys) sums[k] = (sums[k] ?? 0) + values[k]!;
        history.steps.push({ step: p.step, epoch: epoch + 1, values });
        p.values.dispose();
      });
      pending = [];
    };
    const progress = () => {
      const secs = (performance.now() - t0) / 1000;
      const rate = samples / Math.max(secs, 1e-9);
      const total = opts.batchesPerEpoch;
      const eta = total ? ((total - steps) * secs) / Math.max(steps, 1) : Number.NaN;
      const means = keys
        .map(
          (k) =>
            `${k} ${fmt((sums[k] ?? 0) / Math.max(history.steps.filter((s) => s.epoch === epoch + 1).length, 1))}`,
        )
        .join(' ');
      const bar = total
        ? `[${'#'.repeat(Math.round((20 * steps) / total)).padEnd(20, '.')}] ${steps}/${total}`
        : `${steps} steps`;
      return `epoch ${epoch + 1}/${opts.epochs} ${bar} ${means} | ${rate.toFixed(0)} samples/s | ETA ${fmtTime(eta)}`;
    };
    const source = opts.data(epoch);
    const seekable = source as { setEpoch?: (e: number) => void; seek?: (e: number, b: number) => void };
    if (skip && typeof seekable.seek === 'function') {
      seekable.seek(epoch, skip);
      skip = 0;
    } else if (typeof seekable.setEpoch === 'function') seekable.setEpoch(epoch);
    if (skip)
      log(`[train] the data source cannot seek: reading and dropping the ${skip} batches already trained on`);
    try {
      for await (const batch of source) {
        if (skip > 0) {
          skip--;
          if (opts.disposeBatches ?? true) {
            batch.x.dispose();
            batch.y.dispose();
          }
          continue;
        }
        step++;
        steps++;
        samples += batch.x.shape[0] ?? 0;
        let values: Tensor;
        try {
          if (!precompiled) {
            precompiled = true;
            t0 += await precompileStep(batch);
          }
          values = scope(() => runStep(batch));
        } finally {
          if (opts.disposeBatches ?? true) {
            batch.x.dispose();
            batch.y.dispose();
          }
        }
        pending.push({ step, values });
        if (checkpointEvery && lastPath && step % checkpointEvery === 0) {
          await flushPending();
          if (bad) break;
          const inEpoch = {
            epoch,
            batches: steps,
            samples,
            sums: { ...sums },
            seconds: (performance.now() - t0) / 1000,
          };
          const meta = {
            epoch: epoch - 1,
            step,
            bestLoss: history.bestLoss,
            seed: opts.seed,
            history,
            inEpoch,
          };
          await saveCheckpoint(lastPath, { model, optimizer, meta });
          lastGood = { path: lastPath, at: `epoch ${epoch + 1}, step ${step}` };
          log(`[train] checkpoint at epoch ${epoch + 1}, batch ${steps}, step ${step}: ${lastPath}`);
        }
        if (pending.length >= logEvery) {
          await flushPending();
          if (bad) break;
          const now = performance.now();
          if (tty && now - lastLine > 200) {
            process.stdout.write(`\r\x1b[K${progress()}`);
            lastLine = now;
          }
        }
      }
      await flushPending();
    } finally {
      for (const p of pending) p.values.dispose();
      pending = [];
    }
    if (tty) process.stdout.write('\r\x1b[K');
    if (!bad && steps) {
      const name = await nonFiniteParameter(model);
      if (name)
        bad = `non-finite parameter '${name}' after epoch ${epoch + 1}, step ${step} (its losses were finite)`;
    }
    if (bad) {
      await stop(bad);
      break;
    }
    const seconds = (performance.now() - t0) / 1000;
    const means = Object.fromEntries(keys.map((k) => [k, (sums[k] ?? 0) / Math.max(steps, 1)]));
    const rec: EpochRecord = {
      epoch: epoch + 1,
      steps,
      samples,
      means,
      seconds,
      samplesPerSec: samples / seconds,
    };
    history.epochs.push(rec);
    log(`${progress().replace(/ \| ETA.*$/, '')} | ${seconds.toFixed(1)} s`);
    const isBest = steps > 0 && (history.bestLoss === undefined || means.loss! < history.bestLoss);
    if (isBest) {
      history.bestLoss = means.loss;
      history.bestEpoch = epoch + 1;
    }
    if (opts.outDir) {
      // saveCheckpoint writes atomically (temp file, fsync, rename): a crash leaves the previous file.
      const meta = { epoch, step, bestLoss: history.bestLoss, seed: opts.seed, history };
      if (isBest && bestPath) {
        await saveCheckpoint(bestPath, { model, optimizer, meta });
        bestWritten = true;
      }
      if (lastPath) {
        await saveCheckpoint(lastPath, { model, optimizer, meta });
        lastGood = { path: lastPath, at: `end of epoch ${epoch + 1}` };
      }
      await writeFileAtomic(join(opts.outDir, 'history.json'), JSON.stringify(history, null, 1));
      await writeFileAtomic(join(opts.outDir, 'history.csv'), historyCsv(history));
    }
    await opts.onEpoch?.(rec, history);
  }
  if (opts.outDir) {
    await writeFileAtomic(join(opts.outDir, 'history.json'), JSON.stringify(history, null, 1));
    await writeFileAtomic(join(opts.outDir, 'history.csv'), historyCsv(history));
  }
  return history;
}
