// Elementwise primitives: every unary and binary op against the float64 reference on awkward sizes, full
// NumPy broadcasting, scalars on either side, where/clamp/casts, and every backward rule by finite differences.
import {
  abs,
  add,
  cos,
  div,
  eq,
  exp,
  ge,
  gt,
  le,
  log,
  lt,
  maximum,
  maxPool2d,
  minimum,
  mul,
  ne,
  neg,
  pow,
  sub,
  type Tensor,
  tensor,
  where,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('elementwise');

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const clampRef = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/** name, GPU op, reference, input range, and whether it has a gradient. */
type UnaryCase = [string, (x: Tensor) => Tensor, (v: number) => number, number, number, boolean];
const UNARY: UnaryCase[] = [
  ['neg', (x) => x.neg(), (v) => -v, -2, 2, true],
  ['exp', (x) => x.exp(), Math.exp, -3, 3, true],
  ['log', (x) => x.log(), Math.log, 0.1, 4, true],
  ['sqrt', (x) => x.sqrt(), Math.sqrt, 0.1, 4, true],
  ['rsqrt', (x) => x.rsqrt(), (v) => 1 / Math.sqrt(v), 0.1, 4, true],
  ['reciprocal', (x) => x.reciprocal(), (v) => 1 / v, 0.25, 4, true],
  ['abs', (x) => x.abs(), Math.abs, -2, 2, true],
  ['sign', (x) => x.sign(), Math.sign, -2, 2, false],
  ['square', (x) => x.square(), (v) => v * v, -2, 2, true],
  ['sin', (x) => x.sin(), Math.sin, -3, 3, true],
  ['cos', (x) => x.cos(), Math.cos, -3, 3, true],
  ['tanh', (x) => x.tanh(), Math.tanh, -3, 3, true],
  ['sigmoid', (x) => x.sigmoid(), sigmoid, -6, 6, true],
  ['relu', (x) => x.relu(), (v) => Math.max(v, 0), -2, 2, true],
  ['leakyRelu', (x) => x.leakyRelu(), (v) => (v > 0 ? v : 0.01 * v), -2, 2, true],
  ['leakyRelu(0.2)', (x) => x.leakyRelu(0.2), (v) => (v > 0 ? v : 0.2 * v), -2, 2, true],
  ['softplus', (x) => x.softplus(), (v) => Math.log1p(Math.exp(v)), -6, 6, true],
  ['log1p', (x) => x.log1p(), Math.log1p, -0.9, 3, true],
  ['clamp', (x) => x.clamp(-0.5, 0.7), (v) => clampRef(v, -0.5, 0.7), -2, 2, true],
  ['clamp(min)', (x) => x.clamp(0.25), (v) => Math.max(v, 0.25), -2, 2, true],
  ['clamp(max)', (x) => x.clamp(undefined, -0.25), (v) => Math.min(v, -0.25), -2, 2, true],
];

t('unary forward on awkward sizes', async () => {
  for (const [name, op, ref, lo, hi] of UNARY)
    for (const n of [1, 7, 127, 1000, 4097]) {
      const x = randRef([n], n + name.length, lo, hi);
      await expectClose(op(fromRef(x)), R.unary(x, ref), `${name}[${n}]`, 2e-5, 2e-6);
    }
});

t('unary forward keeps the shape of multi-dim and 0-d inputs', async () => {
  for (const shape of [[], [3, 1, 5], [2, 0, 3]]) {
    const x = randRef(shape, 3, 0.1, 2);
    for (const [name, op, ref] of UNARY.slice(0, 6))
      await expectClose(op(fromRef(x)), R.unary(x, ref), `${name}[${shape}]`);
  }
});

t('unary backward matches finite differences', async () => {
  for (const [name, op, ref, lo, hi, hasGrad] of UNARY) {
    if (!hasGrad) continue;
    const x = randRef([3, 5], 11, lo, hi);
    await checkGrad(
      name,
      [x],
      ([a]) => op(a!),
      ([a]) => R.unary(a!, ref),
    );
  }
});

t('sign, step-like ops have no gradient and stop the graph', async () => {
  const x = tensor([-2, 0, 3], { requiresGrad: true });
  const s = x.sign();
  assert.equal(Array.from(await s.toArray()), [-1, 0, 1]);
  assert.is(s.requiresGrad, false);
  assert.throws(() => s.sum().backward(), /backward: tensor does not require grad/);
});

t('unary edge values: large and tiny arguments stay finite and accurate', async () => {
  const big = tensor([-100, -20, 20, 100]);
  assert.equal(Array.from(await big.tanh().toArray()), [-1, -1, 1, 1]);
  R.assertClose(await big.sigmoid().toArray(), [0, sigmoid(-20), 1, 1], { rtol: 1e-5, atol: 1e-30 });
  R.assertClose(await big.softplus().toArray(), [0, Math.log1p(Math.exp(-20)), 20, 100], {
    rtol: 1e-6,
    atol: 1e-12,
  });
  // tanh and log1p near zero, with a purely relative tolerance (they exist to be accurate there).
  const tiny = [1e-7, -3e-6, 1e-5, 1e-4, -2e-4, 1e-3, 5e-3, 0.05, -0.1, 0.2];
  const x = tensor(tiny);
  R.assertClose(await x.tanh().toArray(), tiny.map(Math.tanh), { rtol: 2e-5, atol: 0, what: 'tanh' });
  R.assertClose(await x.log1p().toArray(), tiny.map(Math.log1p), { rtol: 2e-5, atol: 0, what: 'log1p' });
  R.assertClose(await x.sigmoid().toArray(), tiny.map(sigmoid), { rtol: 1e-6, atol: 0, what: 'sigmoid' });
  // softplus of very negative x is exp(x), not 0 (log(softplus) is a common VAE variance parametrisation)
  const negs = [-80, -30, -10, -5.5, -4.5, -1];
  R.assertClose(
    await tensor(negs).softplus().toArray(),
    negs.map((v) => Math.log1p(Math.exp(v))),
    {
      rtol: 2e-5,
      atol: 0,
      what: 'softplus',
    },
  );
  // relu / leakyRelu / abs at exactly 0, and their gradient there (0, slope, 0 — PyTorch's choices).
  const z = tensor([0, -1, 1], { requiresGrad: true });
  z.relu().add(z.leakyRelu(0.1)).add(z.abs()).sum().backward();
  assert.equal(Array.from(await z.grad!.toArray()), [0.1, 0.1 - 1, 3].map(Math.fround));
});

t('IEEE special values: division by zero, log of 0 and negatives, overflow', async () => {
  const same = async (x: Tensor, expected: number[], what: string) =>
    R.assertClose(await x.toArray(), expected, { what, rtol: 1e-6, atol: 0 });
  await same(tensor([0, 2, -4]).reciprocal(), [Infinity, 0.5, -0.25], 'reciprocal');
  await same(tensor([1, -1, 0]).div(0), [Infinity, -Infinity, NaN], 'x/0');
  await same(tensor([0, -1, 1]).log(), [-Infinity, NaN, 0], 'log');
  await same(tensor([0, -1, 4]).sqrt(), [0, NaN, 2], 'sqrt');
  await same(tensor([0, 4]).rsqrt(), [Infinity, 0.5], 'rsqrt');
  await same(tensor([100, -100]).exp(), [Infinity, 0], 'exp');
  await same(tensor([0, 0, 0, 0]).pow(tensor([-1, 0, 2, 0.5])), [Infinity, 1, 0, 0], '0^p');
  await same(tensor([-1, -2]).log1p(), [-Infinity, NaN], 'log1p');
});

t('clamp validates its bounds and passes gradient only inside them', async () => {
  assert.throws(() => tensor([1]).clamp(), /clamp: give min, max or both/);
  assert.throws(() => tensor([1]).clamp(2, 1), /clamp: min 2 > max 1/);
  const x = tensor([-2, -0.5, 0, 0.5, 2], { requiresGrad: true });
  x.clamp(-1, 1).sum().backward();
  assert.equal(Array.from(await x.grad!.toArray()), [0, 1, 1, 1, 0]);
});

// ---------------------------------------------------------------------------------------------------------
// Binary ops with broadcasting.

type BinaryCase = [
  string,
  (a: Tensor, b: Tensor) => Tensor,
  (p: number, q: number) => number,
  number,
  number,
];
const BINARY: BinaryCase[] = [
  ['add', (a, b) => a.add(b), (p, q) => p + q, -2, 2],
  ['sub', (a, b) => a.sub(b), (p, q) => p - q, -2, 2],
  ['mul', (a, b) => a.mul(b), (p, q) => p * q, -2, 2],
  ['div', (a, b) => a.div(b), (p, q) => p / q, 0.5, 2],
  ['pow', (a, b) => a.pow(b), (p, q) => p ** q, 0.5, 2],
  ['maximum', (a, b) => a.maximum(b), Math.max, -2, 2],
  ['minimum', (a, b) => a.minimum(b), Math.min, -2, 2],
  ['max(t)', (a, b) => a.max(b), Math.max, -2, 2],
  ['min(t)', (a, b) => a.min(b), Math.min, -2, 2],
];
const COMPARE: BinaryCase[] = [
  ['eq', (a, b) => a.eq(b), (p, q) => +(p === q), -2, 2],
  ['ne', (a, b) => a.ne(b), (p, q) => +(p !== q), -2, 2],
  ['lt', (a, b) => a.lt(b), (p, q) => +(p < q), -2, 2],
  ['le', (a, b) => a.le(b), (p, q) => +(p <= q), -2, 2],
  ['gt', (a, b) => a.gt(b), (p, q) => +(p > q), -2, 2],
  ['ge', (a, b) => a.ge(b), (p, q) => +(p >= q), -2, 2],
];
const SHAPES: [number[], number[]][] = [
  [[7], [7]],
  [[3, 4], [4]],
  [[4], [3, 4]],
  [
    [2, 1, 3],
    [4, 1],
  ],
  [
    [5, 1, 1, 2],
    [1, 3, 1],
  ],
  [[], [3, 2]],
  [[3, 2], []],
  [[1], [127]],
  [
    [1000, 1],
    [1, 5],
  ],
  [
    [2, 1, 2, 1, 2, 1],
    [1, 2, 1, 2, 1, 2],
  ],
  [[0, 3], [3]],
  [[4097], [1]],
];

/** Rounds a reference so that discrete ops (comparisons) can be exercised with equal elements. */
const coarse = (r: R.RefTensor) => R.unary(r, (v) => Math.round(v * 2) / 2);

t('binary forward with broadcasting', async () => {
  for (const [name, op, ref, lo, hi] of BINARY)
    for (const [sa, sb] of SHAPES) {
      const a = randRef(sa, 1 + sa.length, lo, hi);
      const b = randRef(sb, 2 + sb.length, lo, hi);
      await expectClose(op(fromRef(a), fromRef(b)), R.binary(a, b, ref), `${name} [${sa}] [${sb}]`);
    }
});

t('comparisons with broadcasting, equal elements and mixed dtypes', async () => {
  for (const [name, op, ref] of COMPARE)
    for (const [sa, sb] of SHAPES.slice(0, 6)) {
      const a = coarse(randRef(sa, 5, -2, 2));
      const b = coarse(randRef(sb, 6, -2, 2));
      const y = op(fromRef(a), fromRef(b));
      assert.is(y.dtype, 'float32');
      await expectClose(y, R.binary(a, b, ref), `${name} [${sa}] [${sb}]`, 0, 0);
    }
  const labels = tensor(Int32Array.from([0, 2, 1, 2]));
  assert.equal(Array.from(await labels.eq(2).toArray()), [0, 1, 0, 1]);
  assert.equal(Array.from(await labels.lt(tensor([1.5])).toArray()), [1, 0, 1, 0]);
  assert.equal(Array.from(await eq(tensor([1, 2]), labels.narrow(0, 1, 2)).toArray()), [0, 0]);
  assert.equal(Array.from(await ne(labels, 2).toArray()), [1, 0, 1, 0]);
  assert.equal(Array.from(await le(labels, 1).toArray()), [1, 0, 1, 0]);
  assert.equal(Array.from(await ge(1, labels).toArray()), [1, 0, 1, 0]);
  assert.equal(Array.from(await gt(labels, 0).toArray()), [0, 1, 1, 1]);
  assert.equal(Array.from(await lt(0, labels).toArray()), [0, 1, 1, 1]);
});

t('binary backward reduces gradients to each input shape', async () => {
  const cases: [number[], number[]][] = [
    [
      [3, 4],
      [3, 4],
    ],
    [
      [2, 1, 3],
      [4, 1],
    ],
    [[3], [2, 3]],
    [[], [2, 3]],
    [[2, 3, 1], [1]],
  ];
  for (const [name, op, ref, lo, hi] of BINARY)
    for (const [sa, sb] of cases) {
      const a = randRef(sa, 21, lo, hi);
      const b = randRef(sb, 22, lo, hi);
      await checkGrad(
        `${name} [${sa}] [${sb}]`,
        [a, b],
        ([x, y]) => op(x!, y!),
        ([x, y]) => R.binary(x!, y!, ref),
      );
    }
});

t('the same tensor on both sides of a binary op', async () => {
  for (const [name, op, ref, lo, hi] of BINARY.slice(0, 5)) {
    const a = randRef([2, 3], 31, lo, hi);
    await checkGrad(
      `${name}(x, x)`,
      [a],
      ([x]) => op(x!, x!),
      ([x]) => R.binary(x!, x!, ref),
    );
  }
});

t('scalars on either side, with gradients', async () => {
  const a = randRef([2, 5], 41, 0.5, 2);
  const sc = (f: (v: number) => number) => (xs: R.RefTensor[]) => R.unary(xs[0]!, f);
  const cases: [string, (x: Tensor) => Tensor, (v: number) => number][] = [
    ['x+2', (x) => x.add(2), (v) => v + 2],
    ['2+x', (x) => add(2, x), (v) => 2 + v],
    ['x-3', (x) => x.sub(3), (v) => v - 3],
    ['1-x', (x) => sub(1, x), (v) => 1 - v],
    ['x*2', (x) => x.mul(2), (v) => v * 2],
    ['-1.5*x', (x) => mul(-1.5, x), (v) => -1.5 * v],
    ['x/4', (x) => x.div(4), (v) => v / 4],
    ['1/x', (x) => div(1, x), (v) => 1 / v],
    ['x^2', (x) => x.pow(2), (v) => v ** 2],
    ['x^-1.5', (x) => x.pow(-1.5), (v) => v ** -1.5],
    ['x^0.5', (x) => x.pow(0.5), Math.sqrt],
    ['2^x', (x) => pow(2, x), (v) => 2 ** v],
    ['max(x,1)', (x) => x.maximum(1), (v) => Math.max(v, 1)],
    ['max(1,x)', (x) => maximum(1, x), (v) => Math.max(1, v)],
    ['min(x,1)', (x) => x.minimum(1), (v) => Math.min(v, 1)],
    ['min(1,x)', (x) => minimum(1, x), (v) => Math.min(1, v)],
  ];
  for (const [name, op, ref] of cases) await checkGrad(name, [a], ([x]) => op(x!), sc(ref));
  assert.throws(() => add(1 as unknown as Tensor, 2), /add: at least one operand must be a tensor/);
  assert.throws(() => tensor([1]).mul('2' as unknown as number), /mul: operand must be a Tensor or a number/);
});

t('pow: negative bases with integer exponents, zero, and NaN for fractional exponents', async () => {
  const x = tensor([-2, -1.5, -1, 0, 0.5, 3]);
  const base = [-2, -1.5, -1, 0, 0.5, 3];
  for (const p of [2, 3, -1, -2, 0, 1])
    R.assertClose(
      await x.pow(p).toArray(),
      base.map((v) => v ** p),
      { what: `x^${p}` },
    );
  const frac = await x.pow(0.5).toArray();
  assert.ok(Number.isNaN(frac[0]) && Number.isNaN(frac[2]), 'negative base ^ 0.5 is NaN');
  assert.is(frac[3], 0);
  // tensor exponent with integer values, broadcast
  const e = tensor([[2], [3]]);
  R.assertClose(await x.pow(e).toArray(), [...base.map((v) => v ** 2), ...base.map((v) => v ** 3)], {
    what: 'x^[[2],[3]]',
  });
  // gradient of x^3 at negative x (3x², finite) against finite differences
  const neg3 = randRef([6], 51, -2, -0.5);
  await checkGrad(
    'x^3 (x<0)',
    [neg3],
    ([v]) => v!.pow(3),
    ([v]) => R.unary(v!, (q) => q ** 3),
  );
  await checkGrad(
    'x^-2 (x<0)',
    [neg3],
    ([v]) => v!.pow(-2),
    ([v]) => R.unary(v!, (q) => q ** -2),
  );
});

t('maximum/minimum ties share the gradient equally', async () => {
  const a = tensor([1, 2, 3, -1], { requiresGrad: true });
  const b = tensor([1, 0, 5, -1], { requiresGrad: true });
  a.maximum(b).sum().backward();
  assert.equal(Array.from(await a.grad!.toArray()), [0.5, 1, 0, 0.5]);
  assert.equal(Array.from(await b.grad!.toArray()), [0.5, 0, 1, 0.5]);
  const c = tensor([1, 2, 3], { requiresGrad: true });
  const d = tensor([1, 0, 5], { requiresGrad: true });
  minimum(c, d)
    .mul(tensor([2, 4, 6]))
    .sum()
    .backward();
  assert.equal(Array.from(await c.grad!.toArray()), [1, 0, 6]);
  assert.equal(Array.from(await d.grad!.toArray()), [1, 4, 0]);
  // tie against a scalar
  const e = tensor([0, 1, -1], { requiresGrad: true });
  e.relu().add(e.maximum(0)).sum().backward();
  assert.equal(Array.from(await e.grad!.toArray()), [0.5, 2, 0]);
});

t('where broadcasts condition and both branches, and routes gradients', async () => {
  const cond = R.unary(randRef([3, 1], 61), (v) => +(v > 0));
  const shapes: [number[], number[]][] = [
    [[1, 4], [4]],
    [[3, 4], []],
    [[4], [3, 1]],
  ];
  for (const [sa, sb] of shapes) {
    const a = randRef(sa, 62);
    const b = randRef(sb, 63);
    await checkGrad(
      `where [3,1] [${sa}] [${sb}]`,
      [a, b],
      ([x, y]) => where(fromRef(cond), x!, y!),
      ([x, y]) => R.where(cond, x!, y!),
    );
  }
  // scalars for either branch, nonzero (not just 1) conditions, and the method form
  const c = tensor([0, 2, -1, 0]);
  const x = tensor([1, 2, 3, 4], { requiresGrad: true });
  assert.equal(Array.from(await where(c, x, -1).toArray()), [-1, 2, 3, -1]);
  assert.equal(Array.from(await where(c, 7, x).toArray()), [1, 7, 7, 4]);
  assert.equal(Array.from(await x.where(c, 0).toArray()), [0, 2, 3, 0]);
  where(c, x, x.mul(10)).sum().backward();
  assert.equal(Array.from(await x.grad!.toArray()), [10, 1, 1, 10]);
  // int32 condition
  const ci = tensor(Int32Array.from([1, 0, 0, 1]));
  assert.equal(Array.from(await where(ci, 1, 0).toArray()), [1, 0, 0, 1]);
});

t(
  'broadcasts on the grid form: lane and row tails, 6 outer dims, three operands, and the general form past the grid',
  async () => {
    // (3, 130, 70) + (3, 130, 1): 70 lanes = 64 + a tail of 6, 130 rows = 64 + 64 + 2 per workgroup.
    const a = randRef([3, 130, 70], 71);
    const b = randRef([3, 130, 1], 72);
    await expectClose(
      fromRef(a).add(fromRef(b)),
      R.binary(a, b, (p, q) => p + q),
      'tails',
    );
    // Rank 8 with alternating broadcast dims: nothing collapses, 6 outer dims split from z.
    const c = randRef([2, 3, 2, 3, 2, 3, 2, 3], 73);
    const d = randRef([2, 1, 2, 1, 2, 1, 2, 1], 74);
    await expectClose(
      fromRef(c).mul(fromRef(d)),
      R.binary(c, d, (p, q) => p * q),
      'rank 8',
    );
    // Three operands broadcast three ways (condition along rows, one branch along columns, a scalar).
    const cond = R.unary(randRef([5, 1], 75), (v) => +(v > 0));
    const e = randRef([1, 67], 76);
    await expectClose(where(fromRef(cond), fromRef(e), 2), R.where(cond, e, R.ref([], [2])), 'where', 0, 0);
    // 70,000 outer indices exceed a grid dimension (65,535): the general form.
    const f = randRef([70_000, 2, 3], 77);
    const g = randRef([70_000, 1, 3], 78);
    await expectClose(
      fromRef(f).sub(fromRef(g)),
      R.binary(f, g, (p, q) => p - q),
      'general form',
    );
  },
);

t('casts, clone and int32 inputs to float ops', async () => {
  const x = tensor([-2.7, -0.5, 0.5, 2.7, 3]);
  const i = x.int();
  assert.is(i.dtype, 'int32');
  assert.equal(Array.from(await i.data()), [-2, 0, 0, 2, 3]);
  const f = i.float();
  assert.is(f.dtype, 'float32');
  assert.equal(Array.from(await f.data()), [-2, 0, 0, 2, 3]);
  const ic = i.clone();
  assert.is(ic.dtype, 'int32');
  assert.equal(Array.from(await ic.data()), [-2, 0, 0, 2, 3]);
  const big = tensor(Int32Array.from([16777217, -5]));
  assert.equal(Array.from(await big.int().data()), [16777217, -5], 'int32 clone is bit-exact');
  // int32 operands convert to float in float ops
  R.assertClose(await i.add(0.5).toArray(), [-1.5, 0.5, 0.5, 2.5, 3.5]);
  R.assertClose(await exp(i).toArray(), [-2, 0, 0, 2, 3].map(Math.exp), { rtol: 1e-5 });
  // clone is differentiable
  const w = tensor([1, 2], { requiresGrad: true });
  w.clone().mul(3).sum().backward();
  assert.equal(Array.from(await w.grad!.toArray()), [3, 3]);
});

t('free functions match the methods', async () => {
  const a = randRef([4, 3], 71, 0.5, 2);
  const b = randRef([3], 72, 0.5, 2);
  const A = fromRef(a);
  const B = fromRef(b);
  const pairs: [Tensor, Tensor][] = [
    [neg(A), A.neg()],
    [exp(A), A.exp()],
    [log(A), A.log()],
    [abs(A), A.abs()],
    [cos(A), A.cos()],
    [add(A, B), A.add(B)],
    [sub(A, B), A.sub(B)],
    [mul(A, B), A.mul(B)],
    [div(A, B), A.div(B)],
    [pow(A, B), A.pow(B)],
    [maximum(A, B), A.maximum(B)],
  ];
  for (const [p, q] of pairs) assert.equal(Array.from(await p.toArray()), Array.from(await q.toArray()));
});

t('broadcasting errors name the op and both shapes', () => {
  const a = tensor(new Float32Array(6), { shape: [2, 3] });
  const b = tensor(new Float32Array(6), { shape: [3, 2] });
  assert.throws(() => a.add(b), /add: shapes \[2,3\] and \[3,2\] cannot be broadcast together/);
  assert.throws(() => a.mul(tensor([1, 2])), /mul: shapes \[2,3\] and \[2\] cannot be broadcast/);
  assert.throws(() => where(a, a, b), /where: shapes .*cannot be broadcast/);
  assert.throws(() => a.maximum(b), /maximum: shapes \[2,3\] and \[3,2\]/);
  assert.throws(() => a.lt(b), /lt: shapes \[2,3\] and \[3,2\]/);
});

t('broadcast over leading dims only (bias rows, the vector form) matches the reference', async () => {
  let seed = 300;
  for (const [sa, sb] of [
    [[3, 8], [8]],
    [
      [2, 3, 4],
      [3, 4],
    ],
    [
      [5, 12],
      [1, 12],
    ],
    [
      [7, 1, 4],
      [1, 4],
    ],
    [[128, 784], [784]],
  ] as [number[], number[]][]) {
    const a = randRef(sa, seed++);
    const b = randRef(sb, seed++);
    await expectClose(
      fromRef(a).add(fromRef(b)),
      R.binary(a, b, (p, q) => Math.fround(p + q)), // float32 inputs: the f32 sum is the rounded exact sum
      `[${sa}] + [${sb}]`,
      0,
      0,
    );
    await expectClose(
      fromRef(b).mul(fromRef(a)),
      R.binary(b, a, (p, q) => Math.fround(p * q)),
      `[${sb}] * [${sa}]`,
      0,
      0,
    );
    // finite differences on the small cases (the reference is evaluated twice per input element)
    if (a.data.length <= 1000)
      await checkGrad(
        `[${sa}] - [${sb}]`,
        [a, b],
        ([p, q]) => p!.sub(q!),
        ([p, q]) => R.binary(p!, q!, (x, y) => x - y),
      );
  }
  // int32 rows broadcast as well
  const ia = tensor(
    Int32Array.from({ length: 12 }, (_, i) => i),
    { shape: [3, 4] },
  );
  const ib = tensor(Int32Array.from([10, 20, 30, 40]), { shape: [4] });
  assert.equal(Array.from(await ia.add(ib).toArray()), [10, 21, 32, 43, 14, 25, 36, 47, 18, 29, 40, 51]);
});

t(
  'NaN propagates through relu, clamp, maximum and minimum as in PyTorch (WGSL max/min may drop it)',
  async () => {
    const x = tensor([-1, 4, -4, 0.25]).sqrt(); // [NaN, 2, NaN, 0.5]
    const y = tensor([1, -1, 3, 0.75]).sqrt(); // [1, NaN, √3, √0.75]
    const same = async (t: Tensor, want: number[], what: string) => {
      const got = Array.from(await t.toArray());
      assert.equal(
        got.map((v) => (Number.isNaN(v) ? 'NaN' : Math.fround(v))),
        want.map((v) => (Number.isNaN(v) ? 'NaN' : Math.fround(v))),
        what,
      );
      t.dispose();
    };
    await same(x.relu(), [Number.NaN, 2, Number.NaN, 0.5], 'relu');
    await same(x.clamp(0, 1), [Number.NaN, 1, Number.NaN, 0.5], 'clamp(0, 1)');
    await same(x.clamp(undefined, 1), [Number.NaN, 1, Number.NaN, 0.5], 'clamp(max 1)');
    await same(x.clamp(1), [Number.NaN, 2, Number.NaN, 1], 'clamp(min 1)');
    const n = Number.NaN;
    await same(maximum(x, y), [n, n, n, Math.sqrt(0.75)], 'maximum');
    await same(minimum(x, y), [n, n, n, 0.5], 'minimum');
    await same(maximum(x, 0), [n, 2, n, 0.5], 'maximum with a scalar');
    await same(minimum(3, x), [n, 2, n, 0.5], 'minimum with a scalar first');
    // maxPool2d: a NaN after a larger value in the window still wins (first NaN's index), as in PyTorch.
    const img = tensor([
      [
        [
          [1, 4, 0.25, 1],
          [-1, 2, 0.5, -1],
        ],
      ],
    ]).sqrt(); // NaN at (1, 0) and (1, 3)
    await same(maxPool2d(img, 2), [n, n], 'maxPool2d');
    img.dispose();
    x.dispose();
    y.dispose();
  },
);

t.run();
