// Creating tensors from host data (nested arrays, typed arrays, scalars, int32) and by shape (zeros, ones,
// full, *Like, arange, linspace), reading them back (toArray, data, item, toNested), and input validation.
import {
  arange,
  full,
  fullLike,
  linspace,
  ones,
  onesLike,
  type Tensor,
  tensor,
  zeros,
  zerosLike,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { gpuSuite, R } from './helpers.js';

const t = gpuSuite('creation');

const meta = (x: Tensor) => ({ shape: [...x.shape], dtype: x.dtype, size: x.size, ndim: x.ndim });

t('tensor() from nested arrays, scalars and empty arrays', async () => {
  const a = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  assert.equal(meta(a), { shape: [2, 3], dtype: 'float32', size: 6, ndim: 2 });
  assert.equal(await a.toNested(), [
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const b = tensor([
    [[1], [2]],
    [[3], [4]],
  ]);
  assert.equal([...b.shape], [2, 2, 1]);
  assert.equal(await b.toNested(), [
    [[1], [2]],
    [[3], [4]],
  ]);
  const s = tensor(3.5);
  assert.equal(meta(s), { shape: [], dtype: 'float32', size: 1, ndim: 0 });
  assert.is(await s.item(), 3.5);
  assert.is(await s.toNested(), 3.5);
  const e = tensor([]);
  assert.equal(meta(e), { shape: [0], dtype: 'float32', size: 0, ndim: 1 });
  assert.equal(Array.from(await e.toArray()), []);
  assert.equal(await e.toNested(), []);
  const e2 = tensor([[], []]);
  assert.equal([...e2.shape], [2, 0]);
  assert.equal(await e2.toNested(), [[], []]);
  // float32 rounding of doubles
  assert.is(await tensor([0.1]).item(), Math.fround(0.1));
});

t('tensor() from typed and flat arrays with a shape, and int32', async () => {
  const f = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [3, 2] });
  assert.equal(meta(f), { shape: [3, 2], dtype: 'float32', size: 6, ndim: 2 });
  assert.equal(await f.toNested(), [
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  const d = tensor(new Float64Array([1.5, -2.5]));
  assert.equal(meta(d), { shape: [2], dtype: 'float32', size: 2, ndim: 1 });
  const i = tensor(new Int32Array([7, -8, 2147483647, -2147483648]));
  assert.is(i.dtype, 'int32');
  const id = await i.data();
  assert.ok(id instanceof Int32Array);
  assert.equal(Array.from(id), [7, -8, 2147483647, -2147483648]);
  // toArray() converts to float32 (rounding above 2^24); data() is exact
  assert.equal(Array.from(await i.toArray()), [7, -8, 2147483648, -2147483648]);
  assert.ok((await i.toArray()) instanceof Float32Array);
  const i2 = tensor([1, 2, 3, 4], { dtype: 'int32', shape: [2, 2] });
  assert.equal(meta(i2), { shape: [2, 2], dtype: 'int32', size: 4, ndim: 2 });
  assert.equal(await i2.toNested(), [
    [1, 2],
    [3, 4],
  ]);
  const i3 = tensor(
    [
      [1, 2],
      [3, 4],
    ],
    { dtype: 'int32' },
  );
  assert.equal(await i3.toNested(), [
    [1, 2],
    [3, 4],
  ]);
  const flat = tensor([1, 2, 3, 4, 5, 6], { shape: [2, 1, 3] });
  assert.equal([...flat.shape], [2, 1, 3]);
  const nestedReshaped = tensor(
    [
      [1, 2],
      [3, 4],
    ],
    { shape: [4] },
  );
  assert.equal([...nestedReshaped.shape], [4]);
  const fd = await f.data();
  assert.ok(fd instanceof Float32Array);
  const one = tensor(7, { shape: [1, 1] });
  assert.equal([...one.shape], [1, 1]);
  assert.is(await one.item(), 7);
  const big = tensor(new Int32Array([16777217]));
  assert.is(await big.item(), 16777217, 'int32 item is exact above 2^24');
});

t('tensor() rejects ragged arrays, non-finite and out-of-range values, bad shapes', () => {
  assert.throws(
    () => tensor([[1, 2], [3]]),
    /tensor: ragged nested array at \[1\]: expected length 2, got 1/,
  );
  assert.throws(
    () => tensor([[1], 2] as never),
    /tensor: ragged nested array at \[1\]: expected length 1, got number/,
  );
  assert.throws(() => tensor([1, [2]] as never), /tensor: expected a number at \[1\], got \[2\]/);
  assert.throws(() => tensor([[[1, 2]], [[3, 4, 5]]]), /tensor: ragged nested array at \[1\]\[0\]/);
  assert.throws(() => tensor([1, Number.NaN]), /tensor: non-finite value NaN at flat index 1/);
  assert.throws(
    () =>
      tensor([
        [1, 2],
        [Infinity, 0],
      ]),
    /tensor: non-finite value Infinity at flat index 2/,
  );
  assert.throws(
    () => tensor(new Float32Array([0, -Infinity])),
    /tensor: non-finite value -Infinity at flat index 1/,
  );
  assert.throws(
    () => tensor(new Float32Array([3, 2, 1, Number.NaN]), { shape: [2, 2] }),
    /tensor: non-finite value NaN at flat index 3/,
  );
  assert.throws(() => tensor(Number.NaN), /tensor: non-finite value NaN at flat index 0/);
  assert.throws(() => tensor([1e39]), /tensor: non-finite value 1e\+39 at flat index 0/);
  assert.throws(() => tensor(['a'] as never), /tensor: expected a number at \[0\], got "a"/);
  assert.throws(
    () => tensor([1.5], { dtype: 'int32' }),
    /tensor: int32 value 1.5 at flat index 0 is not a 32-bit integer/,
  );
  assert.throws(
    () => tensor([2 ** 31], { dtype: 'int32' }),
    /tensor: int32 value 2147483648 .* not a 32-bit integer/,
  );
  assert.throws(() => tensor([1, 2, 3], { shape: [2, 2] }), /tensor: 3 values do not fill shape \[2,2\]/);
  assert.throws(
    () => tensor(new Float32Array(4), { shape: [3] }),
    /tensor: 4 values do not fill shape \[3\]/,
  );
  assert.throws(() => tensor({} as never), /tensor: unsupported data of type object/);
  assert.throws(() => zeros([2, -1]), /invalid shape \[2,-1\]/);
  assert.throws(() => zeros([1.5]), /invalid shape \[1.5\]/);
  // values near the float32 limit are fine
  assert.not.throws(() => tensor([3.4e38, -3.4e38]).dispose());
});

t(
  'a shape given as a typed array (plain JavaScript callers) is copied into a frozen plain array',
  async () => {
    const z = zeros(new Int32Array([2, 3]) as unknown as number[]);
    assert.equal([...z.shape], [2, 3]);
    assert.ok(Array.isArray(z.shape) && Object.isFrozen(z.shape));
    assert.equal(Array.from(await z.toArray()), [0, 0, 0, 0, 0, 0]);
  },
);

t('item() needs exactly one element', async () => {
  const x = tensor([1, 2]);
  let msg = '';
  await x.item().catch((e: Error) => {
    msg = e.message;
  });
  assert.match(msg, /item: expected a tensor with one element, got shape \[2\]/);
  assert.is(await tensor([[4]]).item(), 4);
});

t('zeros, ones, full and the *Like variants', async () => {
  const z = zeros([2, 3]);
  assert.equal(meta(z), { shape: [2, 3], dtype: 'float32', size: 6, ndim: 2 });
  assert.equal(Array.from(await z.toArray()), [0, 0, 0, 0, 0, 0]);
  assert.equal(Array.from(await ones([4]).toArray()), [1, 1, 1, 1]);
  assert.equal(Array.from(await full([2, 2], -1.25).toArray()), [-1.25, -1.25, -1.25, -1.25]);
  const zi = zeros([3], 'int32');
  assert.is(zi.dtype, 'int32');
  assert.equal(Array.from(await zi.data()), [0, 0, 0]);
  const fi = full([2], 7, 'int32');
  assert.equal(Array.from(await fi.data()), [7, 7]);
  assert.equal(Array.from(await ones([2], 'int32').data()), [1, 1]);
  assert.equal(await full([], 2).item(), 2);
  assert.equal(Array.from(await full([3], 16777217, 'int32').data()), [16777217, 16777217, 16777217]);
  assert.equal(Array.from(await full([2], -2147483648, 'int32').data()), [-2147483648, -2147483648]);
  assert.equal([...zeros([0, 4]).shape], [0, 4]);
  const like = tensor([[1, 2, 3]]);
  assert.equal(meta(zerosLike(like)), meta(like));
  assert.equal(Array.from(await onesLike(like).toArray()), [1, 1, 1]);
  assert.equal(Array.from(await fullLike(like, 9).toArray()), [9, 9, 9]);
  assert.is(onesLike(fi).dtype, 'int32');
  const big = await full([100003], 3).toArray();
  assert.ok(big.every((v) => v === 3));
  assert.throws(() => full([2], 'x' as never), /full: value must be a number, got x/);
});

t('arange: ints, floats, negative steps, empty ranges, exact above 2^24', async () => {
  const a = arange(5);
  assert.is(a.dtype, 'int32');
  assert.equal(Array.from(await a.data()), [0, 1, 2, 3, 4]);
  assert.equal(Array.from(await arange(2, 11, 3).data()), [2, 5, 8]);
  assert.equal(Array.from(await arange(5, 0, -2).data()), [5, 3, 1]);
  assert.equal(Array.from(await arange(-3, -1).data()), [-3, -2]);
  assert.equal(arange(3, 3).size, 0);
  assert.equal(arange(3, 0).size, 0);
  const f = arange(0, 1, 0.25);
  assert.is(f.dtype, 'float32');
  assert.equal(Array.from(await f.toArray()), [0, 0.25, 0.5, 0.75]);
  R.assertClose(await arange(0.5, 2.1, 0.3).toArray(), [0.5, 0.8, 1.1, 1.4, 1.7, 2.0], { rtol: 1e-6 });
  const fd = arange(0, 3, 1, 'float32');
  assert.is(fd.dtype, 'float32');
  assert.equal(Array.from(await fd.toArray()), [0, 1, 2]);
  const id = arange(0, 2, 0.5, 'int32');
  assert.is(id.dtype, 'int32');
  assert.is(id.size, 4);
  const hi = arange(16777216, 16777226);
  assert.equal(
    Array.from(await hi.data()),
    Array.from({ length: 10 }, (_, i) => 16777216 + i),
  );
  const top = arange(2 ** 31 - 5, 2 ** 31 - 1);
  assert.equal(Array.from(await top.data()), [2147483643, 2147483644, 2147483645, 2147483646]);
  const down = arange(-16777210, -16777220, -3);
  assert.equal(Array.from(await down.data()), [-16777210, -16777213, -16777216, -16777219]);
  assert.throws(() => arange(0, 5, 0), /arange: invalid range start=0 end=5 step=0/);
  assert.throws(() => arange(0, Infinity), /arange: invalid range/);
  assert.throws(
    () => arange(2 ** 31 - 1, 2 ** 31 + 1),
    /arange: values from 2147483647 to 2147483649 do not fit int32/,
  );
});

t('linspace', async () => {
  R.assertClose(await linspace(0, 1, 5).toArray(), [0, 0.25, 0.5, 0.75, 1]);
  R.assertClose(await linspace(-2, 2, 7).toArray(), [-2, -4 / 3, -2 / 3, 0, 2 / 3, 4 / 3, 2], { rtol: 1e-6 });
  R.assertClose(await linspace(3, -3, 3).toArray(), [3, 0, -3]);
  assert.equal(Array.from(await linspace(4, 9, 1).toArray()), [4]);
  assert.is(linspace(0, 1, 1000).size, 1000);
  assert.is(await linspace(0, 1, 1000).max().item(), 1);
  assert.throws(() => linspace(0, 1, 0), /linspace: steps must be a positive integer, got 0/);
  assert.throws(() => linspace(0, 1, 2.5), /linspace: steps must be a positive integer/);
});

t('toNested and toString', async () => {
  const x = tensor(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), { shape: [2, 2, 2] });
  assert.equal(await x.toNested(), [
    [
      [1, 2],
      [3, 4],
    ],
    [
      [5, 6],
      [7, 8],
    ],
  ]);
  assert.equal(await tensor(new Int32Array([-1, 2]), { shape: [2, 1] }).toNested(), [[-1], [2]]);
  assert.is(String(x), 'Tensor([2,2,2], float32)');
  const d = tensor([1]);
  d.dispose();
  assert.is(String(d), 'Tensor([1], float32, disposed)');
});

t.run();
