// The profiler's work accounting (FLOPs and bytes per kernel), the roofline against measured peaks, the
// host encode-time counters, and the buffer pool's order-independent reuse that keeps bind groups cached. No test asserts a time: only that times are measured (positive, finite) and that
// the work and the results are exact.
import { Adam, Parameter } from '@wgrad/nn';
import {
  adapterSummary,
  dispatchStats,
  limits,
  matmul,
  measurePeaks,
  type ProfileEntry,
  profileReport,
  roofline,
  setProfiling,
  sync,
  zeros,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { fromRef, gpuSuite, randRef } from './helpers.js';

const t = gpuSuite('profile');

/** Runs `fn` with profiling on; null when the adapter has no timestamp queries (OpenGL compat). */
async function profiled(fn: () => Promise<void> | void): Promise<ProfileEntry[] | null> {
  try {
    setProfiling(true);
  } catch (e) {
    if (/timestamp-query/.test((e as Error).message)) return null;
    throw e;
  }
  try {
    await fn();
    return await profileReport();
  } finally {
    setProfiling(false);
  }
}

t(
  'profileReport: GEMM FLOPs 2·M·N·K and elementwise bytes are exact; results equal the unprofiled run',
  async () => {
    const [M, K, N] = [24, 40, 12];
    const a = fromRef(randRef([M, K], 1));
    const b = fromRef(randRef([K, N], 2));
    const c = fromRef(randRef([M, N], 3));
    const plain = await matmul(a, b).add(c).toArray();
    let got: Float32Array | null = null;
    const report = await profiled(async () => {
      got = await matmul(a, b).add(c).toArray();
    });
    if (!report) {
      console.log(`  (skipped: ${adapterSummary().backend} has no timestamp queries)`);
      return;
    }
    assert.equal(Array.from(got!), Array.from(plain), 'profiling changes no result');
    const gemm = report.filter((e) => e.name.startsWith('gemm:') && !e.name.includes('pack'));
    assert.is(gemm.length, 1, `one GEMM kernel in ${report.map((e) => e.name).join(', ')}`);
    assert.is(gemm[0]!.flops, 2 * M * N * K);
    assert.is(gemm[0]!.bytes, 4 * (M * K + K * N + M * N));
    assert.ok(gemm[0]!.costKnown);
    const add = report.find((e) => e.name.startsWith('add'));
    assert.ok(add, `an add kernel in ${report.map((e) => e.name).join(', ')}`);
    assert.is(add!.flops, M * N);
    assert.is(add!.bytes, 3 * M * N * 4);
    for (const e of report) {
      assert.ok(e.ms > 0 && Number.isFinite(e.ms), `${e.name}: GPU time ${e.ms}`);
      assert.ok(
        Math.abs(e.gflops - e.flops / e.ms / 1e6) <= 1e-9 * Math.max(1, e.gflops),
        `${e.name} GFLOP/s`,
      );
      assert.ok(Math.abs(e.gbps - e.bytes / e.ms / 1e6) <= 1e-9 * Math.max(1, e.gbps), `${e.name} GB/s`);
      assert.ok(e.bytes > 0, `${e.name}: bytes counted`);
    }
  },
);

t('profileReport: an Adam step counts 14 FLOPs and 7 float reads/writes per parameter element', async () => {
  const p = new Parameter(fromRef(randRef([3, 50], 4)));
  p.grad = fromRef(randRef([3, 50], 5));
  const opt = new Adam([p], { lr: 1e-2 });
  const report = await profiled(() => opt.step());
  opt.dispose();
  p.dispose();
  if (!report) return;
  const step = report.find((e) => e.name.startsWith('adam_step'));
  assert.ok(step, `an adam_step kernel in ${report.map((e) => e.name).join(', ')}`);
  assert.is(step!.flops, 14 * 150);
  assert.is(step!.bytes, 7 * 4 * 150);
});

t('roofline(): intensity, the bound and the share of the roof', () => {
  const peaks = { gflops: 100, gbps: 10, ridge: 10, method: 'synthetic' };
  const base = { count: 1, costKnown: true, ms: 1 };
  const entries: ProfileEntry[] = [
    // 50 GFLOP/s at 20 FLOP/B: compute-bound, half the FLOP roof
    { ...base, name: 'dense', flops: 50e6, bytes: 2.5e6, gflops: 50, gbps: 2.5 },
    // 1 FLOP/B at 5 GB/s: memory-bound, half the bandwidth roof
    { ...base, name: 'stream', flops: 5e6, bytes: 5e6, gflops: 5, gbps: 5 },
    // no FLOPs declared: memory-bound by definition
    { ...base, name: 'copy', flops: 0, bytes: 8e6, gflops: 0, gbps: 8, costKnown: false },
  ];
  const [dense, stream, copy] = roofline(entries, peaks);
  assert.is(dense!.intensity, 20);
  assert.is(dense!.bound, 'compute');
  assert.is(dense!.ofRoof, 0.5);
  assert.is(stream!.bound, 'memory');
  assert.is(stream!.ofRoof, 0.5);
  assert.is(stream!.flopsFraction, 0.05);
  assert.is(copy!.intensity, 0);
  assert.is(copy!.bound, 'memory');
  assert.is(copy!.bytesFraction, 0.8);
});

t('measurePeaks(): finite positive peaks, measured once per process', async () => {
  const p = measurePeaks();
  assert.is(measurePeaks(), p, 'the same promise');
  const peaks = await p;
  assert.ok(peaks.gflops > 0 && Number.isFinite(peaks.gflops), `GFLOP/s ${peaks.gflops}`);
  assert.ok(peaks.gbps > 0 && Number.isFinite(peaks.gbps), `GB/s ${peaks.gbps}`);
  assert.ok(Math.abs(peaks.ridge - peaks.gflops / peaks.gbps) < 1e-9 * peaks.ridge);
  assert.ok(limits().maxStorageBufferBindingSize >= 32 << 20);
});

t('dispatchStats(): host time inside dispatch() and submits is counted', async () => {
  await sync();
  const s0 = dispatchStats();
  const x = fromRef(randRef([64], 6));
  const s1 = dispatchStats();
  x.add(1).mul(2);
  const s2 = dispatchStats();
  assert.is(s2.dispatches - s1.dispatches, 2);
  assert.ok(s2.encodeMs > s1.encodeMs, 'encode time grows with dispatches');
  await sync();
  const s3 = dispatchStats();
  assert.ok(s3.submits > s0.submits);
  assert.ok(s3.submitMs > s0.submitMs, 'submit time grows with submits');
});

t(
  'the pool hands out the same buffer whatever order buffers were freed in; repeated work creates no bind groups',
  async () => {
    const n = 1000; // a size class of its own in this suite
    const freeAndTake = (order: number[]) => {
      const ts = [zeros([n]), zeros([n]), zeros([n])];
      for (const i of order) ts[i]!.dispose();
      const y = zeros([n]);
      const buf = y.buffer('test');
      y.dispose();
      return buf;
    };
    const first = freeAndTake([2, 0, 1]);
    assert.is(freeAndTake([0, 1, 2]), first);
    assert.is(freeAndTake([1, 2, 0]), first);
    // The same op on the same shapes, with the intermediate freed in between: the second run hits the cache.
    const x = fromRef(randRef([n], 7));
    const run = () => {
      const a = x.mul(3);
      const y = a.add(1);
      a.dispose(); // freed before y: a LIFO pool would swap the two buffers on the next run
      y.dispose();
    };
    run();
    const before = dispatchStats().bindGroupsCreated;
    run();
    assert.is(dispatchStats().bindGroupsCreated, before, 'no new bind group');
  },
);

t.run();
