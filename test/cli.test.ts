// The wgrad-vae CLI: help, argument errors that name the argument, a small train → score → report run on the
// digits, and the CSV-manifest path (labeled and unlabeled manifests, --labels mappings) on tiny PNG chips
// generated here in a temporary folder.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import * as assert from 'uvu/assert';
import { main } from '../packages/vae/src/cli.js';
import { gpuSuite } from './helpers.js';

const t = gpuSuite('cli');

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => err.push(a.join(' '));
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

t('help for every command; bad arguments are named', async () => {
  for (const cmd of ['train', 'score', 'report']) {
    const r = await capture([cmd, '--help']);
    assert.is(r.code, 0);
    assert.match(r.out, `wgrad-vae ${cmd}`);
  }
  assert.is((await capture([])).code, 2);
  assert.match((await capture(['fly'])).err, /unknown command 'fly'/);
  assert.match((await capture(['train', '--bogus', 'x'])).err, /bogus/);
  assert.match((await capture(['train', '--dataset', 'digits'])).err, /--normal is required/);
  assert.match(
    (await capture(['train', '--dataset', 'digits', '--normal', '0', '--epochs', 'x'])).err,
    /--epochs must be an integer ≥ 1, got 'x'/,
  );
  assert.match(
    (await capture(['train', '--dataset', 'nope', '--normal', '0'])).err,
    /--dataset must be one of mnist, fashion-mnist, digits, got 'nope'/,
  );
  assert.match(
    (await capture(['train', '--dataset', 'digits', '--normal', '0', '--model', 'gan'])).err,
    /--model must be one of conv-vae, mlp-vae, ae, conv-ae, got 'gan'/,
  );
  assert.match(
    (await capture(['score', '--run', '/nonexistent/run', '--dataset', 'digits'])).err,
    /--run \/nonexistent\/run: cannot read run.json/,
  );
});

t('train on digit 0, score the digits, report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgrad-cli-'));
  try {
    const tr = await capture([
      'train',
      '--dataset',
      'digits',
      '--normal',
      '0',
      '--model',
      'ae',
      '--latent',
      '8',
      '--epochs',
      '3',
      '--batch',
      '32',
      '--lr',
      '0.01',
      '--out',
      dir,
    ]);
    assert.is(tr.code, 0, tr.err);
    for (const f of ['model.safetensors', 'run.json', 'history.json', 'history.csv'])
      assert.ok(existsSync(join(dir, f)), f);
    const sc = await capture(['score', '--run', dir, '--dataset', 'digits', '--out', join(dir, 'scored')]);
    assert.is(sc.code, 0, sc.err);
    const rows = readFileSync(join(dir, 'scored', 'scores.csv'), 'utf8')
      .trim()
      .split('\n');
    assert.is(rows[0], 'row,label,anomaly,score');
    assert.is(rows.length, 1798);
    const m = JSON.parse(readFileSync(join(dir, 'scored', 'metrics.json'), 'utf8')) as { auroc: number };
    assert.ok(m.auroc > 0.5 && m.auroc <= 1, `auroc ${m.auroc}`);
    const rep = await capture(['report', '--run', join(dir, 'scored')]);
    assert.is(rep.code, 0, rep.err);
    assert.ok(existsSync(join(dir, 'scored', 'report.html')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- CSV manifests ----------------------------------------------------------------------------------------

const tmp = mkdtempSync(join(tmpdir(), 'wgrad-cli-csv-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** An 8×8 gray PNG: a faint gradient with a little noise, plus a bright 4×4 square for an anomaly. */
function chip(i: number, anomalous: boolean): Uint8Array {
  const png = new PNG({ width: 8, height: 8 });
  for (let p = 0; p < 64; p++) {
    const [r, c] = [p >> 3, p & 7];
    let v = 20 + 6 * r + 3 * c + ((i * 37 + p * 11) % 9);
    if (anomalous && r >= 2 && r < 6 && c >= 2 && c < 6) v = 240;
    png.data.set([v, v, v, 255], 4 * p);
  }
  return PNG.sync.write(png, { colorType: 0, inputColorType: 6, inputHasAlpha: true });
}

/** 16 chips: 12 normal, 4 anomalous (every 4th). */
const CHIPS = Array.from({ length: 16 }, (_, i) => ({
  name: `c${i}`,
  path: `chips/c${i}.png`,
  bad: i % 4 === 3,
}));
mkdirSync(join(tmp, 'chips'));
for (const [i, c] of CHIPS.entries()) writeFileSync(join(tmp, c.path), chip(i, c.bad));

/** Writes a manifest `name` in the chips folder from a header and one line per chip. */
function manifest(name: string, header: string, line: (c: (typeof CHIPS)[number], i: number) => string) {
  const p = join(tmp, name);
  writeFileSync(p, `${[header, ...CHIPS.map(line)].join('\n')}\n`);
  return p;
}

// topoDL layout, with the published misspellings of the labels.
const topo = manifest(
  'trainDF.csv',
  'chpN,chpPth,mskPth,division',
  (c, i) =>
    `${c.name},${c.path},masks/${c.name}.png,${c.bad ? (i === 3 ? 'Postive' : 'positive') : i === 0 ? 'Backround' : 'Background'}`,
);
const unlabeled = manifest('unlabeled.csv', 'chpN,chpPth', (c) => `${c.name},${c.path}`);
// Another vocabulary and other columns: OK, scratch and dent.
const parts = manifest(
  'parts.csv',
  'file,grade',
  (c, i) => `${c.path},${c.bad ? (i < 8 ? 'scratch' : 'dent') : 'OK'}`,
);

const TRAIN = ['--model', 'ae', '--latent', '4', '--epochs', '1', '--batch', '8', '--lr', '0.01'];

function scoresOf(dir: string): string[][] {
  return readFileSync(join(dir, 'scores.csv'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(','));
}
const metricsOf = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as Record<string, unknown>;

t('csv: train on a manifest, score a labeled and an unlabeled manifest, rebuild both reports', async () => {
  const run = join(tmp, 'run-topo');
  const tr = await capture(['train', '--csv', topo, '--normal', 'background', ...TRAIN, '--out', run]);
  assert.is(tr.code, 0, tr.err);
  const cfg = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
  assert.is(cfg.trainCount, 12);
  assert.equal(cfg.sampleShape, [1, 8, 8]);
  assert.is(cfg.source.labels, undefined);

  // Labeled: names from the (default topoDL) mapping, anomalies = not background, ROC in the report.
  const lab = join(tmp, 'scored-labeled');
  const sc = await capture(['score', '--run', run, '--csv', topo, '--out', lab]);
  assert.is(sc.code, 0, sc.err);
  const rows = scoresOf(lab);
  assert.equal(rows[0], ['row', 'label', 'anomaly', 'score']);
  assert.is(rows.length, 17);
  rows.slice(1).forEach((r, i) => {
    assert.equal(r.slice(0, 3), [
      String(i + 1),
      CHIPS[i]!.bad ? 'positive' : 'background',
      CHIPS[i]!.bad ? '1' : '0',
    ]);
    assert.ok(Number.isFinite(Number(r[3])), r[3]);
  });
  const m = metricsOf(lab);
  assert.ok((m.auroc as number) >= 0 && (m.auroc as number) <= 1, `auroc ${m.auroc}`);
  assert.is(m.count_background, 12);
  assert.is(m.count_positive, 4);
  assert.match(readFileSync(join(lab, 'report.html'), 'utf8'), '<h2>ROC curve</h2>');
  const rep = await capture(['report', '--run', lab]);
  assert.is(rep.code, 0, rep.err);
  assert.match(rep.out, /background vs positive: AUROC/);

  // Unlabeled: the run's label column 'division' is missing, so no labels, and a distribution-only report.
  const unl = join(tmp, 'scored-unlabeled');
  const su = await capture(['score', '--run', run, '--csv', unlabeled, '--out', unl]);
  assert.is(su.code, 0, su.err);
  assert.match(su.out, "no labels: the manifest has no column 'division'");
  const urows = scoresOf(unl);
  assert.equal(urows[0], ['row', 'score']);
  assert.is(urows.length, 17);
  assert.equal(
    urows.slice(1).map((r) => r[1]),
    rows.slice(1).map((r) => r[3]),
    'same images, same scores',
  );
  const um = metricsOf(unl);
  assert.is(um.count, 16);
  assert.is(um.group, 'unlabeled');
  assert.is(um.auroc, undefined);
  assert.ok((um.min as number) <= (um.median as number) && (um.median as number) <= (um.max as number));
  const html = readFileSync(join(unl, 'report.html'), 'utf8');
  assert.match(html, 'Distribution of the reconstruction error');
  assert.not.match(html, '<h2>ROC curve</h2>');
  const ur = await capture(['report', '--run', unl]);
  assert.is(ur.code, 0, ur.err);
  assert.match(ur.out, /16 unlabeled scores \(no ROC: no labels\)/);

  // A label column the user names must exist.
  const named = await capture(['score', '--run', run, '--csv', unlabeled, '--label-column', 'division']);
  assert.is(named.code, 2);
  assert.match(
    named.err,
    `--label-column 'division': ${unlabeled} has no such column (its header: 'chpN', 'chpPth'); leave --label-column out`,
  );
  const other = await capture(['score', '--run', run, '--csv', topo, '--label-column', 'grade']);
  assert.match(other.err, `--label-column 'grade': ${topo} has no such column`);
  // Training needs labels; a bad image column is named too.
  const tu = await capture(['train', '--csv', unlabeled, '--normal', 'background', ...TRAIN, '--out', run]);
  assert.is(tu.code, 2);
  assert.match(tu.err, `--label-column 'division' (the default): ${unlabeled} has no such column`);
  assert.match(tu.err, 'training needs labels');
  assert.match(
    (await capture(['train', '--csv', topo, '--image-column', 'img', '--normal', 'background'])).err,
    `--image-column 'img': ${topo} has no such column (its header: 'chpN', 'chpPth', 'mskPth', 'division')`,
  );
  assert.match(
    (await capture(['score', '--run', run, '--csv', topo, '--normal', 'cat'])).err,
    "--normal 'cat' is not one of the labels (background=0,backround=0,positive=1,postive=1)",
  );
  // Only one class present: still a report, of the distribution.
  const one = join(tmp, 'scored-one');
  const so = await capture(['score', '--run', run, '--csv', topo, '--limit', '3', '--out', one]);
  assert.is(so.code, 0, so.err);
  assert.match(so.out, /3 background scores \(no ROC: normal images only\)/);
  assert.is(metricsOf(one).group, 'background');
});

t('csv: --labels maps another label vocabulary; the reports name the classes after it', async () => {
  const run = join(tmp, 'run-parts');
  const cols = ['--image-column', 'file', '--label-column', 'grade'];
  const tr = await capture([
    'train',
    '--csv',
    parts,
    ...cols,
    '--labels',
    ' OK=0, scratch=1 ,dent=2',
    '--normal',
    'ok',
    ...TRAIN,
    '--out',
    run,
  ]);
  assert.is(tr.code, 0, tr.err);
  const cfg = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
  assert.equal(cfg.source.labels, { OK: 0, scratch: 1, dent: 2 });
  assert.is(cfg.source.labelColumn, 'grade');
  assert.is(cfg.trainCount, 12);

  // The run's mapping: three names, two of them anomalous (so that group is 'anomalous').
  const a = join(tmp, 'parts-a');
  const sa = await capture(['score', '--run', run, '--csv', parts, '--out', a]);
  assert.is(sa.code, 0, sa.err);
  assert.equal(
    scoresOf(a)
      .slice(1)
      .map((r) => [r[1], r[2]]),
    CHIPS.map((c, i) => (c.bad ? [i < 8 ? 'scratch' : 'dent', '1'] : ['OK', '0'])),
  );
  const ma = metricsOf(a);
  assert.is(ma.count_OK, 12);
  assert.is(ma.count_anomalous, 4);
  assert.match(sa.out, /OK vs anomalous: AUROC/);

  // A mapping given at score time: both defects are code 1, named after its first label.
  const b = join(tmp, 'parts-b');
  const sb = await capture([
    'score',
    '--run',
    run,
    '--csv',
    parts,
    '--labels',
    'good=0,ok=0,defect=1,scratch=1,dent=1',
    '--out',
    b,
  ]);
  assert.is(sb.code, 0, sb.err);
  assert.equal(
    [
      ...new Set(
        scoresOf(b)
          .slice(1)
          .map((r) => r[1]),
      ),
    ].sort(),
    ['defect', 'good'],
  );
  const mb = metricsOf(b);
  assert.is(mb.count_good, 12);
  assert.is(mb.count_defect, 4);
  assert.match(sb.out, /good vs defect: AUROC/);

  // --normal by code; and scoring with another class as normal.
  const c = join(tmp, 'parts-c');
  const scc = await capture(['score', '--run', run, '--csv', parts, '--normal', '1', '--out', c]);
  assert.is(scc.code, 0, scc.err);
  assert.is(metricsOf(c).count_scratch, 2);
  assert.is(metricsOf(c).count_anomalous, 14);
});

t('csv: --labels and label errors name the option and the value', async () => {
  const cols = ['--image-column', 'file', '--label-column', 'grade', '--normal', 'ok'];
  const train = (...a: string[]) => capture(['train', '--csv', parts, ...cols, ...a]);
  const unknown = await train();
  assert.is(unknown.code, 2);
  assert.match(unknown.err, "unknown label 'OK' in column 'grade'");
  assert.match(unknown.err, "map the manifest's labels to codes with --labels NAME=CODE,...");
  assert.match((await train('--labels', 'ok')).err, "--labels: 'ok' is not NAME=CODE");
  assert.match((await train('--labels', 'ok=0,=1')).err, "--labels: '=1' is not NAME=CODE");
  assert.match(
    (await train('--labels', 'ok=0,scratch=x')).err,
    "--labels: the code of 'scratch' must be a non-negative integer, got 'x'",
  );
  assert.match((await train('--labels', 'ok=-1')).err, "got '-1'");
  assert.match((await train('--labels', 'ok=0,OK=1')).err, "--labels: label 'OK' is given twice");
  assert.match(
    (await train('--labels', ' , ')).err,
    "--labels must be NAME=CODE pairs (e.g. ok=0,defect=1), got ' , '",
  );
  const missing = await train('--labels', 'ok=0,scratch=1');
  assert.match(missing.err, "unknown label 'dent'");
  assert.match(missing.err, '(now ok=0,scratch=1)');
  assert.match(
    (
      await capture([
        'train',
        '--csv',
        parts,
        ...cols.slice(0, 4),
        '--labels',
        'OK=0,scratch=1,dent=2',
        '--normal',
        'good',
      ])
    ).err,
    "--normal 'good' is not one of the labels (OK=0,scratch=1,dent=2)",
  );
  assert.match(
    (await capture(['train', '--dataset', 'digits', '--normal', '0', '--labels', 'a=0'])).err,
    '--labels applies to --csv manifests only',
  );
});

t.run();
