// conv2d / convTranspose2d / pooling / upsampling against PyTorch golden fixtures (test/fixtures, made by
// scripts/fixtures/make_fixtures.py), the TypeScript reference, and finite differences.
import {
  avgPool2d,
  conv2d,
  convTranspose2d,
  interpolate,
  maxPool2d,
  tensor,
  upsampleNearest2d,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { type ConvCase, expectFixture, load, runConvCase, up } from './conv-fixtures.js';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('conv');

const small = load('conv.json') as ConvCase[];
t(`PyTorch fixtures: ${small.length} small conv2d/convTranspose2d cases (y, gx, gw, gb)`, async () => {
  for (const c of small) await runConvCase(c);
});

t('PyTorch fixtures: the four seed layers at batch 2', async () => {
  for (const c of load('conv_seed.json') as ConvCase[]) await runConvCase(c);
});

const pools = load('pool.json');
t(`PyTorch fixtures: ${pools.length} pooling and nearest-upsampling cases`, async () => {
  for (const c of pools) {
    const x = up(c.x, true);
    const o = { stride: c.stride as [number, number], padding: c.padding as [number, number] };
    const y =
      c.op === 'max_pool2d'
        ? maxPool2d(x, c.kernel as [number, number], o)
        : c.op === 'avg_pool2d'
          ? avgPool2d(x, c.kernel as [number, number], {
              ...o,
              countIncludePad: c.count_include_pad as boolean,
            })
          : c.size
            ? interpolate(x, { size: c.size as [number, number] })
            : interpolate(x, { scaleFactor: c.scale_factor as [number, number] });
    await expectFixture(y, c.y, `${c.name} y`);
    y.backward(up(c.gy));
    await expectFixture(x.grad, c.gx, `${c.name} gx`);
  }
});

t('conv2d matches the TypeScript reference (grouped, dilated, strided, non-square)', async () => {
  const cases = [
    { x: [2, 4, 9, 7], w: [6, 2, 3, 2], o: { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 2 } },
    {
      x: [3, 1, 11, 11],
      w: [5, 1, 4, 4],
      o: { stride: [3, 3], padding: [2, 2], dilation: [1, 1], groups: 1 },
    },
    {
      x: [1, 3, 33, 5],
      w: [70, 3, 1, 1],
      o: { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 },
    },
  ] as const;
  for (const [i, c] of cases.entries()) {
    const x = randRef([...c.x], 10 + i);
    const w = randRef([...c.w], 20 + i);
    const b = randRef([c.w[0]], 30 + i);
    const o = {
      stride: [...c.o.stride] as [number, number],
      padding: [...c.o.padding] as [number, number],
      dilation: [...c.o.dilation] as [number, number],
      groups: c.o.groups,
    };
    await expectClose(
      conv2d(fromRef(x), fromRef(w), fromRef(b), o),
      R.conv2d(x, w, b, o),
      `conv2d case ${i}`,
    );
    const wt = randRef([c.x[1], c.w[0] / c.o.groups, c.w[2], c.w[3]], 40 + i);
    const ot = { ...o, outputPadding: [0, 0] as [number, number] };
    await expectClose(
      convTranspose2d(fromRef(x), fromRef(wt), null, ot),
      R.convTranspose2d(x, wt, null, ot),
      `convTranspose2d case ${i}`,
    );
  }
});

t('conv2d and convTranspose2d gradients match finite differences on tiny shapes', async () => {
  const o = {
    stride: [2, 1] as [number, number],
    padding: [1, 1] as [number, number],
    dilation: [1, 1] as [number, number],
    groups: 1,
  };
  await checkGrad(
    'conv2d',
    [randRef([2, 2, 5, 4], 1), randRef([3, 2, 3, 2], 2), randRef([3], 3)],
    ([x, w, b]) => conv2d(x!, w!, b!, o),
    ([x, w, b]) => R.conv2d(x!, w!, b!, o),
  );
  const ot = { ...o, stride: [2, 2] as [number, number], outputPadding: [1, 0] as [number, number] };
  await checkGrad(
    'convTranspose2d',
    [randRef([2, 2, 3, 3], 4), randRef([2, 3, 3, 2], 5), randRef([3], 6)],
    ([x, w, b]) => convTranspose2d(x!, w!, b!, ot),
    ([x, w, b]) => R.convTranspose2d(x!, w!, b!, ot),
  );
  await checkGrad(
    'maxPool2d',
    [randRef([1, 2, 5, 5], 7)],
    ([x]) => maxPool2d(x!, 3, { stride: 2, padding: 1 }),
    ([x]) => R.maxPool2d(x!, [3, 3], [2, 2], [1, 1]),
  );
  await checkGrad(
    'avgPool2d',
    [randRef([1, 2, 5, 5], 8)],
    ([x]) => avgPool2d(x!, 3, { stride: 2, padding: 1 }),
    ([x]) => R.avgPool2d(x!, [3, 3], [2, 2], [1, 1]),
  );
  await checkGrad(
    'upsampleNearest2d',
    [randRef([1, 2, 3, 4], 9)],
    ([x]) => upsampleNearest2d(x!, [7, 5]),
    ([x]) => R.upsampleNearest2d(x!, 7, 5),
  );
});

t(
  'pooling and nearest upsampling on the grid: lane and row tails, planes past one grid dimension',
  async () => {
    // Input and stride-1 average pooling: 70 columns = 64 lanes + a tail of 6, 140 rows = 64 + 64 + 12 per
    // workgroup; the 2×2 max pooling's 70×35 output: 35 columns on 8-lane workgroups (a tail of 3).
    const a = randRef([1, 2, 140, 70], 31);
    await expectClose(
      maxPool2d(fromRef(a), 2),
      R.maxPool2d(a, [2, 2], [2, 2], [0, 0]),
      'maxPool2d tails',
      0,
      0,
    );
    await expectClose(
      avgPool2d(fromRef(a), 3, { stride: 1, padding: 1 }),
      R.avgPool2d(a, [3, 3], [1, 1], [1, 1]),
      'avgPool2d tails',
    );
    await expectClose(
      upsampleNearest2d(fromRef(a), [150, 131]),
      R.upsampleNearest2d(a, 150, 131),
      'nearest tails',
      0,
      0,
    );
    // 1100 × 64 = 70,400 planes: two dispatches of at most 65,535 (the second starts at plane 65,535).
    const b = randRef([1100, 64, 2, 2], 32);
    await expectClose(
      maxPool2d(fromRef(b), 2),
      R.maxPool2d(b, [2, 2], [2, 2], [0, 0]),
      'maxPool2d planes',
      0,
      0,
    );
    const bx = fromRef(b, { requiresGrad: true });
    const y = upsampleNearest2d(bx, [3, 3]);
    await expectClose(y, R.upsampleNearest2d(b, 3, 3), 'nearest planes', 0, 0);
    y.sum().backward();
    // 2 → 3 nearest reads rows (and columns) 0, 0, 1: pixels (0,0), (0,1), (1,0), (1,1) feed 4, 2, 2, 1 outputs.
    const gx = await bx.grad!.toArray();
    assert.equal([...gx.slice(0, 4)], [4, 2, 2, 1]);
    assert.equal([...gx.slice(gx.length - 4)], [4, 2, 2, 1]);
  },
);

t('invalid arguments name the op and the numbers', async () => {
  const x = tensor(new Float32Array(2 * 3 * 5 * 5), { shape: [2, 3, 5, 5] });
  const w = tensor(new Float32Array(4 * 2 * 3 * 3), { shape: [4, 2, 3, 3] });
  assert.throws(
    () => conv2d(x, w),
    /conv2d: input has 3 channels but weight \[4,2,3,3\] with groups=1 expects 2/,
  );
  const big = tensor(new Float32Array(4 * 3 * 7 * 7), { shape: [4, 3, 7, 7] });
  assert.throws(
    () => conv2d(x, big),
    /conv2d: kernel H=7 \(dilation 1\) is larger than the padded input H=5/,
  );
  const wt = tensor(new Float32Array(3 * 2 * 3 * 3), { shape: [3, 2, 3, 3] });
  assert.throws(
    () => convTranspose2d(x, wt, null, { stride: 2, outputPadding: 2 }),
    /convTranspose2d: outputPadding 2 must be smaller than stride 2 or dilation 1/,
  );
  assert.throws(() => conv2d(x, w, null, { groups: 2 }), /out channels 4|input has 3 channels/);
  assert.throws(() => maxPool2d(x, 7), /maxPool2d: kernel 7,7 is larger than the padded input 5x5/);
  assert.throws(() => conv2d(tensor([1, 2, 3]), w), /conv2d: input must be 4-D/);
  // convTranspose2d: the weight's first dim must be the input's channels; an output size below 1.
  assert.throws(
    () => convTranspose2d(x, tensor(new Float32Array(4 * 2 * 3 * 3), { shape: [4, 2, 3, 3] })),
    /convTranspose2d: input has 3 channels but weight \[4,2,3,3\] expects 4/,
  );
  const one = tensor(new Float32Array(3), { shape: [1, 3, 1, 1] });
  assert.throws(
    () => convTranspose2d(one, wt, null, { padding: 2 }),
    /convTranspose2d: output size -1x-1 is not positive for input \[1,3,1,1\]/,
  );
});

t.run();
