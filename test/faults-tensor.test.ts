// Fault suite, tensors (issue 11): shape mismatches on the training path, non-finite inputs, out-of-range
// indices, and a WebGPU device lost mid-run (simulated with device.destroy() in a child process, so that a
// crash could not take the runner down): every case ends in an error that names the op and the offending
// shape or value, or (GPU-side index values, which the host never sees) in NaN that the trainer's guard
// names; never in a hang or a signal.
import { Conv2d, Embedding, Linear, mseLoss } from '@wgrad/nn';
import { limits, randn, tensor, zeros } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { gpuSuite, runFixture } from './helpers.js';

const t = gpuSuite('faults: tensors');

/** Asserts that `fn` throws an error whose message is exactly `message`. */
function throwsExactly(fn: () => unknown, message: string): void {
  try {
    fn();
  } catch (e) {
    assert.is((e as Error).message, message);
    return;
  }
  assert.unreachable(`expected: ${message}`);
}

t('shape mismatches on the training path name the op and both shapes', async () => {
  const lin = new Linear(3, 2);
  const conv = new Conv2d(3, 4, 3);
  try {
    throwsExactly(
      () => lin.call(randn([4, 5])),
      "linear: input [4,5] does not end in the weight's in_features 3 (weight [2,3])",
    );
    throwsExactly(
      () => conv.call(randn([1, 2, 8, 8])),
      'conv2d: input has 2 channels but weight [4,3,3,3] with groups=1 expects 3',
    );
  } finally {
    lin.dispose();
    conv.dispose();
  }
  throwsExactly(
    () => mseLoss(randn([4, 2]), randn([4, 3])),
    'mseLoss: input [4,2] and target [4,3] must have the same shape',
  );
  throwsExactly(
    () => randn([2, 3]).add(randn([4])),
    'add: shapes [2,3] and [4] cannot be broadcast together (dim 1: 3 vs 4)',
  );
  throwsExactly(
    () => randn([2, 3], { requiresGrad: true }).backward(),
    'backward: gradient can be implicitly created only for scalar outputs, got shape [2,3]',
  );
  const e = await randn([2, 3])
    .item()
    .catch((x: Error) => x);
  assert.is((e as Error).message, 'item: expected a tensor with one element, got shape [2,3]');
});

t('non-finite host data is refused at upload, naming the value and its flat index', () => {
  throwsExactly(
    () => tensor(new Float32Array([0, 1, Number.POSITIVE_INFINITY]), { shape: [3] }),
    'tensor: non-finite value Infinity at flat index 2',
  );
  throwsExactly(() => tensor([[0, Number.NaN]]), 'tensor: non-finite value NaN at flat index 1');
});

t(
  'a tensor larger than the adapter can bind is refused when it is made, naming its shape and the limit',
  () => {
    const limit = limits().maxStorageBufferBindingSize;
    const rows = Math.floor(limit / 4 / 1024) + 1; // (rows, 1024) float32: just over the limit
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    throwsExactly(
      () => zeros([rows, 1024]),
      `wgrad: a float32 tensor of shape [${rows},1024] needs ${mib(rows * 4096)}, more than this adapter's largest storage binding (maxStorageBufferBindingSize ${mib(limit)}), and kernels bind a tensor whole: use smaller batches (e.g. score or train in chunks)`,
    );
    zeros([rows - 1, 1024]).dispose(); // at the limit: fine
  },
);

t('out-of-range GPU indices give NaN (gather, Embedding), never a wrong row or a crash', async () => {
  const x = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const idx = tensor(new Int32Array([0, 3, -1, 1, 2, 7]), { shape: [2, 3], dtype: 'int32' });
  const got = Array.from(await x.gather(1, idx).toArray());
  assert.equal(got.map(String), ['1', 'NaN', 'NaN', '5', '6', 'NaN']);
  const emb = new Embedding(4, 2);
  try {
    const rows = await emb.call(tensor(new Int32Array([0, 4, -2]), { dtype: 'int32' })).toArray();
    assert.ok(Number.isFinite(rows[0]!) && Number.isFinite(rows[1]!), 'index 0 is a real row');
    assert.ok(Array.from(rows.subarray(2)).every(Number.isNaN), 'indices 4 and -2 give NaN rows');
  } finally {
    emb.dispose();
  }
});

interface Line {
  what: string;
  ok?: boolean;
  error?: string;
  ms?: number;
}

/** Runs test/fixtures/faults/device-lost.ts with `where`; its exit code, signal and JSON lines (90 s: a hang). */
async function lostChild(
  where: string,
): Promise<{ code: number | null; signal: string | null; lines: Line[] }> {
  const { code, signal, json } = await runFixture('faults/device-lost.ts', [where], { timeoutMs: 90_000 });
  return { code, signal, lines: json as Line[] };
}

const LOST = 'wgrad: the WebGPU device was lost (destroyed: device was destroyed)';

for (const [where, first] of [
  ['idle', 'op+readback'],
  ['readback', 'in-flight readback'],
  ['training', 'training'],
] as const)
  t(
    `device lost (${where}): every later call rejects with 'device was lost' at once; the process exits 0`,
    async () => {
      const { code, signal, lines } = await lostChild(where);
      assert.equal(lines[0], { what: 'before', ok: true });
      const by = new Map(lines.map((l) => [l.what, l]));
      for (const what of [first, 'sync', 'upload', 'op']) {
        const l = by.get(what);
        assert.ok(l, `${where}: no report for '${what}'`);
        assert.is(l!.ok, false, `${where}: '${what}' did not fail`);
        assert.is(l!.error, LOST, `${where}: '${what}'`);
        assert.ok(l!.ms! < 5000, `${where}: '${what}' took ${l!.ms} ms`);
      }
      assert.is(by.get('dispose')?.ok, true, 'dispose() after the loss is harmless');
      assert.ok(by.has('end'), 'the script ran to its end');
      assert.is(signal, null, `no signal (got ${signal})`);
      assert.is(code, 0);
    },
  );

t(
  'device lost, then acquireDevice() again: old tensors say so, training runs on the new device',
  async () => {
    const { code, signal, json } = await runFixture('faults/device-lost.ts', ['recover'], {
      timeoutMs: 90_000,
    });
    const by = new Map((json as (Line & Record<string, unknown>)[]).map((l) => [l.what, l]));
    assert.is(by.get('op after loss')?.error, LOST);
    assert.is(by.get('acquireDevice')?.ok, true, String(by.get('acquireDevice')?.error));
    const mem = by.get('memory after acquire')!;
    assert.equal([mem.bytesInUse, mem.bytesPooled], [0, 0], 'the new device starts with no buffers counted');
    for (const [what, op] of [
      ['old tensor', 'add'],
      ['old module', 'reshape'],
    ] as const) {
      const l = by.get(what);
      assert.is(l?.ok, false, `${what} did not fail`);
      assert.match(
        String(l?.error),
        new RegExp(`^${op}: tensor #\\d+ \\[\\d+,\\d+\\] was made on an earlier WebGPU device`),
      );
    }
    assert.is(by.get('dispose old')?.ok, true, 'disposing old tensors is harmless');
    assert.is(by.get('train on the new device')?.ok, true, String(by.get('train on the new device')?.error));
    const losses = by.get('losses') as unknown as { first: number; last: number };
    assert.ok(losses.last < 0.5 * losses.first, `training converges (${losses.first} → ${losses.last})`);
    assert.is(by.get('new op')?.ok, true);
    assert.ok(by.has('end'));
    assert.is(signal, null);
    assert.is(code, 0);
  },
);

t.run();
