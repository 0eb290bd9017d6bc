// @wgrad/vae's train(): history and files, the NaN/Inf guard (the message names epoch, step and the checkpoint
// that really holds the last good state, and the model is restored from it), resume (a missing file starts
// fresh, a corrupt or mismatched one is an error naming it; a resumed DataLoader run equals the
// uninterrupted one bit for bit), and best.safetensors holding the best epoch.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Adam,
  DataLoader,
  loadCheckpoint,
  type Module,
  mseLoss,
  SGD,
  saveCheckpoint,
  TensorDataset,
} from '@wgrad/nn';
import { full, manualSeed } from '@wgrad/tensor';
import { type Batch, type History, mlpAE, mlpVAE, type StepFn, train, vaeLoss } from '@wgrad/vae';
import * as assert from 'uvu/assert';
import { gpuSuite, withTempDir } from './helpers.js';

const test = gpuSuite('trainer');

/** A fresh temp folder for `fn`, removed afterwards. */
const withDir = (fn: (dir: string) => Promise<void>) => withTempDir('wgrad-trainer-', fn);

/** N samples of D values in [0, 1) (a fixed LCG) with labels i % 3. */
function dataset(N = 16, D = 8): TensorDataset {
  let s = 12345;
  const x = Float32Array.from({ length: N * D }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  });
  return TensorDataset.fromArrays(
    x,
    Array.from({ length: N }, (_, i) => i % 3),
    [N, D],
  );
}

/** A loader of 4 shuffled batches of 4. */
const loader = (seed = 3) => new DataLoader(dataset(), { batchSize: 4, shuffle: true, seed });

const quiet = { progress: false, log: () => {} };

async function snapshot(m: Module): Promise<Float32Array[]> {
  return Promise.all(m.parameters().map((p) => p.toArray()));
}

function sameBits(a: Float32Array[], b: Float32Array[], what: string): void {
  assert.is(a.length, b.length, `${what}: parameter count`);
  a.forEach((t, i) => {
    const u = b[i]!;
    assert.is(t.length, u.length);
    for (let j = 0; j < t.length; j++)
      if (!Object.is(t[j], u[j])) assert.unreachable(`${what}: parameter ${i}[${j}] ${t[j]} != ${u[j]}`);
  });
}

const allFinite = (ps: Float32Array[]) => ps.every((p) => p.every((v) => Number.isFinite(v)));

/** MSE of an autoencoder, made NaN (× NaN) at the global steps in `nanAt` (1-based). */
function aeStep(model: Module, nanAt: number[] = []): StepFn {
  let n = 0;
  return ({ x }: Batch, { dryRun }) => {
    if (!dryRun) n++; // train()'s dry run before the first step (precompile) is not a step
    const loss = mseLoss(model.forward(x), x);
    return { loss: nanAt.includes(n) ? loss.mul(Number.NaN) : loss };
  };
}

/** The history without its wall-clock fields. */
function timeless(h: History) {
  return {
    ...h,
    epochs: h.epochs.map(({ seconds: _s, samplesPerSec: _r, ...rest }) => rest),
  };
}

test('train: loss history per epoch and step, history.json/csv, last and best checkpoints', async () => {
  await withDir(async (dir) => {
    manualSeed(1);
    const model = mlpAE({ inputDim: 8, hidden: 4 });
    const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
    const lines: string[] = [];
    const seen: number[] = [];
    try {
      const h = await train({
        model,
        optimizer,
        data: () => loader(),
        step: aeStep(model),
        epochs: 3,
        outDir: dir,
        logEvery: 3,
        progress: false,
        log: (l) => lines.push(l),
        onEpoch: (rec) => {
          seen.push(rec.epoch);
        },
      });
      assert.equal(seen, [1, 2, 3]);
      assert.is(h.epochs.length, 3);
      assert.is(h.steps.length, 12);
      assert.equal(
        h.steps.map((s) => s.step),
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      assert.equal(
        h.epochs.map((e) => [e.epoch, e.steps, e.samples]),
        [
          [1, 4, 16],
          [2, 4, 16],
          [3, 4, 16],
        ],
      );
      const means = h.epochs.map((e) => e.means.loss!);
      assert.ok(means[2]! < means[0]!, `loss ${means}`);
      // Each epoch mean is the mean of its steps.
      const s1 = h.steps.filter((s) => s.epoch === 1).reduce((a, s) => a + s.values.loss!, 0) / 4;
      assert.ok(Math.abs(s1 - means[0]!) < 1e-9);
      assert.is(h.stopped, undefined);
      assert.is(h.bestEpoch, 3);
      assert.is(lines.filter((l) => !l.startsWith('[train] compiled')).length, 3); // one line per epoch
      assert.equal(readdirSync(dir).sort(), [
        'best.safetensors',
        'history.csv',
        'history.json',
        'last.safetensors',
      ]);
      const json = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as History;
      assert.equal(json.epochs.length, 3);
      assert.is(json.bestEpoch, 3);
      const csv = readFileSync(join(dir, 'history.csv'), 'utf8').trim().split('\n');
      assert.is(csv[0], 'epoch,steps,samples,loss,seconds,samples_per_sec');
      assert.is(csv.length, 4);
      assert.ok(csv[1]!.startsWith(`1,4,16,${means[0]}`), csv[1]);
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  });
});

test('NaN guard: stop at epoch 2 names epoch and step, points to last.safetensors, restores the model', async () => {
  await withDir(async (dir) => {
    manualSeed(2);
    const model = mlpAE({ inputDim: 8, hidden: 4 });
    const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
    let afterEpoch1: Float32Array[] = [];
    const logged: string[] = [];
    try {
      const h = await train({
        model,
        optimizer,
        data: () => loader(),
        step: aeStep(model, [6]),
        epochs: 4,
        outDir: dir,
        logEvery: 2,
        progress: false,
        log: (l) => logged.push(l),
        onEpoch: async (rec) => {
          if (rec.epoch === 1) afterEpoch1 = await snapshot(model);
        },
      });
      const last = join(dir, 'last.safetensors');
      const best = join(dir, 'best.safetensors');
      assert.ok(h.stopped, 'stopped');
      assert.match(h.stopped!, /^non-finite loss \(NaN\) at epoch 2, step 6; /);
      assert.ok(h.stopped!.includes(`the last good state (end of epoch 1) is in ${last}`), h.stopped);
      assert.ok(h.stopped!.includes(`the best epoch (1) in ${best}`), h.stopped);
      assert.ok(h.stopped!.includes(`restored from ${last}`), h.stopped);
      assert.is(h.restoredFrom, last);
      assert.is(h.epochs.length, 1, 'the stopped epoch is not recorded');
      assert.ok(logged.some((l) => l.startsWith('[train] stopped: non-finite loss')));
      // The model holds epoch 1's weights again (the NaN step had made them NaN).
      const now = await snapshot(model);
      assert.ok(allFinite(now), 'restored weights are finite');
      sameBits(now, afterEpoch1, 'restored model');
      const json = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as History;
      assert.is(json.stopped, h.stopped);
      // The restored optimizer carries on: one more finite step works.
      const h2 = await train({
        model,
        optimizer,
        data: () => loader(),
        step: aeStep(model),
        epochs: 1,
        ...quiet,
      });
      assert.is(h2.stopped, undefined);
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  });
});

test('NaN guard in epoch 1: no checkpoint exists yet (and no stale best.safetensors is named)', async () => {
  await withDir(async (dir) => {
    // A best.safetensors of an earlier run in the same folder must not be offered as this run's good state.
    writeFileSync(join(dir, 'best.safetensors'), 'stale');
    manualSeed(3);
    const model = mlpAE({ inputDim: 8, hidden: 4 });
    const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
    try {
      const h = await train({
        model,
        optimizer,
        data: () => loader(),
        step: aeStep(model, [2]),
        epochs: 3,
        outDir: dir,
        ...quiet,
      });
      assert.match(h.stopped!, /^non-finite loss \(NaN\) at epoch 1, step 2; no checkpoint exists yet/);
      assert.not.ok(h.stopped!.includes('best.safetensors'), h.stopped);
      assert.not.ok(h.stopped!.includes('last.safetensors'), h.stopped);
      assert.is(h.restoredFrom, undefined);
      assert.is(h.epochs.length, 0);
      assert.not.ok(existsSync(join(dir, 'last.safetensors')));
      assert.is(readFileSync(join(dir, 'best.safetensors'), 'utf8'), 'stale');
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  });
});

test('NaN guard without outDir: a non-finite term stops training and says nothing was saved', async () => {
  manualSeed(4);
  const model = mlpAE({ inputDim: 8, hidden: 4 });
  const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
  let n = 0;
  try {
    const h = await train({
      model,
      optimizer,
      data: () => loader(),
      step: ({ x }, { dryRun }) => {
        if (!dryRun) n++;
        const loss = mseLoss(model.forward(x), x);
        // Only the logged term goes bad (the loss and the weights stay finite).
        return { loss, terms: { kl: n === 7 ? loss.detach().div(0) : loss.detach() } };
      },
      epochs: 3,
      ...quiet,
    });
    assert.match(
      h.stopped!,
      /^non-finite kl \(Infinity\) at epoch 2, step 7; no checkpoint is written without outDir/,
    );
    assert.is(h.epochs.length, 1);
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

/** SGD that overwrites parameter 0 with NaN after global step `at` (finite losses, non-finite weights). */
class PoisonSGD extends SGD {
  at = 0;
  override step(): void {
    super.step();
    if (this.stepCount === this.at) {
      const nan = full([...this.params[0]!.shape], Number.NaN);
      this.params[0]!.assign(nan);
      nan.dispose();
    }
  }
}

test('NaN guard: a non-finite parameter after an epoch of finite losses stops before it is saved', async () => {
  await withDir(async (dir) => {
    manualSeed(5);
    const model = mlpAE({ inputDim: 8, hidden: 4 });
    const optimizer = new PoisonSGD(model.parameters(), { lr: 0.05 });
    optimizer.at = 8; // the last step of epoch 2
    let afterEpoch1: Float32Array[] = [];
    try {
      const h = await train({
        model,
        optimizer,
        data: () => loader(),
        step: aeStep(model),
        epochs: 3,
        outDir: dir,
        onEpoch: async (rec) => {
          if (rec.epoch === 1) afterEpoch1 = await snapshot(model);
        },
        ...quiet,
      });
      assert.match(h.stopped!, /^non-finite parameter 'linear_1\.weight' after epoch 2, step 8/);
      assert.ok(
        h.steps.every((s) => Number.isFinite(s.values.loss!)),
        'the losses were finite',
      );
      assert.is(h.epochs.length, 1);
      const meta = await loadCheckpoint(join(dir, 'last.safetensors'), { model, optimizer });
      assert.is(meta.epoch, 0, 'last.safetensors still holds epoch 1');
      sameBits(await snapshot(model), afterEpoch1, 'restored model');
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  });
});

test('resume: true with no checkpoint yet starts fresh; a corrupt or mismatched file is an error naming it', async () => {
  await withDir(async (dir) => {
    manualSeed(6);
    const model = mlpAE({ inputDim: 8, hidden: 4 });
    const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
    const other = mlpAE({ inputDim: 8, hidden: 3 });
    const lines: string[] = [];
    const last = join(dir, 'last.safetensors');
    try {
      const h = await train({
        model,
        optimizer,
        data: () => loader(),
        step: aeStep(model),
        epochs: 1,
        outDir: dir,
        resume: true,
        progress: false,
        log: (l) => lines.push(l),
      });
      assert.is(h.epochs.length, 1);
      assert.ok(lines[0]!.includes(`no checkpoint at ${last} yet: starting fresh`), lines[0]);
      assert.ok(existsSync(last));
      const before = await snapshot(model);
      const run = () =>
        train({
          model,
          optimizer,
          data: () => loader(),
          step: aeStep(model),
          epochs: 3,
          outDir: dir,
          resume: true,
          ...quiet,
        });
      // Corrupt: not a safetensors file.
      writeFileSync(last, Buffer.from('this is not a checkpoint'));
      try {
        await run();
        assert.unreachable('expected an error');
      } catch (e) {
        const msg = (e as Error).message;
        assert.ok(msg.startsWith(`train: cannot resume from ${last}: `), msg);
        assert.match(msg, /not a safetensors file/);
      }
      // Mismatched: a checkpoint of another architecture.
      await saveCheckpoint(last, { model: other, meta: { epoch: 0 } });
      try {
        await run();
        assert.unreachable('expected an error');
      } catch (e) {
        const msg = (e as Error).message;
        assert.ok(msg.startsWith(`train: cannot resume from ${last}: `), msg);
        assert.match(msg, /linear_1\.weight/);
      }
      // An explicit path must exist.
      const missing = join(dir, 'nope.safetensors');
      try {
        await train({
          model,
          optimizer,
          data: () => loader(),
          step: aeStep(model),
          epochs: 1,
          resume: missing,
          ...quiet,
        });
        assert.unreachable('expected an error');
      } catch (e) {
        const msg = (e as Error).message;
        assert.ok(msg.startsWith(`train: cannot resume from ${missing}: ENOENT`), msg);
      }
      sameBits(await snapshot(model), before, 'a failed resume changes nothing');
      try {
        await train({
          model,
          optimizer,
          data: () => loader(),
          step: aeStep(model),
          epochs: 1,
          resume: true,
          ...quiet,
        });
        assert.unreachable('expected an error');
      } catch (e) {
        assert.match((e as Error).message, /train: resume needs outDir or a checkpoint path/);
      }
    } finally {
      optimizer.dispose();
      model.dispose();
      other.dispose();
    }
  });
});

test('resume: 1 epoch + resume 1 epoch of a shuffled DataLoader VAE run = 2 epochs straight, bit for bit', async () => {
  const D = 8;
  const setup = (initSeed: number) => {
    manualSeed(initSeed);
    const vae = mlpVAE({ inputDim: D, hiddenDim: 6, latentDim: 2 });
    const optimizer = new Adam(vae.parameters(), { lr: 1e-2 });
    const step: StepFn = ({ x }) => {
      const o = vae.run(x);
      const t = vaeLoss(o.xhat, x, o.mu, o.logvar, { recon: 'bce' });
      return { loss: t.loss, terms: { recon: t.recon, kl: t.kl } };
    };
    return { vae, optimizer, step };
  };
  // The shuffle differs between epochs, so a resumed loader that restarted at epoch 0 would differ.
  assert.not.equal([...loader().order(0)], [...loader().order(1)]);
  await withDir(async (dirA) => {
    await withDir(async (dirB) => {
      const a = setup(1);
      const b1 = setup(1);
      let b2: ReturnType<typeof setup> | null = null;
      try {
        const loaderA = loader();
        const hA = await train({
          model: a.vae,
          optimizer: a.optimizer,
          data: () => loaderA,
          step: a.step,
          epochs: 2,
          seed: 9,
          outDir: dirA,
          logEvery: 3,
          ...quiet,
        });
        const first = await train({
          model: b1.vae,
          optimizer: b1.optimizer,
          data: () => loader(),
          step: b1.step,
          epochs: 1,
          seed: 9,
          outDir: dirB,
          logEvery: 3,
          ...quiet,
        });
        assert.is(first.epochs.length, 1);
        b1.optimizer.dispose();
        b1.vae.dispose();
        // A new process: other initial weights, a fresh loader (its epoch counter at 0), the same call.
        b2 = setup(77);
        const loaderB = loader();
        const lines: string[] = [];
        const hB = await train({
          model: b2.vae,
          optimizer: b2.optimizer,
          data: () => loaderB,
          step: b2.step,
          epochs: 2,
          seed: 9,
          outDir: dirB,
          resume: true,
          logEvery: 3,
          progress: false,
          log: (l) => lines.push(l),
        });
        assert.ok(
          lines[0]!.startsWith(`[train] resumed from ${join(dirB, 'last.safetensors')} at epoch 2`),
          lines[0],
        );
        sameBits(await snapshot(b2.vae), await snapshot(a.vae), 'resumed vs uninterrupted');
        assert.equal(timeless(hB), timeless(hA));
        assert.is(loaderB.epoch, 2, 'the trainer set the loader to epoch 1 before iterating');
        assert.is(loaderA.epoch, 2);
        assert.is(hB.steps.length, 8);
        assert.is(b2.optimizer.stepCount, a.optimizer.stepCount);
        // Resuming a finished run trains nothing more.
        const again = await train({
          model: b2.vae,
          optimizer: b2.optimizer,
          data: () => loaderB,
          step: b2.step,
          epochs: 2,
          outDir: dirB,
          resume: true,
          ...quiet,
        });
        assert.is(again.epochs.length, 2);
        sameBits(await snapshot(b2.vae), await snapshot(a.vae), 'nothing trained after the last epoch');
      } finally {
        for (const r of [a, b1, b2]) {
          r?.optimizer.dispose();
          r?.vae.dispose();
        }
      }
    });
  });
});

test('best.safetensors holds the best epoch (atomic writes leave no temp files)', async () => {
  await withDir(async (dir) => {
    manualSeed(8);
    const model = mlpAE({ inputDim: 8, hidden: 4 });
    const optimizer = new SGD(model.parameters(), { lr: 1e-3 });
    // The loss is scaled per epoch so that epoch 2 is the best: ×1, ×0.1, ×10, ×5.
    const scale = [1, 0.1, 10, 5];
    let epoch = 0;
    const snaps: Float32Array[][] = [];
    try {
      const h = await train({
        model,
        optimizer,
        data: (e) => {
          epoch = e;
          return loader();
        },
        step: ({ x }) => ({ loss: mseLoss(model.forward(x), x).mul(scale[epoch]!) }),
        epochs: 4,
        outDir: dir,
        onEpoch: async () => {
          snaps.push(await snapshot(model));
        },
        ...quiet,
      });
      assert.is(h.bestEpoch, 2);
      assert.is(h.bestLoss, h.epochs[1]!.means.loss);
      assert.equal(readdirSync(dir).sort(), [
        'best.safetensors',
        'history.csv',
        'history.json',
        'last.safetensors',
      ]);
      const fresh = mlpAE({ inputDim: 8, hidden: 4 });
      try {
        const meta = await loadCheckpoint<{ epoch: number; history: History }>(
          join(dir, 'best.safetensors'),
          {
            model: fresh,
          },
        );
        assert.is(meta.epoch, 1, 'best.safetensors is epoch 2 (0-based 1)');
        assert.is(meta.history.bestEpoch, 2);
        sameBits(await snapshot(fresh), snaps[1]!, 'best.safetensors weights');
        const lastMeta = await loadCheckpoint<{ epoch: number }>(join(dir, 'last.safetensors'), {
          model: fresh,
        });
        assert.is(lastMeta.epoch, 3);
        sameBits(await snapshot(fresh), snaps[3]!, 'last.safetensors weights');
      } finally {
        fresh.dispose();
      }
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  });
});

test('a failing step function frees its batch and pending losses, and the error propagates', async () => {
  manualSeed(9);
  const model = mlpAE({ inputDim: 8, hidden: 4 });
  const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
  let n = 0;
  try {
    await train({
      model,
      optimizer,
      data: () => loader(),
      step: ({ x }) => {
        n++;
        const xhat = model.forward(x);
        return { loss: n === 3 ? xhat : mseLoss(xhat, x) };
      },
      epochs: 1,
      logEvery: 10,
      ...quiet,
    });
    assert.unreachable('expected an error');
  } catch (e) {
    assert.match(
      (e as Error).message,
      /train: the step function must return a scalar loss, got shape \[4,8\]/,
    );
  } finally {
    optimizer.dispose();
    model.dispose();
  }
});

test.run();
