// Load (issue 11): 10,000 training steps and 100,000 small ops in one process (a child run with
// --expose-gc, test/fixtures/faults/load.ts) keep memory flat: GPU bytes in use, live tensors, GPU buffers
// created and RSS at the end of each phase are within 10 % of their values after its warm-up.
import * as assert from 'uvu/assert';
import { fixtureReport, gpuSuite } from './helpers.js';

const t = gpuSuite('load');

interface Mem {
  bytesInUse: number;
  buffersInUse: number;
  liveTensors: number;
  buffersCreated: number;
  rss: number;
  heap: number;
}
interface Report {
  steps: number;
  ops: number;
  trainMs: number;
  opsMs: number;
  lastLoss: number;
  samples: { trainWarm: Mem; trainEnd: Mem; opsWarm: Mem; opsEnd: Mem };
  series: ({ epoch: number } & Mem)[];
}

const run = () => fixtureReport<Report>('faults/load.ts', [], { gc: true });

/** Fails unless `end` is at most 10 % above `warm` for each measure (the message shows the RSS series). */
function flat(phase: string, warm: Mem, end: Mem, series: Report['series']): void {
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  const trend = series.map((s) => `epoch ${s.epoch}: rss ${mb(s.rss)} MB, heap ${mb(s.heap)} MB`).join('; ');
  for (const k of ['bytesInUse', 'liveTensors', 'buffersInUse', 'buffersCreated', 'rss'] as const)
    assert.ok(
      end[k] <= warm[k] * 1.1,
      `${phase}: ${k} ${warm[k]} after warm-up -> ${end[k]} at the end (training: ${trend})`,
    );
}

t('10,000 training steps and 100,000 small ops in one process: memory flat (within 10 %)', async () => {
  const r = await run();
  assert.is(r.steps, 10_000);
  assert.is(r.ops, 100_000);
  assert.ok(Number.isFinite(r.lastLoss) && r.lastLoss < 0.1, `last loss ${r.lastLoss}`);
  flat('training', r.samples.trainWarm, r.samples.trainEnd, r.series);
  flat('small ops', r.samples.opsWarm, r.samples.opsEnd, r.series);
});

t.run();
