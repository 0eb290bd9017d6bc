// Anomaly-detection metrics and thresholds on host arrays (higher score = more anomalous; label 1 = anomaly).

export interface Curve {
  x: number[];
  y: number[];
  thresholds: number[];
}

function check(scores: ArrayLike<number>, labels: ArrayLike<number>, op: string): void {
  if (scores.length !== labels.length)
    throw new Error(`${op}: ${scores.length} scores but ${labels.length} labels`);
  let pos = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l !== 0 && l !== 1)
      throw new Error(`${op}: labels must be 0 (normal) or 1 (anomaly), got ${l} at index ${i}`);
    if (!Number.isFinite(scores[i]!))
      throw new Error(`${op}: score ${scores[i]} at index ${i} is not finite`);
    pos += l;
  }
  if (pos === 0 || pos === labels.length)
    throw new Error(`${op}: needs both normal (0) and anomalous (1) samples`);
}

/** Points of the ROC curve (FPR, TPR) as the threshold sweeps down through the distinct scores. */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): Curve {
  check(scores, labels, 'rocCurve');
  const idx = Array.from(scores, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const P = Array.from(labels).reduce((a, b) => a + b, 0);
  const N = labels.length - P;
  const x = [0];
  const y = [0];
  const thresholds = [Number.POSITIVE_INFINITY];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k]!;
    if (labels[i] === 1) tp++;
    else fp++;
    if (k === idx.length - 1 || scores[idx[k + 1]!] !== scores[i]) {
      x.push(fp / N);
      y.push(tp / P);
      thresholds.push(scores[i]!);
    }
  }
  return { x, y, thresholds };
}

/** Area under the ROC curve (trapezoids; ties count one half, as the Mann–Whitney statistic). */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const { x, y } = rocCurve(scores, labels);
  let a = 0;
  for (let i = 1; i < x.length; i++) a += ((x[i]! - x[i - 1]!) * (y[i]! + y[i - 1]!)) / 2;
  return a;
}

/** Precision–recall curve (x = recall, y = precision), from the highest threshold down. */
export function prCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): Curve {
  const roc = rocCurve(scores, labels);
  const P = Array.from(labels).reduce((a, b) => a + b, 0);
  const N = labels.length - P;
  const x: number[] = [];
  const y: number[] = [];
  const thresholds: number[] = [];
  for (let i = 1; i < roc.x.length; i++) {
    const tp = roc.y[i]! * P;
    const fp = roc.x[i]! * N;
    x.push(roc.y[i]!);
    y.push(tp / (tp + fp));
    thresholds.push(roc.thresholds[i]!);
  }
  return { x, y, thresholds };
}

/** Area under the PR curve as average precision: Σ (R_k − R_{k−1}) · P_k (scikit-learn's definition). */
export function prAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const { x, y } = prCurve(scores, labels);
  let a = 0;
  let prev = 0;
  for (let i = 0; i < x.length; i++) {
    a += (x[i]! - prev) * y[i]!;
    prev = x[i]!;
  }
  return a;
}

export interface Confusion {
  threshold: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
  accuracy: number;
  fpr: number;
}

/** Confusion matrix and derived metrics when score ≥ threshold is called anomalous. */
export function confusion(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
): Confusion {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const pred = scores[i]! >= threshold;
    if (labels[i] === 1) pred ? tp++ : fn++;
    else pred ? fp++ : tn++;
  }
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return {
    threshold,
    tp,
    fp,
    tn,
    fn,
    precision,
    recall,
    f1,
    accuracy: (tp + tn) / scores.length,
    fpr: fp + tn ? fp / (fp + tn) : 0,
  };
}

/** The q-th percentile (0–100) of `values`, linear interpolation (NumPy's default). */
export function percentile(values: ArrayLike<number>, q: number): number {
  if (!values.length) throw new Error('percentile: no values');
  if (!(q >= 0 && q <= 100)) throw new Error(`percentile: q must be in [0, 100], got ${q}`);
  const s = Float64Array.from(values).sort();
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** The threshold (one of the scores) with the best F1. */
export function f1OptimalThreshold(scores: ArrayLike<number>, labels: ArrayLike<number>): Confusion {
  const { thresholds } = rocCurve(scores, labels);
  let best = confusion(scores, labels, thresholds[1]!);
  for (const t of thresholds.slice(2)) {
    const c = confusion(scores, labels, t);
    if (c.f1 > best.f1) best = c;
  }
  return best;
}

/** The threshold maximising Youden's J = TPR − FPR. */
export function youdenThreshold(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
): { threshold: number; j: number } {
  const { x, y, thresholds } = rocCurve(scores, labels);
  let bi = 1;
  for (let i = 1; i < x.length; i++) if (y[i]! - x[i]! > y[bi]! - x[bi]!) bi = i;
  return { threshold: thresholds[bi]!, j: y[bi]! - x[bi]! };
}

/** Scott's rule bandwidth for a Gaussian KDE (as scipy's gaussian_kde). */
export function scottBandwidth(values: ArrayLike<number>): number {
  const n = values.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += values[i]!;
  m /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (values[i]! - m) ** 2;
  const sd = Math.sqrt(v / Math.max(n - 1, 1));
  return (sd || 1e-3) * n ** (-1 / 5);
}

/** Gaussian kernel density estimate of `values` evaluated at `at`. */
export function kde(
  values: ArrayLike<number>,
  at: ArrayLike<number>,
  bandwidth = scottBandwidth(values),
): Float64Array {
  const out = new Float64Array(at.length);
  const c = 1 / (values.length * bandwidth * Math.sqrt(2 * Math.PI));
  for (let j = 0; j < at.length; j++) {
    let s = 0;
    for (let i = 0; i < values.length; i++) s += Math.exp(-0.5 * ((at[j]! - values[i]!) / bandwidth) ** 2);
    out[j] = s * c;
  }
  return out;
}

/** Evenly spaced grid covering both samples with a margin of 3 bandwidths. */
export function kdeGrid(a: ArrayLike<number>, b: ArrayLike<number>, n = 256): Float64Array {
  const all = [...Array.from(a), ...Array.from(b)];
  const bw = Math.max(scottBandwidth(a), scottBandwidth(b));
  const lo = Math.min(...all) - 3 * bw;
  const hi = Math.max(...all) + 3 * bw;
  return Float64Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

/**
 * Where the two score densities cross between the normal and anomalous medians: the natural threshold in
 * a grouped density plot. Falls back to the midpoint of the medians if the densities do not cross there.
 */
export function densityCrossing(normal: ArrayLike<number>, anomalous: ArrayLike<number>): number {
  const mn = percentile(normal, 50);
  const ma = percentile(anomalous, 50);
  const grid = kdeGrid(normal, anomalous, 512);
  const dn = kde(normal, grid);
  const da = kde(anomalous, grid);
  const [lo, hi] = mn < ma ? [mn, ma] : [ma, mn];
  let best = (mn + ma) / 2;
  let bestGap = Number.POSITIVE_INFINITY;
  for (let i = 1; i < grid.length; i++) {
    const g = grid[i]!;
    if (g < lo || g > hi) continue;
    const d0 = dn[i - 1]! - da[i - 1]!;
    const d1 = dn[i]! - da[i]!;
    if (d0 === 0 || d0 * d1 < 0) {
      const t = d0 === 0 ? grid[i - 1]! : grid[i - 1]! + ((g - grid[i - 1]!) * d0) / (d0 - d1);
      const gap = Math.abs(t - (mn + ma) / 2);
      if (gap < bestGap) {
        best = t;
        bestGap = gap;
      }
    }
  }
  return best;
}

/** Principal components of the rows of `data` (n × d): returns the n × k projection and explained variance. */
export function pca(
  data: Float32Array | Float64Array,
  n: number,
  d: number,
  k = 2,
): { projected: Float64Array; variance: number[] } {
  if (data.length !== n * d) throw new Error(`pca: ${data.length} values are not ${n}×${d}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += data[i * d + j]! / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++) {
      const va = data[i * d + a]! - mean[a]!;
      for (let b = a; b < d; b++)
        cov[a * d + b]! += (va * (data[i * d + b]! - mean[b]!)) / Math.max(n - 1, 1);
    }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) cov[a * d + b] = cov[b * d + a]!;
  // Power iteration with deflation (d is small: latent sizes).
  const comps: Float64Array[] = [];
  const variance: number[] = [];
  for (let c = 0; c < Math.min(k, d); c++) {
    let v = Float64Array.from({ length: d }, (_, i) => 1 + ((i * 7919 + c * 104729) % 13) / 13);
    let lambda = 0;
    for (let it = 0; it < 500; it++) {
      const w = new Float64Array(d);
      for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) w[a]! += cov[a * d + b]! * v[b]!;
      for (const p of comps) {
        const dot = p.reduce((s, x, i) => s + x * w[i]!, 0);
        for (let i = 0; i < d; i++) w[i]! -= dot * p[i]!;
      }
      const norm = Math.hypot(...w) || 1;
      const next = w.map((x) => x / norm);
      const delta = next.reduce((s, x, i) => s + Math.abs(x - v[i]!), 0);
      v = next;
      lambda = norm;
      if (delta < 1e-12) break;
    }
    comps.push(v);
    variance.push(lambda);
  }
  const projected = new Float64Array(n * comps.length);
  for (let i = 0; i < n; i++)
    comps.forEach((p, c) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += (data[i * d + j]! - mean[j]!) * p[j]!;
      projected[i * comps.length + c] = s;
    });
  return { projected, variance };
}
