// Tests of the CPU reference (the oracle itself) on small hand-computed examples and identities.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Conv2dOpts, RefTensor } from '../packages/tensor/src/reference.js';
import * as R from '../packages/tensor/src/reference.js';

const iota = (shape: number[], start = 0): RefTensor =>
  R.ref(
    shape,
    Array.from({ length: R.size(shape) }, (_, i) => i + start),
  );

/** Asserts shape equality and elementwise closeness. */
function eq(t: RefTensor, shape: number[], data: number[], tol = 1e-12): void {
  assert.equal(t.shape, shape);
  R.assertClose(t.data, data, { rtol: tol, atol: tol });
}

const dot = (a: RefTensor, b: RefTensor): number => a.data.reduce((s, v, i) => s + v * b.data[i], 0);
const conv = (stride = 1, padding = 0, dilation = 1, groups = 1): Conv2dOpts => ({
  stride: [stride, stride],
  padding: [padding, padding],
  dilation: [dilation, dilation],
  groups,
});

test('ref, size and validation', () => {
  assert.is(R.size([2, 3, 4]), 24);
  assert.is(R.size([]), 1);
  assert.is(R.size([3, 0]), 0);
  eq(R.ref([2], [1, 2]), [2], [1, 2]);
  assert.ok(R.ref([2], [1, 2]).data instanceof Float64Array);
  assert.throws(() => R.ref([2, 2], [1, 2, 3]), /ref: shape \[2, 2\] needs 4 elements, got 3/);
  assert.throws(() => R.ref([-1], []), /ref: invalid shape/);
  assert.throws(
    () => R.unary({ shape: [3], data: new Float64Array(2) }, (v) => v),
    /unary: tensor of shape \[3\]/,
  );
});

test('broadcastShapes', () => {
  assert.equal(R.broadcastShapes([2, 1, 3], [4, 1]), [2, 4, 3]);
  assert.equal(R.broadcastShapes([], [3]), [3]);
  assert.equal(R.broadcastShapes([5, 0], [1]), [5, 0]);
  assert.throws(
    () => R.broadcastShapes([2, 3], [3, 2]),
    /broadcastShapes: cannot broadcast shapes \[2, 3\] and \[3, 2\]/,
  );
});

test('unary, binary and where broadcast', () => {
  eq(
    R.unary(R.ref([3], [1, -2, 3]), (v) => v * v),
    [3],
    [1, 4, 9],
  );
  eq(
    R.binary(R.ref([2, 1], [1, 2]), R.ref([3], [10, 20, 30]), (a, b) => a + b),
    [2, 3],
    [11, 21, 31, 12, 22, 32],
  );
  eq(
    R.binary(R.ref([], [2]), R.ref([2], [3, 4]), (a, b) => a ** b),
    [2],
    [8, 16],
  );
  eq(R.where(R.ref([2, 1], [1, 0]), R.ref([2], [10, 20]), R.ref([], [-1])), [2, 2], [10, 20, -1, -1]);
  assert.throws(
    () => R.binary(R.ref([2], [1, 2]), R.ref([3], [1, 2, 3]), Math.max),
    /binary: cannot broadcast/,
  );
});

test('reduce over multiple and negative axes', () => {
  const x = iota([2, 3, 4]); // x[i, j, k] = 12 i + 4 j + k
  eq(R.reduce(x, [0, -1], false, 'sum'), [3], [60, 92, 124]);
  eq(R.reduce(x, [-1, 0], true, 'sum'), [1, 3, 1], [60, 92, 124]);
  eq(R.reduce(x, [0, 2], false, 'mean'), [3], [7.5, 11.5, 15.5]);
  eq(R.reduce(x, [1, 2], false, 'max'), [2], [11, 23]);
  eq(R.reduce(x, undefined, false, 'min'), [], [0]);
  eq(R.reduce(x, undefined, true, 'sum'), [1, 1, 1], [276]);
  eq(R.reduce(x, [], false, 'sum'), [2, 3, 4], Array.from(x.data));
  eq(R.reduce(iota([2, 3], 1), [1], false, 'prod'), [2], [6, 120]);
  eq(R.reduce(R.ref([2, 0], []), [1], false, 'sum'), [2], [0, 0]);
  assert.ok(Number.isNaN(R.reduce(R.ref([3], [1, Number.NaN, 2]), [0], false, 'max').data[0]));
  assert.throws(() => R.reduce(x, [3], false, 'sum'), /reduce: axis 3 out of range for shape \[2, 3, 4\]/);
  assert.throws(() => R.reduce(x, [1, -2], false, 'sum'), /reduce: repeated axis/);
  assert.throws(() => R.reduce(R.ref([0], []), undefined, false, 'max'), /reduce: max over zero elements/);
});

test('argReduce: first index on ties, NaN wins, keepdim', () => {
  const x = R.ref([2, 3], [1, 3, 3, 2, 2, 0]);
  eq(R.argReduce(x, 1, false, 'argmax'), [2], [1, 0]);
  eq(R.argReduce(x, -1, true, 'argmin'), [2, 1], [0, 2]);
  eq(R.argReduce(x, 0, false, 'argmax'), [3], [1, 0, 0]);
  eq(R.argReduce(R.ref([4], [1, Number.NaN, 5, Number.NaN]), 0, false, 'argmax'), [], [1]);
  assert.throws(() => R.argReduce(x, 2, false, 'argmax'), /argReduce: axis 2/);
});

test('reshape, permute, expand', () => {
  const x = iota([2, 3]);
  eq(R.reshape(x, [3, -1]), [3, 2], [0, 1, 2, 3, 4, 5]);
  eq(R.reshape(x, [-1]), [6], [0, 1, 2, 3, 4, 5]);
  assert.throws(() => R.reshape(x, [4, -1]), /reshape: cannot reshape \[2, 3\] to \[4, -1\]/);
  assert.throws(() => R.reshape(x, [-1, -1]), /reshape/);
  eq(R.permute(x, [1, 0]), [3, 2], [0, 3, 1, 4, 2, 5]);
  const y = iota([2, 3, 4]);
  const p = R.permute(y, [2, 0, 1]); // p[k, i, j] = y[i, j, k]
  assert.equal(p.shape, [4, 2, 3]);
  assert.is(p.data[3 * 6 + 1 * 3 + 2], 12 * 1 + 4 * 2 + 3);
  assert.throws(() => R.permute(x, [0, 0]), /permute: invalid permutation \[0, 0\] for shape \[2, 3\]/);
  eq(R.expand(R.ref([3, 1], [1, 2, 3]), [2, -1, 2]), [2, 3, 2], [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
  assert.throws(() => R.expand(R.ref([3], [1, 2, 3]), [4]), /expand: cannot expand \[3\] to \[4\]/);
  assert.throws(() => R.expand(R.ref([3], [1, 2, 3]), [-1, 3]), /expand/);
});

test('slice with steps and negative indices', () => {
  const x = iota([3, 4]);
  eq(R.slice(x, [0, 1], [3, 4], [2, 2]), [2, 2], [1, 3, 9, 11]);
  eq(R.slice(x, [-1, 0], [99, -1]), [1, 3], [8, 9, 10]);
  eq(R.slice(x, [2, 0], [1, 4]), [0, 4], []);
  assert.throws(() => R.slice(x, [0], [1]), /slice: .* do not match shape \[3, 4\]/);
  assert.throws(() => R.slice(x, [0, 0], [1, 1], [1, 0]), /slice/);
});

test('pad, including negative pads (crop)', () => {
  eq(R.pad(R.ref([2], [1, 2]), [[1, 2]]), [5], [0, 1, 2, 0, 0]);
  const x = iota([3, 4]);
  // rows: 1 padded row then x rows 0..1 (last row cropped); cols: first col cropped, then 2 padded cols
  eq(
    R.pad(
      x,
      [
        [1, -1],
        [-1, 2],
      ],
      -1,
    ),
    [3, 5],
    [-1, -1, -1, -1, -1, 1, 2, 3, -1, -1, 5, 6, 7, -1, -1],
  );
  eq(
    R.pad(x, [
      [-1, -1],
      [0, -4],
    ]),
    [1, 0],
    [],
  );
  assert.throws(() => R.pad(x, [[0, 0]]), /pad: invalid pads/);
  assert.throws(
    () =>
      R.pad(x, [
        [-2, -2],
        [0, 0],
      ]),
    /pad: invalid pads .* for shape \[3, 4\]/,
  );
});

test('concat and stack', () => {
  const a = R.ref([1, 2], [1, 2]);
  const b = R.ref([2, 2], [3, 4, 5, 6]);
  eq(R.concat([a, b], 0), [3, 2], [1, 2, 3, 4, 5, 6]);
  eq(R.concat([R.ref([2, 1], [0, 9]), b], -1), [2, 3], [0, 3, 4, 9, 5, 6]);
  assert.throws(() => R.concat([a, b], 1), /concat: shapes \[1, 2\], \[2, 2\] differ outside axis 1/);
  const u = R.ref([2], [1, 2]);
  const v = R.ref([2], [3, 4]);
  eq(R.stack([u, v], 0), [2, 2], [1, 2, 3, 4]);
  eq(R.stack([u, v], 1), [2, 2], [1, 3, 2, 4]);
  eq(R.stack([u, v], -1), [2, 2], [1, 3, 2, 4]);
  assert.throws(() => R.stack([u, a], 0), /stack: shapes differ/);
});

test('indexSelect, gather, oneHot', () => {
  const x = iota([3, 2]);
  eq(R.indexSelect(x, 0, [2, 0, 2]), [3, 2], [4, 5, 0, 1, 4, 5]);
  eq(R.indexSelect(x, -1, [1]), [3, 1], [1, 3, 5]);
  assert.throws(() => R.indexSelect(x, 0, [3]), /indexSelect: index \[3\] out of range/);
  const t = R.ref([2, 2], [1, 2, 3, 4]);
  eq(R.gather(t, 1, R.ref([2, 2], [0, 0, 1, 0])), [2, 2], [1, 1, 4, 3]); // torch.gather doc example
  eq(R.gather(t, 0, R.ref([1, 2], [1, 0])), [1, 2], [3, 2]);
  assert.throws(() => R.gather(t, 1, R.ref([2, 1], [0, 2])), /gather: index value 2 out of range/);
  assert.throws(() => R.gather(t, 1, R.ref([3, 1], [0, 0, 0])), /gather: index shape \[3, 1\]/);
  eq(R.oneHot([2, 0], 3), [2, 3], [0, 0, 1, 1, 0, 0]);
  assert.throws(() => R.oneHot([3], 3), /oneHot/);
});

test('matmul: values, 1-D promotion and batch broadcasting', () => {
  eq(R.matmul(R.ref([2, 2], [1, 2, 3, 4]), R.ref([2, 2], [5, 6, 7, 8])), [2, 2], [19, 22, 43, 50]);
  eq(R.matmul(R.ref([3], [1, 2, 3]), R.ref([3], [4, 5, 6])), [], [32]);
  eq(R.matmul(R.ref([2], [1, 2]), R.ref([2, 3], [1, 2, 3, 4, 5, 6])), [3], [9, 12, 15]);
  eq(R.matmul(R.ref([2, 3], [1, 2, 3, 4, 5, 6]), R.ref([3], [1, 0, -1])), [2], [-2, -2]);
  const shapes: [number[], number[], number[]][] = [
    [
      [2, 1, 3, 4],
      [5, 4, 2],
      [2, 5, 3, 2],
    ],
    [[4], [2, 4, 3], [2, 3]],
    [[2, 3, 4], [4], [2, 3]],
    [
      [1, 3, 4],
      [6, 4, 5],
      [6, 3, 5],
    ],
  ];
  for (const [sa, sb, so] of shapes) assert.equal(R.matmul(R.randomRef(sa, 1), R.randomRef(sb, 2)).shape, so);
  // every batch of a broadcast product equals the 2-D product of the matching slices
  const a = R.randomRef([2, 1, 3, 4], 3);
  const b = R.randomRef([5, 4, 2], 4);
  const c = R.matmul(a, b);
  for (let i = 0; i < 2; i++)
    for (let j = 0; j < 5; j++) {
      const ai = R.reshape(R.indexSelect(a, 0, [i]), [3, 4]);
      const bj = R.reshape(R.indexSelect(b, 0, [j]), [4, 2]);
      const cij = R.reshape(R.indexSelect(R.indexSelect(c, 0, [i]), 1, [j]), [3, 2]);
      R.assertClose(cij.data, R.matmul(ai, bj).data, { rtol: 1e-12, atol: 1e-12, what: `batch ${i},${j}` });
    }
  assert.throws(
    () => R.matmul(R.ref([2, 3], new Array(6).fill(0)), R.ref([2, 3], new Array(6).fill(0))),
    /matmul: incompatible shapes \[2, 3\] and \[2, 3\]/,
  );
  assert.throws(
    () => R.matmul(R.randomRef([2, 3, 4], 0), R.randomRef([3, 4, 5], 0)),
    /matmul: cannot broadcast/,
  );
});

test('conv2d by hand: plain, bias, padding+stride, dilation', () => {
  const x = iota([1, 1, 3, 3], 1); // [[1,2,3],[4,5,6],[7,8,9]]
  const w = R.ref([1, 1, 2, 2], [1, 2, 3, 4]);
  eq(R.conv2d(x, w, null, conv()), [1, 1, 2, 2], [37, 47, 67, 77]);
  eq(R.conv2d(x, w, R.ref([1], [1]), conv()), [1, 1, 2, 2], [38, 48, 68, 78]);
  eq(R.conv2d(x, w, null, conv(2, 1)), [1, 1, 2, 2], [4, 18, 36, 77]);
  eq(R.conv2d(x, w, null, conv(1, 0, 2)), [1, 1, 1, 1], [1 + 2 * 3 + 3 * 7 + 4 * 9]);
  // asymmetric stride/padding: rows stride 1 pad 0, cols stride 2 pad 1
  const o = { stride: [1, 2], padding: [0, 1], dilation: [1, 1], groups: 1 } as Conv2dOpts;
  eq(
    R.conv2d(x, w, null, o),
    [1, 1, 2, 2],
    [1 * 2 + 4 * 4, 2 * 1 + 3 * 2 + 5 * 3 + 6 * 4, 4 * 2 + 7 * 4, 5 * 1 + 6 * 2 + 8 * 3 + 9 * 4],
  );
  // two input channels are summed
  const x2 = R.concat([x, R.unary(x, (v) => 10 * v)], 1);
  const w2 = R.ref([1, 2, 1, 1], [1, 1]);
  eq(R.conv2d(x2, w2, null, conv()), [1, 1, 3, 3], [11, 22, 33, 44, 55, 66, 77, 88, 99]);
  assert.throws(() => R.conv2d(x2, w, null, conv()), /conv2d: bad shapes x \[1, 2, 3, 3\], w \[1, 1, 2, 2\]/);
  assert.throws(() => R.conv2d(x, w, null, conv(0)), /conv2d: stride/);
});

test('conv2d with groups equals per-group convolutions', () => {
  const x = R.randomRef([2, 4, 5, 5], 10);
  const w = R.randomRef([6, 2, 3, 3], 11); // groups 2: Cout 6 = 3 per group, Cin/g = 2
  const b = R.randomRef([6], 12);
  const y = R.conv2d(x, w, b, conv(2, 1, 1, 2));
  const parts = [0, 1].map((g) =>
    R.conv2d(
      R.indexSelect(x, 1, [2 * g, 2 * g + 1]),
      R.indexSelect(w, 0, [3 * g, 3 * g + 1, 3 * g + 2]),
      R.indexSelect(b, 0, [3 * g, 3 * g + 1, 3 * g + 2]),
      conv(2, 1),
    ),
  );
  const z = R.concat(parts, 1);
  assert.equal(y.shape, [2, 6, 3, 3]);
  R.assertClose(y.data, z.data, { rtol: 1e-12, atol: 1e-12, what: 'grouped conv' });
});

test('convTranspose2d by hand', () => {
  const x = R.ref([1, 1, 2, 2], [1, 2, 3, 4]);
  const ones = R.ref([1, 1, 2, 2], [1, 1, 1, 1]);
  const o = (s: number, p = 0, op = 0) => ({ ...conv(s, p), outputPadding: [op, op] as [number, number] });
  eq(R.convTranspose2d(x, ones, null, o(1)), [1, 1, 3, 3], [1, 3, 2, 4, 10, 6, 3, 7, 4]);
  const w = R.ref([1, 1, 2, 2], [1, 2, 3, 4]);
  eq(R.convTranspose2d(x, w, null, o(2)), [1, 1, 4, 4], [1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16]);
  // padding 1 crops the first row/col of the full 4x4 result, outputPadding 1 keeps its last one
  eq(
    R.convTranspose2d(x, w, R.ref([1], [0.5]), o(2, 1, 1)),
    [1, 1, 3, 3],
    [4.5, 6.5, 8.5, 6.5, 4.5, 8.5, 12.5, 12.5, 16.5],
  );
  assert.throws(
    () => R.convTranspose2d(x, w, null, o(1, 0, 1)),
    /convTranspose2d: outputPadding \[1, 1\] must be smaller/,
  );
});

test('convTranspose2d is the adjoint of conv2d: <conv(x, w), y> == <x, convT(y, w)>', () => {
  const cases = [
    // N, Cin, Cout, H, W, kH, kW, stride, pad, dil, groups
    [2, 3, 4, 7, 6, 3, 3, 1, 1, 1, 1],
    [1, 2, 3, 8, 9, 3, 2, 2, 1, 1, 1],
    [2, 4, 6, 9, 7, 3, 3, 3, 2, 2, 2],
    [1, 6, 6, 6, 8, 2, 3, 2, 0, 3, 3],
    [1, 2, 2, 5, 5, 1, 1, 2, 0, 1, 2],
  ];
  cases.forEach(([N, Cin, Cout, H, W, kH, kW, s, p, d, g], i) => {
    const x = R.randomRef([N, Cin, H, W], 100 + i);
    const w = R.randomRef([Cout, Cin / g, kH, kW], 200 + i);
    const opts = conv(s, p, d, g);
    const fx = R.conv2d(x, w, null, opts);
    const y = R.randomRef(fx.shape, 300 + i);
    const [Ho, Wo] = fx.shape.slice(2);
    // output padding that makes convT land back on H x W
    const op = (n: number, on: number, k: number) => n - ((on - 1) * s - 2 * p + d * (k - 1) + 1);
    const ft = R.convTranspose2d(y, w, null, { ...opts, outputPadding: [op(H, Ho, kH), op(W, Wo, kW)] });
    assert.equal(ft.shape, x.shape);
    const lhs = dot(fx, y);
    const rhs = dot(x, ft);
    assert.ok(Math.abs(lhs - rhs) <= 1e-10 * (1 + Math.abs(lhs)), `case ${i}: ${lhs} vs ${rhs}`);
  });
});

test('maxPool2d and avgPool2d by hand', () => {
  eq(R.maxPool2d(iota([1, 1, 4, 4], 1), [2, 2], [2, 2], [0, 0]), [1, 1, 2, 2], [6, 8, 14, 16]);
  const neg = R.unary(iota([1, 1, 3, 3], 1), (v) => -v); // padding must act as -inf, not 0
  eq(R.maxPool2d(neg, [2, 2], [2, 2], [1, 1]), [1, 1, 2, 2], [-1, -2, -4, -5]);
  eq(R.maxPool2d(iota([1, 2, 3, 3]), [3, 3], [1, 1], [0, 0]), [1, 2, 1, 1], [8, 17]);
  const x = iota([1, 1, 3, 3], 1);
  eq(R.avgPool2d(x, [2, 2], [2, 2], [1, 1]), [1, 1, 2, 2], [1 / 4, 5 / 4, 11 / 4, 28 / 4]);
  eq(R.avgPool2d(x, [2, 2], [2, 2], [1, 1], false), [1, 1, 2, 2], [1, 2.5, 5.5, 7]);
  eq(R.avgPool2d(x, [2, 3], [1, 1], [0, 0]), [1, 1, 2, 1], [3.5, 6.5]);
  assert.throws(
    () => R.maxPool2d(x, [2, 2], [1, 1], [2, 2]),
    /maxPool2d: padding \[2, 2\] must be at most half/,
  );
  assert.throws(
    () => R.avgPool2d(R.ref([3], [1, 2, 3]), [1, 1], [1, 1], [0, 0]),
    /avgPool2d: expected 4-D input, got \[3\]/,
  );
});

test('upsampleNearest2d uses floor(dst * in / out)', () => {
  eq(
    R.upsampleNearest2d(R.ref([1, 1, 2, 2], [1, 2, 3, 4]), 4, 4),
    [1, 1, 4, 4],
    [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4],
  );
  eq(R.upsampleNearest2d(R.ref([1, 1, 1, 2], [1, 2]), 1, 3), [1, 1, 1, 3], [1, 1, 2]); // 0, floor(2/3), floor(4/3)
  eq(R.upsampleNearest2d(R.ref([1, 1, 1, 3], [1, 2, 3]), 1, 2), [1, 1, 1, 2], [1, 2]); // 0, floor(3/2)
});

test('numericGrad: x*x gives 2x, matmul gives G B^T and A^T G, conv2d gives convT', () => {
  const x = R.ref([2, 2], [1, -2, 0.5, 3]);
  const [gx] = R.numericGrad(([t]) => R.binary(t, t, (a, b) => a * b), [x], R.ref([2, 2], [1, 1, 1, 1]));
  eq(gx, [2, 2], [2, -4, 1, 6], 1e-7);
  assert.equal(Array.from(x.data), [1, -2, 0.5, 3]); // inputs untouched

  const a = R.randomRef([3, 4], 1);
  const b = R.randomRef([4, 2], 2);
  const g = R.randomRef([3, 2], 3);
  const [ga, gb] = R.numericGrad(([p, q]) => R.matmul(p, q), [a, b], g);
  R.assertClose(ga.data, R.matmul(g, R.permute(b, [1, 0])).data, { rtol: 1e-7, atol: 1e-8, what: 'dA' });
  R.assertClose(gb.data, R.matmul(R.permute(a, [1, 0]), g).data, { rtol: 1e-7, atol: 1e-8, what: 'dB' });

  const xc = R.randomRef([1, 2, 5, 5], 4);
  const w = R.randomRef([3, 2, 3, 3], 5);
  const up = R.randomRef([1, 3, 3, 3], 6);
  const [gxc] = R.numericGrad(([t]) => R.conv2d(t, w, null, conv(2, 1)), [xc], up);
  const expected = R.convTranspose2d(up, w, null, { ...conv(2, 1), outputPadding: [0, 0] });
  R.assertClose(gxc.data, expected.data, { rtol: 1e-6, atol: 1e-8, what: 'conv dX' });

  assert.throws(
    () => R.numericGrad(([t]) => t, [x], R.ref([4], [1, 1, 1, 1])),
    /numericGrad: f returned shape \[2, 2\] but upstream has shape \[4\]/,
  );
});

test('maxRelErr and assertClose', () => {
  assert.is(R.maxRelErr([1, 2, 0], [1, 2, 0]), 0);
  assert.ok(Math.abs(R.maxRelErr([1.1, 2], [1, 2], 0) - 0.1) < 1e-12);
  assert.is(R.maxRelErr([Number.NaN], [Number.NaN]), 0);
  assert.is(R.maxRelErr([Number.NaN], [1]), Number.POSITIVE_INFINITY);
  assert.throws(() => R.maxRelErr([1], [1, 2]), /maxRelErr: length mismatch/);
  R.assertClose(
    [1, 2.00001, Number.NaN, Number.POSITIVE_INFINITY],
    [1, 2, Number.NaN, Number.POSITIVE_INFINITY],
  );
  assert.throws(
    () => R.assertClose([1, 2], [1, 2, 3], { what: 'sum' }),
    /assertClose\(sum\): length mismatch: actual 2, expected 3/,
  );
  assert.throws(
    () => R.assertClose([1, 2, 3.5, 9], [1, 2, 3, 4], { what: 'relu' }),
    /assertClose\(relu\): 2 of 4 elements differ; first at index 2: actual 3.5, expected 3/,
  );
  assert.throws(() => R.assertClose([Number.NEGATIVE_INFINITY], [Number.POSITIVE_INFINITY]), /index 0/);
  assert.throws(() => R.assertClose([0], [Number.NaN]), /index 0/);
  assert.throws(() => R.assertClose([1e300], [Number.POSITIVE_INFINITY]), /index 0/);
});

test('rng and randomRef are deterministic and in range', () => {
  const r1 = R.rng(42);
  const r2 = R.rng(42);
  const xs = Array.from({ length: 1000 }, () => r1());
  assert.equal(
    xs.slice(0, 10),
    Array.from({ length: 10 }, () => r2()),
  );
  assert.ok(xs.every((v) => v >= 0 && v < 1));
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  assert.not.equal(R.rng(1)(), R.rng(2)());
  const t = R.randomRef([3, 4], 7, 2, 5);
  assert.equal(t.shape, [3, 4]);
  assert.ok(t.data.every((v) => v >= 2 && v < 5));
  assert.equal(Array.from(t.data), Array.from(R.randomRef([3, 4], 7, 2, 5).data));
  assert.ok(R.randomRef([100], 1).data.some((v) => v < 0)); // default range [-1, 1)
});

test.run();
