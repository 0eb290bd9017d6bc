// Fused elementwise primitives (ops/fused.ts) against float64 references and finite differences, and the
// losses built on them against PyTorch's formulas at the clamping edges.
import { bceLoss, klNormal, mseLoss } from '@wgrad/nn';
import {
  bceTerms,
  conv2d,
  convTranspose2d,
  fusedSum,
  klTerms,
  linear,
  noGrad,
  reparameterize,
  sqDiff,
  type Tensor,
  tensor,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('fused');

const clog = (v: number) => (v > 0 ? Math.max(Math.log(v), -100) : -100);
const ternary = (
  a: R.RefTensor,
  b: R.RefTensor,
  c: R.RefTensor,
  f: (x: number, y: number, z: number) => number,
) =>
  R.ref(
    [...a.shape],
    Array.from(a.data, (x, i) => f(x, b.data[i]!, c.data[i]!)),
  );

t('sqDiff, klTerms, reparameterize: values and gradients (awkward sizes, 1 to 1001 elements)', async () => {
  for (const n of [1, 7, 130, 1001]) {
    const a = randRef([n], n);
    const b = randRef([n], n + 1);
    const e = randRef([n], n + 2);
    await checkGrad(
      `sqDiff ${n}`,
      [a, b],
      ([x, y]) => sqDiff(x!, y!),
      ([x, y]) => R.binary(x!, y!, (p, q) => (p - q) ** 2),
    );
    await checkGrad(
      `klTerms ${n}`,
      [a, b],
      ([x, y]) => klTerms(x!, y!),
      ([x, y]) => R.binary(x!, y!, (m, lv) => -0.5 * (1 + lv - m * m - Math.exp(lv))),
    );
    await checkGrad(
      `reparameterize ${n}`,
      [a, b, e],
      ([x, y, z]) => reparameterize(x!, y!, z!),
      ([x, y, z]) => ternary(x!, y!, z!, (m, lv, eps) => m + eps * Math.exp(0.5 * lv)),
    );
  }
});

t('fusedSum: scale·Σ of the terms in one reduction (1 to 100,352 elements), gradients', async () => {
  const total = (f: (x: number, y: number) => number, s: number) => (xs: R.RefTensor[]) => {
    let acc = 0;
    for (let i = 0; i < xs[0]!.data.length; i++) acc += f(xs[0]!.data[i]!, xs[1]!.data[i]!);
    return R.ref([], [acc * s]);
  };
  const sq = (p: number, q: number) => (p - q) ** 2;
  const kl = (m: number, lv: number) => -0.5 * (1 + lv - m * m - Math.exp(lv));
  const bce = (p: number, y: number) => -(y * clog(p) + (1 - y) * clog(1 - p));
  for (const n of [1, 7, 65, 1001]) {
    const a = randRef([n], 3 * n);
    const b = randRef([n], 3 * n + 1);
    await checkGrad(`sqDiff_sum ${n}`, [a, b], ([x, y]) => fusedSum('sqDiff', [x!, y!], 0.5), total(sq, 0.5));
    await checkGrad(`klTerms_sum ${n}`, [a, b], ([x, y]) => fusedSum('klTerms', [x!, y!]), total(kl, 1));
    const p = randRef([n], 3 * n + 2, 0.05, 0.95);
    const y = randRef([n], 3 * n + 3, 0, 1);
    await checkGrad(
      `bceTerms_sum ${n}`,
      [p, y],
      ([u, v]) => fusedSum('bceTerms', [u!, v!], 1 / n),
      total(bce, 1 / n),
    );
  }
  // A 128×784 batch (several reduction passes): the same as sqDiff(…).mean(), values and gradients.
  const a = randRef([128, 784], 91);
  const b = randRef([128, 784], 92);
  const [x1, x2] = [fromRef(a, { requiresGrad: true }), fromRef(a, { requiresGrad: true })];
  const fusedMean = fusedSum('sqDiff', [x1, fromRef(b)], 1 / a.data.length);
  const composed = sqDiff(x2, fromRef(b)).mean();
  R.assertClose(await fusedMean.toArray(), await composed.toArray(), { rtol: 1e-5, what: 'fused mean' });
  fusedMean.backward();
  composed.backward();
  R.assertClose(await x1.grad!.toArray(), await x2.grad!.toArray(), { rtol: 1e-6, what: 'fused mean grad' });
  // Empty: the sum is 0 (and the mean NaN, as torch.mean of an empty tensor).
  assert.equal([...(await fusedSum('sqDiff', [tensor([]), tensor([])]).toArray())], [0]);
  assert.ok(Number.isNaN((await mseLoss(tensor([]), tensor([])).toArray())[0]!));
  assert.throws(() => fusedSum('sqDiff', [tensor([1, 2])]), /sqDiff_sum: expected 2 inputs, got 1/);
  assert.throws(() => fusedSum('sqDiff', [tensor([1, 2]), tensor([1, 2, 3])]), /sqDiff_sum/);
});

t('bceTerms: values and gradients inside (0, 1); PyTorch clamping at p = 0 and 1', async () => {
  const p = randRef([2, 33], 5, 0.05, 0.95);
  const y = randRef([2, 33], 6, 0, 1);
  await checkGrad(
    'bceTerms',
    [p, y],
    ([a, b]) => bceTerms(a!, b!),
    ([a, b]) => R.binary(a!, b!, (q, v) => -(v * clog(q) + (1 - v) * clog(1 - q))),
  );
  // Edges: log(0) → −100, and ∂/∂p = (p − y) / max(p(1 − p), 1e-12) (finite, no NaN).
  const pe = tensor([0, 1, 0, 1, 0.5], { requiresGrad: true });
  const ye = tensor([0, 1, 1, 0, 1]);
  const l = bceTerms(pe, ye);
  const lv = Array.from(await l.toArray());
  assert.equal(lv.slice(0, 4), [0, 0, 100, 100]); // the clamps are exact
  // −log(0.5): WGSL's log is accurate to 2^-21 absolute on [0.5, 2], not correctly rounded (an H200 gives
  // 0.69314712, one float32 ulp below lavapipe's ln 2).
  assert.ok(Math.abs(lv[4]! - Math.LN2) <= 2 ** -21, `bce at p = 0.5, y = 1: ${lv[4]} vs ln 2`);
  l.sum().backward();
  assert.equal(Array.from(await pe.grad!.toArray()), [0, 0, -1e12, 1e12, -2].map(Math.fround));
  // A NaN probability gives a NaN term (not −100·y), so a NaN model output cannot hide in a finite loss.
  const pn = tensor([-1, 0.25]).sqrt(); // [NaN, 0.5]
  const yn = tensor([1, 0]);
  const ln = bceTerms(pn, yn);
  const lnv = Array.from(await ln.toArray());
  assert.ok(Number.isNaN(lnv[0]!) && Math.abs(lnv[1]! - Math.LN2) <= 2 ** -21, `bce with a NaN p: ${lnv}`);
  for (const z of [pn, yn, ln]) z.dispose();
});

t('losses on the fused terms match their definitions (mse, bce with weight, KL reductions)', async () => {
  const a = randRef([4, 5], 7, 0.01, 0.99);
  const b = randRef([4, 5], 8, 0, 1);
  const w = randRef([4, 5], 9, 0, 2);
  const sq = R.binary(a, b, (p, q) => (p - q) ** 2);
  await expectClose(mseLoss(fromRef(a), fromRef(b)), R.reduce(sq, undefined, false, 'mean'), 'mse mean');
  await expectClose(
    mseLoss(fromRef(a), fromRef(b), { reduction: 'sum' }),
    R.reduce(sq, undefined, false, 'sum'),
    'mse sum',
  );
  const bce = R.binary(
    R.binary(a, b, (q, v) => -(v * clog(q) + (1 - v) * clog(1 - q))),
    w,
    (x, y) => x * y,
  );
  await expectClose(
    bceLoss(fromRef(a), fromRef(b), { weight: fromRef(w), reduction: 'sum' }),
    R.reduce(bce, undefined, false, 'sum'),
    'weighted bce',
  );
  const kl = R.binary(a, b, (m, lv) => -0.5 * (1 + lv - m * m - Math.exp(lv)));
  await expectClose(
    klNormal(fromRef(a), fromRef(b), { reduction: 'mean' }),
    R.reduce(R.reduce(kl, [1], false, 'sum'), undefined, false, 'mean'),
    'kl mean',
  );
});

t(
  'relu fused into linear / conv2d / convTranspose2d equals relu after the op (values and gradients)',
  async () => {
    const relu = (r: R.RefTensor) => R.unary(r, (v) => Math.max(v, 0));
    await checkGrad(
      'linear+relu',
      [randRef([6, 9], 21), randRef([5, 9], 22), randRef([5], 23)],
      ([x, w, b]) => linear(x!, w!, b!, { activation: 'relu' }),
      ([x, w, b]) => relu(R.binary(R.matmul(x!, R.permute(w!, [1, 0])), b!, (p, q) => p + q)),
    );
    const o = {
      stride: [2, 1] as [number, number],
      padding: [1, 1] as [number, number],
      dilation: [1, 1] as [number, number],
      groups: 1,
    };
    await checkGrad(
      'conv2d+relu',
      [randRef([2, 2, 5, 4], 24), randRef([3, 2, 3, 2], 25), randRef([3], 26)],
      ([x, w, b]) => conv2d(x!, w!, b!, { ...o, activation: 'relu' }),
      ([x, w, b]) => relu(R.conv2d(x!, w!, b!, o)),
    );
    const ot = { ...o, stride: [2, 2] as [number, number], outputPadding: [1, 0] as [number, number] };
    await checkGrad(
      'convTranspose2d+relu',
      [randRef([2, 2, 3, 3], 27), randRef([2, 3, 3, 2], 28), randRef([3], 29)],
      ([x, w, b]) => convTranspose2d(x!, w!, b!, { ...ot, activation: 'relu' }),
      ([x, w, b]) => relu(R.convTranspose2d(x!, w!, b!, ot)),
    );
    assert.throws(
      () => linear(tensor([[1, 2]]), tensor([[1, 2]]), null, { activation: 'gelu' as 'relu' }),
      /linear: activation must be 'relu' or null, got 'gelu'/,
    );
  },
);

t(
  'a NaN input stays NaN through the fused relu epilogues (GEMM vec4 and scalar stores, col2im, implicit GEMM)',
  async () => {
    const nan = (shape: number[], at: number) => {
      const v = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5);
      v[at] = -1;
      const t = tensor(v, { shape });
      const r = noGrad(() => t.sqrt()); // NaN at `at`
      t.dispose();
      return r;
    };
    const countNaN = async (t: Tensor) => Array.from(await t.toArray()).filter(Number.isNaN).length;
    // linear: row 0 of x holds a NaN, so row 0 of y is NaN before the relu; N = 8 (vec4 stores) and N = 5.
    for (const N of [8, 5]) {
      const x = nan([3, 6], 2);
      const w = tensor(new Float32Array(N * 6).fill(-1), { shape: [N, 6] }); // every output ≤ 0 but row 0
      const y = linear(x, w, null, { activation: 'relu' });
      assert.is(await countNaN(y), N, `linear N=${N}: row 0 NaN, the rest relu'd to 0`);
      for (const z of [x, w, y]) z.dispose();
    }
    // conv2d + relu (GEMM epilogue), convTranspose2d + relu: Cout = 1 takes col2im, Cout = 8 the implicit GEMM.
    const x = nan([1, 8, 4, 4], 5);
    const neg = (shape: number[]) =>
      tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(-1), { shape });
    const cases: [string, (w: Tensor) => Tensor, number[]][] = [
      ['conv2d', (w) => conv2d(x, w, null, { padding: 1, activation: 'relu' }), [4, 8, 3, 3]],
      [
        'convTranspose2d col2im',
        (w) => convTranspose2d(x, w, null, { stride: 2, activation: 'relu' }),
        [8, 1, 2, 2],
      ],
      [
        'convTranspose2d implicit',
        (w) => convTranspose2d(x, w, null, { stride: 2, activation: 'relu' }),
        [8, 8, 2, 2],
      ],
    ];
    for (const [what, f, shape] of cases) {
      const w = neg(shape);
      const y = f(w);
      const nans = await countNaN(y);
      assert.ok(
        nans > 0 && nans < y.size,
        `${what}: the NaN reaches part of the output (${nans} of ${y.size})`,
      );
      for (const z of [w, y]) z.dispose();
    }
    x.dispose();
  },
);

t('fused ops check their operands', () => {
  const a = tensor([1, 2, 3]);
  const b = tensor([1, 2]);
  assert.throws(() => sqDiff(a, b), /sqDiff: shapes differ: \[3\] vs \[2\]/);
  assert.throws(
    () => klTerms(a, tensor(Int32Array.from([1, 2, 3]))),
    /klTerms: expected float32 inputs, got int32/,
  );
});

t.run();
