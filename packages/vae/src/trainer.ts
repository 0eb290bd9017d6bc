// A training loop for any Module: progress output, loss history (JSON + CSV), per-epoch hooks, gradient
// clipping, a NaN/Inf guard that names the step, atomic best/last checkpoints, and resume.
// Losses stay on the GPU and are read back every `logEvery` steps, so steps are not serialised by readback.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clipGradNorm, loadCheckpoint, type Module, type Optimizer, saveCheckpoint } from '@wgrad/nn';
import { concat, manualSeed, scope, stack, type Tensor } from '@wgrad/tensor';

export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** The loss of one batch: `loss` is minimised; `terms` (e.g. recon, kl) are logged. */
export type StepFn = (batch: Batch) => { loss: Tensor; terms?: Record<string, Tensor> };

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
  stopped?: string;
  bestEpoch?: number;
  bestLoss?: number;
}

export interface TrainOptions {
  model: Module;
  optimizer: Optimizer;
  /** A fresh pass over the training batches for epoch `e` (e.g. `() => loader` for a DataLoader). */
  data: (epoch: number) => AsyncIterable<Batch> | Iterable<Batch>;
  step: StepFn;
  epochs: number;
  /** Batches per epoch, for the progress bar's ETA (optional). */
  batchesPerEpoch?: number;
  clipGradNorm?: number;
  seed?: number;
  /** Where history.json/csv and best/last checkpoints go; nothing is written without it. */
  outDir?: string;
  /** Continue from `<outDir>/last.safetensors` if present (or from the given checkpoint path). */
  resume?: boolean | string;
  logEvery?: number;
  progress?: boolean;
  onEpoch?: (rec: EpochRecord, history: History) => void | Promise<void>;
  /** Free the batch tensors after each step (default true). */
  disposeBatches?: boolean;
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

async function atomicWrite(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
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

/** Trains `model`; returns the history (also written to outDir). */
export async function train(opts: TrainOptions): Promise<History> {
  const { model, optimizer } = opts;
  const log = opts.log ?? ((l: string) => console.log(l));
  const logEvery = opts.logEvery ?? 20;
  const tty = (opts.progress ?? true) && Boolean(process.stdout.isTTY);
  const history: History = { epochs: [], steps: [] };
  let startEpoch = 0;
  let step = 0;
  if (opts.seed !== undefined) manualSeed(opts.seed);
  if (opts.outDir) await mkdir(opts.outDir, { recursive: true });
  const lastPath = opts.outDir ? join(opts.outDir, 'last.safetensors') : null;
  const bestPath = opts.outDir ? join(opts.outDir, 'best.safetensors') : null;
  if (opts.resume) {
    const path = typeof opts.resume === 'string' ? opts.resume : lastPath;
    if (!path) throw new Error('train: resume needs outDir or a checkpoint path');
    const meta = (await loadCheckpoint(path, { model, optimizer }).catch((e: Error) => {
      if (typeof opts.resume === 'string') throw e;
      return null;
    })) as { epoch?: number; step?: number; history?: History } | null;
    if (meta) {
      startEpoch = (meta.epoch ?? -1) + 1;
      step = meta.step ?? 0;
      if (meta.history) Object.assign(history, meta.history);
      log(`[train] resumed from ${path} at epoch ${startEpoch + 1}`);
    }
  }
  model.train();
  for (let epoch = startEpoch; epoch < opts.epochs; epoch++) {
    const t0 = performance.now();
    let samples = 0;
    let steps = 0;
    const sums: Record<string, number> = {};
    let pending: { step: number; values: Tensor }[] = [];
    let keys: string[] = [];
    let lastLine = 0;
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
        const bad = keys.find((k) => !Number.isFinite(values[k]!));
        if (bad && !history.stopped)
          history.stopped = `non-finite ${bad} (${values[bad]}) at epoch ${epoch + 1}, step ${p.step}${bestPath ? `; the last good checkpoint is kept at ${bestPath}` : ''}`;
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
    for await (const batch of opts.data(epoch)) {
      step++;
      steps++;
      samples += batch.x.shape[0] ?? 0;
      const values = scope(() => {
        optimizer.zeroGrad();
        const { loss, terms = {} } = opts.step(batch);
        if (loss.size !== 1)
          throw new Error(`train: the step function must return a scalar loss, got shape [${loss.shape}]`);
        loss.backward();
        if (opts.clipGradNorm) clipGradNorm(optimizer.params, opts.clipGradNorm).dispose();
        optimizer.step();
        keys = ['loss', ...Object.keys(terms)];
        return stack([loss, ...Object.values(terms)].map((t) => t.detach().reshape([])));
      });
      if (opts.disposeBatches ?? true) {
        batch.x.dispose();
        batch.y.dispose();
      }
      pending.push({ step, values });
      if (pending.length >= logEvery) {
        await flushPending();
        if (history.stopped) break;
        const now = performance.now();
        if (tty && now - lastLine > 200) {
          process.stdout.write(`\r\x1b[K${progress()}`);
          lastLine = now;
        }
      }
    }
    await flushPending();
    if (tty) process.stdout.write('\r\x1b[K');
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
    if (history.stopped) {
      log(`[train] stopped: ${history.stopped}`);
      break;
    }
    history.epochs.push(rec);
    log(`${progress().replace(/ \| ETA.*$/, '')} | ${seconds.toFixed(1)} s`);
    const isBest = history.bestLoss === undefined || means.loss! < history.bestLoss;
    if (isBest) {
      history.bestLoss = means.loss;
      history.bestEpoch = epoch + 1;
    }
    if (opts.outDir) {
      const meta = { epoch, step, bestLoss: history.bestLoss, seed: opts.seed, history };
      if (isBest && bestPath) await saveCheckpoint(bestPath, { model, optimizer, meta });
      if (lastPath) await saveCheckpoint(lastPath, { model, optimizer, meta });
      await atomicWrite(join(opts.outDir, 'history.json'), JSON.stringify(history, null, 1));
      await atomicWrite(join(opts.outDir, 'history.csv'), historyCsv(history));
    }
    await opts.onEpoch?.(rec, history);
  }
  if (opts.outDir) {
    await atomicWrite(join(opts.outDir, 'history.json'), JSON.stringify(history, null, 1));
    await atomicWrite(join(opts.outDir, 'history.csv'), historyCsv(history));
  }
  return history;
}
