// Training throughput: samples/s of the three seed models on MNIST (first 10,000 training images, batch 128,
// Adam lr 1e-3), wgrad against PyTorch on the same machine in the same run, with peak memory; then a check
// that memory stays flat over many steps.
//
//   npm run bench:train [-- --models mlp-vae,conv-vae,ae] [--images 10000] [--torch auto|off]
//                        [--memory-steps 1000] [--quick] [--json out.json]
//
// Models (the seeds' architectures and losses):
//   mlp-vae   PyTorch's VAE example, 784-400-20, BCE(sum) + KL
//   conv-vae  seed 004: Conv2d(1,64,4,2,1), Conv2d(64,128,4,2,1), fc_mu/fc_logvar → latent 2, fc, two
//             ConvTranspose2d; MSE(sum) + KL, clip_grad_norm 0.5
//   ae        seed 002: z = relu(Vx + b), x̂ = Wz + a, h = 32; mean over the batch of ‖x − x̂‖²
// Each side runs one warm-up epoch (pipeline compilation, first-use costs), then whole timed epochs until at
// least 3 s have passed (1 s with --quick); drop_last.
// PyTorch runs bench/torch_train.py with Debian's python3-torch (2 threads) twice: as installed, and with
// OPENBLAS_CORETYPE=SkylakeX ("tuned": AVX-512 kernels where OpenBLAS does not pick them itself). Ratios > 1
// mean wgrad is faster.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Adam, DataLoader, type Module, mnistDataset, mnistPackageDir, mseLoss } from '@wgrad/nn';
import { emptyCache, manualSeed, memory, resetPeakMemory, type Tensor } from '@wgrad/tensor';
import { type Batch, convVAE, mlpVAE, train, twoLayerAE, type VAE, vaeLoss } from '@wgrad/vae';
import {
  benchMeta,
  findTorchPython,
  fmt,
  formatHeader,
  markdownTable,
  parseBenchArgs,
  runPythonJson,
  torchBlas,
  writeJson,
} from './common.js';

const MODELS = ['mlp-vae', 'conv-vae', 'ae'] as const;
type ModelName = (typeof MODELS)[number];

const opts = parseBenchArgs('usage: npm run bench:train -- [options]', {
  models: { default: MODELS.join(','), help: 'models to run (mlp-vae,conv-vae,ae)' },
  images: { help: 'training images per epoch (default 10000; --quick: 2048)' },
  batch: { default: '128', help: 'batch size' },
  torch: { default: 'auto', help: "'auto' (run PyTorch when python3-torch is installed) or 'off'" },
  'memory-steps': { help: 'steps of the flat-memory check (default 1000; --quick: 200; 0: skip)' },
});
const models = opts.models!.split(',') as ModelName[];
for (const m of models)
  if (!MODELS.includes(m)) {
    console.error(`bench/train: unknown model '${m}' (expected ${MODELS.join(', ')})`);
    process.exit(2);
  }
const positive = (name: string, raw: string | undefined, def: number) => {
  const v = raw === undefined ? def : Number(raw);
  if (!Number.isInteger(v) || v < 0) {
    console.error(`bench/train: --${name} must be a non-negative integer, got '${raw}'`);
    process.exit(2);
  }
  return v;
};
const images = positive('images', opts.images, opts.quick ? 2048 : 10000);
const batchSize = positive('batch', opts.batch, 128);
const memorySteps = positive('memory-steps', opts['memory-steps'], opts.quick ? 200 : 1000);
const meta = benchMeta('train', opts);
/** Timed whole epochs last at least this long (both sides). */
const MIN_SECONDS = opts.quick ? 1 : 3;

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

async function runOurs(name: ModelName, data: Awaited<ReturnType<typeof mnistDataset>>) {
  manualSeed(0);
  emptyCache();
  resetPeakMemory();
  const { model, step, clip } = build(name);
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  const loader = new DataLoader(data, { batchSize, shuffle: true, seed: 0, dropLast: true });
  const rssTimer = setInterval(sampleRss, 50);
  peakRss = 0;
  const common = {
    model,
    optimizer,
    data: () => loader,
    step,
    clipGradNorm: clip,
    progress: false,
    log: () => {},
  };
  // One warm-up epoch (pipeline compilation), then whole epochs until ≥ MIN_SECONDS, like the PyTorch side.
  const warm = await train({ ...common, epochs: 1 });
  const perEpoch = warm.epochs[0]!.seconds;
  const timed = Math.max(1, Math.ceil(MIN_SECONDS / perEpoch));
  const h = await train({ ...common, epochs: timed });
  clearInterval(rssTimer);
  sampleRss();
  const samples = h.epochs.reduce((s, e) => s + e.samples, 0);
  const seconds = h.epochs.reduce((s, e) => s + e.seconds, 0);
  const e = { samplesPerSec: samples / seconds, means: h.epochs.at(-1)!.means };
  const gpuPeak = memory().peakBytes;
  model.dispose();
  optimizer.dispose();
  return {
    samplesPerSec: e.samplesPerSec,
    loss: e.means.loss!,
    rssMb: peakRss / 2 ** 20,
    gpuMb: gpuPeak / 2 ** 20,
  };
}

// ---------------------------------------------------------------------------------------------------------
// PyTorch side

interface TorchResult {
  samples_per_sec: number;
  final_loss: number;
  peak_rss_mb: number;
  torch: string;
}

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
    ],
    tuned ? { OPENBLAS_CORETYPE: 'SkylakeX' } : {},
  );
}

// ---------------------------------------------------------------------------------------------------------

const data = await mnistDataset({ split: 'train', limit: images });
const torchPy = findTorchPython(opts.torch);
console.log(formatHeader('Training throughput (samples/s, higher is better)', meta));
console.log(
  `- data: first ${data.length} MNIST training images, batch ${batchSize}, Adam lr 1e-3; one warm-up epoch, then whole epochs for ≥ ${MIN_SECONDS} s, each side`,
);
if (torchPy) console.log(`- PyTorch: ${torchPy}, 2 threads, BLAS libraries loaded: ${torchBlas(torchPy)}`);
else console.log('- PyTorch: not run (python3-torch not installed, or --torch off)');
console.log('');

const rows: string[][] = [];
const results: Record<string, unknown>[] = [];
for (const name of models) {
  process.stderr.write(`[bench/train] ${name}: wgrad…\n`);
  const ours = await runOurs(name, data);
  let shipped: TorchResult | string | null = null;
  let tuned: TorchResult | string | null = null;
  if (torchPy) {
    process.stderr.write(`[bench/train] ${name}: PyTorch…\n`);
    shipped = runTorch(torchPy, name, false);
    tuned = runTorch(torchPy, name, true);
  }
  const rate = (r: TorchResult | string | null) =>
    r === null ? '–' : typeof r === 'string' ? r : fmt(r.samples_per_sec);
  const ratio = (r: TorchResult | string | null) =>
    r && typeof r !== 'string' ? `${fmt(ours.samplesPerSec / r.samples_per_sec, 2)}×` : '–';
  rows.push([
    name,
    fmt(ours.samplesPerSec),
    rate(shipped),
    ratio(shipped),
    rate(tuned),
    ratio(tuned),
    fmt(ours.rssMb),
    fmt(ours.gpuMb),
    shipped && typeof shipped !== 'string' ? fmt(shipped.peak_rss_mb) : '–',
  ]);
  results.push({ model: name, ours, torchShipped: shipped, torchTuned: tuned });
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
if (opts.json) writeJson(opts.json, { meta, images: data.length, batchSize, results, memoryCheck });
process.exit(0);
