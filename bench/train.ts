// Training throughput: samples/s of the three seed models on MNIST (first 10,000 training images, batch 128,
// Adam lr 1e-3), wgrad against PyTorch on the same machine in the same run, with peak memory, the dispatches,
// submits and host encode time of one training step, the roofline of one step's kernels, and a check that
// memory stays flat over many steps.
//
//   npm run bench:train [-- --models mlp-vae,conv-vae,ae] [--images 10000] [--torch auto|off] [--rounds 5]
//                        [--roofline conv-vae|off] [--isa native|avx2] [--memory-steps 1000] [--quick]
//                        [--uniforms auto|dynamic|static] [--json out.json]
//
// Models (the seeds' architectures and losses):
//   mlp-vae   PyTorch's VAE example, 784-400-20, BCE(sum) + KL
//   conv-vae  seed 004: Conv2d(1,64,4,2,1), Conv2d(64,128,4,2,1), fc_mu/fc_logvar → latent 2, fc, two
//             ConvTranspose2d; MSE(sum) + KL, clip_grad_norm 0.5
//   ae        seed 002: z = relu(Vx + b), x̂ = Wz + a, h = 32; mean over the batch of ‖x − x̂‖²
// Timing: per model, each side warms up (pipeline compilation, first-use costs), then `--rounds` rounds
// (5; --quick 2), each timing ≥ 3 s (--quick 1 s) of whole training steps on every side in turn — wgrad
// (train() from @wgrad/vae, the step loop the examples use), PyTorch as installed, PyTorch tuned — so that a
// change in machine load hits every side alike. The table gives the median of the rounds (and the range).
// PyTorch runs bench/torch_train.py with Debian's python3-torch (2 threads) in a fresh process per round: as
// installed, and tuned: OPENBLAS_CORETYPE=SkylakeX (AVX-512 kernels where OpenBLAS does not pick them itself)
// and OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning against OpenBLAS's threads:
// about 2× PyTorch's speed on a 2-core machine; see torchEnv in common.ts). Ratios > 1 mean wgrad is faster.
// Step anatomy: dispatches and submits per step are counted over the timed wgrad rounds; the host encode time
// is measured on isolated steps (GPU idle: sync, encode one step, time it, sync), as the whole step's host
// time (autograd, allocation, encoding) and the part inside dispatch() (uniforms, bind group, WebGPU calls),
// both per dispatch.
// --isa avx2 emulates an AVX2-only machine (this one has AVX-512): PyTorch with ONEDNN_MAX_CPU_ISA=AVX2
// OPENBLAS_CORETYPE=Haswell (tuned adds OMP_WAIT_POLICY=PASSIVE), lavapipe with GALLIUM_OVERRIDE_CPU_CAPS=avx (Mesa
// then sees no AVX-512; the bench re-runs itself with it set, as the driver reads it at load).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Adam,
  type Batch,
  clipGradNorm,
  DataLoader,
  type Module,
  mnistDataset,
  mnistPackageDir,
  mseLoss,
} from '@wgrad/nn';
import {
  dispatchStats,
  emptyCache,
  manualSeed,
  measurePeaks,
  memory,
  profileReport,
  resetPeakMemory,
  roofline,
  scope,
  setProfiling,
  setUniformBinding,
  stack,
  staticUniforms,
  sync,
  type Tensor,
  type UniformBinding,
} from '@wgrad/tensor';
import { convVAE, mlpVAE, train, twoLayerAE, type VAE, vaeLoss } from '@wgrad/vae';
import {
  benchMeta,
  cpuInfo,
  envWords,
  findTorchPython,
  fmt,
  formatHeader,
  markdownTable,
  median,
  packagesLine,
  parseBenchArgs,
  runPythonJson,
  torchBlas,
  torchEnv,
  writeJson,
} from './common.js';

const MODELS = ['mlp-vae', 'conv-vae', 'ae'] as const;
type ModelName = (typeof MODELS)[number];

const opts = parseBenchArgs('usage: npm run bench:train -- [options]', {
  models: { default: MODELS.join(','), help: 'models to run (mlp-vae,conv-vae,ae)' },
  images: { help: 'training images per epoch (default 10000; --quick: 2048)' },
  batch: { default: '128', help: 'batch size' },
  torch: { default: 'auto', help: "'auto' (run PyTorch when python3-torch is installed) or 'off'" },
  rounds: { help: 'timed rounds per side; the median is reported (default 5; --quick: 2)' },
  roofline: { default: 'conv-vae', help: "model whose step's kernels get the roofline table, or 'off'" },
  isa: {
    default: 'native',
    help: "'native', or 'avx2' to emulate an AVX2-only machine (see the top of the file)",
  },
  'memory-steps': { help: 'steps of the flat-memory check (default 1000; --quick: 200; 0: skip)' },
  uniforms: {
    default: 'auto',
    help: "uniform binding: 'auto' (static on CPU adapters), 'dynamic' or 'static' (see setUniformBinding)",
  },
});
const fail = (msg: string): never => {
  console.error(`bench/train: ${msg}`);
  process.exit(2);
};
const models = opts.models!.split(',') as ModelName[];
for (const m of models) if (!MODELS.includes(m)) fail(`unknown model '${m}' (expected ${MODELS.join(', ')})`);
const rooflineModel = opts.roofline === 'off' ? null : (opts.roofline as ModelName);
if (rooflineModel && !MODELS.includes(rooflineModel))
  fail(`--roofline must be a model (${MODELS.join(', ')}) or 'off', got '${opts.roofline}'`);
if (opts.isa !== 'native' && opts.isa !== 'avx2') fail(`--isa must be 'native' or 'avx2', got '${opts.isa}'`);
if (!['auto', 'dynamic', 'static'].includes(opts.uniforms!))
  fail(`--uniforms must be 'auto', 'dynamic' or 'static', got '${opts.uniforms}'`);
setUniformBinding(opts.uniforms as UniformBinding);
const avx2 = opts.isa === 'avx2';
// Mesa reads GALLIUM_OVERRIDE_CPU_CAPS when the driver loads (before this code runs): re-run with it set.
if (avx2 && process.env.GALLIUM_OVERRIDE_CPU_CAPS !== 'avx') {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, GALLIUM_OVERRIDE_CPU_CAPS: 'avx' },
  });
  process.exit(r.status ?? 1);
}
const positive = (name: string, raw: string | undefined, def: number) => {
  const v = raw === undefined ? def : Number(raw);
  if (!Number.isInteger(v) || v < 0) fail(`--${name} must be a non-negative integer, got '${raw}'`);
  return v;
};
const images = positive('images', opts.images, opts.quick ? 2048 : 10000);
const batchSize = positive('batch', opts.batch, 128);
const memorySteps = positive('memory-steps', opts['memory-steps'], opts.quick ? 200 : 1000);
const rounds = Math.max(1, positive('rounds', opts.rounds, opts.quick ? 2 : 5));
const meta = benchMeta('train', opts);
/** Each timed round lasts at least this long (every side). */
const MIN_SECONDS = opts.quick ? 1 : 3;
meta.timing = `${rounds} rounds per side, each ≥ ${MIN_SECONDS} s of whole training steps; median (range) of the rounds`;
/** Isolated steps timed for the step anatomy (median): the host time of one step swings by tens of percent. */
const ANATOMY_STEPS = opts.quick ? 8 : 24;

// ---------------------------------------------------------------------------------------------------------
// wgrad side

function build(name: ModelName): { model: Module; step: (b: Batch) => { loss: Tensor }; clip?: number } {
  if (name === 'mlp-vae') {
    const model = mlpVAE();
    return {
      model,
      step: ({ x }) => {
        const o = model.run(x);
        return { loss: vaeLoss(o.xhat, x, o.mu, o.logvar, { recon: 'bce', reduction: 'sum' }).loss };
      },
    };
  }
  if (name === 'conv-vae') {
    const model: VAE = convVAE({ latentDim: 2 });
    return {
      model,
      step: ({ x }) => {
        const o = model.run(x);
        return { loss: vaeLoss(o.xhat, x, o.mu, o.logvar, { recon: 'mse', reduction: 'sum' }).loss };
      },
      clip: 0.5,
    };
  }
  const model = twoLayerAE({ hidden: 32 });
  return {
    model,
    step: ({ x }) => {
      const xf = x.reshape([x.shape[0]!, 784]);
      // mean over the batch of the per-image squared error = 784 · mean over all elements
      return { loss: mseLoss(model.forward(xf), xf).mul(784) };
    },
  };
}

let peakRss = 0;
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};

/** `steps(k)`: the next k batches of the loader, continuing across epochs (each a fresh shuffle). */
function stepSource(loader: DataLoader): (k: number) => AsyncIterable<Batch> {
  let it: AsyncIterator<Batch> | null = null;
  return (k) => ({
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < k; i++) {
        it ??= loader[Symbol.asyncIterator]();
        let r = await it.next();
        if (r.done) {
          it = loader[Symbol.asyncIterator]();
          r = await it.next();
        }
        if (r.done) throw new Error('bench/train: the data loader yields no batches');
        yield r.value;
      }
    },
  });
}

interface Anatomy {
  dispatchesPerStep: number;
  submitsPerStep: number;
  /** Host ms of one isolated step (median) and its parts per dispatch, µs. */
  stepHostMs: number;
  hostUsPerDispatch: number;
  /** The process's CPU time over the same span (the GPU is idle, so this is the encoding thread's). */
  cpuUsPerDispatch: number;
  dispatchUsPerDispatch: number;
  submitUsPerStep: number;
  /** Bind groups created per step over the timed rounds (cache misses; 0 once the pooled buffers repeat). */
  bindGroupsPerStep: number;
}

interface OursSide {
  name: ModelName;
  /** Runs one timed round; returns samples/s. */
  round: () => Promise<number>;
  anatomy: () => Promise<Anatomy>;
  profile: () => Promise<Record<string, unknown>[]>;
  finish: () => { loss: number; rssMb: number; gpuMb: number };
  rates: number[];
  counts: { steps: number; dispatches: number; submits: number; bindGroups: number };
}

async function setupOurs(name: ModelName, data: Awaited<ReturnType<typeof mnistDataset>>): Promise<OursSide> {
  manualSeed(0);
  emptyCache();
  resetPeakMemory();
  const { model, step, clip } = build(name);
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  const loader = new DataLoader(data, { batchSize, shuffle: true, seed: 0, dropLast: true });
  const next = stepSource(loader);
  const rssTimer = setInterval(sampleRss, 50);
  peakRss = 0;
  /** One step outside train() (what train() runs per batch), for the anatomy and profile measurements. */
  const oneStep = (batch: Batch) =>
    scope(() => {
      optimizer.zeroGrad();
      const { loss } = step(batch);
      loss.backward();
      if (clip) clipGradNorm(optimizer.params, clip).dispose();
      optimizer.step();
      return stack([loss.detach().reshape([])]);
    });
  let lastLoss = Number.NaN;
  const run = async (k: number) => {
    const h = await train({
      model,
      optimizer,
      data: () => next(k),
      step,
      clipGradNorm: clip,
      epochs: 1,
      progress: false,
      log: () => {},
    });
    if (h.stopped) throw new Error(`bench/train: ${name} stopped: ${h.stopped}`);
    const e = h.epochs[0]!;
    lastLoss = e.means.loss!;
    return e;
  };
  // Warm-up: 3 steps (compiles the pipelines), then 3 more to size a round: ≥ MIN_SECONDS of whole steps.
  await run(3);
  const probe = await run(3);
  const perStep = probe.seconds / probe.steps;
  const k = Math.max(3, Math.ceil(MIN_SECONDS / perStep));
  const side: OursSide = {
    name,
    rates: [],
    counts: { steps: 0, dispatches: 0, submits: 0, bindGroups: 0 },
    round: async () => {
      await sync();
      const s0 = dispatchStats();
      const t0 = performance.now();
      const e = await run(k);
      const seconds = (performance.now() - t0) / 1000;
      const s1 = dispatchStats();
      side.counts.steps += e.steps;
      side.counts.dispatches += s1.dispatches - s0.dispatches;
      side.counts.submits += s1.submits - s0.submits;
      side.counts.bindGroups += s1.bindGroupsCreated - s0.bindGroupsCreated;
      const rate = e.samples / seconds;
      side.rates.push(rate);
      return rate;
    },
    anatomy: async () => {
      // Isolated steps, the same body as train()'s: the GPU idle while the host encodes.
      const host: number[] = [];
      const cpu: number[] = [];
      const inDispatch: number[] = [];
      const submitMs: number[] = [];
      let dispatches = 0;
      for await (const batch of next(ANATOMY_STEPS)) {
        await sync();
        const s0 = dispatchStats();
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const v = oneStep(batch);
        const t1 = performance.now();
        const c1 = process.cpuUsage(c0);
        const s1 = dispatchStats();
        await sync();
        const s2 = dispatchStats();
        v.dispose();
        batch.x.dispose();
        batch.y.dispose();
        host.push(t1 - t0);
        cpu.push((c1.user + c1.system) / 1000);
        dispatches = s1.dispatches - s0.dispatches;
        inDispatch.push(s1.encodeMs - s0.encodeMs);
        submitMs.push(s2.submitMs - s0.submitMs);
      }
      const c = side.counts;
      return {
        dispatchesPerStep: c.dispatches / c.steps,
        submitsPerStep: c.submits / c.steps,
        stepHostMs: median(host),
        hostUsPerDispatch: (median(host) * 1000) / dispatches,
        cpuUsPerDispatch: (median(cpu) * 1000) / dispatches,
        dispatchUsPerDispatch: (median(inDispatch) * 1000) / dispatches,
        submitUsPerStep: median(submitMs) * 1000,
        bindGroupsPerStep: c.bindGroups / c.steps,
      };
    },
    profile: async () => {
      // GPU time per kernel over 2 steps (every dispatch in its own timestamped pass), against the peaks.
      const peaks = await measurePeaks();
      setProfiling(true);
      const steps = 2;
      try {
        for await (const batch of next(steps)) {
          const v = oneStep(batch);
          v.dispose();
          batch.x.dispose();
          batch.y.dispose();
        }
        const report = await profileReport();
        // Measured again after the profile: each peak is the better of the two (busy moments read low).
        const best = await measurePeaks({ again: true });
        const rows = roofline(report, best);
        return [
          { peaks: best, before: peaks },
          ...rows.map((r) => ({ ...r, ms: r.ms / steps, count: r.count / steps, steps })),
        ];
      } finally {
        setProfiling(false);
      }
    },
    finish: () => {
      clearInterval(rssTimer);
      sampleRss();
      const gpuPeak = memory().peakBytes;
      model.dispose();
      optimizer.dispose();
      return { loss: lastLoss, rssMb: peakRss / 2 ** 20, gpuMb: gpuPeak / 2 ** 20 };
    },
  };
  return side;
}

// ---------------------------------------------------------------------------------------------------------
// PyTorch side

interface TorchResult {
  samples_per_sec: number;
  final_loss: number;
  peak_rss_mb: number;
  torch: string;
}

/** PyTorch's ISA under --isa avx2 (both runs; see torchEnv in common.ts for as installed / tuned). */
const TORCH_AVX2 = { ONEDNN_MAX_CPU_ISA: 'AVX2', OPENBLAS_CORETYPE: 'Haswell' };

function runTorch(py: string, name: ModelName, tuned: boolean): TorchResult | string {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'torch_train.py');
  return runPythonJson<TorchResult>(
    py,
    script,
    [
      '--model',
      name,
      '--mnist-dir',
      mnistPackageDir(),
      '--images',
      String(images),
      '--batch',
      String(batchSize),
      '--warmup-steps',
      '3',
      '--min-seconds',
      String(MIN_SECONDS),
    ],
    torchEnv(tuned, avx2 ? TORCH_AVX2 : null),
  );
}

// ---------------------------------------------------------------------------------------------------------

const data = await mnistDataset({ split: 'train', limit: images });
const torchPy = findTorchPython(opts.torch);
const cpu = cpuInfo();
console.log(formatHeader('Training throughput (samples/s, higher is better)', meta));
// The header's host line names the CPU (family, model, avx2/avx512f); say when this run emulates AVX2 on it.
if (avx2)
  console.log(
    `- ISA: **AVX2 emulated** (--isa avx2: lavapipe GALLIUM_OVERRIDE_CPU_CAPS=avx, PyTorch ${envWords(TORCH_AVX2).join(' ')})`,
  );
console.log(packagesLine());
console.log(
  `- uniform blocks: ${staticUniforms() ? 'static offsets (uniform heap)' : 'dynamic offsets'} (--uniforms ${opts.uniforms})`,
);
console.log(
  `- data: first ${data.length} MNIST training images, batch ${batchSize}, Adam lr 1e-3; each side warms up, then ${rounds} rounds of ≥ ${MIN_SECONDS} s of whole steps, the sides in turn; median (range) of the rounds`,
);
if (torchPy)
  console.log(
    `- PyTorch: ${torchPy}, 2 threads, a fresh process per round, BLAS libraries loaded: ${torchBlas(torchPy)}; tuned: ${envWords(torchEnv(true, avx2 ? TORCH_AVX2 : null)).join(' ')}`,
  );
else console.log('- PyTorch: not run (python3-torch not installed, or --torch off)');
console.log('');

const rows: string[][] = [];
const anatomyRows: string[][] = [];
const results: Record<string, unknown>[] = [];
let rooflineRows: Record<string, unknown>[] | null = null;
const rate = (xs: number[]) =>
  xs.length ? `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : '–';
for (const name of models) {
  process.stderr.write(`[bench/train] ${name}: warm-up…\n`);
  const ours = await setupOurs(name, data);
  const shipped: number[] = [];
  const tuned: number[] = [];
  const torchErrors: string[] = [];
  let torchRss = 0;
  for (let r = 0; r < rounds; r++) {
    process.stderr.write(`[bench/train] ${name}: round ${r + 1}/${rounds}: `);
    process.stderr.write(`wgrad ${fmt(await ours.round())} samples/s`);
    if (!torchPy) {
      process.stderr.write('\n');
      continue;
    }
    for (const [tunedSide, out] of [
      [false, shipped],
      [true, tuned],
    ] as const) {
      const t = runTorch(torchPy, name, tunedSide);
      if (typeof t === 'string') torchErrors.push(t);
      else {
        process.stderr.write(`, PyTorch ${tunedSide ? 'tuned' : 'as installed'} ${fmt(t.samples_per_sec)}`);
        out.push(t.samples_per_sec);
        if (!tunedSide) torchRss = Math.max(torchRss, t.peak_rss_mb);
      }
    }
    process.stderr.write('\n');
  }
  const anatomy = await ours.anatomy();
  if (name === rooflineModel) rooflineRows = await ours.profile();
  const end = ours.finish();
  const w = median(ours.rates);
  const ratio = (xs: number[]) => (xs.length ? `${fmt(w / median(xs), 2)}×` : '–');
  rows.push([
    name,
    rate(ours.rates),
    torchErrors.length && !shipped.length ? torchErrors[0]! : rate(shipped),
    ratio(shipped),
    rate(tuned),
    ratio(tuned),
    fmt(end.rssMb),
    fmt(end.gpuMb),
    torchRss ? fmt(torchRss) : '–',
  ]);
  anatomyRows.push([
    name,
    fmt(anatomy.dispatchesPerStep),
    fmt(anatomy.submitsPerStep, 2),
    fmt(anatomy.stepHostMs),
    fmt(anatomy.hostUsPerDispatch),
    fmt(anatomy.cpuUsPerDispatch),
    fmt(anatomy.dispatchUsPerDispatch),
    fmt(anatomy.submitUsPerStep),
    fmt(anatomy.bindGroupsPerStep),
  ]);
  results.push({
    model: name,
    ours: { samplesPerSec: ours.rates, loss: end.loss, rssMb: end.rssMb, gpuMb: end.gpuMb, anatomy },
    torchShipped: shipped,
    torchTuned: tuned,
    torchErrors,
  });
}
console.log(
  markdownTable(
    [
      'model',
      'wgrad',
      'PyTorch as installed',
      'wgrad / PyTorch',
      'PyTorch tuned',
      'wgrad / tuned',
      'wgrad peak RSS MB',
      'wgrad peak GPU MB',
      'PyTorch peak RSS MB',
    ],
    rows,
  ),
);
console.log(
  `\nOne training step (dispatches, submits and bind groups created counted over the timed rounds, readbacks included; host wall and CPU time of isolated steps, median of ${ANATOMY_STEPS}):\n`,
);
console.log(
  markdownTable(
    [
      'model',
      'dispatches / step',
      'submits / step',
      'host ms / step',
      'host µs / dispatch',
      'CPU µs / dispatch',
      'in dispatch() µs / dispatch',
      'submit µs / step',
      'bind groups created / step',
    ],
    anatomyRows,
  ),
);

if (rooflineRows) {
  const [{ peaks, before }, ...kernels] = rooflineRows as [
    { peaks: Awaited<ReturnType<typeof measurePeaks>>; before: Awaited<ReturnType<typeof measurePeaks>> },
    ...ReturnType<typeof roofline>,
  ];
  console.log(
    `\nRoofline of one ${rooflineModel} training step (GPU time per kernel from timestamp queries, per step, mean of 2): adapter peaks ${fmt(peaks.gflops)} GFLOP/s, ${fmt(peaks.gbps)} GB/s (ridge ${fmt(peaks.ridge)} FLOP/B; measured before and after the profile, ${fmt(before.gflops)} / ${fmt(before.gbps)} before; ${peaks.method}). Bytes marked ~ are the bound buffers' sizes (the kernel declared no cost).\n`,
  );
  const total = kernels.reduce((s, k) => s + k.ms, 0);
  console.log(
    markdownTable(
      [
        'kernel',
        'dispatches',
        'ms',
        '% of step',
        'GFLOP/s',
        'GB/s',
        'FLOP/B',
        '% peak FLOP/s',
        '% peak GB/s',
        'bound',
        '% of roof',
      ],
      kernels.map((k) => [
        k.name,
        fmt(k.count),
        fmt(k.ms),
        `${fmt((100 * k.ms) / total, 2)}`,
        k.flops ? fmt(k.gflops) : '–',
        `${k.costKnown ? '' : '~'}${fmt(k.gbps)}`,
        k.flops ? fmt(k.intensity) : '–',
        k.flops ? fmt(100 * k.flopsFraction, 2) : '–',
        fmt(100 * k.bytesFraction, 2),
        k.bound,
        fmt(100 * k.ofRoof, 2),
      ]),
    ),
  );
  console.log(`\nGPU time of the profiled step: ${fmt(total)} ms`);
}

// Flat memory: the two-layer AE (the fastest) for memorySteps steps; GPU bytes in use and RSS every 10%.
let memoryCheck: Record<string, unknown> | null = null;
if (memorySteps > 0) {
  manualSeed(0);
  const { model, step } = build('ae');
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  const loader = new DataLoader(data, { batchSize, shuffle: true, seed: 0, dropLast: true });
  const perEpoch = loader.length;
  const epochs = Math.ceil(memorySteps / perEpoch);
  const samples: { step: number; gpuBytes: number; buffers: number; tensors: number; rssMb: number }[] = [];
  let steps = 0;
  await train({
    model,
    optimizer,
    data: () => loader,
    step: (b) => {
      steps++;
      return step(b);
    },
    epochs,
    progress: false,
    log: () => {},
    onEpoch: () => {
      const m = memory();
      samples.push({
        step: steps,
        gpuBytes: m.bytesInUse,
        buffers: m.buffersInUse,
        tensors: m.liveTensors,
        rssMb: process.memoryUsage().rss / 2 ** 20,
      });
    },
  });
  model.dispose();
  optimizer.dispose();
  const first = samples[0]!;
  const last = samples.at(-1)!;
  // Flat: GPU bytes and live tensors exactly constant (RSS is reported: the JS heap and Dawn move it a little).
  const flat = samples.every((s) => s.gpuBytes === first.gpuBytes && s.tensors === first.tensors);
  memoryCheck = { steps, samples, flat };
  console.log(
    `\nMemory over ${steps} AE steps (${samples.length} samples, one per epoch): GPU bytes in use ${first.gpuBytes} → ${last.gpuBytes}, live tensors ${first.tensors} → ${last.tensors}, RSS ${fmt(first.rssMb)} → ${fmt(last.rssMb)} MB (range ${fmt(Math.min(...samples.map((s) => s.rssMb)))}–${fmt(Math.max(...samples.map((s) => s.rssMb)))}): ${flat ? 'flat' : 'NOT flat'}`,
  );
}
if (opts.json)
  writeJson(opts.json, {
    meta,
    cpu,
    images: data.length,
    batchSize,
    rounds,
    // PyTorch's environment per side (a variable absent here was removed from the inherited environment).
    torchEnv: torchPy
      ? {
          asInstalled: torchEnv(false, avx2 ? TORCH_AVX2 : null),
          tuned: torchEnv(true, avx2 ? TORCH_AVX2 : null),
        }
      : null,
    results,
    roofline: rooflineRows,
    memoryCheck,
  });
process.exit(0);
