// Checkpoints in the safetensors format: PyTorch interop (a file written by PyTorch, and a numpy reader for
// what we write), the byte layout, every way a bad file fails (naming the file and the key), atomic writes,
// conv model round trips, and resuming training (model, optimizer and RNG) bit for bit.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  Adam,
  Conv2d,
  ConvTranspose2d,
  Dropout,
  Flatten,
  Linear,
  load,
  loadCheckpoint,
  loadTensors,
  Module,
  mseLoss,
  ReLU,
  readSafetensorsHeader,
  SafetensorsError,
  Sequential,
  SGD,
  save,
  saveCheckpoint,
  saveTensors,
} from '@wgrad/nn';
import { manualSeed, rand, rngState, Tensor, tensor } from '@wgrad/tensor';
import * as assert from 'uvu/assert';
import { gpuSuite, withTempDir } from './helpers.js';

const FIXTURE = new URL('./fixtures/torch_model.safetensors', import.meta.url).pathname;
type FT = { shape: number[]; data: number[] };
const fx = JSON.parse(readFileSync(new URL('./fixtures/torch_model.json', import.meta.url), 'utf8')) as {
  state_dict: Record<string, FT>;
  x: FT;
  y: FT;
  tolerance: { rtol: number; atol: number };
};
const up = (t: FT) => tensor(Float32Array.from(t.data), { shape: t.shape });

/** PyTorch's TinyModel: encoder = Sequential(Linear(6,5)), decoder = Linear(5,3). */
class TinyModel extends Module {
  encoder = new Sequential(new Linear(6, 5));
  decoder = new Linear(5, 3);
  forward(x: Tensor): Tensor {
    return this.decoder.call(this.encoder.call(x).relu());
  }
}

class ConvModel extends Module {
  net = new Sequential(
    new Conv2d(1, 4, 3, { padding: 1 }),
    new ReLU(),
    new Conv2d(4, 6, 3, { stride: 2, padding: 1 }),
    new ReLU(),
    new ConvTranspose2d(6, 3, 4, { stride: 2, padding: 1 }),
    new Flatten(),
    new Linear(3 * 8 * 8, 5),
  );
  constructor() {
    super();
    this.registerBuffer('steps', tensor(new Int32Array([7, -3])));
  }
  forward(x: Tensor): Tensor {
    return this.net.call(x);
  }
}

/** A fresh temp folder for `fn`, removed afterwards. */
const withDir = (fn: (dir: string) => Promise<void>) => withTempDir('wgrad-ckpt-', fn);

/** Writes a safetensors file by hand: a header object (as given) and raw data. */
function writeRaw(path: string, header: unknown, data: Uint8Array): void {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const h = Buffer.from(json);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path, Buffer.concat([len, h, data]));
}

const f32Bytes = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

/** Asserts that `p` rejects with exactly `message` (and a SafetensorsError naming `file` and `key`). */
async function rejects(
  p: Promise<unknown>,
  message: string,
  file: string,
  key: string | null,
): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.is((e as Error).message, message);
    assert.ok(e instanceof SafetensorsError, 'a SafetensorsError');
    assert.is((e as SafetensorsError).file, file);
    assert.is((e as SafetensorsError).key, key);
    return;
  }
  assert.unreachable(`expected an error: ${message}`);
}

async function snapshot(m: Module): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const [k, t] of m.stateDict()) out.set(k, Array.from(await t.data()));
  return out;
}

async function bits(t: Tensor): Promise<number[]> {
  const d = await t.data();
  return Array.from(new Uint32Array(d.buffer, d.byteOffset, d.length));
}

const t = gpuSuite('checkpoint');

// ---------------------------------------------------------------------------------------------------------
// PyTorch interop.

t('loads the PyTorch-written torch_model.safetensors and reproduces its outputs', async () => {
  const m = new TinyModel();
  try {
    assert.equal([...m.stateDict().keys()], Object.keys(fx.state_dict));
    await load(m, FIXTURE);
    for (const [k, p] of m.stateDict())
      assert.equal(Array.from(await p.toArray()), Array.from(Float32Array.from(fx.state_dict[k]!.data)), k);
    const y = Array.from(await m.call(up(fx.x)).toArray());
    const { rtol, atol } = fx.tolerance;
    const want = Float32Array.from(fx.y.data);
    assert.is(y.length, want.length);
    y.forEach((v, i) => {
      assert.ok(
        Math.abs(v - want[i]!) <= atol + rtol * Math.abs(want[i]!),
        `y[${i}] = ${v}, torch ${want[i]}`,
      );
    });
    const h = await readSafetensorsHeader(FIXTURE);
    assert.equal(h.metadata, { format: 'pt', generator: 'scripts/fixtures/make_fixtures.py' });
    assert.equal(h.tensors.get('decoder.weight'), { dtype: 'F32', shape: [3, 5], data_offsets: [12, 72] });
  } finally {
    m.dispose();
  }
});

t('re-saving the PyTorch file gives the same bytes as its writer', async () => {
  await withDir(async (dir) => {
    const { tensors, metadata } = await loadTensors(FIXTURE);
    const out = join(dir, 'copy.safetensors');
    await saveTensors(tensors, out, metadata);
    assert.ok(Buffer.from(readFileSync(out)).equals(readFileSync(FIXTURE)), 'byte-identical');
    for (const x of tensors.values()) x.dispose();
  });
});

/** /usr/bin/python3 with numpy, or why not. */
async function python(): Promise<{ ok: true; version: string } | { ok: false; why: string }> {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return { ok: false, why: `${py} does not exist` };
  try {
    const { stdout } = await promisify(execFile)(py, ['-c', 'import numpy; print(numpy.__version__)']);
    return { ok: true, version: stdout.trim() };
  } catch {
    return { ok: false, why: `${py} has no numpy` };
  }
}

t('Python (numpy, scripts/fixtures/check_safetensors.py) reads what we write [optional]', async () => {
  const py = await python();
  if (!py.ok) {
    console.log(`\n  [checkpoint] skipped the Python interop check: ${py.why}`);
    return;
  }
  console.log(`\n  [checkpoint] Python interop check ran with /usr/bin/python3, numpy ${py.version}`);
  const run = promisify(execFile);
  const script = new URL('../scripts/fixtures/check_safetensors.py', import.meta.url).pathname;
  await withDir(async (dir) => {
    // 1. A conv model with an int32 buffer: keys, dtypes, shapes and every value as numpy prints them.
    manualSeed(11);
    const m = new ConvModel();
    try {
      const path = join(dir, 'conv.safetensors');
      await save(m, path, { metadata: { note: 'hello' } });
      const { stdout } = await run('/usr/bin/python3', [script, path, '--values'], { maxBuffer: 1 << 24 });
      const sd = m.stateDict();
      assert.match(stdout, `${path}: ${sd.size} tensors`);
      assert.match(stdout, '__metadata__: {"format": "pt", "note": "hello"}');
      const blocks = [
        ...stdout.matchAll(/^ {2}(\S+) +(F32|I32) +\[([\d, ]*)\][^\n]*\n((?: {4}[^\n]*\n)+)/gm),
      ];
      assert.equal(blocks.map((b) => b[1]).sort(), [...sd.keys()].sort());
      for (const [, key, dtype, shape, values] of blocks) {
        const x = sd.get(key!)!;
        assert.is(dtype, x.dtype === 'float32' ? 'F32' : 'I32', key);
        assert.equal(shape!.split(',').filter(Boolean).map(Number), [...x.shape], key);
        const got = values!
          .replace(/[[\]\s]/g, '')
          .split(',')
          .filter(Boolean)
          .map(Number);
        const want = Array.from(await x.data());
        assert.is(got.length, want.length, key);
        got.forEach((v, i) => {
          assert.ok(
            Math.abs(v - want[i]!) <= 1e-7 + 1e-6 * Math.abs(want[i]!),
            `${key}[${i}]: ${v} vs ${want[i]}`,
          );
        });
      }
    } finally {
      m.dispose();
    }
    // 2. The PyTorch fixture loaded into our model and saved again: numpy finds the same tensors, bit-equal.
    const tiny = new TinyModel();
    try {
      await load(tiny, FIXTURE);
      const ours = join(dir, 'tiny.safetensors');
      await save(tiny, ours);
      const { stdout } = await run('/usr/bin/python3', [script, ours, '--compare', FIXTURE]);
      for (const k of Object.keys(fx.state_dict))
        assert.match(stdout, new RegExp(`equal +${k.replaceAll('.', '\\.')} `));
      assert.match(stdout, 'OK: files agree');
    } finally {
      tiny.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Byte layout.

t(
  'byte layout: 8-byte length, space-padded header, contiguous offsets, exact bits (NaN, Inf, -0, subnormal)',
  async () => {
    await withDir(async (dir) => {
      const specials = [0x7fc00000, 0x7f800000, 0xff800000, 0x80000000, 0x00000001, 0x3f800000, 0xffffffff];
      const asInt = tensor(
        Int32Array.from(specials, (u) => u | 0),
        { dtype: 'int32' },
      );
      // The same bits seen as float32 (tensor() rejects non-finite values, so make a float32 view).
      const special = new Tensor([7], 'float32', asInt.storage().retain());
      const map = new Map<string, Tensor>([
        ['b.odd', tensor([1.5, -2.25, 3], { shape: [3, 1] })],
        ['a.scalar', tensor(0.125)],
        ['c.int', tensor(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0]))],
        ['d.empty', tensor([], { shape: [0, 4] })],
        ['e.special', special],
      ]);
      const path = join(dir, 'layout.safetensors');
      await saveTensors(map, path, { k: 'v' });
      const buf = readFileSync(path);
      const n = Number(buf.readBigUInt64LE(0));
      assert.is(n % 8, 0, 'header length is a multiple of 8');
      const text = buf.subarray(8, 8 + n).toString('utf8');
      assert.ok(/^\{.*\} *$/.test(text), 'JSON then spaces');
      assert.ok(text.length - text.trimEnd().length < 8, 'at most 7 pad spaces');
      const header = JSON.parse(text) as Record<
        string,
        { dtype: string; shape: number[]; data_offsets: number[] }
      >;
      assert.equal(Object.keys(header), [
        '__metadata__',
        'a.scalar',
        'b.odd',
        'c.int',
        'd.empty',
        'e.special',
      ]);
      assert.equal(header.__metadata__ as unknown, { k: 'v' });
      let pos = 0;
      for (const k of ['a.scalar', 'b.odd', 'c.int', 'd.empty', 'e.special']) {
        const e = header[k]!;
        const x = map.get(k)!;
        assert.equal(e.shape, [...x.shape], k);
        assert.is(e.dtype, x.dtype === 'float32' ? 'F32' : 'I32', k);
        assert.equal(e.data_offsets, [pos, pos + x.size * 4], `${k} offsets are contiguous`);
        const raw = buf.subarray(8 + n + pos, 8 + n + pos + x.size * 4);
        const u32 = Array.from({ length: x.size }, (_, i) => raw.readUInt32LE(i * 4));
        assert.equal(u32, await bits(x), `${k} raw bytes`);
        pos += x.size * 4;
      }
      assert.is(buf.length, 8 + n + pos, 'no trailing bytes');
      // Our reader gives the same tensors back, bit for bit.
      const back = await loadTensors(path);
      assert.equal(back.metadata, { k: 'v' });
      assert.equal([...back.tensors.keys()].sort(), [...map.keys()].sort());
      for (const [k, x] of map) {
        const y = back.tensors.get(k)!;
        assert.equal([...y.shape], [...x.shape], k);
        assert.is(y.dtype, x.dtype, k);
        assert.equal(await bits(y), await bits(x), k);
      }
      assert.equal(await bits(special), specials);
      const h = await readSafetensorsHeader(path);
      assert.is(h.headerBytes, n);
      assert.is(h.dataStart, 8 + n);
      assert.is(h.dataBytes, pos);
      for (const x of [...map.values(), ...back.tensors.values(), asInt]) x.dispose();
    });
  },
);

t('loads F64, F16, BF16 as float32 and I64, I16, U8, BOOL as int32', async () => {
  await withDir(async (dir) => {
    const f64 = new Float64Array([0.1, -2.5, 1e-3]);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001, 0x7c00]); // 1, -2, 0.33325, 2^-24, Inf
    const bf16 = new Uint16Array([0x3f80, 0xc0a0, 0x3eaa]); // 1, -5, 0.33203125
    const i64 = new BigInt64Array([-(2n ** 31n), 2n ** 31n - 1n, 42n]);
    const i16 = new Int16Array([-32768, 7]);
    const u8 = new Uint8Array([255, 0, 3]);
    const bool = new Uint8Array([1, 0, 1]);
    const parts: [string, string, number[], ArrayBufferView][] = [
      ['f64', 'F64', [3], f64],
      ['i64', 'I64', [3], i64],
      ['f16', 'F16', [5], f16],
      ['bf16', 'BF16', [3], bf16],
      ['i16', 'I16', [2], i16],
      ['u8', 'U8', [3], u8],
      ['bool', 'BOOL', [3], bool],
    ];
    const header: Record<string, unknown> = {};
    const chunks: Uint8Array[] = [];
    let pos = 0;
    for (const [name, dtype, shape, data] of parts) {
      header[name] = { dtype, shape, data_offsets: [pos, pos + data.byteLength] };
      chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      pos += data.byteLength;
    }
    const path = join(dir, 'dtypes.safetensors');
    writeRaw(path, header, Buffer.concat(chunks));
    const { tensors } = await loadTensors(path);
    const get = async (k: string) => Array.from(await tensors.get(k)!.data());
    assert.equal(await get('f64'), Array.from(Float32Array.from(f64)));
    assert.equal(await get('f16'), [1, -2, 0.333251953125, 2 ** -24, Number.POSITIVE_INFINITY]);
    assert.equal(await get('bf16'), [1, -5, 0.33203125]);
    assert.equal(await get('i64'), [-(2 ** 31), 2 ** 31 - 1, 42]);
    assert.equal(await get('i16'), [-32768, 7]);
    assert.equal(await get('u8'), [255, 0, 3]);
    assert.equal(await get('bool'), [1, 0, 1]);
    assert.is(tensors.get('f16')!.dtype, 'float32');
    assert.is(tensors.get('i64')!.dtype, 'int32');
    for (const x of tensors.values()) x.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------
// Bad files: each error names the file and the key, and the module is left as it was.

/** Loads `path` into a fresh TinyModel (seeded), expects `message`, and checks nothing changed. */
async function loadFails(path: string, message: string, key: string | null, strict = true): Promise<void> {
  manualSeed(5);
  const m = new TinyModel();
  try {
    const before = await snapshot(m);
    const rng = rngState();
    await rejects(load(m, path, { strict }), message, path, key);
    assert.equal(await snapshot(m), before, 'the module is untouched');
    assert.equal(rngState(), rng);
  } finally {
    m.dispose();
  }
}

t('truncated files fail, naming the tensor that runs past the end', async () => {
  await withDir(async (dir) => {
    const full = readFileSync(FIXTURE);
    const path = join(dir, 'cut.safetensors');
    writeFileSync(path, full.subarray(0, full.length - 10));
    await loadFails(
      path,
      `${path}: tensor 'encoder.0.weight': data_offsets [92, 212] run past the end of the 202-byte data section (the file is truncated or corrupt)`,
      'encoder.0.weight',
    );
    writeFileSync(path, full.subarray(0, 100));
    await loadFails(
      path,
      `${path}: truncated: the header is 360 bytes long but the file ends after 92 of them`,
      null,
    );
    writeFileSync(path, full.subarray(0, 5));
    await loadFails(
      path,
      `${path}: not a safetensors file: it is 5 bytes long, shorter than the 8-byte header length`,
      null,
    );
  });
});

t('foreign files (PNG, JSON, a PyTorch zip, garbage JSON header) fail as not safetensors', async () => {
  await withDir(async (dir) => {
    const png = join(dir, 'image.png');
    writeFileSync(png, Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex'));
    await loadFails(
      png,
      `${png}: not a safetensors file (it looks like a PNG image): the header does not start with a JSON object`,
      null,
    );
    const json = join(dir, 'model.json');
    writeFileSync(json, JSON.stringify(fx));
    await loadFails(
      json,
      `${json}: not a safetensors file (it looks like a JSON file): the header does not start with a JSON object`,
      null,
    );
    const pt = join(dir, 'model.pt');
    writeFileSync(pt, Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(60, 1)]));
    await loadFails(
      pt,
      `${pt}: not a safetensors file (it looks like a zip archive, e.g. a PyTorch .pt/.pth file: convert it with safetensors.torch.save_file): the header does not start with a JSON object`,
      null,
    );
    const big = join(dir, 'big.safetensors');
    const b = Buffer.alloc(16, 0x20);
    b.writeBigUInt64LE(2n ** 40n);
    b[8] = 0x7b;
    writeFileSync(big, b);
    await loadFails(
      big,
      `${big}: not a safetensors file: header length 1099511627776 is over the 100000000-byte limit`,
      null,
    );
    // A header that starts like JSON but is not (JSON.parse's own words differ between Node versions).
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a": 1,')]));
    const e = await loadTensors(bad).catch((x: Error) => x);
    assert.ok(e instanceof SafetensorsError && e.key === null && e.file === bad);
    assert.ok(
      (e as Error).message.startsWith(
        `${bad}: not a safetensors file: the 8-byte header is not valid UTF-8 JSON (`,
      ),
      (e as Error).message,
    );
  });
});

t(
  'bad headers: overlap, gap, out of range, wrong byte count, unsupported dtype, bad shape, metadata',
  async () => {
    await withDir(async (dir) => {
      const p = join(dir, 'h.safetensors');
      const data = f32Bytes([1, 2, 3, 4]);
      const cases: [unknown, string, string | null][] = [
        [
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [3], data_offsets: [4, 16] },
          },
          `tensor 'b': data_offsets [4, 16] overlap tensor 'a' [0, 8]`,
          'b',
        ],
        [
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
          },
          `tensor 'b': data_offsets [8, 16] leave a gap: the previous tensor ends at 4`,
          'b',
        ],
        [
          {
            a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
            far: { dtype: 'F32', shape: [1], data_offsets: [96, 100] },
          },
          `tensor 'far': data_offsets [96, 100] run past the end of the 16-byte data section (the file is truncated or corrupt)`,
          'far',
        ],
        [
          { a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } },
          `tensor 'a': data_offsets [0, 16] hold 16 bytes but F32[2,3] needs 24`,
          'a',
        ],
        [
          { a: { dtype: 'F8_E4M3', shape: [16], data_offsets: [0, 16] } },
          `tensor 'a': unsupported dtype "F8_E4M3" (wgrad reads F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)`,
          'a',
        ],
        [
          { a: { dtype: 'C64', shape: [2], data_offsets: [0, 16] } },
          `tensor 'a': unsupported dtype "C64" (wgrad reads F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)`,
          'a',
        ],
        [{ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, `tensor 'a': bad shape [-4]`, 'a'],
        [
          { a: { dtype: 'F32', shape: [4], data_offsets: [16, 0] } },
          `tensor 'a': bad data_offsets [16,0]`,
          'a',
        ],
        [
          { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } },
          'the data section is 16 bytes but the tensors cover 8 (trailing bytes)',
          null,
        ],
        [
          { __metadata__: { epoch: 3 }, a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } },
          `__metadata__ value 'epoch' must be a string, got 3`,
          null,
        ],
        [[1, 2], 'not a safetensors file: the header does not start with a JSON object', null],
      ];
      for (const [header, msg, key] of cases) {
        writeRaw(p, header, data);
        await rejects(loadTensors(p), `${p}: ${msg}`, p, key);
        await rejects(readSafetensorsHeader(p), `${p}: ${msg}`, p, key);
      }
      // An I64 value that int32 cannot hold.
      writeRaw(
        p,
        { n: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } },
        new Uint8Array(new BigInt64Array([1n, 2n ** 40n]).buffer),
      );
      await rejects(
        loadTensors(p),
        `${p}: tensor 'n': I64 value 1099511627776 at flat index 1 does not fit int32 (wgrad's integer type)`,
        p,
        'n',
      );
    });
  },
);

t('module mismatches: missing, unexpected, shape and dtype; strict: false loads the rest', async () => {
  await withDir(async (dir) => {
    const src = new TinyModel();
    const sd = src.stateDict();
    const path = join(dir, 'm.safetensors');
    try {
      // Missing key.
      const missing = new Map(sd);
      missing.delete('decoder.bias');
      await saveTensors(missing, path);
      await loadFails(
        path,
        `${path}: does not match the module: missing key(s) 'decoder.bias'`,
        'decoder.bias',
      );
      // Unexpected key.
      const extra = new Map(sd);
      extra.set('decoder.scale', sd.get('decoder.bias')!);
      await saveTensors(extra, path);
      await loadFails(
        path,
        `${path}: does not match the module: unexpected key(s) 'decoder.scale'`,
        'decoder.scale',
      );
      // Both.
      const both = new Map(extra);
      both.delete('encoder.0.weight');
      await saveTensors(both, path);
      await loadFails(
        path,
        `${path}: does not match the module: missing key(s) 'encoder.0.weight'; unexpected key(s) 'decoder.scale'`,
        'encoder.0.weight',
      );
      // Shape: the first keys are fine, the last one is wrong; nothing may be written.
      const shape = new Map(sd);
      const wrong = tensor(new Float32Array(20), { shape: [4, 5] });
      shape.set('decoder.weight', wrong);
      await saveTensors(shape, path);
      await loadFails(
        path,
        `${path}: tensor 'decoder.weight': is F32[4,5] but the module expects float32[3,5]`,
        'decoder.weight',
      );
      // dtype.
      const dtype = new Map(sd);
      const ints = tensor(new Int32Array(3));
      dtype.set('decoder.bias', ints);
      await saveTensors(dtype, path);
      await loadFails(
        path,
        `${path}: tensor 'decoder.bias': is I32[3] but the module expects float32[3]`,
        'decoder.bias',
      );
      // Non-strict: the unexpected key is ignored and the missing one keeps its value.
      await saveTensors(both, path);
      const m = new TinyModel();
      try {
        const keepW = Array.from(await m.encoder.stateDict().get('0.weight')!.data());
        await load(m, path, { strict: false });
        assert.equal(
          Array.from(await m.decoder.weight.data()),
          Array.from(await sd.get('decoder.weight')!.data()),
        );
        assert.equal(Array.from(await m.encoder.stateDict().get('0.weight')!.data()), keepW);
      } finally {
        m.dispose();
      }
      wrong.dispose();
      ints.dispose();
    } finally {
      src.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Atomic writes.

t('a failed write leaves the previous file intact and no temp file behind', async () => {
  await withDir(async (dir) => {
    const m = new TinyModel();
    try {
      const path = join(dir, 'model.safetensors');
      await save(m, path);
      const before = readFileSync(path);
      // A disposed tensor in the middle of the map: the header and the first tensors are already written
      // to the temp file when reading it back fails.
      const doomed = tensor([1, 2, 3]);
      doomed.dispose();
      const map = new Map(m.stateDict());
      map.set('decoder.zz', doomed);
      await rejects(
        saveTensors(map, path),
        `${path}: tensor 'decoder.zz': cannot read it back: data: tensor #${doomed.id} [3] was used after dispose()`,
        path,
        'decoder.zz',
      );
      assert.ok(readFileSync(path).equals(before), 'the old file is intact');
      assert.equal(readdirSync(dir), ['model.safetensors'], 'no temp file');
      // A new file that fails is not created at all.
      const fresh = join(dir, 'fresh.safetensors');
      await rejects(
        saveTensors(map, fresh),
        `${fresh}: tensor 'decoder.zz': cannot read it back: data: tensor #${doomed.id} [3] was used after dispose()`,
        fresh,
        'decoder.zz',
      );
      assert.equal(readdirSync(dir), ['model.safetensors']);
      // A folder that does not exist.
      const nowhere = join(dir, 'no', 'such', 'x.safetensors');
      const e = await save(m, nowhere).catch((x: Error) => x);
      assert.ok(e instanceof SafetensorsError);
      assert.match((e as Error).message, `${nowhere}: cannot write the file: ENOENT`);
      // Overwriting works and replaces the content.
      const m2 = new TinyModel();
      await save(m2, path);
      assert.not.ok(readFileSync(path).equals(before));
      m2.dispose();
      assert.equal(readdirSync(dir), ['model.safetensors']);
    } finally {
      m.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Round trips.

t(
  'conv model (Conv2d, ConvTranspose2d, Linear, int32 buffer): identical outputs after save/load',
  async () => {
    await withDir(async (dir) => {
      manualSeed(1);
      const a = new ConvModel();
      manualSeed(2);
      const b = new ConvModel();
      b.stateDict()
        .get('steps')!
        .assign(tensor(new Int32Array([0, 0])));
      try {
        const x = rand([2, 1, 8, 8]);
        const ya = await bits(a.call(x));
        assert.not.equal(await bits(b.call(x)), ya, 'different before loading');
        const path = join(dir, 'conv.safetensors');
        await save(a, path);
        await load(b, path);
        assert.equal(await bits(b.call(x)), ya, 'bit-identical outputs');
        for (const [k, p] of a.stateDict()) assert.equal(await bits(b.stateDict().get(k)!), await bits(p), k);
        assert.equal(Array.from(await b.stateDict().get('steps')!.data()), [7, -3]);
        const h = await readSafetensorsHeader(path);
        assert.equal([...h.tensors.keys()].sort(), [...a.stateDict().keys()].sort());
        assert.equal(h.tensors.get('net.4.weight')!.shape, [6, 3, 4, 4]);
        assert.equal(h.metadata, { format: 'pt' });
      } finally {
        a.dispose();
        b.dispose();
      }
    });
  },
);

// ---------------------------------------------------------------------------------------------------------
// Training checkpoints.

class Mlp extends Module {
  net: Sequential;
  constructor(out = 2) {
    super();
    this.net = new Sequential(new Linear(4, 8), new ReLU(), new Dropout(0.25), new Linear(8, out));
  }
  forward(x: Tensor): Tensor {
    return this.net.call(x);
  }
}

function trainStep(m: Module, opt: Adam | SGD, x: Tensor, y: Tensor): void {
  opt.zeroGrad();
  const loss = mseLoss(m.call(x), y);
  loss.backward();
  opt.step();
}

async function params(m: Module): Promise<number[][]> {
  return Promise.all(m.parameters().map((p) => bits(p)));
}

for (const kind of ['Adam', 'SGD'] as const) {
  t(
    `resume (${kind}): save after 3 steps, 2 more steps == load into fresh model/optimizer + 2 steps`,
    async () => {
      await withDir(async (dir) => {
        const path = join(dir, 'ckpt.safetensors');
        const make = (m: Module, lr: number) =>
          kind === 'Adam'
            ? new Adam(m.parameters(), { lr, betas: lr > 0.1 ? [0.5, 0.9] : [0.9, 0.999], weightDecay: 0.01 })
            : new SGD(m.parameters(), { lr, momentum: lr > 0.1 ? 0.1 : 0.9, nesterov: true });
        manualSeed(42);
        const x = rand([16, 4]);
        const y = rand([16, 2]);
        const a = new Mlp();
        const optA = make(a, 0.01);
        const b = new Mlp();
        const optB = make(b, 0.5);
        try {
          for (let i = 0; i < 3; i++) trainStep(a, optA, x, y);
          await saveCheckpoint(path, {
            model: a,
            optimizer: optA,
            meta: { epoch: 1, step: 3, bestLoss: Number.POSITIVE_INFINITY, seed: 42, tags: ['x'] },
          });
          const r1 = await bits(rand([8]));
          for (let i = 0; i < 2; i++) trainStep(a, optA, x, y);
          const want = await params(a);

          manualSeed(999); // scramble the RNG: loading must put it back
          trainStep(b, optB, x, y);
          const meta = await loadCheckpoint(path, { model: b, optimizer: optB });
          assert.equal(meta, {
            epoch: 1,
            step: 3,
            bestLoss: Number.POSITIVE_INFINITY,
            seed: 42,
            tags: ['x'],
          });
          assert.is(optB.stepCount, 3);
          assert.is(optB.lr, 0.01);
          if (optB instanceof Adam) assert.equal(optB.betas, [0.9, 0.999]);
          if (optB instanceof SGD) assert.is(optB.momentum, 0.9);
          assert.equal(await bits(rand([8])), r1, 'rand() after load == rand() after save');
          for (let i = 0; i < 2; i++) trainStep(b, optB, x, y);
          assert.equal(await params(b), want, 'identical parameters');

          // The model part is a plain PyTorch state_dict; the optimizer state sits under optimizer.*.
          const h = await readSafetensorsHeader(path);
          const modelKeys = [...a.stateDict().keys()];
          const optKeys = [...h.tensors.keys()].filter((k) => k.startsWith('optimizer.'));
          assert.equal(
            [...h.tensors.keys()].filter((k) => !k.startsWith('optimizer.')).sort(),
            modelKeys.sort(),
          );
          assert.equal(
            optKeys.sort(),
            [0, 1, 2, 3]
              .flatMap((i) =>
                kind === 'Adam'
                  ? [`optimizer.state.${i}.exp_avg`, `optimizer.state.${i}.exp_avg_sq`]
                  : [`optimizer.state.${i}.momentum_buffer`],
              )
              .sort(),
          );
          const om = JSON.parse(h.metadata['wgrad.optimizer']!);
          assert.is(om.class, kind);
          assert.is(om.stepCount, 3);
          assert.is(om.lr, 0.01);
          assert.is(om.numParams, 4);
          assert.equal(JSON.parse(h.metadata['wgrad.meta']!).bestLoss, { $float: 'Infinity' });
          assert.equal(Object.keys(JSON.parse(h.metadata['wgrad.rng']!)), ['seedLo', 'seedHi', 'counter']);
          // load() takes the weights of a checkpoint and skips the optimizer part.
          const c = new Mlp();
          await load(c, path);
          c.dispose();
        } finally {
          a.dispose();
          b.dispose();
          optA.dispose();
          optB.dispose();
        }
      });
    },
  );
}

t('loadCheckpoint failures change nothing (model, optimizer, RNG)', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'ckpt.safetensors');
    manualSeed(3);
    const x = rand([4, 4]);
    const y = rand([4, 2]);
    const a = new Mlp();
    const optA = new Adam(a.parameters(), { lr: 0.01 });
    const b = new Mlp();
    const sgd = new SGD(b.parameters(), { lr: 0.1, momentum: 0.9 });
    const adam = new Adam(b.parameters(), { lr: 0.1 });
    try {
      trainStep(a, optA, x, y);
      await saveCheckpoint(path, { model: a, optimizer: optA, meta: { epoch: 7 } });
      trainStep(b, sgd, x, y);
      trainStep(b, adam, x, y);
      const other = new Mlp(3); // its last layer differs (made before the RNG state is taken)
      const before = await params(b);
      const rng = rngState();
      const unchanged = async () => {
        assert.equal(await params(b), before);
        assert.equal(rngState(), rng);
        assert.is(sgd.stepCount, 1);
        assert.is(adam.stepCount, 1);
      };
      await rejects(
        loadCheckpoint(path, { model: b, optimizer: sgd }),
        `${path}: the optimizer state is for Adam, not SGD`,
        path,
        null,
      );
      await unchanged();
      const small = new Adam(b.parameters().slice(0, 2), { lr: 0.1 });
      await rejects(
        loadCheckpoint(path, { model: b, optimizer: small }),
        `${path}: the optimizer state covers 4 parameters but the Adam has 2`,
        path,
        null,
      );
      small.dispose();
      await unchanged();
      // A model whose last layer differs.
      await rejects(
        loadCheckpoint(path, { model: other }),
        `${path}: tensor 'net.3.weight': is F32[2,8] but the module expects float32[3,8]`,
        path,
        'net.3.weight',
      );
      other.dispose();
      await unchanged();
      // A plain weights file is not a training checkpoint.
      const plain = join(dir, 'plain.safetensors');
      await save(a, plain);
      await rejects(
        loadCheckpoint(plain, { model: b }),
        `${plain}: not a wgrad checkpoint: __metadata__ has no 'wgrad.meta'`,
        plain,
        null,
      );
      await unchanged();
      // Without an optimizer, only the model and RNG are restored.
      assert.equal(await loadCheckpoint(path, { model: b }), { epoch: 7 });
      assert.equal(await params(b), await params(a));
    } finally {
      for (const o of [optA, sgd, adam]) o.dispose();
      a.dispose();
      b.dispose();
    }
  });
});

// A minifying bundler renames classes (the browser build's first bundle saved "lt" for Adam): checkpoints
// name the optimizer by its `kind`, so a class of another name that is an Adam loads an Adam's state.
t('the optimizer is recorded by kind, not by its class name (renamed classes load)', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'ckpt.safetensors');
    manualSeed(4);
    const x = rand([4, 4]);
    const y = rand([4, 2]);
    class lt extends Adam {} // what a minifier makes of Adam
    const a = new Mlp();
    const optA = new lt(a.parameters(), { lr: 0.01 });
    const b = new Mlp();
    const optB = new Adam(b.parameters(), { lr: 0.01 });
    try {
      trainStep(a, optA, x, y);
      assert.is(optA.kind, 'Adam');
      await saveCheckpoint(path, { model: a, optimizer: optA });
      await loadCheckpoint(path, { model: b, optimizer: optB });
      assert.is(optB.stepCount, 1);
      assert.equal(await params(b), await params(a));
      const sgd = new SGD(b.parameters(), { lr: 0.1 });
      await rejects(
        loadCheckpoint(path, { model: b, optimizer: sgd }),
        `${path}: the optimizer state is for Adam, not SGD`,
        path,
        null,
      );
      sgd.dispose();
    } finally {
      optA.dispose();
      optB.dispose();
      a.dispose();
      b.dispose();
    }
  });
});

t.run();
