/// <reference lib="dom" />
// The web example's page: pick MNIST or drop a folder of PNG chips, train seed 004's conv VAE with a live loss
// curve, look at reconstructions and error heatmaps, score images against a threshold, and download/upload
// checkpoints (safetensors, the format saveCheckpoint writes under Node). Bundled by scripts/web-build.ts.
import { checkpointToBytes, loadCheckpointBytes, parseSafetensorsHeader } from '@wgrad/nn';
import { type AdapterSummary, acquireDevice, noGrad, scope, tensor } from '@wgrad/tensor/browser';
import { heatmap, percentile, reconstruct, reconstructionScore } from '@wgrad/vae';
import {
  evalScores,
  type ModelConfig,
  makeTrainer,
  oracleTests,
  type ShortTraining,
  shortTraining,
  type Trainer,
  throughput,
} from './lib.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const num = (id: string) => Number($<HTMLInputElement>(id).value);

// ---------------------------------------------------------------------------------------------------------
// State.

interface ImageSet {
  /** (N, C, S, S) in [0, 1]. */
  x: Float32Array;
  n: number;
  channels: number;
  size: number;
  source: string;
}

let data: ImageSet | null = null;
let trainer: Trainer | null = null;
let stopRequested = false;
let training = false;
const losses: number[] = [];

function status(id: string, text: string, error = false): void {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('error', error);
}

// ---------------------------------------------------------------------------------------------------------
// Images: decode with createImageBitmap, draw into an S×S canvas, gray when every pixel has r = g = b.

async function decodeImages(
  files: File[],
  size?: number,
): Promise<{ pixels: Uint8ClampedArray[]; size: number }> {
  const bitmaps: ImageBitmap[] = [];
  for (const f of files) {
    try {
      bitmaps.push(await createImageBitmap(f));
    } catch (e) {
      throw new Error(`${f.webkitRelativePath || f.name}: not a decodable image (${(e as Error).message})`);
    }
  }
  // Size: the first image's, rounded down to a multiple of 4 (the conv VAE halves it twice).
  const s = size ?? Math.max(4, Math.floor(Math.min(bitmaps[0]!.width, bitmaps[0]!.height) / 4) * 4);
  const canvas = new OffscreenCanvas(s, s);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const pixels = bitmaps.map((b) => {
    ctx.clearRect(0, 0, s, s);
    ctx.drawImage(b, 0, 0, s, s);
    b.close();
    return ctx.getImageData(0, 0, s, s).data;
  });
  return { pixels, size: s };
}

function toTensorData(pixels: Uint8ClampedArray[], size: number, channels: number): Float32Array {
  const plane = size * size;
  const out = new Float32Array(pixels.length * channels * plane);
  pixels.forEach((p, i) => {
    for (let c = 0; c < channels; c++)
      for (let j = 0; j < plane; j++) out[(i * channels + c) * plane + j] = p[j * 4 + c]! / 255; // (N, C, S, S)
  });
  return out;
}

const isGray = (pixels: Uint8ClampedArray[]) =>
  pixels.every((p) => {
    for (let j = 0; j < p.length; j += 4) if (p[j] !== p[j + 1] || p[j] !== p[j + 2]) return false;
    return true;
  });

async function loadFolder(files: File[]): Promise<void> {
  const images = files.filter((f) => /\.(png|jpe?g|webp|gif|bmp)$/i.test(f.name));
  if (!images.length) throw new Error(`no images among the ${files.length} files (expected PNG chips)`);
  status('data-status', `Decoding ${images.length} images…`);
  const { pixels, size } = await decodeImages(images);
  const channels = isGray(pixels) ? 1 : 3;
  setData({
    x: toTensorData(pixels, size, channels),
    n: images.length,
    channels,
    size,
    source: 'your folder',
  });
}

async function fetchMnist(n: number): Promise<{ labels: Uint8Array; pixels: Uint8Array }> {
  const res = await fetch(`data/mnist.bin?n=${n}`);
  if (!res.ok) throw new Error(`MNIST: the server answered ${res.status} ${await res.text()}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const count = new DataView(bytes.buffer).getUint32(0, true);
  return { labels: bytes.subarray(4, 4 + count), pixels: bytes.subarray(4 + count) };
}

async function loadMnistSet(n: number, digit: string): Promise<void> {
  status('data-status', `Fetching ${n} MNIST images…`);
  const { labels, pixels } = await fetchMnist(n);
  const keep = [...labels.keys()].filter((i) => digit === 'all' || labels[i] === Number(digit));
  const x = new Float32Array(keep.length * 784);
  keep.forEach((i, k) => {
    for (let j = 0; j < 784; j++) x[k * 784 + j] = pixels[i * 784 + j]! / 255;
  });
  const what = digit === 'all' ? 'all digits' : `digit ${digit}`;
  setData({ x, n: keep.length, channels: 1, size: 28, source: `MNIST (${what})` });
}

function setData(d: ImageSet): void {
  data = d;
  status('data-status', `${d.n} images from ${d.source}, ${d.channels}×${d.size}×${d.size}.`);
  $<HTMLButtonElement>('start').disabled = false;
  drawGrid(null);
}

// ---------------------------------------------------------------------------------------------------------
// Drawing.

/** inferno-like colour ramp (black → purple → orange → yellow) for t in [0, 1]. */
function inferno(t: number): [number, number, number] {
  const stops: [number, number, number][] = [
    [0, 0, 4],
    [87, 16, 110],
    [188, 55, 84],
    [249, 142, 9],
    [252, 255, 164],
  ];
  const u = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  const f = u - i;
  const [a, b] = [stops[i]!, stops[i + 1]!];
  return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
}

/** One image (C, S, S) as RGBA, or an error map (S, S) through the colour ramp scaled by `max`. */
function toImageData(
  v: Float32Array,
  off: number,
  channels: number,
  size: number,
  errMax?: number,
): ImageData {
  const img = new ImageData(size, size);
  const plane = size * size;
  for (let j = 0; j < plane; j++) {
    let rgb: [number, number, number];
    if (errMax !== undefined) {
      let e = 0;
      for (let c = 0; c < channels; c++) e += v[off + c * plane + j]!;
      rgb = inferno(e / channels / errMax);
    } else if (channels === 1) {
      const g = v[off + j]! * 255;
      rgb = [g, g, g];
    } else rgb = [v[off + j]! * 255, v[off + plane + j]! * 255, v[off + 2 * plane + j]! * 255];
    img.data.set([rgb[0], rgb[1], rgb[2], 255], j * 4);
  }
  return img;
}

function blit(ctx: CanvasRenderingContext2D, img: ImageData, x: number, y: number, w: number): void {
  const c = new OffscreenCanvas(img.width, img.height);
  c.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(c, x, y, w, w);
}

function drawLoss(): void {
  const c = $<HTMLCanvasElement>('loss');
  const ctx = c.getContext('2d')!;
  const [W, H, L, B] = [c.width, c.height, 56, 24];
  ctx.clearRect(0, 0, W, H);
  ctx.font = '11px system-ui';
  ctx.fillStyle = '#6b7280';
  if (!losses.length) {
    ctx.fillText('loss per sample (MSE sum + KL) appears here while training', L, H / 2);
    return;
  }
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  const span = hi - lo || 1;
  const px = (i: number) => L + ((W - L - 8) * i) / Math.max(1, losses.length - 1);
  const py = (v: number) => 8 + (H - B - 8) * (1 - (v - lo) / span);
  ctx.strokeStyle = '#e5e7eb';
  for (let k = 0; k <= 4; k++) {
    const v = lo + (span * k) / 4;
    ctx.beginPath();
    ctx.moveTo(L, py(v));
    ctx.lineTo(W - 8, py(v));
    ctx.stroke();
    ctx.fillText(v.toPrecision(4), 4, py(v) + 4);
  }
  ctx.fillText(`step 1 … ${losses.length}`, L, H - 6);
  ctx.strokeStyle = '#2563eb';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  for (const [i, v] of losses.entries()) {
    if (i) ctx.lineTo(px(i), py(v));
    else ctx.moveTo(px(i), py(v));
  }
  ctx.stroke();
}

/** Up to 8 training images: input, reconstruction, error map; `null`: inputs only. */
async function drawGrid(t: Trainer | null): Promise<void> {
  if (!data) return;
  const d = data;
  const k = Math.min(8, d.n);
  const per = d.channels * d.size * d.size;
  const canvas = $<HTMLCanvasElement>('grid');
  const ctx = canvas.getContext('2d')!;
  const cell = Math.floor(canvas.width / 8);
  canvas.height = cell * 3;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const inputs = d.x.subarray(0, k * per);
  for (let i = 0; i < k; i++)
    blit(ctx, toImageData(inputs, i * per, d.channels, d.size), i * cell, 0, cell - 2);
  if (!t) return;
  const [rec, err] = await scope(async () => {
    const x = tensor(inputs.slice(), { shape: [k, d.channels, d.size, d.size] });
    const r = noGrad(() => reconstruct(t.model, x));
    const e = heatmap(t.model, x);
    return [await r.toArray(), await e.toArray()] as const;
  });
  let errMax = 1e-12;
  for (const v of err) errMax = Math.max(errMax, v);
  for (let i = 0; i < k; i++) {
    blit(ctx, toImageData(rec as Float32Array, i * per, d.channels, d.size), i * cell, cell, cell - 2);
    blit(
      ctx,
      toImageData(err as Float32Array, i * per, d.channels, d.size, errMax),
      i * cell,
      2 * cell,
      cell - 2,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Training.

function config(): ModelConfig {
  if (!data) throw new Error('no data');
  return {
    channels: data.channels,
    imageSize: data.size,
    latentDim: num('latent'),
    lr: num('lr'),
    seed: num('seed'),
    clip: 0,
  };
}

async function scoresOf(
  t: Trainer,
  x: Float32Array,
  n: number,
  channels: number,
  size: number,
): Promise<Float32Array> {
  const per = channels * size * size;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 256) {
    const m = Math.min(256, n - i);
    const s = await scope(async () => {
      const xt = tensor(x.slice(i * per, (i + m) * per), { shape: [m, channels, size, size] });
      return reconstructionScore(t.model, xt).toArray();
    });
    out.set(s as Float32Array, i);
  }
  return out;
}

async function train(): Promise<void> {
  if (!data || training) return;
  const d = data;
  training = true;
  stopRequested = false;
  $<HTMLButtonElement>('start').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  trainer?.dispose();
  trainer = makeTrainer(config());
  losses.length = 0;
  const batch = Math.min(num('batch'), d.n);
  const epochs = num('epochs');
  const per = d.channels * d.size * d.size;
  const steps = Math.floor(d.n / batch);
  const t0 = performance.now();
  let seen = 0;
  try {
    // A seeded shuffle per epoch (mulberry-style LCG keeps this file free of extra imports).
    let seed = (num('seed') * 2654435761) >>> 0 || 1;
    const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    for (let e = 0; e < epochs && !stopRequested; e++) {
      const order = [...Array(d.n).keys()];
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      for (let s = 0; s < steps && !stopRequested; s++) {
        const xb = new Float32Array(batch * per);
        for (let b = 0; b < batch; b++)
          xb.set(d.x.subarray(order[s * batch + b]! * per, (order[s * batch + b]! + 1) * per), b * per);
        const x = tensor(xb, { shape: [batch, d.channels, d.size, d.size] });
        const loss = trainer.step(x);
        x.dispose();
        losses.push(await loss.item());
        loss.dispose();
        seen += batch;
        const sec = (performance.now() - t0) / 1000;
        status(
          'train-status',
          `epoch ${e + 1}/${epochs}, step ${s + 1}/${steps}: loss ${losses.at(-1)!.toFixed(3)} per sample · ${(seen / sec).toFixed(1)} samples/s`,
        );
        drawLoss();
        if (s % 10 === 9) await drawGrid(trainer);
      }
    }
    await drawGrid(trainer);
    const scores = await scoresOf(trainer, d.x, d.n, d.channels, d.size);
    const thr = percentile(scores, 95);
    $<HTMLInputElement>('threshold').value = thr.toPrecision(4);
    status('threshold-note', `95th percentile of the ${d.n} training images' scores: ${thr.toPrecision(4)}.`);
    $<HTMLButtonElement>('download').disabled = false;
  } catch (e) {
    status('train-status', `training failed: ${(e as Error).message}`, true);
    throw e;
  } finally {
    training = false;
    $<HTMLButtonElement>('start').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Scoring uploaded images.

async function scoreFiles(files: File[]): Promise<void> {
  if (!trainer) throw new Error('train a model (or upload a checkpoint) first');
  const { channels, imageSize: size } = trainer.config;
  const { pixels } = await decodeImages(files, size);
  const x = toTensorData(pixels, size, channels);
  const scores = await scoresOf(trainer, x, files.length, channels, size);
  const per = channels * size * size;
  const t = trainer;
  const err = await scope(async () =>
    heatmap(t.model, tensor(x, { shape: [files.length, channels, size, size] })).toArray(),
  );
  let errMax = 1e-12;
  for (const v of err) errMax = Math.max(errMax, v);
  const thr = num('threshold');
  const body = $('scores').querySelector('tbody')!;
  files.forEach((f, i) => {
    const tr = document.createElement('tr');
    const cell = (img: ImageData) => {
      const c = document.createElement('canvas');
      c.width = c.height = size;
      c.getContext('2d')!.putImageData(img, 0, 0);
      const td = document.createElement('td');
      td.append(c);
      return td;
    };
    const flagged = Number.isFinite(thr) && scores[i]! > thr;
    tr.innerHTML = `<td>${f.name.replace(/[<>&]/g, '')}</td>`;
    tr.append(
      cell(toImageData(x, i * per, channels, size)),
      cell(toImageData(err as Float32Array, i * per, channels, size, errMax)),
    );
    tr.insertAdjacentHTML(
      'beforeend',
      `<td>${scores[i]!.toPrecision(4)}</td><td class="${flagged ? 'flag' : 'pass'}">${Number.isFinite(thr) ? (flagged ? 'anomalous' : 'normal') : '–'}</td>`,
    );
    body.prepend(tr);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Checkpoints.

async function download(): Promise<void> {
  if (!trainer) return;
  const c = trainer.config;
  const bytes = await checkpointToBytes({
    model: trainer.model,
    optimizer: trainer.optimizer,
    meta: { ...c, threshold: num('threshold'), losses: losses.length, source: data?.source ?? '' },
  });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(
    new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }),
  );
  a.download = `conv-vae-${c.channels}x${c.imageSize}-z${c.latentDim}.safetensors`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  status('ckpt-status', `${bytes.length.toLocaleString('en-US')} bytes written.`);
}

async function upload(file: File): Promise<void> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const header = await parseSafetensorsHeader(bytes, file.name);
  const meta = JSON.parse(header.metadata['wgrad.meta'] ?? '{}') as Partial<
    ModelConfig & { threshold: number }
  >;
  // The architecture from the tensor shapes: conv1.weight (64, C, 4, 4), fc_mu.weight (Z, 128·s·s).
  const conv1 = header.tensors.get('encoder.conv1.weight');
  const mu = header.tensors.get('encoder.fc_mu.weight');
  if (!conv1 || !mu)
    throw new Error(`${file.name}: not a conv VAE checkpoint (no encoder.conv1/fc_mu weights)`);
  const channels = conv1.shape[1]!;
  const latentDim = mu.shape[0]!;
  const imageSize = Math.round(Math.sqrt(mu.shape[1]! / 128) * 4);
  const t = makeTrainer({
    channels,
    imageSize,
    latentDim,
    lr: meta.lr ?? num('lr'),
    seed: meta.seed ?? 0,
    clip: 0,
  });
  try {
    await loadCheckpointBytes(bytes, { model: t.model, optimizer: t.optimizer }, file.name);
  } catch (e) {
    t.dispose();
    throw e;
  }
  trainer?.dispose();
  trainer = t;
  if (typeof meta.threshold === 'number' && Number.isFinite(meta.threshold)) {
    $<HTMLInputElement>('threshold').value = meta.threshold.toPrecision(4);
    status('threshold-note', `Threshold stored in ${file.name}: ${meta.threshold.toPrecision(4)}.`);
  }
  $<HTMLButtonElement>('download').disabled = false;
  status(
    'ckpt-status',
    `Loaded ${file.name}: conv VAE ${channels}×${imageSize}×${imageSize}, latent ${latentDim}.`,
  );
  if (data && data.channels === channels && data.size === imageSize) await drawGrid(trainer);
}

// ---------------------------------------------------------------------------------------------------------
// Self-test.

async function runOracle(): Promise<void> {
  const table = $<HTMLTableElement>('oracle-results');
  table.innerHTML = '<tr><td>running…</td></tr>';
  const results = await oracleTests();
  table.innerHTML = '<tr><th>check</th><th>worst error / tolerance</th><th></th></tr>';
  for (const r of results)
    table.insertAdjacentHTML(
      'beforeend',
      `<tr><td>${r.name}</td><td>${r.worst.toExponential(2)}</td><td class="${r.ok ? 'pass' : 'flag'}">${r.ok ? 'ok' : `FAIL ${r.detail}`}</td></tr>`,
    );
}

// ---------------------------------------------------------------------------------------------------------
// Wiring.

function guard(id: string, fn: () => Promise<void>): () => void {
  return () => {
    fn().catch((e) => status(id, (e as Error).message, true));
  };
}

async function filesOf(items: DataTransferItemList): Promise<File[]> {
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile)
      out.push(await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail)));
    else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  const entries = Array.from({ length: items.length }, (_, i) => items[i]!.webkitGetAsEntry()).filter(
    (e): e is FileSystemEntry => e !== null,
  );
  for (const e of entries) await walk(e);
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

function wire(): void {
  $('mnist').onclick = guard('data-status', () =>
    loadMnistSet(num('mnist-n'), $<HTMLSelectElement>('mnist-digit').value),
  );
  const drop = $('drop');
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add('over');
  };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer) guard('data-status', async () => loadFolder(await filesOf(e.dataTransfer!.items)))();
  };
  for (const id of ['folder', 'files'])
    $<HTMLInputElement>(id).onchange = (e) =>
      guard('data-status', () => loadFolder(Array.from((e.target as HTMLInputElement).files ?? [])))();
  $('start').onclick = guard('train-status', train);
  $('stop').onclick = () => {
    stopRequested = true;
  };
  $<HTMLInputElement>('score-files').onchange = (e) =>
    guard('threshold-note', () => scoreFiles(Array.from((e.target as HTMLInputElement).files ?? [])))();
  $('download').onclick = guard('ckpt-status', download);
  $<HTMLInputElement>('upload').onchange = (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) guard('ckpt-status', () => upload(f))();
  };
  $('oracle').onclick = guard('adapter', runOracle);
  drawLoss();
}

/** What test/browser.test.ts and the screenshot script drive through page.evaluate. */
export interface PageApi {
  ready: Promise<AdapterSummary>;
  oracleTests: typeof oracleTests;
  shortTraining: typeof shortTraining;
  throughput: typeof throughput;
  loadMnist: typeof loadMnistSet;
  train: typeof train;
  runOracle: typeof runOracle;
  checkpointBase64(): Promise<string>;
  /** The loaded images: count, shape, where from, and the first image's values (C·S·S). */
  data(): { n: number; channels: number; size: number; source: string; first: number[] } | null;
  /** shortTraining, then the trained model's checkpoint (base64) and evalScores of its first `n` images. */
  trainAndSave(
    o: ShortTraining,
    n: number,
  ): Promise<{ losses: number[]; checkpoint: string; scores: number[] }>;
}

const base64 = (bytes: Uint8Array) => {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
};

// ?featureLevel=compatibility asks for a compatibility-mode adapter (e.g. Chromium's OpenGL ES one).
const featureLevel = new URLSearchParams(location.search).get('featureLevel');
const ready = acquireDevice(featureLevel ? { featureLevel } : {}).then(
  (a) => {
    status(
      'adapter',
      `WebGPU adapter: ${a.description}${a.isFallback ? ' (software fallback)' : ''}, ${a.featureLevel} feature level.`,
    );
    return a;
  },
  (e: Error) => {
    status('adapter', e.message, true);
    throw e;
  },
);
const api: PageApi = {
  ready,
  oracleTests,
  shortTraining,
  throughput,
  loadMnist: loadMnistSet,
  train,
  runOracle,
  async checkpointBase64() {
    if (!trainer) throw new Error('no model');
    return base64(
      await checkpointToBytes({
        model: trainer.model,
        optimizer: trainer.optimizer,
        meta: { ...trainer.config },
      }),
    );
  },
  data() {
    if (!data) return null;
    const { n, channels, size, source, x } = data;
    return { n, channels, size, source, first: [...x.subarray(0, channels * size * size)] };
  },
  async trainAndSave(o, n) {
    let checkpoint = '';
    let scores: number[] = [];
    const losses = await shortTraining(o, async (t) => {
      checkpoint = base64(
        await checkpointToBytes({ model: t.model, optimizer: t.optimizer, meta: { ...o.config } }),
      );
      scores = await evalScores(t, o, n);
    });
    return { losses, checkpoint, scores };
  },
};
(globalThis as unknown as { wgrad: PageApi }).wgrad = api;
wire();
