// Anomaly metrics and thresholds on host arrays, against hand-computed values.

import {
  confusion,
  densityCrossing,
  f1OptimalThreshold,
  kde,
  pca,
  percentile,
  prAuc,
  rocAuc,
  rocCurve,
  youdenThreshold,
} from '@wgrad/vae';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const close = (a: number, b: number, tol = 1e-9, what = '') =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} != ${b}`);

test('ROC AUC equals the Mann–Whitney probability, ties count one half', () => {
  // scikit-learn: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.75
  close(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  close(rocAuc([1, 2, 3, 4], [0, 0, 1, 1]), 1);
  close(rocAuc([4, 3, 2, 1], [0, 0, 1, 1]), 0);
  close(rocAuc([1, 1, 1, 1], [0, 1, 0, 1]), 0.5);
  // brute-force Mann–Whitney on a random sample
  const s: number[] = [];
  const l: number[] = [];
  for (let i = 0; i < 200; i++) {
    l.push(i % 3 === 0 ? 1 : 0);
    s.push(Math.round(Math.sin(i * 12.9898) * 43758.5453 * 10) / 10 + (i % 3 === 0 ? 0.3 : 0));
  }
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < s.length; i++)
    for (let j = 0; j < s.length; j++)
      if (l[i] === 1 && l[j] === 0) {
        pairs++;
        wins += s[i]! > s[j]! ? 1 : s[i] === s[j] ? 0.5 : 0;
      }
  close(rocAuc(s, l), wins / pairs, 1e-12, 'Mann–Whitney');
  const c = rocCurve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
  assert.equal(c.x, [0, 0, 0.5, 0.5, 1]);
  assert.equal(c.y, [0, 0.5, 0.5, 1, 1]);
});

test('PR AUC is average precision (scikit-learn definition)', () => {
  // average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.8333…
  close(prAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 5 / 6);
  close(prAuc([1, 2, 3, 4], [0, 0, 1, 1]), 1);
});

test('confusion, percentile, F1-optimal and Youden thresholds', () => {
  const s = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
  const l = [0, 0, 0, 1, 1, 1];
  const c = confusion(s, l, 0.35);
  assert.equal([c.tp, c.fp, c.tn, c.fn], [3, 0, 3, 0]);
  close(c.f1, 1);
  close(percentile([1, 2, 3, 4], 50), 2.5);
  close(percentile([1, 2, 3, 4, 5], 90), 4.6);
  const f = f1OptimalThreshold(s, l);
  close(f.threshold, 0.4);
  close(f.f1, 1);
  const y = youdenThreshold(s, l);
  close(y.threshold, 0.4);
  close(y.j, 1);
  assert.throws(() => rocAuc([1, 2], [0, 0]), /needs both normal \(0\) and anomalous \(1\) samples/);
  assert.throws(
    () => rocAuc([1, 2], [0, 2]),
    /labels must be 0 \(normal\) or 1 \(anomaly\), got 2 at index 1/,
  );
  assert.throws(() => rocAuc([1, Number.NaN], [0, 1]), /score NaN at index 1 is not finite/);
});

test('KDE integrates to 1 and two symmetric densities cross halfway', () => {
  const a = Array.from({ length: 300 }, (_, i) => Math.sin(i) * 0.5);
  const grid = Float64Array.from({ length: 2001 }, (_, i) => -5 + i * 0.005);
  const d = kde(a, grid);
  close(
    d.reduce((s, v) => s + v * 0.005, 0),
    1,
    1e-3,
    'integral',
  );
  const b = a.map((v) => v + 3);
  close(densityCrossing(a, b), 1.5, 0.02, 'crossing');
});

test('PCA recovers the dominant direction', () => {
  const n = 200;
  const data = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const t = Math.sin(i * 1.7) * 5;
    const e = Math.cos(i * 3.1) * 0.1;
    data.set([t, 2 * t + e, -e], i * 3);
  }
  const { projected, variance } = pca(data, n, 3, 2);
  assert.is(projected.length, n * 2);
  assert.ok(variance[0]! > 100 * variance[1]!, `variances ${variance}`);
  // the first component is ±(1, 2, 0)/√5, so row i projects to ±√5·(t_i − mean t) up to the small noise
  const t = Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * 5);
  const m = t.reduce((a, b) => a + b, 0) / n;
  const sign = Math.sign(projected[2]! * (t[1]! - m));
  const worst = Math.max(...t.map((ti, i) => Math.abs(projected[i * 2]! - sign * Math.sqrt(5) * (ti - m))));
  assert.ok(worst < 0.2, `projection off by ${worst}`);
});

test.run();
