// Fault suite, data (issue 11): CSV manifests with quoted paths holding commas and quotes, PNGs truncated
// inside their header or empty, an image deleted after the manifest was checked (found mid-epoch by the
// DataLoader, after the good batches were delivered), a non-finite sample named by its dataset index, and
// a 100,000-row manifest streamed through the DataLoader with flat memory (a child process with
// --expose-gc). Missing columns, empty files, BOM, missing/corrupt/cut PNGs, wrong size and channel count
// are in data.test.ts.
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError, DataLoader, type Dataset, ImageCsvDataset, type Sample } from '@wgrad/nn';
import { PNG } from 'pngjs';
import * as assert from 'uvu/assert';
import { fixtureReport, gpuSuite } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'wgrad-faults-data-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let dirNo = 0;

function rgbPng(W: number, H: number, seed: number): Buffer {
  const png = new PNG({ width: W, height: H });
  for (let i = 0; i < W * H * 4; i++) png.data[i] = (i * 13 + seed * 41) % 256;
  return PNG.sync.write(png, { colorType: 2, inputHasAlpha: true });
}

/** A folder with `images` (relative path → bytes) and a trainDF.csv of `lines` under the topoDL header. */
function manifest(lines: string[], images: Record<string, Uint8Array>): string {
  const dir = join(tmp, `m${dirNo++}`);
  for (const [rel, bytes] of Object.entries(images)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), bytes);
  }
  mkdirSync(dir, { recursive: true });
  const csv = join(dir, 'trainDF.csv');
  writeFileSync(csv, `${['chpN,chpPth,mskPth,division', ...lines].join('\n')}\n`);
  return csv;
}

/** The error `fn` rejects with; fails unless its message contains every one of `parts`. */
async function rejects(fn: () => unknown, ...parts: string[]): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    for (const p of parts)
      if (!(e as Error).message.includes(p))
        assert.unreachable(`message lacks '${p}': ${(e as Error).message}`);
    return e as Error;
  }
  return assert.unreachable(`expected an error containing ${parts.join(' / ')}`) as never;
}

const t = gpuSuite('faults: data');

t('quoted image paths holding commas and quotes load as written', async () => {
  const csv = manifest(
    [
      'c1,"chips/a, b.png",m,Background',
      'c2,"chips/say ""hi"", 2.png","m, 2",Positive',
      'c3,chips/c.png,m,Background',
    ],
    {
      'chips/a, b.png': rgbPng(3, 2, 1),
      'chips/say "hi", 2.png': rgbPng(3, 2, 2),
      'chips/c.png': rgbPng(3, 2, 3),
    },
  );
  const ds = await ImageCsvDataset.fromCsv(csv);
  assert.equal(
    ds.rows.map((r) => [r.path, r.y]),
    [
      ['chips/a, b.png', 0],
      ['chips/say "hi", 2.png', 1],
      ['chips/c.png', 0],
    ],
  );
  assert.equal(ds.sampleShape, [3, 2, 3]);
  const png = PNG.sync.read(rgbPng(3, 2, 2));
  const x = (await ds.get(1)).x;
  assert.is(x[0], Math.fround(png.data[0]! / 255), 'the quoted file, not another');
  assert.is(x[6], Math.fround(png.data[1]! / 255), 'channel 1 of pixel 0');
});

t('a PNG cut inside its header, and an empty PNG: row, column value, file and byte count', async () => {
  const good = rgbPng(3, 2, 1);
  const csv = manifest(
    ['c1,chips/ok.png,m,Background', 'c2,chips/cut.png,m,Positive', 'c3,chips/empty.png,m,Positive'],
    {
      'chips/ok.png': good,
      'chips/cut.png': good.subarray(0, 20),
      'chips/empty.png': new Uint8Array(0),
    },
  );
  const e = await rejects(
    () => ImageCsvDataset.fromCsv(csv),
    `${csv}: row 2, chpPth 'chips/cut.png'`,
    join('chips', 'cut.png'),
    'truncated PNG: 20 bytes, the header needs 33',
  );
  assert.instance(e, DataError);
  const lines: string[] = [];
  const ds = await ImageCsvDataset.fromCsv(csv, { onBadRow: 'skip', log: (l) => lines.push(l) });
  assert.equal(
    ds.skipped.map((s) => [s.row, s.kind, s.reason]),
    [
      [2, 'corrupt-image', 'truncated PNG: 20 bytes, the header needs 33'],
      [3, 'corrupt-image', 'empty file, not a PNG'],
    ],
  );
  assert.is(ds.length, 1, 'the good row is kept');
  assert.match(lines[0]!, 'skipped 2 of 3 rows');
});

t(
  'an image deleted after the check fails its batch mid-epoch, naming row and file; earlier batches arrive',
  async () => {
    const imgs: Record<string, Uint8Array> = {};
    const lines: string[] = [];
    for (let i = 0; i < 6; i++) {
      imgs[`chips/c${i}.png`] = rgbPng(2, 2, i);
      lines.push(`c${i},chips/c${i}.png,m,Background`);
    }
    const csv = manifest(lines, imgs);
    const ds = await ImageCsvDataset.fromCsv(csv);
    unlinkSync(join(csv, '..', 'chips', 'c4.png'));
    const loader = new DataLoader(ds, { batchSize: 2 });
    let delivered = 0;
    const e = await rejects(
      async () => {
        for await (const { x, y } of loader) {
          delivered++;
          x.dispose();
          y.dispose();
        }
      },
      `${csv}: row 5, chpPth 'chips/c4.png'`,
      join('chips', 'c4.png'),
      'image not found',
    );
    assert.instance(e, DataError);
    assert.is(delivered, 2, 'batches 0 and 1 arrived before batch 2 failed');
    // The next epoch runs again up to the missing file: the failure left the loader usable.
    let again = 0;
    await rejects(async () => {
      for await (const { x, y } of loader) {
        again++;
        x.dispose();
        y.dispose();
      }
    }, 'row 5');
    assert.is(again, 2);
  },
);

t('a non-finite sample is refused at upload, naming its dataset index, epoch and batch', async () => {
  const ds: Dataset<Sample> = {
    length: 10,
    sampleShape: [3],
    get: (i) => ({ x: Float32Array.of(i, i === 7 ? Number.NaN : 0, 1), y: 0 }),
  };
  const loader = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 2 });
  const order = Array.from(loader.order(0));
  const batch = Math.floor(order.indexOf(7) / 4);
  let delivered = 0;
  await rejects(async () => {
    for await (const { x, y } of loader) {
      delivered++;
      x.dispose();
      y.dispose();
    }
  }, `DataLoader: sample 7 (epoch 0, batch ${batch}) has a non-finite value NaN at element 1 of its x`);
  assert.is(delivered, batch);
});

interface StreamReport {
  rows: number;
  batches: number;
  samples: number;
  before: { heap: number; rss: number };
  parsed: { heap: number; rss: number };
  warm: { heap: number; rss: number };
  end: { heap: number; rss: number };
}

function streamChild(rows: number): Promise<StreamReport> {
  const dir = join(tmp, `stream${rows}`);
  mkdirSync(dir);
  return fixtureReport<StreamReport>('faults/manifest-stream.ts', [dir, String(rows)], { gc: true });
}

const MB = 2 ** 20;

t('a 100,000-row manifest streams through the DataLoader with flat memory', async () => {
  const big = await streamChild(100_000);
  assert.equal([big.rows, big.samples, big.batches], [100_000, 100_000, 400]);
  // Iterating (decode, collate, upload, dispose) holds nothing: the heap after the epoch is within 8 MB of
  // the heap after 100 batches (all 100,000 decoded 3×16×16 images would be 300 MB), RSS within 10 %.
  const grew = (big.end.heap - big.warm.heap) / MB;
  assert.ok(grew < 8, `heap grew ${grew.toFixed(1)} MB over the epoch`);
  assert.ok(big.end.rss < big.warm.rss * 1.1, `RSS ${big.warm.rss / MB} -> ${big.end.rss / MB} MB`);
  // What the parsed manifest keeps is a few hundred bytes per row (path, label, row number).
  const perRow = (big.parsed.heap - big.before.heap) / 100_000;
  assert.ok(perRow < 1000, `${perRow.toFixed(0)} bytes of heap per manifest row`);
});

t.run();
