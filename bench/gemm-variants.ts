// GEMM block-config sweep: times `matmul` under forced block configs (and the default selection) on the same
// operands, interleaved so that machine load affects all alike; checks every result against the default.
//
//   node --conditions=source --import tsx bench/gemm-variants.ts [--shapes 128x784x400] [--configs 4x8w8x8,8x8w4x4] [--quick]
//
// A config is `sgG.H` (subgroup body: 8·G rows per workgroup, H vec4 column groups per lane; needs 8-wide
// subgroups), `stG.H` (the same with B packed into a texture), either with a `q` suffix for the k-by-k
// multiply-add order the subgroup body had before 2026-12-06 (e.g. `sg2.1q`, the old default), or `blR.HwX.Y`
// (blocked body: R rows × 4·H columns per invocation, X×Y invocations).
import { matmul, rand, scope, sync } from '@wgrad/tensor';
import { type GemmConfig, subgroup8 } from '../packages/tensor/src/ops/gemm.js';
import { matmulWithConfig } from '../packages/tensor/src/ops/linalg.js';
import { fmt, markdownTable, maxRelErr, median, parseBenchArgs } from './common.js';
import { workerCpuNs } from './cputime.js';

/** Interleaved: per rep, each case runs `iters` times; returns median wall ms and worker-CPU ms per iteration. */
async function timeCases(runs: Record<string, (n: number) => void>, reps: number, targetMs: number) {
  const iters: Record<string, number> = {};
  for (const [k, run] of Object.entries(runs)) {
    run(1);
    await sync();
    const t0 = performance.now();
    run(1);
    await sync();
    iters[k] = Math.max(1, Math.ceil(targetMs / (performance.now() - t0)));
  }
  const wall: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  for (let r = 0; r < reps; r++)
    for (const [k, run] of Object.entries(runs)) {
      const c0 = workerCpuNs()!;
      const t0 = performance.now();
      run(iters[k]!);
      await sync();
      (wall[k] ??= []).push((performance.now() - t0) / iters[k]!);
      (cpu[k] ??= []).push((workerCpuNs()! - c0) / 1e6 / iters[k]!);
    }
  return Object.fromEntries(
    Object.keys(runs).map((k) => [k, { ms: median(wall[k]!), cpu: median(cpu[k]!) }]),
  );
}

const opts = parseBenchArgs('usage: bench/gemm-variants.ts [options]', {
  shapes: {
    default: '128x784x400,128x400x784,256x3136x128',
    help: 'MxKxN list (a trailing t: A read transposed, as a weight gradient reads it)',
  },
  configs: {
    default: 'sg2.1q,sg2.1,sg4.1,st3.2q,st3.2,st4.1,bl8.2w4x8,bl4.1w8x8',
    help: 'GEMM configs (sg…/st… skipped without 8-wide subgroups)',
  },
});
const parseCfg = (s: string): GemmConfig => {
  const sg = /^s([gt])(\d+)\.(\d+)(q)?$/.exec(s);
  if (sg)
    return {
      body: 'subgroup',
      rows: +sg[2]!,
      h: +sg[3]!,
      wgx: 8,
      wgy: 1,
      btex: sg[1] === 't',
      order: sg[4] ? 'q' : 'row',
    };
  const bl = /^bl(\d+)\.(\d+)w(\d+)x(\d+)$/.exec(s);
  if (!bl) throw new Error(`bad config ${s} (expected sgG.H, stG.H, either with a q suffix, or blR.HwX.Y)`);
  return { body: 'blocked', rows: +bl[1]!, h: +bl[2]!, wgx: +bl[3]!, wgy: +bl[4]! };
};
const configs = opts
  .configs!.split(',')
  .map((s) => [s, parseCfg(s)] as const)
  .filter(([, c]) => c.body === 'blocked' || subgroup8());
const rows: string[][] = [];
for (const spec of opts.shapes!.split(',')) {
  // A trailing `t` reads A as the transpose of a row-major (K, M) matrix (a weight gradient's gyᵀ or im2colᵀ).
  const at = spec.endsWith('t');
  const [M, K, N] = spec.replace(/t$/, '').split('x').map(Number) as [number, number, number];
  await scope(async () => {
    const a = at ? rand([K, M], { low: -1, high: 1 }).transpose() : rand([M, K], { low: -1, high: 1 });
    const b = rand([K, N], { low: -1, high: 1 });
    const ref = await matmul(a, b).toArray();
    const runs: Record<string, (iters: number) => void> = {
      default: (n) => {
        for (let i = 0; i < n; i++) matmul(a, b).dispose();
      },
    };
    for (const [name, cfg] of configs) {
      const got = await matmulWithConfig(a, b, cfg).toArray();
      const err = maxRelErr(got, ref);
      if (!(err < 1e-5)) throw new Error(`${spec} ${name}: max rel err ${err}`);
      runs[name] = (n) => {
        for (let i = 0; i < n; i++) matmulWithConfig(a, b, cfg).dispose();
      };
    }
    const t = await timeCases(runs, opts.quick ? 3 : 5, opts.quick ? 300 : 800);
    const flop = 2 * M * N * K;
    for (const [name, tm] of Object.entries(t))
      rows.push([
        spec,
        name,
        fmt(tm.ms),
        fmt(flop / tm.ms / 1e6),
        fmt(tm.cpu),
        fmt((2 * flop) / tm.cpu / 1e6),
        fmt(t.default!.cpu / tm.cpu, 2),
      ]);
    process.stderr.write(`${spec} done\n`);
  });
}
console.log(
  markdownTable(
    ['M×K×N', 'config', 'wall ms', 'GFLOP/s', 'worker CPU ms', 'GFLOP/s @2 cores', 'vs default (CPU)'],
    rows,
  ),
);
process.exit(0);
