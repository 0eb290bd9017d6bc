// Losses against float64 references written here from the PyTorch formulas (forward for every reduction,
// gradients by finite differences), PyTorch's edge cases (BCE log terms clamped at −100, stable logits),
// and shape errors.
import { bceLoss, bceWithLogitsLoss, klNormal, l1Loss, mseLoss, type Reduction, Sigmoid } from '@wgrad/nn';
import { type Tensor, tensor } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef, toRef } from './helpers.js';

type Ref = R.RefTensor;
const REDUCTIONS: Reduction[] = ['mean', 'sum', 'none'];

/** torch-style reduction of elementwise loss terms. */
function reduceRef(t: Ref, reduction: Reduction): Ref {
  if (reduction === 'none') return t;
  return R.reduce(t, undefined, false, reduction);
}
const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
const sub = (a: Ref, b: Ref) => R.binary(a, b, (p, q) => p - q);
const mul = (a: Ref, b: Ref) => R.binary(a, b, (p, q) => p * q);
const add = (a: Ref, b: Ref) => R.binary(a, b, (p, q) => p + q);

// −[y·max(log x, −100) + (1 − y)·max(log(1 − x), −100)]
function bceRef(x: Ref, y: Ref): Ref {
  const logP = R.unary(x, (v) => Math.max(Math.log(v), -100));
  const log1mP = R.unary(x, (v) => Math.max(Math.log(1 - v), -100));
  return R.binary(
    add(
      mul(y, logP),
      mul(
        R.unary(y, (v) => 1 - v),
        log1mP,
      ),
    ),
    y,
    (s) => -s,
  );
}
// −[pw·y·log σ(x) + (1 − y)·log(1 − σ(x))], with log σ(x) = −softplus(−x), log(1 − σ(x)) = −softplus(x)
function bceLogitsRef(x: Ref, y: Ref, pw?: Ref): Ref {
  const pos = mul(
    y,
    R.unary(x, (v) => softplus(-v)),
  );
  const neg = mul(
    R.unary(y, (v) => 1 - v),
    R.unary(x, (v) => softplus(v)),
  );
  return add(pw ? mul(pw, pos) : pos, neg);
}
// per-element −½(1 + lv − mu² − exp(lv))
function klTermsRef(mu: Ref, lv: Ref): Ref {
  return R.binary(mu, lv, (m, l) => -0.5 * (1 + l - m * m - Math.exp(l)));
}
function klRef(mu: Ref, lv: Ref, reduction: Reduction): Ref {
  const terms = klTermsRef(mu, lv);
  if (reduction === 'sum') return R.reduce(terms, undefined, false, 'sum');
  const rest = mu.shape.slice(1).map((_, i) => i + 1);
  const perSample = rest.length ? R.reduce(terms, rest, false, 'sum') : terms;
  return reduction === 'none' ? perSample : R.reduce(perSample, undefined, false, 'mean');
}

function throwsWith(fn: () => unknown, parts: string[], what: string): void {
  try {
    fn();
  } catch (e) {
    const msg = (e as Error).message;
    for (const p of parts) assert.ok(msg.includes(p), `${what}: message '${msg}' lacks '${p}'`);
    return;
  }
  throw new Error(`${what}: did not throw`);
}

async function finite(t: Tensor, what: string): Promise<Float32Array> {
  const a = await t.toArray();
  assert.ok(
    a.every((v) => Number.isFinite(v)),
    `${what}: non-finite values [${Array.from(a)}]`,
  );
  return a;
}

const t = gpuSuite('losses');

t('mseLoss and l1Loss: every reduction, forward and gradients', async () => {
  for (const reduction of REDUCTIONS) {
    await checkGrad(
      `mseLoss ${reduction}`,
      [randRef([3, 5], 1), randRef([3, 5], 2)],
      ([x, y]) => mseLoss(x!, y!, { reduction }),
      ([x, y]) =>
        reduceRef(
          R.unary(sub(x!, y!), (v) => v * v),
          reduction,
        ),
    );
    await checkGrad(
      `l1Loss ${reduction}`,
      [randRef([2, 3, 4], 3), randRef([2, 3, 4], 4)],
      ([x, y]) => l1Loss(x!, y!, { reduction }),
      ([x, y]) => reduceRef(R.unary(sub(x!, y!), Math.abs), reduction),
    );
  }
  // Default reduction is the mean (a 0-d tensor).
  const x = tensor([1, 2, 3]);
  const y = tensor([1, 0, 0]);
  const mse = mseLoss(x, y);
  assert.equal([...mse.shape], []);
  R.assertClose([await mse.item()], [13 / 3], { what: 'mse default mean' });
  R.assertClose([await l1Loss(x, y).item()], [5 / 3], { what: 'l1 default mean' });
});

t('bceLoss: every reduction, weight, forward and gradients (input, target, weight)', async () => {
  for (const reduction of REDUCTIONS) {
    await checkGrad(
      `bceLoss ${reduction}`,
      [randRef([4, 3], 5, 0.05, 0.95), randRef([4, 3], 6, 0, 1)],
      ([x, y]) => bceLoss(x!, y!, { reduction }),
      ([x, y]) => reduceRef(bceRef(x!, y!), reduction),
    );
    await checkGrad(
      `bceLoss weight ${reduction}`,
      [randRef([4, 3], 7, 0.05, 0.95), randRef([4, 3], 8, 0, 1), randRef([3], 9, 0.5, 2)],
      ([x, y, w]) => bceLoss(x!, y!, { reduction, weight: w! }),
      ([x, y, w]) => reduceRef(mul(bceRef(x!, y!), w!), reduction),
    );
  }
});

t(
  'bceLoss: inputs exactly 0 and 1 clamp each log term at −100 (like PyTorch) with finite gradients',
  async () => {
    const xs = [0, 1, 0, 1, 0.5, 1e-30];
    const ys = [1, 0, 0, 1, 1, 1];
    const x = tensor(xs, { requiresGrad: true });
    const y = tensor(ys);
    const l = bceLoss(x, y, { reduction: 'none' });
    // bce(0, 1) = bce(1, 0) = 100, bce(0, 0) = bce(1, 1) = 0, log(1e-30) = −69.08 is not clamped.
    await expectClose(
      l,
      bceRef(R.ref([6], Float32Array.from(xs)), R.ref([6], ys)),
      'clamped bce',
      1e-5,
      1e-6,
    );
    R.assertClose(await l.toArray(), [100, 100, 0, 0, Math.LN2, 69.07755], { rtol: 1e-5, what: 'values' });
    R.assertClose([await bceLoss(x, y, { reduction: 'sum' }).item()], [200 + Math.LN2 + 69.07755], {
      rtol: 1e-5,
      what: 'sum',
    });
    bceLoss(x, y).backward();
    const g = await finite(x.grad!, 'd bce / d input at 0 and 1');
    R.assertClose(g.subarray(4, 5), [-2 / 6], { rtol: 1e-5, what: 'interior grad' });
    // A saturated sigmoid decoder (outputs round to exactly 0 and 1 in float32) still trains: finite gradients.
    const logits = tensor([-120, -30, 30, 120, 0.5], { requiresGrad: true });
    const targets = tensor([0, 1, 1, 0, 1]);
    const p = new Sigmoid().call(logits);
    const pa = await p.toArray();
    assert.is(pa[0], 0);
    assert.is(pa[3], 1);
    const loss = bceLoss(p, targets, { reduction: 'sum' });
    await finite(loss, 'loss of saturated sigmoid');
    loss.backward();
    await finite(logits.grad!, 'd bce(sigmoid) / d logits');
  },
);

t('bceWithLogitsLoss: every reduction, posWeight, forward and gradients', async () => {
  for (const reduction of REDUCTIONS) {
    await checkGrad(
      `bceWithLogitsLoss ${reduction}`,
      [randRef([4, 3], 10, -4, 4), randRef([4, 3], 11, 0, 1)],
      ([x, y]) => bceWithLogitsLoss(x!, y!, { reduction }),
      ([x, y]) => reduceRef(bceLogitsRef(x!, y!), reduction),
    );
    await checkGrad(
      `bceWithLogitsLoss posWeight ${reduction}`,
      [randRef([4, 3], 12, -4, 4), randRef([4, 3], 13, 0, 1), randRef([3], 14, 0.5, 3)],
      ([x, y, pw]) => bceWithLogitsLoss(x!, y!, { reduction, posWeight: pw! }),
      ([x, y, pw]) => reduceRef(bceLogitsRef(x!, y!, pw!), reduction),
    );
  }
  // posWeight = 1 is plain BCE; equals bceLoss(sigmoid(x)) away from saturation.
  const xr = randRef([6], 15, -3, 3);
  const yr = randRef([6], 16, 0, 1);
  const one = tensor([1]);
  await expectClose(
    bceWithLogitsLoss(fromRef(xr), fromRef(yr), { posWeight: one, reduction: 'none' }),
    bceLogitsRef(xr, yr),
    'posWeight 1',
  );
  const viaProbs = bceLoss(fromRef(xr).sigmoid(), fromRef(yr), { reduction: 'none' });
  await expectClose(
    bceWithLogitsLoss(fromRef(xr), fromRef(yr), { reduction: 'none' }),
    await toRef(viaProbs),
    'matches bceLoss(sigmoid)',
  );
});

t('bceWithLogitsLoss: logits ±50 (and ±100) stay finite and exact', async () => {
  const xs = [50, -50, 50, -50, 100, -100, 0];
  const ys = [1, 0, 0, 1, 0, 1, 0.5];
  const x = tensor(xs, { requiresGrad: true });
  const y = tensor(ys);
  const l = bceWithLogitsLoss(x, y, { reduction: 'none' });
  await finite(l, 'loss');
  await expectClose(l, bceLogitsRef(R.ref([7], xs), R.ref([7], ys)), 'large logits', 1e-5, 1e-6);
  R.assertClose((await l.toArray()).subarray(0, 6), [0, 0, 50, 50, 100, 100], {
    atol: 1e-6,
    what: 'values',
  });
  l.sum().backward();
  // d/dx = σ(x) − y
  await expectClose(x.grad!, R.ref([7], [0, 0, 1, -1, 1, -1, 0]), 'grad', 1e-5, 1e-6);
  const pw = tensor([3]);
  const lp = bceWithLogitsLoss(x, y, { reduction: 'none', posWeight: pw });
  await finite(lp, 'posWeight loss');
  await expectClose(
    lp,
    bceLogitsRef(R.ref([7], xs), R.ref([7], ys), R.ref([1], [3])),
    'posWeight',
    1e-5,
    1e-6,
  );
});

t(
  'klNormal: sum (default) / mean (per-sample KL averaged over the batch) / none, and gradients',
  async () => {
    for (const shape of [[4, 3], [2, 2, 3], [5]]) {
      for (const reduction of REDUCTIONS) {
        await checkGrad(
          `klNormal ${reduction} [${shape}]`,
          [randRef(shape, 17, -1.5, 1.5), randRef(shape, 18, -2, 1)],
          ([mu, lv]) => klNormal(mu!, lv!, { reduction }),
          ([mu, lv]) => klRef(mu!, lv!, reduction),
        );
      }
    }
    const mu = randRef([4, 3], 19);
    const lv = randRef([4, 3], 20);
    const s = await klNormal(fromRef(mu), fromRef(lv)).item();
    R.assertClose([s], klRef(mu, lv, 'sum').data, { rtol: 1e-5, what: 'default is sum' });
    const none = klNormal(fromRef(mu), fromRef(lv), { reduction: 'none' });
    assert.equal([...none.shape], [4]);
    const mean = await klNormal(fromRef(mu), fromRef(lv), { reduction: 'mean' }).item();
    R.assertClose([mean], [s / 4], { rtol: 1e-5, what: 'mean = sum / batch' });
    // KL(N(0, 1) ‖ N(0, 1)) = 0
    const zero = tensor([
      [0, 0],
      [0, 0],
    ]);
    R.assertClose([await klNormal(zero, zero).item()], [0], { atol: 1e-7, what: 'KL of the prior' });
  },
);

t('shape mismatches name the loss and both shapes; bad reductions throw', () => {
  const a = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const b = tensor([
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  const c = tensor([1, 2, 3]);
  const fns: [string, (x: Tensor, y: Tensor) => Tensor][] = [
    ['mseLoss', mseLoss],
    ['l1Loss', l1Loss],
    ['bceLoss', bceLoss],
    ['bceWithLogitsLoss', bceWithLogitsLoss],
    ['klNormal', klNormal],
  ];
  for (const [name, f] of fns) {
    throwsWith(() => f(a, b), [name, '[2,3]', '[3,2]'], `${name} transposed`);
    throwsWith(() => f(a, c), [name, '[2,3]', '[3]'], `${name} broadcastable`);
    throwsWith(
      () =>
        (f as (x: Tensor, y: Tensor, o: { reduction: Reduction }) => Tensor)(a, a, {
          reduction: 'avg' as Reduction,
        }),
      ['reduction', 'avg'],
      `${name} bad reduction`,
    );
  }
});

t.run();
