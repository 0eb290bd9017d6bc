// The wgrad-vae CLI: help, argument errors that name the argument, and a small train → score → report run.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

t.run();
