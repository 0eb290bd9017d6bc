// Tensors beyond 65535 × 256 elements, where a 1-D dispatch would exceed the per-dimension workgroup limit
// and the kernels index through a 2-D grid: elementwise (contiguous and broadcast), reductions with
// millions of outputs, and random numbers. Each result is checked element by element.
import { manualSeed, rand, tensor } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { gpuSuite } from './helpers.js';

const t = gpuSuite('large');

const N = 17_000_000; // > 65535 × 256 = 16,776,960; N/4 rows of 4 also exceed 65535 × 64

/** First index where `f(i)` is false, or -1. */
function firstBad(n: number, f: (i: number) => boolean): number {
  for (let i = 0; i < n; i++) if (!f(i)) return i;
  return -1;
}

t('17M elements: unary, broadcast binary and a 4.25M-output reduction', async () => {
  const src = new Float32Array(N);
  for (let i = 0; i < N; i++) src[i] = (i % 1999) - 999;
  const x = tensor(src);
  const y = await x.neg().toArray();
  assert.is(
    firstBad(N, (i) => y[i] === -src[i]!),
    -1,
    'neg',
  );
  // broadcast read path: [N/4, 4] + [4]
  const x2 = x.reshape(N / 4, 4);
  const b = await x2.add(tensor([0, 1, 2, 3])).toArray();
  assert.is(
    firstBad(N, (i) => b[i] === src[i]! + (i % 4)),
    -1,
    'broadcast add',
  );
  const rows = N / 4;
  const s = await x2.sum(1).toArray();
  assert.is(s.length, rows);
  assert.is(
    firstBad(rows, (r) => s[r] === src[4 * r]! + src[4 * r + 1]! + src[4 * r + 2]! + src[4 * r + 3]!),
    -1,
    'row sums',
  );
});

t('17M random numbers: all in range and no repeated blocks across grid rows', async () => {
  manualSeed(3);
  const v = await rand([N]).toArray();
  assert.is(
    firstBad(N, (i) => v[i]! >= 0 && v[i]! < 1),
    -1,
    'range',
  );
  let sum = 0;
  for (let i = 0; i < N; i++) sum += v[i]!;
  assert.ok(Math.abs(sum / N - 0.5) < 1e-3, `mean ${sum / N}`);
  // if the grid's y index were dropped, rows of the grid would repeat: compare at every plausible row stride
  for (const stride of [65535 * 64 * 4, 33204 * 64 * 4, 66407 * 64 * 2]) {
    let equal = 0;
    for (let i = 0; i + stride < N; i += 7) if (v[i] === v[i + stride]) equal++;
    assert.ok(equal < 20, `${equal} equal values at stride ${stride}`);
  }
});

t.run();
