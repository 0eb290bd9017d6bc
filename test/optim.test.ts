// Optimizers against torch.optim (fixture made by scripts/fixtures/make_fixtures.py), clipping and schedules.
import { readFileSync } from 'node:fs';
import {
  Adam,
  AdamW,
  CosineAnnealingLR,
  clipGradNorm,
  clipGradValue,
  ExponentialLR,
  type Optimizer,
  Parameter,
  SGD,
  StepLR,
} from '@wgrad/nn';
import { scope, type Tensor, tensor } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { fromRef, gpuSuite, R, randRef } from './helpers.js';

type FT = { shape: number[]; data: number[] };
const fx = JSON.parse(readFileSync(new URL('./fixtures/optim.json', import.meta.url), 'utf8')) as {
  problem: { A: FT; T1: FT; p1_init: FT; p2_init: FT };
  tolerance: { rtol: number; atol: number };
  configs: {
    name: string;
    optimizer: 'SGD' | 'Adam' | 'AdamW';
    hparams: Record<string, unknown>;
    loss: number[];
    grads: { p1: FT[]; p2: FT[] };
    params: { p1: FT[]; p2: FT[] };
  }[];
};
const up = (t: FT) => tensor(Float32Array.from(t.data), { shape: t.shape });

function make(name: string, h: Record<string, unknown>, params: Parameter[]): Optimizer {
  const lr = h.lr as number;
  const wd = h.weight_decay as number;
  if (name === 'SGD')
    return new SGD(params, {
      lr,
      momentum: h.momentum as number,
      dampening: h.dampening as number,
      weightDecay: wd,
      nesterov: h.nesterov as boolean,
    });
  const o = {
    lr,
    betas: h.betas as [number, number],
    eps: h.eps as number,
    weightDecay: wd,
    amsgrad: h.amsgrad as boolean,
  };
  return name === 'Adam' ? new Adam(params, o) : new AdamW(params, o);
}

const t = gpuSuite('optim');

for (const c of fx.configs) {
  t(`${c.name}: 10 steps match torch.optim to 1e-5`, async () => {
    const { rtol, atol } = fx.tolerance;
    const A = up(fx.problem.A);
    const T1 = up(fx.problem.T1);
    const p1 = new Parameter(up(fx.problem.p1_init));
    const p2 = new Parameter(up(fx.problem.p2_init));
    const opt = make(c.optimizer, c.hparams, [p1, p2]);
    for (let s = 0; s < 10; s++) {
      const loss = await scope(async () => {
        opt.zeroGrad();
        const l = A.matmul(p1)
          .sub(T1)
          .square()
          .mean()
          .add(p2.pow(3).sum().mul(0.1))
          .add(p2.mul(p1.narrow(0, 0, 1).reshape(4)).sum());
        l.backward();
        return l.item();
      });
      R.assertClose([loss], [c.loss[s]!], { rtol, atol, what: `${c.name} loss step ${s}` });
      R.assertClose(await p1.grad!.toArray(), c.grads.p1[s]!.data, {
        rtol,
        atol,
        what: `${c.name} grad p1 step ${s}`,
      });
      opt.step();
      R.assertClose(await p1.toArray(), c.params.p1[s]!.data, {
        rtol,
        atol,
        what: `${c.name} p1 after step ${s}`,
      });
      R.assertClose(await p2.toArray(), c.params.p2[s]!.data, {
        rtol,
        atol,
        what: `${c.name} p2 after step ${s}`,
      });
    }
    opt.dispose();
    p1.dispose();
    p2.dispose();
  });
}

t('optimizer state round-trips through stateDict()', async () => {
  const mk = () => [new Parameter(tensor([1, -2, 3])), new Parameter(tensor([[0.5, 0.25]]))];
  const run = (ps: Parameter[], o: Optimizer, n: number) => {
    for (let i = 0; i < n; i++)
      scope(() => {
        o.zeroGrad();
        ps[0]!.square().sum().add(ps[1]!.exp().sum()).backward();
        o.step();
      });
  };
  const a = mk();
  const oa = new Adam(a, { lr: 0.1, amsgrad: true });
  run(a, oa, 5);
  const b = mk();
  const ob = new Adam(b, { lr: 0.1, amsgrad: true });
  run(b, ob, 3);
  const c = mk();
  for (const [i, p] of c.entries()) p.assign(b[i]!.clone());
  const oc = new Adam(c, { lr: 0.1, amsgrad: true });
  oc.loadStateDict(ob.stateDict());
  assert.is(oc.stepCount, 3);
  run(c, oc, 2);
  for (let i = 0; i < 2; i++)
    R.assertClose(await c[i]!.toArray(), await a[i]!.toArray(), { what: `resumed param ${i}` });
  for (const o of [oa, ob, oc]) o.dispose();
  for (const p of [...a, ...b, ...c]) p.dispose();
});

t('Adam amsgrad: a NaN gradient reaches max_exp_avg_sq (torch.maximum keeps NaN)', async () => {
  const p = new Parameter(tensor([1, 2, 3, 4, 5]));
  const o = new Adam([p], { lr: 0.1, amsgrad: true });
  p.grad = tensor([1, 1, 1, 1, 1]);
  o.step();
  p.grad.dispose();
  p.grad = tensor([1, -1, 4, 1, 1]).sqrt(); // [1, NaN, 2, 1, 1]
  o.step();
  const vmax = await o.stateDict().tensors.get('state.0.max_exp_avg_sq')!.toArray();
  assert.ok(Number.isNaN(vmax[1]!), `NaN kept, got ${vmax[1]}`);
  // The other lanes of the same vec4 keep max(v̂, v): (1 − β2)·(0.999 + 1) for g = 1, and for g = 2
  // (1 − β2)·(0.999 + 4).
  R.assertClose([vmax[0]!, vmax[2]!, vmax[4]!], [0.001 * 1.999, 0.001 * 4.999, 0.001 * 1.999], {
    what: 'finite lanes',
    rtol: 1e-4,
  });
  assert.ok(Array.from(await p.toArray()).some(Number.isNaN), 'the parameter goes NaN too');
  p.grad.dispose();
  o.dispose();
  p.dispose();
});

t('clipGradNorm scales to maxNorm and returns the norm; clipGradValue clamps', async () => {
  const p = new Parameter(tensor([1, 2]));
  const q = new Parameter(tensor([[2]]));
  p.grad = tensor([3, 4]);
  q.grad = tensor([[12]]);
  const norm = clipGradNorm([p, q], 6.5);
  R.assertClose([await norm.item()], [13], { what: 'norm' });
  R.assertClose(await p.grad.toArray(), [1.5, 2], { what: 'clipped p', rtol: 1e-5 });
  R.assertClose(await q.grad.toArray(), [6], { what: 'clipped q', rtol: 1e-5 });
  const small = clipGradNorm([p, q], 100);
  R.assertClose(await p.grad.toArray(), [1.5, 2], { what: 'unclipped p', rtol: 1e-5 });
  clipGradValue([p, q], 1.75);
  R.assertClose(await p.grad.toArray(), [1.5, 1.75], { what: 'value-clipped p' });
  R.assertClose(await q.grad.toArray(), [1.75], { what: 'value-clipped q' });
  for (const x of [norm, small, p, q] as Tensor[]) x.dispose();
  assert.throws(() => clipGradNorm([p], 0), /clipGradNorm: maxNorm must be positive, got 0/);
});

t(
  'clipGradNorm over large gradients matches float64, and a NaN gradient makes the norm and every gradient NaN',
  async () => {
    // 200,000 + 5 elements: the norm takes two levels of partial sums.
    const a = randRef([400, 500], 51);
    const b = randRef([5], 52);
    const p = new Parameter(fromRef(a));
    const q = new Parameter(fromRef(b));
    p.grad = fromRef(a);
    q.grad = fromRef(b);
    let ss = 0;
    for (const v of [...a.data, ...b.data]) ss += v * v;
    const want = Math.sqrt(ss);
    const norm = clipGradNorm([p, q], 2);
    R.assertClose([await norm.item()], [want], { what: 'norm', rtol: 1e-5 });
    const c = 2 / (want + 1e-6);
    R.assertClose(
      await q.grad.toArray(),
      Array.from(b.data, (v) => v * c),
      { what: 'clipped q', rtol: 1e-5 },
    );
    q.grad.dispose();
    q.grad = tensor([1, -1, 2]).sqrt(); // [1, NaN, √2]
    const nan = clipGradNorm([p, q], 2);
    assert.ok(Number.isNaN(await nan.item()), 'a NaN gradient gives a NaN norm');
    assert.ok(Array.from(await q.grad.toArray()).every(Number.isNaN), 'and NaN gradients (as PyTorch)');
    for (const x of [norm, nan, p, q] as Tensor[]) x.dispose();
  },
);

t('learning-rate schedules follow the closed forms', async () => {
  const p = new Parameter(tensor([1]));
  const lrs = (mk: (o: Optimizer) => { step(): void }, n: number) => {
    const o = new SGD([p], { lr: 0.1 });
    const s = mk(o);
    return Array.from({ length: n }, () => {
      s.step();
      return o.lr;
    });
  };
  R.assertClose(
    lrs((o) => new StepLR(o, 2, 0.5), 4),
    [0.1, 0.05, 0.05, 0.025],
    { what: 'StepLR' },
  );
  R.assertClose(
    lrs((o) => new ExponentialLR(o, 0.9), 2),
    [0.09, 0.081],
    { what: 'ExponentialLR' },
  );
  R.assertClose(
    lrs((o) => new CosineAnnealingLR(o, 4, 0.0), 4),
    [(0.1 * (1 + Math.cos(Math.PI / 4))) / 2, 0.05, (0.1 * (1 + Math.cos((3 * Math.PI) / 4))) / 2, 0],
    { what: 'Cosine', atol: 1e-9 },
  );
  p.dispose();
});

t.run();
