// Both GEMM bodies on this adapter: the blocked one (every adapter) and, where the adapter has 8-wide
// subgroups, the subgroup-broadcast one, with B read from storage and through a packed texture. Each runs matmul/linear on awkward shapes, layouts and batch
// broadcasts, and the PyTorch conv fixtures; conv also with a tiny column budget (batch chunking) and a long
// weight-gradient K (split-K), against the TypeScript reference.
import {
  adapterSummary,
  conv2d,
  convTranspose2d,
  disabledGemmPaths,
  emptyCache,
  type GemmBody,
  gemmBody,
  gemmTexture,
  gemmTextureRead,
  linear,
  matmul,
  memory,
  setConvColumnBudget,
  setGemmBody,
  setGemmTexture,
  setGemmTextureRead,
  verifyGemm,
  zeros,
} from '@wgrad/tensor';
import * as assert from 'uvu/assert';
// Not in the public API: forces a GEMM config (same module instance as the package's under --conditions=source).
import {
  disableGemmPath,
  type GemmProblem,
  gemmUsesTexture,
  gemmVariantSource,
  resetGemmPaths,
  setGemmSplitK,
  splitKOf,
} from '../packages/tensor/src/ops/gemm.js';
import { matmulWithConfig } from '../packages/tensor/src/ops/linalg.js';
import { type ConvCase, load, runConvCase } from './conv-fixtures.js';
import { checkGrad, expectClose, fromRef, gpuSuite, R, randRef } from './helpers.js';

const t = gpuSuite('gemm bodies');
const auto = gemmBody();
// 'subgroup+texture' reads the texture the default way (a read-only storage texture where WGSL can),
// 'subgroup+sampled' as a sampled texture (the way where it cannot).
type Mode = 'blocked' | 'subgroup' | 'subgroup+texture' | 'subgroup+sampled';
const bodies: Mode[] =
  auto === 'subgroup' ? ['blocked', 'subgroup', 'subgroup+texture', 'subgroup+sampled'] : ['blocked'];

/** A plain row-major M×K · K×N problem with stand-in buffers: to read its kernel's WGSL or split-K choice. */
const plain = (M: number, K: number, N: number): GemmProblem => ({
  op: 'test',
  M,
  N,
  K,
  a: { off: 0, rs: K, cs: 1 },
  b: { off: 0, rs: N, cs: 1 },
  c: { off: 0, rs: N, cs: 1 },
  bufA: {} as GPUBuffer,
  bufB: {} as GPUBuffer,
  bufC: {} as GPUBuffer,
});

async function withBody(mode: Mode, fn: () => Promise<void>): Promise<void> {
  setGemmBody(mode === 'blocked' ? 'blocked' : 'subgroup');
  setGemmTexture(mode.endsWith('texture') || mode.endsWith('sampled') ? 'always' : 'never');
  setGemmTextureRead(mode === 'subgroup+sampled' ? 'sampled' : 'auto');
  try {
    await fn();
  } finally {
    setGemmBody(null);
    setGemmTexture('auto');
    setGemmTextureRead('auto');
  }
}

t('more row tiles than a grid dimension allows (70,000 one-row tiles) fold into z', async () => {
  const M = 70_000;
  const a = randRef([M, 4], 61);
  const b = randRef([4, 4], 62);
  const c = matmulWithConfig(fromRef(a), fromRef(b), { body: 'blocked', rows: 1, h: 1, wgx: 1, wgy: 1 });
  await expectClose(c, R.matmul(a, b), 'M = 70000, one row per workgroup');
});

t('the default body is the subgroup one exactly when the adapter has 8-wide subgroups', () => {
  assert.ok(bodies.includes(auto));
  assert.is(gemmTexture(), 'auto');
  assert.throws(() => setGemmTexture('yes' as 'auto'), /gemm: unknown texture mode 'yes'/);
  assert.is(gemmTextureRead(), 'auto');
  assert.throws(() => setGemmTextureRead('image' as 'auto'), /gemm: unknown texture read 'image'/);
  assert.throws(() => setGemmBody('nope' as GemmBody), /gemm: unknown body 'nope'/);
});

for (const body of bodies) {
  t(`[${body}] matmul on awkward sizes, tile edges and K % 4 ≠ 0`, () =>
    withBody(body, async () => {
      let seed = 100;
      for (const [M, K, N] of [
        [1, 1, 1],
        [7, 3, 5],
        [8, 4, 32],
        [17, 5, 33],
        [33, 64, 31],
        [65, 7, 4],
        [3, 130, 70],
        [128, 20, 2],
        [40, 8195, 12], // K past the 2-D texture limit (8192 on lavapipe): B from storage
        [20, 13, 4097], // N/4 = 1025 texels
        [515, 12, 36], // 'auto' texture size: B row-major, read as vec4 by the pack
      ] as const) {
        const a = randRef([M, K], seed++);
        const b = randRef([K, N], seed++);
        // fp32 sums of 8195 terms: absolute error up to ~1e-4 on results near 0.
        const atol = K > 1000 ? 5e-4 : 1e-5;
        await expectClose(
          matmul(fromRef(a), fromRef(b)),
          R.matmul(a, b),
          `${body} ${M}x${K}x${N}`,
          1e-4,
          atol,
        );
      }
    }),
  );

  t(`[${body}] gradients through transposed operands and broadcast batches`, () =>
    withBody(body, async () => {
      await checkGrad(
        `${body} [2,1,3,8]@[5,8,4]`,
        [randRef([2, 1, 3, 8], 1), randRef([5, 8, 4], 2)],
        ([p, q]) => p!.matmul(q!),
        ([p, q]) => R.matmul(p!, q!),
      );
      await checkGrad(
        `${body} aᵀ@bᵀ`,
        [randRef([12, 9], 3), randRef([5, 12], 4)],
        ([p, q]) => p!.T.matmul(q!.T),
        ([p, q]) => R.matmul(R.permute(p!, [1, 0]), R.permute(q!, [1, 0])),
      );
    }),
  );

  t(`[${body}] linear with bias (weight read transposed in place)`, () =>
    withBody(body, async () => {
      for (const [lead, inF, out] of [
        [[5], 12, 3],
        [[2, 3], 7, 9],
        [[40], 64, 2],
        [[30], 24, 20], // weight gradient M = 20: Aᵀ read 4 rows per lane, 24-row tiles
      ] as const) {
        await checkGrad(
          `${body} linear ${lead}x${inF}->${out}`,
          [randRef([...lead, inF], 5), randRef([out, inF], 6), randRef([out], 7)],
          ([x, w, b]) => linear(x!, w!, b!),
          ([x, w, b]) => R.binary(R.matmul(x!, R.permute(w!, [1, 0])), b!, (p, q) => p + q),
        );
      }
    }),
  );

  t(`[${body}] PyTorch conv fixtures (small cases and the seed layers)`, () =>
    withBody(body, async () => {
      for (const c of [...load('conv.json'), ...load('conv_seed.json')] as ConvCase[]) await runConvCase(c);
    }),
  );

  t(`[${body}] conv in batch chunks (tiny column budget) and a long split-K weight gradient`, () =>
    withBody(body, async () => {
      const o = {
        stride: [2, 2] as [number, number],
        padding: [1, 1] as [number, number],
        dilation: [1, 1] as [number, number],
        groups: 1,
      };
      // 12 images of 3×20×20 with a 4×4 kernel: 100 output pixels × 48 columns = 4800 floats per image.
      const x = randRef([12, 3, 20, 20], 11);
      const w = randRef([5, 3, 4, 4], 12);
      const b = randRef([5], 13);
      const up = randRef([12, 5, 10, 10], 14);
      const results: Float32Array[][] = [];
      for (const budget of [1 << 24, 4800 * 5]) {
        const old = setConvColumnBudget(budget);
        try {
          const xs = fromRef(x, { requiresGrad: true });
          const ws = fromRef(w, { requiresGrad: true });
          const bs = fromRef(b, { requiresGrad: true });
          const y = conv2d(xs, ws, bs, o);
          await expectClose(y, R.conv2d(x, w, b, o), `${body} conv2d budget ${budget}`);
          y.backward(fromRef(up));
          results.push([await xs.grad!.toArray(), await ws.grad!.toArray(), await bs.grad!.toArray()]);
          const yt = convTranspose2d(fromRef(up), fromRef(randRef([5, 3, 4, 4], 15)), null, {
            ...o,
            outputPadding: [0, 0],
          });
          await expectClose(
            yt,
            R.convTranspose2d(up, randRef([5, 3, 4, 4], 15), null, { ...o, outputPadding: [0, 0] }),
            `${body} convTranspose2d budget ${budget}`,
          );
        } finally {
          setConvColumnBudget(old);
        }
      }
      // Chunked and unchunked gradients agree; the weight gradient (K = 12·100 = 1200, split) matches the
      // reference computed as a correlation of x with the upstream gradient.
      for (let i = 0; i < 3; i++) R.assertClose(results[1]![i]!, results[0]![i]!, { rtol: 1e-4, atol: 1e-5 });
      const gwRef = R.numericGrad((xs) => R.conv2d(x, xs[0]!, b, o), [w], up, 1e-3)[0]!;
      R.assertClose(results[0]![1]!, gwRef.data, { rtol: 1e-3, atol: 1e-3, what: `${body} gw` });
      assert.throws(() => setConvColumnBudget(0), /setConvColumnBudget: expected a positive integer, got 0/);
    }),
  );
}

/** Runs fn with split-K on wherever a shape allows (as on a GPU), restoring the automatic choice. */
async function withSplitK(fn: () => Promise<void>): Promise<void> {
  setGemmSplitK('always');
  try {
    await fn();
  } finally {
    setGemmSplitK('auto');
  }
}

t('split-K: chunk counts as on a GPU (K ≥ 2048, powers of 2, K/S a multiple of 4, ≥ 256 per chunk)', () =>
  withSplitK(async () => {
    const cfg = { body: 'blocked', rows: 8, h: 1, wgx: 1, wgy: 64 } as const;
    assert.is(splitKOf(plain(128, 6272, 2), cfg), 16); // 6272 = 2^7·49: 16 chunks of 392
    assert.is(splitKOf(plain(128, 2048, 2), cfg), 8); // 8 chunks of 256, the least a chunk keeps
    assert.is(splitKOf(plain(128, 2040, 2), cfg), 1); // K < 2048: not split
    assert.is(splitKOf(plain(128, 4098, 2), cfg), 1); // 4098 = 2·2049: no chunk a multiple of 4
    assert.is(splitKOf(plain(4096, 6272, 4096), cfg), 1); // enough tiles already
    assert.is(splitKOf({ ...plain(128, 6272, 2), batch: [2] }, cfg), 1); // batched: never
    assert.is(splitKOf({ ...plain(128, 6272, 2), outer: { n: 2, as: 1, bs: 1 } }, cfg), 1);
    setGemmSplitK('never');
    assert.is(splitKOf(plain(128, 6272, 2), cfg), 1);
    assert.throws(() => setGemmSplitK('maybe' as 'auto'), /gemm: unknown split-K mode 'maybe'/);
  }),
);

t('verifyGemm with split-K forced (as on a GPU): the long-K case takes the split path, all pass', () =>
  withSplitK(async () => {
    for (const c of await verifyGemm()) {
      assert.is(c.cases, 16);
      assert.equal(c.failed, [], `${c.body}/${c.texture}`);
    }
    assert.equal(disabledGemmPaths(), {});
  }),
);

for (const body of bodies)
  t(`[${body}] split-K (forced, as on a GPU): matmul, linear with bias and relu, conv fixtures`, () =>
    withBody(body, () =>
      withSplitK(async () => {
        let seed = 300;
        for (const [M, K, N] of [
          [128, 6272, 2],
          [24, 4096, 12],
          [70, 2048, 33],
        ] as const) {
          const a = randRef([M, K], seed++);
          const b = randRef([K, N], seed++);
          await expectClose(
            matmul(fromRef(a), fromRef(b)),
            R.matmul(a, b),
            `${body} split-K ${M}x${K}x${N}`,
            1e-4,
            5e-4,
          );
        }
        await checkGrad(
          `${body} split-K linear 6x2048->2`,
          [randRef([6, 2048], 8), randRef([2, 2048], 9), randRef([2], 10)],
          ([x, w, b]) => linear(x!, w!, b!),
          ([x, w, b]) => R.binary(R.matmul(x!, R.permute(w!, [1, 0])), b!, (p, q) => p + q),
        );
        const x = randRef([9, 2048], 11);
        const w = randRef([7, 2048], 12);
        const bias = randRef([7], 13);
        await expectClose(
          linear(fromRef(x), fromRef(w), fromRef(bias), { activation: 'relu' }),
          R.unary(
            R.binary(R.matmul(x, R.permute(w, [1, 0])), bias, (p, q) => p + q),
            (v) => Math.max(v, 0),
          ),
          `${body} split-K linear + bias + relu`,
          1e-4,
          1e-4,
        );
        for (const c of [...load('conv.json'), ...load('conv_seed.json')] as ConvCase[]) await runConvCase(c);
      }),
    ),
  );

if (auto === 'subgroup')
  t('[subgroup+texture] K = 0 needs no texture; a GEMM that cannot be dispatched leaks nothing', () =>
    withBody('subgroup+texture', async () => {
      assert.equal([...(await matmul(zeros([40, 0]), zeros([0, 40])).toArray())], new Array(1600).fill(0));
      const before = memory().buffersInUse;
      const a = zeros([70_000, 1, 4]);
      const b = zeros([4, 4]);
      assert.throws(() => matmul(a, b), /exceeds the adapter limit 65535/);
      a.dispose();
      b.dispose();
      assert.is(memory().buffersInUse, before, 'the texture and the output went back');
    }),
  );

if (auto === 'subgroup')
  t(
    '[subgroup+texture] a storage-texture read and a sampled one give the same bits; the kernel declares its kind',
    () =>
      withBody('subgroup+texture', async () => {
        const a = randRef([40, 72], 91);
        const b = randRef([72, 64], 92);
        const results: number[][] = [];
        for (const read of ['storage', 'sampled'] as const) {
          setGemmTextureRead(read);
          const src = gemmVariantSource(plain(40, 72, 64));
          assert.is(src.includes('texture_storage_2d<rgba32float, read>'), read === 'storage', read);
          assert.is(src.includes('texture_2d<f32>'), read === 'sampled', read);
          if (read === 'storage' && !adapterSummary().storageTextureReads) continue; // WGSL cannot read one here
          const c = matmul(fromRef(a), fromRef(b));
          results.push([...(await c.toArray())]);
          await expectClose(c, R.matmul(a, b), `${read} texture read`);
        }
        setGemmTextureRead('auto');
        assert.is(
          gemmVariantSource(plain(40, 72, 64)).includes('texture_storage_2d'),
          adapterSummary().storageTextureReads === true,
          "'auto' reads a storage texture exactly where the adapter's WGSL can",
        );
        if (results.length === 2) assert.equal(results[0], results[1], 'bit for bit');
      }),
  );

if (auto === 'subgroup')
  t(
    "[subgroup+texture] verifyGemm's fallback: with storage-texture reads switched off, the sampled read",
    () =>
      withBody('subgroup+texture', async () => {
        try {
          disableGemmPath('storageTexture', 'test');
          assert.ok(gemmVariantSource(plain(40, 72, 64)).includes('texture_2d<f32>'));
          assert.equal(disabledGemmPaths(), { storageTexture: 'test' });
          const a = randRef([40, 72], 93);
          const b = randRef([72, 64], 94);
          await expectClose(matmul(fromRef(a), fromRef(b)), R.matmul(a, b), 'sampled after the switch-off');
          setGemmTextureRead('storage');
          assert.ok(
            gemmVariantSource(plain(40, 72, 64)).includes('texture_storage_2d'),
            'forcing still works',
          );
        } finally {
          resetGemmPaths();
        }
      }),
  );

if (auto === 'subgroup')
  t('[subgroup+texture] B is packed into a pooled scratch texture, counted with the buffers', () =>
    withBody('subgroup+texture', async () => {
      const a = randRef([33, 70], 71);
      const b = randRef([70, 45], 72);
      const [ta, tb] = [fromRef(a), fromRef(b)];
      emptyCache();
      const before = memory();
      const c = matmul(ta, tb);
      await expectClose(c, R.matmul(a, b), 'pooled texture');
      const after = memory();
      // The 12×72 texel texture (13,824 bytes) and the staging buffer its texels were written to (N = 45 is
      // not a whole number of texels, so B is not copied in directly: 72 rows × 16 texels × 16 bytes = 18,432,
      // pooled in its 20,480-byte size class) went back to the pool: only C is new in use.
      assert.is(after.buffersInUse, before.buffersInUse + 1);
      assert.is(before.bytesPooled, 0);
      assert.is(after.bytesPooled, 12 * 72 * 16 + 20_480);
      emptyCache();
      assert.is(memory().bytesPooled, 0);
    }),
  );

if (auto === 'subgroup')
  t('[subgroup+texture] a row-major B with 256-byte rows is copied into the texture', () =>
    withBody('subgroup+texture', async () => {
      // N = 64: rows of 256 bytes, K = 72 (a multiple of 4): B goes in with buffer-to-texture copies, so
      // only the 16×72 texel texture is pooled afterwards (no staging buffer).
      const a = randRef([33, 72], 81);
      const b = randRef([72, 64], 82);
      const [ta, tb] = [fromRef(a), fromRef(b)];
      emptyCache();
      const c = matmul(ta, tb);
      await expectClose(c, R.matmul(a, b), 'copied texture');
      assert.is(memory().bytesPooled, 16 * 72 * 16);
      c.dispose();
      emptyCache();
    }),
  );

t(
  'verifyGemm runs every body and B path on this adapter against the float64 reference, all pass',
  async () => {
    const checks = await verifyGemm();
    assert.equal(
      checks.map((c) => `${c.body}/${c.texture}`),
      auto === 'subgroup' ? ['blocked/auto', 'subgroup/never', 'subgroup/always'] : ['blocked/auto'],
    );
    for (const c of checks) {
      assert.is(c.cases, 16, `${c.body}/${c.texture} cases`);
      assert.equal(c.failed, [], `${c.body}/${c.texture}`);
      assert.ok(c.maxErr < 1e-5, `${c.body}/${c.texture} max error ${c.maxErr}`);
    }
    assert.equal(disabledGemmPaths(), {});
    assert.is(gemmBody(), auto, 'the automatic choice is restored');
    assert.is(gemmTexture(), 'auto');
  },
);

if (auto === 'subgroup')
  t('a path switched off (as verifyGemm does on failure) is avoided by automatic choices only', async () => {
    try {
      assert.ok(gemmUsesTexture(6272, 1024, 128));
      disableGemmPath('texture', 'test');
      assert.not.ok(gemmUsesTexture(6272, 1024, 128));
      assert.equal(disabledGemmPaths(), { texture: 'test' });
      disableGemmPath('subgroup', 'test');
      assert.is(gemmBody(), 'blocked');
      setGemmBody('subgroup');
      assert.is(gemmBody(), 'subgroup', 'forcing still works');
      setGemmBody(null);
      const a = randRef([40, 24], 81);
      const b = randRef([24, 36], 82);
      await expectClose(matmul(fromRef(a), fromRef(b)), R.matmul(a, b), 'blocked fallback');
    } finally {
      resetGemmPaths();
      setGemmBody(null);
    }
    assert.is(gemmBody(), 'subgroup');
  });

t.run();
