// The GPU-side cost of a dispatch and of the seed models' training steps, with the uniform block bound at a
// dynamic offset against a static one (setUniformBinding), alternating in one process so that the machine's
// swings hit both alike. On lavapipe a dynamic uniform offset costs tens of µs of GPU time per dispatch.
//
//   npm run bench:dispatch [-- --models mlp-vae,ae,conv-vae] [--rounds 5] [--quick] [--json out.json]
//
// Part 1, dispatch floor: a chain of K dependent elementwise adds (256, 2,560 and 51,200 elements) in one
// submit, wall time per dispatch (encode + GPU; median of the rounds).
// Part 2, training steps (batch 128, Adam lr 1e-3, the bench:train models on one random batch): per round and
// mode, the GPU wait of isolated steps (sync, encode one step, time the wait for it; median) and a loop of
// steps that each upload a fresh batch (as a data loader does, which submits the step before it), ms per step.
// The first round warms up (pipelines of both modes) and is not reported. Benchmarks are never tests.
import { Adam, clipGradNorm, type Module, mseLoss } from '@wgrad/nn';
import {
  dispatchStats,
  manualSeed,
  rand,
  scope,
  setUniformBinding,
  stack,
  sync,
  type Tensor,
} from '@wgrad/tensor';
import { convVAE, mlpVAE, twoLayerAE, type VAE, vaeLoss } from '@wgrad/vae';
import { writeBuffer } from '../packages/tensor/src/gpu.js';
import {
  benchMeta,
  fmt,
  formatHeader,
  markdownTable,
  median,
  packagesLine,
  parseBenchArgs,
  writeJson,
} from './common.js';

const MODES = ['dynamic', 'static'] as const;
const opts = parseBenchArgs('usage: npm run bench:dispatch -- [options]', {
  models: {
    default: 'mlp-vae,ae,conv-vae',
    help: 'models of part 2 (mlp-vae, ae, conv-vae; "none" to skip)',
  },
  rounds: { help: 'rounds per mode after the warm-up round (default 5; --quick 2)' },
});
const rounds = Number(opts.rounds ?? (opts.quick ? 2 : 5));
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`--rounds must be a positive integer, got ${opts.rounds}`);
const meta = benchMeta('dispatch', opts);
meta.timing = 'wall time between syncs; the modes alternate within each round; medians of the rounds';
console.log(formatHeader('Dispatch cost: dynamic vs static uniform offsets (lower is better)', meta));
console.log(packagesLine());
console.log(
  `- ${rounds} rounds per mode (plus one warm-up round), the modes alternating within each round\n`,
);

const results: Record<string, unknown> = { meta };

// Part 1: the dispatch floor.
const K = opts.quick ? 200 : 1000;
const floorRows: string[][] = [];
const floor: Record<string, Record<string, number>> = {};
for (const n of [256, 2560, 51200]) {
  const a = rand([n]);
  const b = rand([n]);
  const per: Record<string, number[]> = { dynamic: [], static: [] };
  for (let r = 0; r <= rounds; r++)
    for (const mode of MODES) {
      setUniformBinding(mode);
      await sync();
      const t0 = performance.now();
      scope(() => {
        let c = a;
        for (let i = 0; i < K; i++) c = c.add(b);
      });
      await sync();
      if (r > 0) per[mode]!.push(((performance.now() - t0) / K) * 1000);
    }
  a.dispose();
  b.dispose();
  const d = median(per.dynamic!);
  const s = median(per.static!);
  floor[n] = { dynamic: d, static: s };
  floorRows.push([`add, ${n} elements`, fmt(d), fmt(s), `${fmt(d / s, 2)}×`]);
}
console.log(`### Dispatch floor: ${K} dependent adds in one submit, µs per dispatch (median of ${rounds})\n`);
console.log(markdownTable(['chain', 'dynamic', 'static', 'dynamic / static'], floorRows));
results.floor = floor;

// Part 2: training steps.
const models = opts.models === 'none' ? [] : opts.models!.split(',');
const stepRows: string[][] = [];
const steps: Record<string, unknown> = {};
for (const name of models) {
  manualSeed(0);
  const x = rand([128, 1, 28, 28]); // (B, C, H, W)
  let model: Module;
  let loss: () => Tensor;
  let clip = 0;
  if (name === 'mlp-vae' || name === 'conv-vae') {
    const vae: VAE = name === 'mlp-vae' ? mlpVAE() : convVAE({ latentDim: 2 });
    model = vae;
    clip = name === 'conv-vae' ? 0.5 : 0;
    const recon = name === 'mlp-vae' ? 'bce' : 'mse';
    loss = () => {
      const o = vae.run(x);
      return vaeLoss(o.xhat, x, o.mu, o.logvar, { recon, reduction: 'sum' }).loss;
    };
  } else if (name === 'ae') {
    const ae = twoLayerAE({ hidden: 32 });
    model = ae;
    loss = () => {
      const xf = x.reshape([128, 784]);
      return mseLoss(ae.forward(xf), xf).mul(784);
    };
  } else throw new Error(`bench/dispatch: unknown model '${name}' (expected mlp-vae, ae or conv-vae)`);
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  const one = () =>
    scope(() => {
      opt.zeroGrad();
      const l = loss();
      l.backward();
      if (clip) clipGradNorm(opt.params, clip).dispose();
      opt.step();
      return stack([l.detach().reshape([])]);
    });
  const slow = name === 'conv-vae';
  const isolated = opts.quick ? 4 : slow ? 5 : 12;
  const loopSteps = opts.quick ? (slow ? 3 : 10) : slow ? 6 : 30;
  const host = new Float32Array(128 * 784);
  const wait: Record<string, number[]> = { dynamic: [], static: [] };
  const loop: Record<string, number[]> = { dynamic: [], static: [] };
  let dispatches = 0;
  for (let r = 0; r <= rounds; r++)
    for (const mode of MODES) {
      setUniformBinding(mode);
      for (let i = 0; i < 2; i++) one().dispose();
      const w: number[] = [];
      for (let i = 0; i < isolated; i++) {
        await sync();
        const v = one();
        const t1 = performance.now();
        await sync();
        w.push(performance.now() - t1);
        v.dispose();
      }
      await sync();
      const s0 = dispatchStats().dispatches;
      const t0 = performance.now();
      for (let i = 0; i < loopSteps; i++) {
        host[0] = i;
        writeBuffer(x.buffer('bench'), host); // a fresh batch: submits the step before it
        one().dispose();
      }
      await sync();
      if (r === 0) continue;
      dispatches = (dispatchStats().dispatches - s0) / loopSteps;
      wait[mode]!.push(median(w));
      loop[mode]!.push((performance.now() - t0) / loopSteps);
    }
  opt.zeroGrad();
  for (const p of model.parameters()) p.dispose();
  x.dispose();
  const list = (xs: number[]) => xs.map((v) => fmt(v)).join(', ');
  const ratio = (a: number[], b: number[]) => `${fmt(median(a) / median(b), 2)}×`;
  stepRows.push([
    name,
    fmt(dispatches, 0),
    list(wait.dynamic!),
    list(wait.static!),
    ratio(wait.dynamic!, wait.static!),
    list(loop.dynamic!),
    list(loop.static!),
    ratio(loop.dynamic!, loop.static!),
  ]);
  steps[name] = { dispatches, wait, loop };
  process.stderr.write(`[bench/dispatch] ${name} done\n`);
}
if (stepRows.length) {
  console.log('\n### Training steps, ms per step (every round; ratio of the medians)\n');
  console.log(
    markdownTable(
      [
        'model',
        'dispatches / step',
        'isolated GPU wait, dynamic',
        'static',
        'dynamic / static',
        'step loop, dynamic',
        'static',
        'dynamic / static',
      ],
      stepRows,
    ),
  );
}
results.steps = steps;
setUniformBinding('auto');
if (opts.json) writeJson(opts.json, results);
process.exit(0);
