// Host cost of a dispatch: what one training step's encoding costs per dispatch on this machine (isolated steps,
// the GPU idle), and the single calls it is made of (Dawn's Node binding, V8 features the tensor core uses).
//
//   node --conditions=source --import tsx bench/host-calls.ts [--models mlp-vae,ae,conv-vae] [--steps 600] [--quick]
//   node --import tsx bench/host-calls.ts …     (the packages from dist: no tsx keepNames wrappers in them)
//
// Step rows: per isolated step (sync, encode one step, time it), host wall µs per dispatch (median over steps),
// mean process CPU µs per dispatch (garbage collection included), bind groups created per step. Call rows:
// median over 5 runs of a tight loop, µs per call.
import { Adam, clipGradNorm, mseLoss } from '@wgrad/nn';
import { dispatchStats, manualSeed, rand, scope, stack, sync, type Tensor, zeros } from '@wgrad/tensor';
import { convVAE, mlpVAE, twoLayerAE, vaeLoss } from '@wgrad/vae';
import { currentDevice } from '../packages/tensor/src/gpu.js';
import {
  benchMeta,
  fmt,
  formatHeader,
  markdownTable,
  median,
  packagesLine,
  parseBenchArgs,
} from './common.js';

const opts = parseBenchArgs('usage: bench/host-calls.ts [options]', {
  models: { help: 'comma-separated: mlp-vae, ae, conv-vae (default all)' },
  steps: { help: 'isolated steps per model (default 600, conv-vae 60; --quick: 100 / 10)' },
});
const meta = benchMeta('host-calls', opts);
console.log(formatHeader('Host cost per dispatch', meta));
console.log(`${packagesLine()}\n`);

type Model = 'mlp-vae' | 'ae' | 'conv-vae';
const models = (opts.models ?? 'mlp-vae,ae,conv-vae').split(',') as Model[];

async function stepCost(name: Model) {
  manualSeed(0);
  // biome-ignore lint/suspicious/noExplicitAny: the three seed models share run()/forward() shapes used below
  const model: any =
    name === 'mlp-vae' ? mlpVAE() : name === 'conv-vae' ? convVAE({ latentDim: 2 }) : twoLayerAE();
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  const x = rand([128, 1, 28, 28]);
  const step = (): Tensor =>
    scope(() => {
      opt.zeroGrad();
      let loss: Tensor;
      if (name === 'ae') {
        const xf = x.reshape([128, 784]);
        loss = mseLoss(model.forward(xf), xf).mul(784);
      } else {
        const o = model.run(x);
        loss = vaeLoss(o.xhat, x, o.mu, o.logvar, {
          recon: name === 'mlp-vae' ? 'bce' : 'mse',
          reduction: 'sum',
        }).loss;
      }
      loss.backward();
      if (name === 'conv-vae') clipGradNorm(opt.params, 0.5).dispose();
      opt.step();
      return stack([loss.detach().reshape([])]);
    });
  for (let i = 0; i < 5; i++) {
    step().dispose();
    await sync();
  }
  const n = Number(opts.steps ?? 0) || (name === 'conv-vae' ? 60 : 600) / (opts.quick ? 6 : 1);
  const perDispatch: number[] = [];
  let cpu = 0;
  let dispatches = 0;
  const bg0 = dispatchStats().bindGroupsCreated;
  for (let i = 0; i < n; i++) {
    await sync();
    const d0 = dispatchStats().dispatches;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const v = step();
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const d = dispatchStats().dispatches - d0;
    cpu += (c.user + c.system) / 1000;
    dispatches += d;
    perDispatch.push((ms * 1000) / d);
    v.dispose();
  }
  await sync();
  const bindGroups = (dispatchStats().bindGroupsCreated - bg0) / n;
  x.dispose();
  for (const p of model.parameters()) p.dispose();
  opt.dispose?.();
  return [
    name,
    fmt(dispatches / n),
    fmt(median(perDispatch)),
    fmt((cpu * 1000) / dispatches),
    fmt(bindGroups),
  ];
}

const rows: string[][] = [];
for (const m of models) {
  console.error(`[bench/host-calls] ${m}…`);
  rows.push(await stepCost(m));
}
console.log(
  markdownTable(
    [
      'model',
      'dispatches / step',
      'median host µs / dispatch',
      'mean CPU µs / dispatch',
      'bind groups created / step',
    ],
    rows,
  ),
);

// ---- single calls ------------------------------------------------------------------------------------------
const device = currentDevice()!;
const code = `@group(0) @binding(0) var<uniform> u: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<u32>;
@compute @workgroup_size(1) fn main() { y[0] = u.x; }`;
const layout = device.createBindGroupLayout({
  entries: [
    { binding: 0, visibility: 4, buffer: { type: 'uniform', hasDynamicOffset: true } },
    { binding: 1, visibility: 4, buffer: { type: 'storage' } },
  ],
});
const pipeline = device.createComputePipeline({
  layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
  compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
});
const ub = device.createBuffer({ size: 1 << 16, usage: 0x40 | 0x08 }); // UNIFORM | COPY_DST
const sb = device.createBuffer({ size: 1024, usage: 0x80 }); // STORAGE
const bg = device.createBindGroup({
  layout,
  entries: [
    { binding: 0, resource: { buffer: ub, size: 16 } },
    { binding: 1, resource: { buffer: sb } },
  ],
});
const N = opts.quick ? 1000 : 4000;
const callRows: string[][] = [];
/** µs per call of `f` inside one compute pass (pipeline and bind group set first), median of 5 passes. */
async function inPass(name: string, f: (p: GPUComputePassEncoder, i: number) => void) {
  const t: number[] = [];
  for (let r = 0; r < 5; r++) {
    const enc = device.createCommandEncoder();
    const p = enc.beginComputePass();
    p.setPipeline(pipeline);
    p.setBindGroup(0, bg, [0]);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) f(p, i);
    t.push(((performance.now() - t0) * 1000) / N);
    p.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  }
  callRows.push([name, fmt(median(t))]);
}
/** µs per call of `f` in a plain loop, median of 5 loops. */
function loop(name: string, f: (i: number) => unknown) {
  const t: number[] = [];
  let sink = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 50 * N; i++) if (f(i)) sink++;
    t.push(((performance.now() - t0) * 1000) / (50 * N));
  }
  callRows.push([name, fmt(median(t))]);
  return sink;
}
const arr = [0];
const u32 = new Uint32Array(1);
await inPass('setPipeline', (p) => p.setPipeline(pipeline));
await inPass('setBindGroup, offsets in a reused array', (p, i) => {
  arr[0] = (i & 63) * 256;
  p.setBindGroup(0, bg, arr);
});
await inPass('setBindGroup, offsets in a Uint32Array (start, length)', (p, i) => {
  u32[0] = (i & 63) * 256;
  p.setBindGroup(0, bg, u32, 0, 1);
});
await inPass('dispatchWorkgroups (bind group set)', (p) => p.dispatchWorkgroups(1));
await inPass('setPipeline + setBindGroup + dispatchWorkgroups', (p, i) => {
  p.setPipeline(pipeline);
  arr[0] = (i & 63) * 256;
  p.setBindGroup(0, bg, arr);
  p.dispatchWorkgroups(1);
});
{
  const t: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) device.createCommandEncoder().beginComputePass().end();
    t.push(((performance.now() - t0) * 1000) / 200);
  }
  callRows.push(['createCommandEncoder + beginComputePass + end', fmt(median(t))]);
}
const t1 = zeros([1024]);
const buf = t1.buffer();
const SIZE = Symbol('size');
(buf as unknown as Record<symbol, number>)[SIZE] = buf.size;
loop('GPUBuffer size getter', () => buf.size);
loop('symbol-keyed property on a GPUBuffer', () => (buf as unknown as Record<symbol, number>)[SIZE]);
const wm = new WeakMap<object, number>([[buf, 1]]);
loop('WeakMap.get', () => wm.get(buf));
loop("device.features.has('subgroups')", () => device.features.has('subgroups' as GPUFeatureName));
const fr = new FinalizationRegistry<number>(() => {});
loop('FinalizationRegistry register + unregister', () => {
  const o = {};
  fr.register(o, 1, o);
  return fr.unregister(o);
});
t1.dispose();
ub.destroy();
sb.destroy();
console.log(
  `\nSingle calls (µs per call, median of 5 loops of ${N} in one compute pass, or ${50 * N} plain):\n`,
);
console.log(markdownTable(['call', 'µs'], callRows));
