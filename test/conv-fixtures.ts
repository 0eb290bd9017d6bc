// PyTorch golden fixtures for conv2d / convTranspose2d (test/fixtures, made by scripts/fixtures/make_fixtures.py)
// and the comparison used by conv.test.ts and gemm-bodies.test.ts.
import { readFileSync } from 'node:fs';
import { conv2d, convTranspose2d, type Tensor, tensor } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { R } from './helpers.js';

export type FT = { shape: number[]; data: number[] };
export type Case = Record<string, unknown> & { name: string; op: string; x: FT; y: FT; gy: FT; gx: FT };
export const load = (f: string): Case[] =>
  JSON.parse(readFileSync(new URL(`./fixtures/${f}`, import.meta.url), 'utf8'));
export const up = (t: FT, requiresGrad = false) =>
  tensor(Float32Array.from(t.data), { shape: t.shape, requiresGrad });

/** |a − e| ≤ rtol·|e| + atol·max|e| (relative to the tensor's scale: cancellation makes near-zero outputs). */
export async function expectFixture(
  actual: Tensor | null | undefined,
  expected: FT,
  what: string,
  rtol = 1e-4,
  atol = 1e-5,
): Promise<void> {
  if (!actual) throw new Error(`${what}: missing`);
  assert.equal([...actual.shape], expected.shape, `${what}: shape`);
  const a = await actual.toArray();
  const scale = expected.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  R.assertClose(a, expected.data, { rtol, atol: atol * scale, what });
}

export type ConvCase = Case & { w: FT; b: FT | null; gw: FT; gb: FT | null };

export async function runConvCase(c: ConvCase): Promise<void> {
  const x = up(c.x, true);
  const w = up(c.w, true);
  const b = c.b ? up(c.b, true) : null;
  const opts = {
    stride: c.stride as [number, number],
    padding: c.padding as [number, number],
    dilation: c.dilation as [number, number],
    groups: c.groups as number,
  };
  const y =
    c.op === 'conv2d'
      ? conv2d(x, w, b, opts)
      : convTranspose2d(x, w, b, { ...opts, outputPadding: c.output_padding as [number, number] });
  await expectFixture(y, c.y, `${c.name} y`);
  y.backward(up(c.gy));
  await expectFixture(x.grad, c.gx, `${c.name} gx`);
  await expectFixture(w.grad, c.gw, `${c.name} gw`);
  if (c.gb) await expectFixture(b?.grad, c.gb, `${c.name} gb`);
}
