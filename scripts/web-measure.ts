// The numbers and the screenshot of the README's "In the browser" section, on this machine:
//   - the bundle's size (minified, and gzipped);
//   - conv-VAE training throughput (samples/s) in headless Chromium and in Node, same model and batch
//     (bench:train's conv-vae: seed 004's conv VAE, latent 2, batch 128, Adam 1e-3, MSE(sum) + KL, clip 0.5),
//     alternating browser and Node for `--rounds` rounds;
//   - docs/img/web-page.png: the page after training 2 epochs on 1,024 MNIST digits (loss curve), then
//     uploading a checkpoint of the same model trained in Node for `--node-epochs` epochs on 4,096 digits (so
//     the reconstructions show a trained model, and a Node checkpoint is shown to load in the page), and
//     scoring MNIST and Fashion-MNIST test images against the threshold stored in it.
//
//   node --conditions=source --import tsx scripts/web-measure.ts [--rounds 2] [--seconds 5] [--gles] [--no-shot]
//        [--no-measure] [--node-epochs 4]
//
// --gles also measures Chromium's OpenGL ES WebGPU adapter (compatibility mode, Mesa llvmpipe).
import { rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkpointToBytes, loadFashionMnist, loadMnist } from '@wgrad/nn';
import { adapterSummary, scope, tensor } from '@wgrad/tensor';
import { percentile, reconstructionScore } from '@wgrad/vae';
import type { Browser, Page } from 'playwright-core';
import pngjs from 'pngjs';
import { type ModelConfig, makeTrainer, throughput } from '../examples/web/src/lib.js';
import type { PageApi } from '../examples/web/src/main.js';
import { CHROMIUM_GLES, launchChromium } from './web-browser.js';
import { buildWeb } from './web-build.js';
import { startWebServer } from './web-server.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '5' },
    gles: { type: 'boolean', default: false },
    'no-shot': { type: 'boolean', default: false },
    'no-measure': { type: 'boolean', default: false },
    'node-epochs': { type: 'string', default: '4' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);

const CONFIG: ModelConfig = { channels: 1, imageSize: 28, latentDim: 2, lr: 1e-3, seed: 0, clip: 0.5 };
const RUN = { config: CONFIG, batch: 128, warmup: 3, seconds, minSteps: 4 };

const build = await buildWeb();
console.log(`bundle: ${build.bytes} bytes minified, ${build.gzipBytes} gzipped`);
const server = await startWebServer();

const api = (p: Page) => p.evaluate.bind(p);
async function open(browser: Browser, query = ''): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (e) => console.error(`pageerror: ${e.message}`));
  await page.goto(server.url + query);
  const a = await page.evaluate(() => (globalThis as unknown as { wgrad: PageApi }).wgrad.ready);
  console.log(`Chromium adapter: ${JSON.stringify(a)}`);
  return page;
}

async function measure(label: string, launch: () => Promise<Browser>, query = '') {
  const browser = await launch();
  try {
    const page = await open(browser, query);
    const rows: { browser: number; node: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      const b = await api(page)(
        (o) => (globalThis as unknown as { wgrad: PageApi }).wgrad.throughput(o),
        RUN,
      );
      const n = await throughput(RUN);
      console.log(
        `${label} round ${r + 1}: Chromium ${b.samplesPerSec.toFixed(1)} samples/s (${b.steps} steps, loss ${b.lastLoss.toFixed(2)}), Node ${n.samplesPerSec.toFixed(1)} samples/s (${n.steps} steps, loss ${n.lastLoss.toFixed(2)})`,
      );
      rows.push({ browser: b.samplesPerSec, node: n.samplesPerSec });
    }
    return rows;
  } finally {
    await browser.close();
  }
}

console.log(`Node adapter: ${JSON.stringify(adapterSummary())}`);
if (!values['no-measure']) await measure('swiftshader', () => launchChromium());
if (values.gles && !values['no-measure'])
  await measure(
    'gles',
    () => launchChromium({ flags: CHROMIUM_GLES.flags, ignoreDefaultArgs: CHROMIUM_GLES.ignoreDefaultArgs }),
    '?featureLevel=compatibility',
  );

/** The page's model (latent 8, lr 1e-3, seed 0) trained in Node on 4,096 MNIST digits, with a threshold. */
async function nodeCheckpoint(epochs: number): Promise<Uint8Array> {
  const n = 4096;
  const batch = 64;
  const { images } = await loadMnist({ split: 'train', limit: n });
  const config: ModelConfig = { channels: 1, imageSize: 28, latentDim: 8, lr: 1e-3, seed: 0, clip: 0 };
  const t = makeTrainer(config);
  try {
    const t0 = Date.now();
    let last = Number.NaN;
    for (let e = 0; e < epochs; e++)
      for (let s = 0; s < n / batch; s++) {
        const x = tensor(images.subarray(s * batch * 784, (s + 1) * batch * 784), {
          shape: [batch, 1, 28, 28],
        });
        const l = t.step(x);
        x.dispose();
        if (s === n / batch - 1) last = await l.item();
        l.dispose();
      }
    const scores: number[] = [];
    for (let i = 0; i < n; i += 256)
      scores.push(
        ...(await scope(async () => {
          const x = tensor(images.subarray(i * 784, (i + 256) * 784), { shape: [256, 1, 28, 28] });
          return reconstructionScore(t.model, x).toArray();
        })),
      );
    const threshold = percentile(scores, 95);
    console.log(
      `Node: ${epochs} epochs on ${n} digits in ${((Date.now() - t0) / 1000).toFixed(1)} s, last loss ${last.toFixed(2)}, threshold ${threshold.toPrecision(4)}`,
    );
    return await checkpointToBytes({
      model: t.model,
      optimizer: t.optimizer,
      meta: { ...config, threshold },
    });
  } finally {
    t.dispose();
  }
}

if (!values['no-shot']) {
  const toPng = (images: Float32Array, i: number) => {
    const png = new pngjs.PNG({ width: 28, height: 28, colorType: 0 });
    for (let j = 0; j < 784; j++) {
      const v = Math.round(images[i * 784 + j]! * 255);
      png.data.set([v, v, v, 255], j * 4);
    }
    return pngjs.PNG.sync.write(png, { colorType: 0 });
  };
  const digits = await loadMnist({ split: 'test', limit: 3 });
  const fashion = await loadFashionMnist({ split: 'test', limit: 3 });
  const files = [
    ...[0, 1, 2].map((i) => ({
      name: `mnist-test-${i}.png`,
      mimeType: 'image/png',
      buffer: toPng(digits.images, i),
    })),
    ...[0, 1, 2].map((i) => ({
      name: `fashion-test-${i}.png`,
      mimeType: 'image/png',
      buffer: toPng(fashion.images, i),
    })),
  ];
  const checkpoint = await nodeCheckpoint(Number(values['node-epochs']));
  const browser = await launchChromium();
  try {
    const page = await open(browser);
    await page.fill('#latent', '8');
    await page.fill('#mnist-n', '1024');
    await page.fill('#epochs', '2');
    await page.fill('#batch', '64');
    await page.click('#mnist');
    await page.waitForFunction(() => !document.getElementById('start')?.hasAttribute('disabled'));
    const t0 = Date.now();
    await page.evaluate(() => (globalThis as unknown as { wgrad: PageApi }).wgrad.train());
    console.log(
      `page training: ${((Date.now() - t0) / 1000).toFixed(1)} s; ${await page.textContent('#train-status')}`,
    );
    await page.setInputFiles('#upload', {
      name: 'node-conv-vae.safetensors',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from(checkpoint),
    });
    await page.waitForFunction(() =>
      /Loaded/.test(document.getElementById('ckpt-status')?.textContent ?? ''),
    );
    console.log(`page: ${await page.textContent('#ckpt-status')}`);
    await page.setInputFiles('#score-files', files);
    await page.waitForFunction(() => document.querySelectorAll('#scores tbody tr').length === 6, null, {
      timeout: 120_000,
    });
    await page.evaluate(() => (globalThis as unknown as { wgrad: PageApi }).wgrad.runOracle());
    const out = join(ROOT, 'docs/img/web-page.png');
    const tmp = `${out}.tmp-${process.pid}.png`;
    await writeFile(tmp, await page.screenshot({ fullPage: true }));
    await rename(tmp, out);
    console.log(`screenshot: ${out}`);
  } finally {
    await browser.close();
  }
}
await server.close();
process.exit(0);
