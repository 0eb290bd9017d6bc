// Pipeline precompilation: recordKernels lists the kernels a piece of work needs without compiling or running
// anything; precompile compiles them (warm-up dispatches on CPU adapters, optionally on extra devices).

import { Adam, DataLoader, TensorDataset } from '@wgrad/nn';
import {
  dispatch,
  dispatchStats,
  FLAT_INDEX,
  f32,
  full,
  grid,
  kernel,
  MAIN_1D,
  manualSeed,
  precompile,
  recordKernels,
  type Tensor,
  tensor,
} from '@wgrad/tensor';
import { mlpVAE, train, vaeLoss } from '@wgrad/vae';
import * as assert from 'uvu/assert';
import { gpuSuite } from './helpers.js';

const test = gpuSuite('precompile');

// A kernel whose source no other test makes (a fresh constant per call), so it is always new here.
const BASE = Math.floor(Math.random() * 1e5);
let serial = 0;
function uniqueKernelOp(x: Tensor): Tensor {
  const c = `${BASE}.${serial++}`;
  const k = kernel(
    `test_unique_${serial}`,
    `struct U { n: u32, s: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${MAIN_1D(64)} { ${FLAT_INDEX(64)} if (i >= u.n) { return; } y[i] = x[i] * u.s + ${c}; }`,
  );
  const out = full(x.shape, 0);
  dispatch(
    k,
    [x.size, f32(2)],
    [x.buffer('test_unique'), out.buffer('test_unique')],
    grid(Math.ceil(x.size / 64)),
  );
  return out;
}

test('recordKernels lists new kernels and neither compiles nor dispatches them', async () => {
  const x = tensor([1, 2, 3]);
  full([3], 0).dispose(); // the fill kernel uniqueKernelOp uses exists from here on
  const before = dispatchStats();
  const sources = recordKernels(() => {
    uniqueKernelOp(x).dispose();
    uniqueKernelOp(x).dispose();
  });
  const after = dispatchStats();
  assert.is(sources.length, 2);
  assert.ok(sources.every((s) => s.name.startsWith('test_unique_') && s.code.includes('y[i] = x[i] * u.s')));
  assert.is(after.pipelines, before.pipelines, 'no pipeline compiled while recording');
  assert.is(after.dispatches, before.dispatches, 'nothing dispatched while recording');
});

for (const parallel of [0, 1]) {
  test(`precompile compiles what was recorded, and the op then runs correctly (parallel ${parallel})`, async () => {
    const x = tensor([1, 2, 3]);
    full([3], 0).dispose();
    serial = 100 + parallel * 10;
    const sources = recordKernels(() => uniqueKernelOp(x).dispose());
    assert.is(sources.length, 1);
    const seen: [number, number][] = [];
    const before = dispatchStats().pipelines;
    const r = await precompile(sources, {
      parallel,
      warmup: 'always',
      onProgress: (d, n) => seen.push([d, n]),
    });
    assert.is(r.pipelines, 1);
    assert.equal(seen, [[1, 1]]);
    assert.is(dispatchStats().pipelines, before + 1);
    serial = 100 + parallel * 10; // the same source again: nothing left to compile
    assert.equal(
      recordKernels(() => uniqueKernelOp(x).dispose()),
      [],
    );
    serial = 100 + parallel * 10;
    const y = uniqueKernelOp(x);
    const c = Number(sources[0]!.code.match(/\+ ([\d.]+);/)![1]);
    assert.equal(
      Array.from(await y.toArray()),
      [1, 2, 3].map((v) => Math.fround(Math.fround(v * 2) + c)),
    );
  });
}

test('precompile of nothing does nothing', async () => {
  const r = await precompile([]);
  assert.equal(r, { pipelines: 0, ms: 0, warmupDevices: 0 });
});

// train() compiles the step's pipelines before the first step from a dry run of that step; the dry run must
// change nothing: same parameters, bit for bit, as a run without it (Adam state, step count, RNG position of
// the VAE's reparameterization noise all put back).
test('train() with precompile gives bit-identical parameters to train() without', async () => {
  const run = async (pre: boolean) => {
    manualSeed(5);
    // latent 7 and hidden 24: shapes no other test uses, so the step has new kernels to precompile
    const model = mlpVAE({ inputDim: 12, hiddenDim: 24, latentDim: 7 });
    const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
    const x = Float32Array.from({ length: 8 * 12 }, (_, i) => ((i * 37) % 11) / 11);
    const data = TensorDataset.fromArrays(
      x,
      Array.from({ length: 8 }, () => 0),
      [8, 12],
    );
    const lines: string[] = [];
    await train({
      model,
      optimizer,
      data: () => new DataLoader(data, { batchSize: 4, shuffle: true, seed: 1 }),
      step: ({ x }) => {
        const o = model.run(x);
        return { loss: vaeLoss(o.xhat, x, o.mu, o.logvar, { recon: 'bce', reduction: 'sum' }).loss };
      },
      epochs: 2,
      precompile: pre,
      progress: false,
      log: (l) => lines.push(l),
    });
    const params = await Promise.all(model.parameters().map((p) => p.toArray()));
    assert.is(optimizer.stepCount, 4);
    optimizer.dispose();
    model.dispose();
    return { params, lines };
  };
  const a = await run(true);
  const b = await run(false);
  assert.ok(
    a.lines.some((l) => /^\[train\] compiled \d+ GPU pipelines in/.test(l)),
    `no compile line in ${JSON.stringify(a.lines)}`,
  );
  assert.not.ok(b.lines.some((l) => l.includes('GPU pipelines')));
  a.params.forEach((p, i) => {
    const q = b.params[i]!;
    for (let j = 0; j < p.length; j++)
      if (!Object.is(p[j], q[j]))
        assert.unreachable(`parameter ${i}[${j}]: ${p[j]} with precompile, ${q[j]} without`);
  });
});

test.run();
