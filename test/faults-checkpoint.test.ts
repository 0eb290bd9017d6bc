// Fault suite, checkpoints (issue 11): a process SIGKILLed while it saves never leaves a torn or missing
// file (the file always loads and holds either the previous or the new version), and a training run
// SIGKILLed mid-epoch and resumed in a new process ends with the same parameters, byte for byte, as the
// uninterrupted run. Truncated files, wrong dtype/shape/name and a header over 100 MB are covered by
// checkpoint.test.ts. The processes under test are children (test/fixtures/faults/*.ts).
//
// A kill can leave the saver's temp file (`<path>.tmp-<pid>-<random>`) behind: it is never read (loads open
// `path` only) and never reused (each save makes a new random name with O_EXCL), so later saves and loads
// are unaffected; deleting such files is safe.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  Adam,
  DataLoader,
  Linear,
  loadTensors,
  mseLoss,
  saveCheckpoint,
  saveTensors,
  TensorDataset,
} from '@wgrad/nn';
import { full, type Tensor, tensor } from '@wgrad/tensor';
import { train } from '@wgrad/vae';
import * as assert from 'uvu/assert';
import { gpuSuite, withTempDir } from './helpers.js';

const root = new URL('..', import.meta.url).pathname;
const t = gpuSuite('faults: checkpoints');

interface Child {
  proc: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first line for which `pred` holds (rejects if the child ends first). */
  waitFor(pred: (line: string) => boolean): Promise<string>;
  /** Resolves when the child has ended, with its exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function child(script: string, args: string[]): Child {
  const proc = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', `test/fixtures/faults/${script}`, ...args],
    { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  const waiters: {
    pred: (l: string) => boolean;
    resolve: (l: string) => void;
    reject: (e: Error) => void;
  }[] = [];
  let partial = '';
  let err = '';
  let ended = false;
  proc.stderr!.on('data', (d) => {
    err += d;
  });
  proc.stdout!.on('data', (d) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of waiters.splice(0))
        if (w.pred(l)) w.resolve(l);
        else waiters.push(w);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      ended = true;
      for (const w of waiters.splice(0))
        w.reject(new Error(`${script} ${args.join(' ')} ended (${code ?? signal}) first; stderr:\n${err}`));
      resolve({ code, signal });
    }),
  );
  return {
    proc,
    lines,
    exited,
    stderr: () => err,
    waitFor: (pred) => {
      const seen = lines.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      if (ended) return Promise.reject(new Error(`${script} has ended; stderr:\n${err}`));
      return new Promise((resolve, reject) => waiters.push({ pred, resolve, reject }));
    },
  };
}

/** Runs a child to its end; fails unless it exits 0. */
async function runToEnd(script: string, args: string[]): Promise<string[]> {
  const c = child(script, args);
  const { code, signal } = await c.exited;
  if (code !== 0) assert.unreachable(`${script} ${args.join(' ')}: exit ${code ?? signal}\n${c.stderr()}`);
  return c.lines;
}

async function kill(c: Child): Promise<void> {
  c.proc.kill('SIGKILL');
  const { signal } = await c.exited;
  assert.is(signal, 'SIGKILL');
}

/** A deterministic stream of delays (ms) in [0, max). */
function delays(seed: number, max: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * max;
  };
}

const N = 1_000_000; // 2 × 4 MB per version

/** Loads the file and checks that it is one whole version (a[i] = v, b[i] = 1000 v + i % 997); returns v. */
async function version(path: string): Promise<number> {
  const { tensors, metadata } = await loadTensors(path);
  try {
    const v = Number(metadata.version);
    assert.ok(Number.isInteger(v) && v > 0, `metadata version ${metadata.version}`);
    const a = await tensors.get('a')!.toArray();
    const b = await tensors.get('b')!.toArray();
    assert.is(a.length, N);
    assert.is(b.length, N);
    for (let i = 0; i < N; i++)
      if (a[i] !== v || b[i] !== v * 1000 + (i % 997))
        assert.unreachable(`${path}: version ${v} torn at element ${i}: a ${a[i]}, b ${b[i]}`);
    return v;
  } finally {
    for (const x of tensors.values()) x.dispose();
  }
}

t(
  'SIGKILL during save, at 6 points: the file always loads whole, as the old or the new version',
  async () => {
    await withTempDir('wgrad-faults-', async (dir) => {
      const path = join(dir, 'model.safetensors');
      const next = delays(11, 150);
      let onDisk = 0; // the version the file holds (0: no file yet)
      let midWrite = 0; // kills that left a new temp file: they came while a save was writing
      const tempCount = () => readdirSync(dir).filter((f) => f !== basename(path)).length;
      // Each child starts while the previous one's file is checked, and begins saving when told.
      let c = child('save-loop.ts', [path, String(N)]);
      for (let k = 0; k < 6; k++) {
        await c.waitFor((l) => l === 'ready');
        const tempsBefore = tempCount();
        c.proc.stdin!.write(`${onDisk + 1}\n`);
        // The first kill lands within the first saves (maybe before any has finished: no file yet); the
        // others after a save, within about one save's time (so mostly inside the next write or rename).
        if (k === 0) await new Promise((r) => setTimeout(r, next() * 3));
        else {
          await c.waitFor((l) => l.startsWith('saved '));
          await new Promise((r) => setTimeout(r, next()));
        }
        await kill(c);
        const done = c;
        if (tempCount() > tempsBefore) midWrite++;
        if (k < 5) c = child('save-loop.ts', [path, String(N)]);
        const saved = done.lines.filter((l) => l.startsWith('saved ')).map((l) => Number(l.split(' ')[1]));
        const last = saved.length ? saved[saved.length - 1]! : onDisk;
        if (!existsSync(path)) {
          assert.is(last, 0, 'the file exists once a save has finished');
          continue;
        }
        const v = await version(path);
        // The old version, or the one being saved when the kill came (renamed before "saved" was printed).
        assert.ok(v === last || v === last + 1, `kill ${k}: file holds version ${v}, last reported ${last}`);
        for (const f of readdirSync(dir).filter((f) => f !== basename(path)))
          assert.match(f, `${basename(path)}.tmp-`, 'only temp files beside the file');
        onDisk = v;
      }
      assert.ok(onDisk > 0, 'at least one save finished');
      assert.ok(midWrite >= 2, `only ${midWrite} of 6 kills came during a write`);
      // Temp files a kill left behind do not stop a later save, and are not what a load reads.
      const temps = readdirSync(dir).filter((f) => f !== basename(path));
      const v = onDisk + 1;
      const a = full([N], v);
      const b = tensor(Float32Array.from({ length: N }, (_, i) => v * 1000 + (i % 997)));
      try {
        await saveTensors(
          new Map([
            ['a', a],
            ['b', b],
          ]),
          path,
          { version: String(v) },
        );
      } finally {
        a.dispose();
        b.dispose();
      }
      assert.is(await version(path), v);
      assert.equal(
        readdirSync(dir)
          .filter((f) => f !== basename(path))
          .sort(),
        temps.sort(),
        'no new temp',
      );
    });
  },
);

/** history.json without wall-clock fields. */
function history(dir: string): unknown {
  const h = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8'));
  for (const e of h.epochs) {
    delete e.seconds;
    delete e.samplesPerSec;
  }
  return h;
}

t(
  'SIGKILL mid-epoch, resume in a new process: parameters and history equal the uninterrupted run',
  async () => {
    await withTempDir('wgrad-faults-', async (dir) => {
      const [full, killed, noSeek, random] = ['full', 'killed', 'noseek', 'random'].map((n) => join(dir, n));
      for (const d of [full, killed, noSeek, random]) mkdirSync(d!);
      // The uninterrupted run, and (meanwhile) one stopped right after its mid-epoch checkpoint of step 49
      // (epoch 2, batch 17 of 32) and SIGKILLed there.
      const paused = child('train-kill.ts', [killed!, 'pause-at=49']);
      const [fullLines] = await Promise.all([
        runToEnd('train-kill.ts', [full!, 'full']),
        paused.waitFor((l) => l === 'PAUSED').then(() => kill(paused)),
      ]);
      assert.ok(fullLines.includes('DONE'));
      assert.not.ok(existsSync(join(killed!, 'final.safetensors')));
      // One more run killed at a random moment after epoch 2 started (whatever checkpoint it had written).
      const rnd = child('train-kill.ts', [random!, 'full']);
      await rnd.waitFor((l) => l.startsWith('[train] checkpoint at epoch 2'));
      await new Promise((r) => setTimeout(r, delays(5, 400)()));
      await kill(rnd);
      // Resume: through the DataLoader (seek), and through a source that cannot seek.
      for (const f of readdirSync(killed!)) copyFileSync(join(killed!, f), join(noSeek!, f));
      const [a, b, c] = await Promise.all([
        runToEnd('train-kill.ts', [killed!, 'resume']),
        runToEnd('train-kill.ts', [noSeek!, 'resume-noseek']),
        runToEnd('train-kill.ts', [random!, 'resume']),
      ]);
      for (const [lines, d] of [
        [a, killed],
        [b, noSeek],
      ] as const)
        assert.is(
          lines.find((l) => l.startsWith('[train] resumed')),
          `[train] resumed from ${join(d!, 'last.safetensors')} at epoch 2, batch 18 (step 50)`,
        );
      assert.ok(
        b.includes(
          '[train] the data source cannot seek: reading and dropping the 17 batches already trained on',
        ),
      );
      assert.ok(
        c.some((l) => l.startsWith('[train] resumed from')),
        'the randomly killed run resumed',
      );
      const want = readFileSync(join(full!, 'final.safetensors'));
      for (const d of [killed, noSeek, random])
        assert.ok(readFileSync(join(d!, 'final.safetensors')).equals(want), `${basename(d!)}: same bytes`);
      for (const d of [killed, noSeek, random])
        assert.equal(history(d!), history(full!), `${basename(d!)} history`);
    });
  },
);

t('bad mid-epoch settings and positions are errors naming the value', async () => {
  await withTempDir('wgrad-faults-', async (dir) => {
    const model = new Linear(4, 4);
    const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
    const loader = new DataLoader(TensorDataset.fromArrays(new Float32Array(32), new Int32Array(8), [8, 4]), {
      batchSize: 2,
    });
    const opts = {
      model,
      optimizer,
      data: () => loader,
      step: ({ x }: { x: Tensor }) => ({ loss: mseLoss(model.forward(x), x) }),
      epochs: 1,
      outDir: dir,
      progress: false,
      verifyKernels: false,
      log: () => {},
    };
    try {
      const e1 = await train({ ...opts, checkpointEvery: 2.5 }).catch((e: Error) => e);
      assert.is((e1 as Error).message, 'train: checkpointEvery must be a non-negative integer, got 2.5');
      assert.throws(() => loader.seek(0, 9), /DataLoader\.seek: batch must be an integer in \[0, 4\], got 9/);
      // A mid-epoch position that does not follow the finished epochs.
      const path = join(dir, 'last.safetensors');
      const inEpoch = { epoch: 3, batches: 1, samples: 2, sums: { loss: 1 }, seconds: 0 };
      await saveCheckpoint(path, { model, optimizer, meta: { epoch: 0, step: 5, inEpoch } });
      const e2 = await train({ ...opts, epochs: 4, resume: true }).catch((e: Error) => e);
      assert.is(
        (e2 as Error).message,
        `train: cannot resume from ${path}: bad mid-epoch position ${JSON.stringify(inEpoch)}`,
      );
    } finally {
      model.dispose();
      optimizer.dispose();
    }
  });
});

t.run();
