// The implicit input gradient (conv.ts: col2im fused into one GEMM per stride phase, no column buffer), which
// computes conv2d's dx and convTranspose2d's forward: against the float64 TypeScript reference on strided,
// grouped, padded, non-square geometries (bias and relu in the epilogue), against the im2col/col2im path on
// the same gradients, under the PyTorch fixtures, and through finite differences.
import { conv2d, convTranspose2d, type Tensor } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { type ConvInputGradMode, setConvInputGradMode } from '../packages/tensor/src/ops/conv.js';
import { type ConvCase, load, runConvCase } from './conv-fixtures.js';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('conv-implicit');

async function withMode<T>(mode: ConvInputGradMode, fn: () => Promise<T>): Promise<T> {
  const old = setConvInputGradMode(mode);
  try {
    return await fn();
  } finally {
    setConvInputGradMode(old);
  }
}

type P2 = [number, number];
// convTranspose2d geometries: x (B, Cin, H, W), w (Cin, Cout/g, kH, kW). In conv2d terms the implicit GEMM's
// K is Cin/g (a multiple of 4, so that the path applies) and N is Cout/g.
const CASES: { x: number[]; w: number[]; s: P2; p: P2; op: P2; g: number; relu: boolean }[] = [
  { x: [2, 8, 5, 5], w: [8, 9, 4, 4], s: [2, 2], p: [1, 1], op: [0, 0], g: 1, relu: false }, // seed-like
  { x: [3, 4, 4, 6], w: [4, 5, 3, 2], s: [2, 1], p: [1, 0], op: [1, 0], g: 1, relu: true },
  { x: [2, 8, 3, 4], w: [8, 3, 3, 3], s: [1, 1], p: [1, 2], op: [0, 0], g: 2, relu: false },
  { x: [1, 4, 4, 3], w: [4, 6, 5, 3], s: [3, 3], p: [2, 0], op: [2, 1], g: 1, relu: true },
  { x: [2, 12, 2, 2], w: [12, 2, 2, 2], s: [2, 2], p: [0, 0], op: [0, 0], g: 3, relu: false },
];

t(
  'convTranspose2d forward on the implicit path matches the float64 reference (bias, relu, groups)',
  async () => {
    await withMode('implicit', async () => {
      for (const [i, c] of CASES.entries()) {
        const x = randRef(c.x, 100 + i);
        const w = randRef(c.w, 200 + i);
        const b = randRef([c.w[1]! * c.g], 300 + i);
        const o = { stride: c.s, padding: c.p, dilation: [1, 1] as P2, groups: c.g, outputPadding: c.op };
        const ref = R.convTranspose2d(x, w, b, o);
        const want = c.relu
          ? R.ref(
              ref.shape,
              ref.data.map((v) => Math.max(v, 0)),
            )
          : ref;
        const y = convTranspose2d(fromRef(x), fromRef(w), fromRef(b), {
          ...o,
          activation: c.relu ? 'relu' : null,
        });
        await expectClose(y, want, `case ${i} ${JSON.stringify(c)}`);
      }
    });
  },
);

t('conv2d input gradient: implicit path equals the im2col/col2im path and the reference', async () => {
  for (const [i, c] of CASES.entries()) {
    // The conv2d whose dx is this convTranspose2d: x' (B, Cout, OH, OW), w' = w (Cin, Cout/g, kH, kW).
    const o = { stride: c.s, padding: c.p, dilation: [1, 1] as P2, groups: c.g };
    const xt = randRef(c.x, 400 + i);
    const w = randRef(c.w, 500 + i);
    const yShape = R.convTranspose2d(xt, w, null, { ...o, outputPadding: c.op }).shape;
    const x = randRef([...yShape], 600 + i);
    const gy = randRef([c.x[0]!, c.w[0]!, c.x[2]!, c.x[3]!], 700 + i);
    const grads: Record<string, Float32Array> = {};
    for (const mode of ['implicit', 'col2im'] as const)
      await withMode(mode, async () => {
        const tx = fromRef(x, { requiresGrad: true });
        const y = conv2d(tx, fromRef(w), null, o);
        assert.equal([...y.shape], gy.shape, `case ${i} output shape`);
        y.backward(fromRef(gy));
        const gx = tx.grad as Tensor;
        // dL/dx of conv2d = convTranspose2d(gy) with the same weight (outputPadding restores the size).
        await expectClose(
          gx,
          R.convTranspose2d(gy, w, null, { ...o, outputPadding: c.op }),
          `case ${i} ${mode}`,
        );
        grads[mode] = await gx.toArray();
      });
    const d = grads.implicit!.reduce((m, v, j) => Math.max(m, Math.abs(v - grads.col2im![j]!)), 0);
    assert.ok(d < 1e-4, `case ${i}: implicit vs col2im max |Δ| ${d}`);
  }
});

t('PyTorch fixtures (small cases and the seed layers) under both input-gradient paths', async () => {
  const all = [...(load('conv.json') as ConvCase[]), ...(load('conv_seed.json') as ConvCase[])];
  for (const mode of ['implicit', 'col2im'] as const)
    await withMode(mode, async () => {
      for (const c of all) await runConvCase(c);
    });
});

t('conv2d gradients on the implicit path match finite differences', async () => {
  const o = { stride: [2, 2] as P2, padding: [1, 1] as P2, dilation: [1, 1] as P2, groups: 1 };
  await withMode('implicit', () =>
    checkGrad(
      'conv2d',
      [randRef([2, 3, 6, 5], 11), randRef([4, 3, 4, 3], 12), randRef([4], 13)],
      ([x, w, b]) => conv2d(x!, w!, b!, o),
      ([x, w, b]) => R.conv2d(x!, w!, b!, o),
    ),
  );
});

t('setConvInputGradMode rejects unknown modes', () => {
  assert.throws(
    () => setConvInputGradMode('fast' as ConvInputGradMode),
    /setConvInputGradMode: expected 'auto', 'implicit' or 'col2im', got 'fast'/,
  );
});

t.run();
