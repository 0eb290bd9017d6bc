// The packages in a real browser: the esbuild bundle of examples/web has no Node built-ins, and in Debian's
// Chromium (headless, WebGPU on; see scripts/web-browser.ts for the flags) the op-vs-reference checks pass and
// a seeded conv-VAE training gives the same losses as the same code under Node (1e-4 relative); a checkpoint
// made in the page loads under Node with loadCheckpoint and scores the same. Without chromium the browser
// tests skip with the reason printed, except under CI (CI=true), where they fail.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpoint, save, saveBytes } from '@wgrad/nn';
import { convVAE } from '@wgrad/vae';
import type { Browser, Page } from 'playwright-core';
import pngjs from 'pngjs';
import * as assert from 'uvu/assert';
import { evalScores, makeTrainer, type ShortTraining, shortTraining } from '../examples/web/src/lib.js';
import type { PageApi } from '../examples/web/src/main.js';
import { chromiumMissing, launchChromium } from '../scripts/web-browser.js';
import { buildWeb } from '../scripts/web-build.js';
import { startWebServer, type WebServer } from '../scripts/web-server.js';
import { gpuSuite, withTempDir } from './helpers.js';

const t = gpuSuite('browser');
const CI = process.env.CI === 'true' || process.env.CI === '1';

const SETUP: ShortTraining = {
  config: { channels: 1, imageSize: 16, latentDim: 4, lr: 1e-3, seed: 7, clip: 0 },
  steps: 4,
  batch: 8,
  images: 24,
};

t('the browser bundle builds without Node built-ins, and the build rejects one', async () => {
  await withTempDir('wgrad-web-', async (dir) => {
    const b = await buildWeb({ outFile: join(dir, 'app.js') });
    assert.ok(b.bytes > 10_000 && b.gzipBytes < b.bytes, `bundle ${b.bytes} bytes, ${b.gzipBytes} gzipped`);
    assert.ok(b.inputs.some((p) => p.endsWith('packages/tensor/src/index.browser.ts')));
    assert.not.ok(b.inputs.some((p) => p.includes('device-node') || p.includes('checkpoint.ts')));
    const bad = join(dir, 'bad.ts');
    await writeFile(bad, "import { readFile } from 'node:fs/promises';\nexport const f = readFile;\n");
    try {
      await buildWeb({ outFile: join(dir, 'bad.js'), entry: bad });
      assert.unreachable('a bundle importing node:fs/promises was built');
    } catch (e) {
      assert.match((e as Error).message, "Node-only module 'node:fs/promises' imported by");
    }
  });
});

t('saveBytes gives exactly the bytes save() writes', async () => {
  await withTempDir('wgrad-web-', async (dir) => {
    const m = convVAE({ channels: 1, latentDim: 3, imageSize: 8 });
    try {
      const path = join(dir, 'm.safetensors');
      await save(m, path, { metadata: { note: 'x' } });
      const bytes = await saveBytes(m, { metadata: { note: 'x' } });
      const { readFile } = await import('node:fs/promises');
      assert.equal(Buffer.compare(Buffer.from(bytes), await readFile(path)), 0);
    } finally {
      m.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// In Chromium.

let server: WebServer | null = null;
let browser: Browser | null = null;
let page: Page | null = null;
let skipReason: string | null = chromiumMissing();

/** The page with a WebGPU device, or null (skipped, reason printed); throws under CI when it cannot run. */
async function thePage(): Promise<Page | null> {
  if (page) return page;
  if (!skipReason) {
    const t0 = Date.now();
    await buildWeb();
    server = await startWebServer();
    browser = await launchChromium();
    console.log(
      `  [browser] bundle built, server and Chromium started: ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    const p = await browser.newPage();
    const logs: string[] = [];
    p.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    p.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await p.goto(server.url);
    const adapter = await p.evaluate(async () => {
      const w = (globalThis as unknown as { wgrad?: PageApi }).wgrad;
      if (!w) return { error: 'the page did not load its bundle' };
      try {
        return { summary: await w.ready };
      } catch (e) {
        return { error: (e as Error).message };
      }
    });
    if ('error' in adapter)
      skipReason = `Chromium found no WebGPU adapter: ${adapter.error}\n${logs.join('\n')}`;
    else {
      console.log(`  [browser] Chromium WebGPU adapter: ${JSON.stringify(adapter.summary)}`);
      page = p;
      return p;
    }
  }
  if (CI) throw new Error(`browser test cannot run under CI: ${skipReason}`);
  console.log(`  [browser] SKIPPED: ${skipReason}`);
  return null;
}

t(
  'in Chromium: op-vs-reference checks (elementwise, reduce, matmul, conv2d/convT forward + grad)',
  async () => {
    const p = await thePage();
    if (!p) return;
    const t0 = Date.now();
    const results = await p.evaluate(() => (globalThis as unknown as { wgrad: PageApi }).wgrad.oracleTests());
    console.log(
      `  [browser] ${results.length} oracle checks in Chromium: ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    const failed = results.filter((r) => !r.ok);
    assert.ok(results.length >= 15, `${results.length} checks ran`);
    assert.equal(
      failed,
      [],
      `failed in the browser: ${failed.map((r) => `${r.name}: ${r.detail}`).join('; ')}`,
    );
  },
);

t(
  'in Chromium: a seeded conv-VAE training matches Node (1e-4 relative); its checkpoint loads in Node',
  async () => {
    const p = await thePage();
    if (!p) return;
    let t0 = Date.now();
    const inPage = await p.evaluate(
      (o) => (globalThis as unknown as { wgrad: PageApi }).wgrad.trainAndSave(o, 8),
      SETUP,
    );
    const pageSeconds = (Date.now() - t0) / 1000;
    t0 = Date.now();
    const inNode = await shortTraining(SETUP);
    console.log(
      `  [browser] training: Chromium ${pageSeconds.toFixed(1)} s, Node ${((Date.now() - t0) / 1000).toFixed(1)} s (pipeline compilation included)`,
    );
    console.log(
      `  [browser] losses in Chromium ${inPage.losses.join(', ')}\n  [browser] losses in Node     ${inNode.join(', ')}`,
    );
    assert.equal(inPage.losses.length, SETUP.steps);
    for (const [i, l] of inNode.entries()) {
      const rel = Math.abs(inPage.losses[i]! - l) / Math.abs(l);
      assert.ok(
        rel <= 1e-4,
        `step ${i + 1}: Chromium ${inPage.losses[i]} vs Node ${l} (relative ${rel.toExponential(2)})`,
      );
    }
    // The page's checkpoint, loaded by the Node file API into a fresh model, gives the page's scores.
    await withTempDir('wgrad-web-', async (dir) => {
      const path = join(dir, 'page.safetensors');
      await writeFile(path, Buffer.from(inPage.checkpoint, 'base64'));
      const tr = makeTrainer({ ...SETUP.config, seed: 99 });
      try {
        const meta = await loadCheckpoint(path, { model: tr.model, optimizer: tr.optimizer });
        assert.equal(meta, { ...SETUP.config });
        assert.is(tr.optimizer.stateDict().stepCount, SETUP.steps);
        const scores = await evalScores(tr, SETUP, 8);
        for (const [i, s] of scores.entries()) {
          const rel = Math.abs(s - inPage.scores[i]!) / Math.abs(inPage.scores[i]!);
          assert.ok(rel <= 1e-4, `image ${i}: Node ${s} vs Chromium ${inPage.scores[i]}`);
        }
      } finally {
        tr.dispose();
      }
    });
  },
);

t("in Chromium: a folder of RGB PNG chips decodes to (N, 3, 32, 32) with the PNGs' values", async () => {
  const p = await thePage();
  if (!p) return;
  // Four 32×32 colour chips (a gradient per channel, offset per chip) and a text file the page must skip.
  const chips = [0, 1, 2, 3].map((k) => {
    const png = new pngjs.PNG({ width: 32, height: 32 });
    for (let j = 0; j < 32 * 32; j++)
      png.data.set([(j * 7 + k * 40) % 256, (j * 3 + k) % 256, 255 - ((j + k * 9) % 256), 255], j * 4);
    return { name: `chip-${k}.png`, mimeType: 'image/png', buffer: pngjs.PNG.sync.write(png), png };
  });
  await p.setInputFiles('#files', [
    ...chips.map(({ name, mimeType, buffer }) => ({ name, mimeType, buffer })),
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') },
  ]);
  await p.waitForFunction(() =>
    /images from/.test(document.getElementById('data-status')?.textContent ?? ''),
  );
  const d = await p.evaluate(() => (globalThis as unknown as { wgrad: PageApi }).wgrad.data());
  assert.ok(d, 'no data in the page');
  assert.equal([d.n, d.channels, d.size, d.source], [4, 3, 32, 'your folder']);
  // (C, S, S) planes of the first chip, in [0, 1]: exactly the PNG's bytes / 255.
  const px = chips[0]!.png.data;
  const expected = [0, 1, 2].flatMap((c) => Array.from({ length: 1024 }, (_, j) => px[j * 4 + c]! / 255));
  assert.equal(d.first.length, expected.length);
  const worst = Math.max(...d.first.map((v, i) => Math.abs(v - expected[i]!)));
  assert.ok(worst < 1e-6, `decoded pixels differ from the PNG by up to ${worst}`);
});

t('close Chromium and the server', async () => {
  await browser?.close();
  await server?.close();
});

t.run();
