// The safetensors format (https://github.com/huggingface/safetensors) to and from bytes, with no file or other
// Node API, so the same code runs in a browser (download/upload) and under Node (checkpoint.ts does the file
// I/O around it):
//
//   [8-byte little-endian u64 N][N bytes of JSON header, space-padded to a multiple of 8][raw LE data]
//   header = { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [start, end] }, ...,
//              "__metadata__": { "<key>": "<string>" } }
//
// Offsets are relative to the start of the data section; tensors are laid out contiguously, largest dtype
// first, then by name (the official writer's order). Tensor names are PyTorch state_dict names.
//
// Reads validate the whole input before any GPU tensor is made, and every error names the file (or the name
// the caller gave the bytes) and, where there is one, the offending tensor.
import {
  type DType,
  fmtShape,
  rngState,
  type Shape,
  scope,
  setRngState,
  shapeSize,
  Tensor,
  tensor,
} from '@wgrad/tensor';
import type { Module } from './module.js';
import type { Optimizer } from './optim.js';

// ---------------------------------------------------------------------------------------------------------
// Format details.

/** Bytes per element of every safetensors dtype wgrad can read (all load as float32 or int32). */
const ITEM_SIZE: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};
const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16']);
const SUPPORTED = Object.keys(ITEM_SIZE).join(', ');

/** The header may be at most this long (the official reader's limit). */
const MAX_HEADER_BYTES = 100_000_000;

/** The wgrad dtype a safetensors dtype loads as (floats → float32, integers and BOOL → int32). */
export function safetensorsDTypeToWgrad(dtype: string): DType {
  if (!Object.hasOwn(ITEM_SIZE, dtype)) throw new Error(`unsupported safetensors dtype '${dtype}'`);
  return FLOAT_DTYPES.has(dtype) ? 'float32' : 'int32';
}

export interface SafetensorsTensorInfo {
  /** The safetensors dtype as written in the file ('F32', 'I32', 'F64', …). */
  dtype: string;
  shape: number[];
  /** [start, end) in bytes, relative to the start of the data section. */
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  /** Tensor entries in the order of the header. */
  tensors: Map<string, SafetensorsTensorInfo>;
  /** The `__metadata__` object ({} when the file has none). */
  metadata: Record<string, string>;
  /** N, the length of the JSON header in bytes. */
  headerBytes: number;
  /** Where the data section starts in the file (8 + N). */
  dataStart: number;
  /** Length of the data section in bytes. */
  dataBytes: number;
}

/** An error about a safetensors file: `file` is its path, `key` the tensor (or metadata key) concerned. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    readonly key: string | null,
    message: string,
    opts: { keyInMessage?: boolean; cause?: unknown } = {},
  ) {
    const named = (opts.keyInMessage ?? true) && key !== null;
    super(`${file}: ${named ? `tensor '${key}': ` : ''}${message}`, { cause: opts.cause });
    this.name = 'SafetensorsError';
  }
}

/** Sets an own enumerable property, whatever the key (also '__proto__'). */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** True on a little-endian host (the format, and WebGPU buffers, are little-endian). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function checkHost(): void {
  if (!LITTLE_ENDIAN) throw new Error('safetensors: big-endian hosts are not supported');
}

/** What a file that is not safetensors looks like, for the error message. */
function sniff(head: Uint8Array): string {
  const ascii = String.fromCharCode(...head.subarray(0, 8));
  if (ascii.startsWith('\x89PNG')) return ' (it looks like a PNG image)';
  if (ascii.startsWith('PK\x03\x04'))
    return ' (it looks like a zip archive, e.g. a PyTorch .pt/.pth file: convert it with safetensors.torch.save_file)';
  if (ascii.startsWith('\x1f\x8b')) return ' (it looks like a gzip file)';
  if (/^\s*[{[]/.test(ascii)) return ' (it looks like a JSON file)';
  if (ascii.startsWith('\x80')) return ' (it looks like a Python pickle)';
  return '';
}

/**
 * Random access to the bytes of a safetensors file: `read` returns `length` bytes from `position`, or fewer
 * when the input ends first. checkpoint.ts wraps a file handle; bytesSource wraps bytes in memory.
 */
export interface ByteSource {
  size: number;
  read(length: number, position: number): Promise<Uint8Array>;
}

/** A ByteSource over bytes in memory (a downloaded or uploaded file). */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read: async (length, position) => bytes.subarray(position, Math.min(bytes.length, position + length)),
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Reads and validates the header of a safetensors input; `file` names it in errors. */
export async function readHeader(src: ByteSource, file: string): Promise<SafetensorsHeader> {
  const { size } = src;
  const head = await src.read(8, 0);
  if (head.length < 8)
    throw new SafetensorsError(
      file,
      null,
      `not a safetensors file: it is ${size} bytes long, shorter than the 8-byte header length`,
    );
  const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  const prefix = await src.read(1, 8);
  if (prefix.length && prefix[0] !== 0x7b /* '{' */)
    throw new SafetensorsError(
      file,
      null,
      `not a safetensors file${sniff(head)}: the header does not start with a JSON object`,
    );
  if (n64 > BigInt(MAX_HEADER_BYTES))
    throw new SafetensorsError(
      file,
      null,
      `not a safetensors file${sniff(head)}: header length ${n64} is over the ${MAX_HEADER_BYTES}-byte limit`,
    );
  const n = Number(n64);
  if (8 + n > size)
    throw new SafetensorsError(
      file,
      null,
      `truncated: the header is ${n} bytes long but the file ends after ${size - 8} of them`,
    );
  const raw = await src.read(n, 8);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (e) {
    throw new SafetensorsError(
      file,
      null,
      `not a safetensors file: the ${n}-byte header is not valid UTF-8 JSON (${(e as Error).message})`,
    );
  }
  if (!isPlainObject(json))
    throw new SafetensorsError(file, null, 'not a safetensors file: the header is not a JSON object');
  const dataBytes = size - 8 - n;
  const header: SafetensorsHeader = {
    tensors: new Map(),
    metadata: {},
    headerBytes: n,
    dataStart: 8 + n,
    dataBytes,
  };
  for (const [key, entry] of Object.entries(json)) {
    if (key === '__metadata__') {
      if (!isPlainObject(entry))
        throw new SafetensorsError(file, null, '__metadata__ must be an object of strings');
      for (const [mk, mv] of Object.entries(entry)) {
        if (typeof mv !== 'string')
          throw new SafetensorsError(
            file,
            null,
            `__metadata__ value '${mk}' must be a string, got ${JSON.stringify(mv)}`,
          );
        setOwn(header.metadata, mk, mv);
      }
      continue;
    }
    if (!isPlainObject(entry))
      throw new SafetensorsError(file, key, 'the entry must be an object {dtype, shape, data_offsets}');
    const { dtype, shape, data_offsets: offs } = entry;
    if (typeof dtype !== 'string' || !Object.hasOwn(ITEM_SIZE, dtype))
      throw new SafetensorsError(
        file,
        key,
        `unsupported dtype ${JSON.stringify(dtype)} (wgrad reads ${SUPPORTED})`,
      );
    if (!Array.isArray(shape) || !shape.every(isCount))
      throw new SafetensorsError(file, key, `bad shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isCount) || offs[0] > offs[1])
      throw new SafetensorsError(file, key, `bad data_offsets ${JSON.stringify(offs)}`);
    const [start, end] = offs as [number, number];
    const need = shapeSize(shape) * ITEM_SIZE[dtype]!;
    if (end - start !== need)
      throw new SafetensorsError(
        file,
        key,
        `data_offsets [${start}, ${end}] hold ${end - start} bytes but ${dtype}${fmtShape(shape)} needs ${need}`,
      );
    if (end > dataBytes)
      throw new SafetensorsError(
        file,
        key,
        `data_offsets [${start}, ${end}] run past the end of the ${dataBytes}-byte data section (the file is truncated or corrupt)`,
      );
    header.tensors.set(key, { dtype, shape: [...shape], data_offsets: [start, end] });
  }
  // The data section must be covered exactly once, like the official reader requires.
  const spans = [...header.tensors].sort(
    ([ka, a], [kb, b]) =>
      a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1] || (ka < kb ? -1 : 1),
  );
  let pos = 0;
  let prev: [string, SafetensorsTensorInfo] | null = null;
  for (const [key, info] of spans) {
    const [start, end] = info.data_offsets;
    if (start < pos && prev)
      throw new SafetensorsError(
        file,
        key,
        `data_offsets [${start}, ${end}] overlap tensor '${prev[0]}' [${prev[1].data_offsets.join(', ')}]`,
      );
    if (start > pos)
      throw new SafetensorsError(
        file,
        key,
        `data_offsets [${start}, ${end}] leave a gap: the previous tensor ends at ${pos}`,
      );
    pos = end;
    prev = [key, info];
  }
  if (pos !== dataBytes)
    throw new SafetensorsError(
      file,
      null,
      `the data section is ${dataBytes} bytes but the tensors cover ${pos} (trailing bytes)`,
    );
  return header;
}

/** Reads and validates the header of safetensors bytes (tensor names, dtypes, shapes, offsets, metadata). */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  name = 'safetensors bytes',
): Promise<SafetensorsHeader> {
  return readHeader(bytesSource(bytes), name);
}

// ---------------------------------------------------------------------------------------------------------
// Decoding file bytes into float32 / int32 host arrays.

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** The values of one tensor, converted to what wgrad stores (float32 or int32). */
function decode(
  file: string,
  key: string,
  info: SafetensorsTensorInfo,
  bytes: Uint8Array,
): Float32Array | Int32Array {
  // A copy, so the typed views below are aligned whatever the offset in the file.
  const buf = bytes.slice().buffer;
  const n = shapeSize(info.shape);
  const toInt32 = (values: ArrayLike<number | bigint>): Int32Array => {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (v < -(2 ** 31) || v >= 2 ** 31)
        throw new SafetensorsError(
          file,
          key,
          `${info.dtype} value ${v} at flat index ${i} does not fit int32 (wgrad's integer type)`,
        );
      out[i] = Number(v);
    }
    return out;
  };
  switch (info.dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'F64':
      return Float32Array.from(new Float64Array(buf));
    case 'F16':
      return Float32Array.from(new Uint16Array(buf), f16ToF32);
    case 'BF16': {
      const u16 = new Uint16Array(buf);
      const u32 = new Uint32Array(n);
      for (let i = 0; i < n; i++) u32[i] = u16[i]! << 16;
      return new Float32Array(u32.buffer);
    }
    case 'I64':
      return toInt32(new BigInt64Array(buf));
    case 'U64':
      return toInt32(new BigUint64Array(buf));
    case 'U32':
      return toInt32(new Uint32Array(buf));
    case 'I16':
      return Int32Array.from(new Int16Array(buf));
    case 'U16':
      return Int32Array.from(new Uint16Array(buf));
    case 'I8':
      return Int32Array.from(new Int8Array(buf));
    case 'U8':
      return Int32Array.from(new Uint8Array(buf));
    case 'BOOL':
      return Int32Array.from(new Uint8Array(buf), (b) => (b ? 1 : 0));
    default:
      throw new SafetensorsError(file, key, `unsupported dtype '${info.dtype}'`);
  }
}

/** Uploads host values bit-exactly (NaN/Inf/-0 included: tensor() would reject non-finite floats). */
function uploadExact(shape: Shape, data: Float32Array | Int32Array): Tensor {
  const bits = data instanceof Int32Array ? data : new Int32Array(data.buffer, data.byteOffset, data.length);
  const t = tensor(bits, { shape, dtype: 'int32' });
  if (data instanceof Int32Array) return t;
  const f = new Tensor(shape, 'float32', t.storage('load').retain());
  t.dispose();
  return f;
}

/**
 * Reads the whole file, validates it and decodes the tensors named by `want` (all when null) on the host.
 * No GPU memory is touched, so a failure here leaves nothing behind.
 */
export async function readSafetensors(
  src: ByteSource,
  path: string,
  want: ((key: string, info: SafetensorsTensorInfo) => boolean) | null,
  check?: (header: SafetensorsHeader) => void,
): Promise<{ header: SafetensorsHeader; values: Map<string, [number[], Float32Array | Int32Array]> }> {
  checkHost();
  const header = await readHeader(src, path);
  check?.(header);
  const data = await src.read(header.dataBytes, header.dataStart);
  if (data.length !== header.dataBytes)
    throw new SafetensorsError(path, null, 'the file changed while it was being read');
  const values = new Map<string, [number[], Float32Array | Int32Array]>();
  for (const [key, info] of header.tensors) {
    if (want && !want(key, info)) continue;
    const [s, e] = info.data_offsets;
    values.set(key, [info.shape, decode(path, key, info, data.subarray(s, e))]);
  }
  return { header, values };
}

/** Uploads every decoded tensor; on a failure the ones made so far are freed. */
export function uploadAll(values: Map<string, [number[], Float32Array | Int32Array]>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  try {
    for (const [key, [shape, data]] of values) out.set(key, uploadExact(shape, data));
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  }
  return out;
}

/**
 * Decodes every tensor of safetensors bytes (floats as float32, integers as int32). The caller owns the
 * tensors (they belong to the current scope, if any). The input is fully validated before any is made.
 */
export async function tensorsFromBytes(
  bytes: Uint8Array,
  name = 'safetensors bytes',
): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  const { header, values } = await readSafetensors(bytesSource(bytes), name, null);
  return { tensors: uploadAll(values), metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------------------
// Writing.

function safetensorsDType(t: Tensor): 'F32' | 'I32' {
  return t.dtype === 'float32' ? 'F32' : 'I32';
}

/**
 * Validates the names and metadata and lays out the header (float32 → F32, int32 → I32; tensors by name, all
 * dtypes are 4 bytes, as the official writer does). The returned generator yields the file's bytes chunk by
 * chunk, reading the tensors back from the GPU one at a time. `path` names the output in errors.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, Tensor>,
  path: string,
  metadata: Record<string, string> = {},
): () => AsyncGenerator<Uint8Array> {
  checkHost();
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string')
      throw new SafetensorsError(path, null, `metadata value '${k}' must be a string, got ${typeof v}`);
    setOwn(meta, k, v);
  }
  const keys = [...tensors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(meta).length) setOwn(header, '__metadata__', meta);
  let offset = 0;
  for (const key of keys) {
    if (!key || key === '__metadata__') throw new SafetensorsError(path, key, 'is not a valid tensor name');
    const t = tensors.get(key)!;
    const bytes = t.size * 4;
    setOwn(header, key, {
      dtype: safetensorsDType(t),
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes],
    });
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const utf8 = new TextEncoder();
  const pad = (8 - (utf8.encode(json).length % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = utf8.encode(json);
  const lenBytes = new Uint8Array(8);
  new DataView(lenBytes.buffer).setBigUint64(0, BigInt(headerBytes.length), true);

  // The data is read back from the GPU one tensor at a time while the file is written.
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield lenBytes;
    yield headerBytes;
    for (const key of keys) {
      const t = tensors.get(key)!;
      let data: Float32Array | Int32Array;
      try {
        data = await t.data();
      } catch (e) {
        throw new SafetensorsError(path, key, `cannot read it back: ${(e as Error).message}`);
      }
      yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
  }
  return chunks;
}

/** Tensors as the bytes of a .safetensors file (see encodeSafetensors). */
export async function tensorsToBytes(
  tensors: ReadonlyMap<string, Tensor>,
  metadata: Record<string, string> = {},
  name = 'safetensors bytes',
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of encodeSafetensors(tensors, name, metadata)()) parts.push(c.slice());
  const out = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of parts) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Modules.

/** The tensors and metadata `save` writes: `module.stateDict()` (PyTorch names), `{format: 'pt', ...}`. */
export function moduleContents(
  module: Module,
  opts: { metadata?: Record<string, string> } = {},
): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  return { tensors: module.stateDict(), metadata: { format: 'pt', ...opts.metadata } };
}

/** `module.stateDict()` as .safetensors bytes, exactly what `save` writes to a file. */
export function saveBytes(
  module: Module,
  opts: { metadata?: Record<string, string> } = {},
): Promise<Uint8Array> {
  const { tensors, metadata } = moduleContents(module, opts);
  return tensorsToBytes(tensors, metadata);
}

/** Checks a header against a module's state: keys (when strict), shapes and dtypes. */
function checkAgainstModule(
  file: string,
  module: Module,
  entries: Map<string, SafetensorsTensorInfo>,
  strict: boolean,
): void {
  const own = module.stateDict();
  const missing = [...own.keys()].filter((k) => !entries.has(k));
  const unexpected = [...entries.keys()].filter((k) => !own.has(k));
  if (strict && (missing.length || unexpected.length)) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing key(s) ${missing.map((k) => `'${k}'`).join(', ')}`);
    if (unexpected.length) parts.push(`unexpected key(s) ${unexpected.map((k) => `'${k}'`).join(', ')}`);
    throw new SafetensorsError(
      file,
      missing[0] ?? unexpected[0]!,
      `does not match the module: ${parts.join('; ')}`,
      {
        keyInMessage: false,
      },
    );
  }
  for (const [key, t] of own) {
    const info = entries.get(key);
    if (!info) continue;
    const dtype = safetensorsDTypeToWgrad(info.dtype);
    if (
      dtype !== t.dtype ||
      info.shape.length !== t.shape.length ||
      info.shape.some((d, i) => d !== t.shape[i])
    )
      throw new SafetensorsError(
        file,
        key,
        `is ${info.dtype}${fmtShape(info.shape)} but the module expects ${t.dtype}${fmtShape(t.shape)}`,
      );
  }
}

/** Keys under this prefix hold optimizer state in checkpoints written by saveCheckpoint. */
const OPT_PREFIX = 'optimizer.';

/**
 * Loads a .safetensors input (e.g. written by PyTorch's `safetensors.torch.save_file(model.state_dict())`)
 * into a module. Strict by default: missing or unexpected keys fail. Shapes must match; F64/F16/BF16 load as
 * float32 and I64 and the other integer types as int32. Everything is validated before any parameter is
 * written, so a failure leaves the module as it was. The `optimizer.*` tensors of a training checkpoint are
 * skipped.
 */
export async function loadFrom(
  src: ByteSource,
  path: string,
  module: Module,
  opts: { strict?: boolean } = {},
): Promise<void> {
  const strict = opts.strict ?? true;
  const own = new Set(module.stateDict().keys());
  const { values } = await readSafetensors(
    src,
    path,
    (key) => own.has(key),
    (header) => {
      const isCheckpoint = Object.hasOwn(header.metadata, 'wgrad.optimizer');
      const entries = isCheckpoint
        ? new Map([...header.tensors].filter(([k]) => !k.startsWith(OPT_PREFIX)))
        : header.tensors;
      checkAgainstModule(path, module, entries, strict);
    },
  );
  scope(() => {
    const loaded = uploadAll(values);
    try {
      module.loadStateDict(loaded, { strict: false, source: path });
    } finally {
      for (const t of loaded.values()) t.dispose();
    }
  });
}

/** `load` from bytes (an uploaded file); `name` names them in errors. */
export function loadBytes(
  module: Module,
  bytes: Uint8Array,
  opts: { strict?: boolean; name?: string } = {},
): Promise<void> {
  return loadFrom(bytesSource(bytes), opts.name ?? 'safetensors bytes', module, opts);
}

// ---------------------------------------------------------------------------------------------------------
// Training checkpoints.

/** JSON that keeps ±Infinity and NaN (e.g. `bestLoss: Infinity`) as `{"$float": "Infinity"}`. */
function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    typeof x === 'number' && !Number.isFinite(x) ? { $float: String(x) } : x,
  );
}
function fromJson(s: string): unknown {
  return JSON.parse(s, (_k, x) =>
    isPlainObject(x) &&
    Object.keys(x).length === 1 &&
    (x.$float === 'Infinity' || x.$float === '-Infinity' || x.$float === 'NaN')
      ? Number(x.$float)
      : x,
  );
}

/** An optimizer's hyper-parameters: its own plain fields besides params/state/lr/stepCount. */
function hyperParams(opt: Optimizer): Record<string, unknown> {
  const skip = new Set(['params', 'state', 'lr', 'stepCount']);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opt)) {
    if (skip.has(k)) continue;
    const plain = (x: unknown) => ['number', 'boolean', 'string'].includes(typeof x);
    if (plain(v) || (Array.isArray(v) && v.every(plain))) out[k] = v;
  }
  return out;
}

interface OptimizerMeta {
  class: string;
  stepCount: number;
  lr: number;
  numParams: number;
  hyperParams: Record<string, unknown>;
}

export interface CheckpointContents<M extends Record<string, unknown> = Record<string, unknown>> {
  model: Module;
  optimizer?: Optimizer;
  /** Anything JSON can hold (epoch, step, bestLoss, seed, …); ±Infinity and NaN survive too. */
  meta?: M;
}

/**
 * What a training checkpoint holds: the model's tensors under their PyTorch names (so
 * `model.load_state_dict(load_file(path), strict=False)` works in PyTorch), the optimizer's state tensors
 * under `optimizer.state.<i>.<name>`, and in `__metadata__` the JSON strings `wgrad.meta`, `wgrad.optimizer`
 * ({class, stepCount, lr, numParams, hyperParams}) and `wgrad.rng` (the RNG position).
 */
export function checkpointContents(
  path: string,
  c: CheckpointContents,
): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const tensors = new Map(c.model.stateDict());
  for (const k of tensors.keys())
    if (k.startsWith(OPT_PREFIX))
      throw new SafetensorsError(
        path,
        k,
        `model keys must not start with '${OPT_PREFIX}' (reserved for the optimizer state)`,
      );
  const metadata: Record<string, string> = {
    format: 'pt',
    'wgrad.checkpoint': '1',
    'wgrad.meta': toJson(c.meta ?? {}),
    'wgrad.rng': JSON.stringify(rngState()),
  };
  if (c.optimizer) {
    const sd = c.optimizer.stateDict();
    for (const [k, t] of sd.tensors) tensors.set(OPT_PREFIX + k, t);
    const om: OptimizerMeta = {
      class: c.optimizer.kind,
      stepCount: sd.stepCount,
      lr: sd.lr,
      numParams: c.optimizer.params.length,
      hyperParams: hyperParams(c.optimizer),
    };
    metadata['wgrad.optimizer'] = toJson(om);
  }
  return { tensors, metadata };
}

/** A training checkpoint as .safetensors bytes, exactly what `saveCheckpoint` writes to a file. */
export function checkpointToBytes(c: CheckpointContents, name = 'checkpoint bytes'): Promise<Uint8Array> {
  const { tensors, metadata } = checkpointContents(name, c);
  return tensorsToBytes(tensors, metadata, name);
}

function parseMeta<T>(file: string, metadata: Record<string, string>, key: string, fallback?: T): T {
  const s = metadata[key];
  if (s === undefined) {
    if (fallback !== undefined) return fallback;
    throw new SafetensorsError(file, null, `not a wgrad checkpoint: __metadata__ has no '${key}'`);
  }
  try {
    return fromJson(s) as T;
  } catch (e) {
    throw new SafetensorsError(
      file,
      null,
      `__metadata__ '${key}' is not valid JSON (${(e as Error).message})`,
    );
  }
}

const isU32 = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32;

/**
 * Restores a checkpoint written by saveCheckpoint: the model's parameters and buffers, the optimizer's state,
 * step count, lr and hyper-parameters (like torch's `optimizer.load_state_dict`), and the RNG position.
 * Returns the saved `meta`. Everything is validated first: on an error nothing (model, optimizer, RNG)
 * has changed.
 */
export async function loadCheckpointFrom<M extends Record<string, unknown> = Record<string, unknown>>(
  src: ByteSource,
  path: string,
  c: { model: Module; optimizer?: Optimizer },
): Promise<M> {
  const { model, optimizer } = c;
  let meta!: M;
  let om = null as OptimizerMeta | null;
  let rng!: ReturnType<typeof rngState>;
  const { values } = await readSafetensors(src, path, null, (header) => {
    const md = header.metadata;
    meta = parseMeta<M>(path, md, 'wgrad.meta');
    rng = parseMeta(path, md, 'wgrad.rng');
    if (!isPlainObject(rng) || !isU32(rng.seedLo) || !isU32(rng.seedHi) || !isCount(rng.counter))
      throw new SafetensorsError(
        path,
        null,
        `__metadata__ 'wgrad.rng' is not an RNG state: ${md['wgrad.rng']}`,
      );
    const modelEntries = new Map([...header.tensors].filter(([k]) => !k.startsWith(OPT_PREFIX)));
    checkAgainstModule(path, model, modelEntries, true);
    if (!optimizer) return;
    om = parseMeta<OptimizerMeta | null>(path, md, 'wgrad.optimizer', null);
    const name = optimizer.kind;
    if (!om)
      throw new SafetensorsError(path, null, `the checkpoint has no optimizer state to load into ${name}`);
    if (om.class !== name)
      throw new SafetensorsError(path, null, `the optimizer state is for ${om.class}, not ${name}`);
    if (om.numParams !== optimizer.params.length)
      throw new SafetensorsError(
        path,
        null,
        `the optimizer state covers ${om.numParams} parameters but the ${name} has ${optimizer.params.length}`,
      );
    if (
      !(typeof om.lr === 'number' && om.lr >= 0) ||
      !isCount(om.stepCount) ||
      !isPlainObject(om.hyperParams)
    )
      throw new SafetensorsError(path, null, `bad 'wgrad.optimizer' metadata: ${md['wgrad.optimizer']}`);
    for (const [key, info] of header.tensors) {
      if (!key.startsWith(OPT_PREFIX)) continue;
      const m = /^state\.(\d+)\.(\w+)$/.exec(key.slice(OPT_PREFIX.length));
      const p = m ? optimizer.params[Number(m[1])] : undefined;
      if (!p) throw new SafetensorsError(path, key, `is not optimizer state of the ${name}`);
      if (
        safetensorsDTypeToWgrad(info.dtype) !== 'float32' ||
        info.shape.length !== p.shape.length ||
        info.shape.some((d, i) => d !== p.shape[i])
      )
        throw new SafetensorsError(
          path,
          key,
          `is ${info.dtype}${fmtShape(info.shape)} but parameter ${m![1]} is float32${fmtShape(p.shape)}`,
        );
    }
  });
  scope(() => {
    const loaded = uploadAll(values);
    try {
      const modelPart = new Map([...loaded].filter(([k]) => !k.startsWith(OPT_PREFIX)));
      model.loadStateDict(modelPart, { strict: true, source: path });
      if (optimizer && om) {
        const o: OptimizerMeta = om;
        const tensors = new Map(
          [...loaded]
            .filter(([k]) => k.startsWith(OPT_PREFIX))
            .map(([k, t]) => [k.slice(OPT_PREFIX.length), t] as const),
        );
        optimizer.loadStateDict({ stepCount: o.stepCount, lr: o.lr, tensors });
        const target = optimizer as unknown as Record<string, unknown>;
        for (const [k, v] of Object.entries(o.hyperParams))
          if (
            Object.hasOwn(target, k) &&
            typeof target[k] === typeof v &&
            Array.isArray(target[k]) === Array.isArray(v)
          )
            target[k] = Array.isArray(v) ? [...v] : v;
      }
    } finally {
      for (const t of loaded.values()) t.dispose();
    }
  });
  setRngState({ seedLo: rng.seedLo, seedHi: rng.seedHi, counter: rng.counter });
  return meta;
}

/** `loadCheckpoint` from bytes (an uploaded file); `name` names them in errors. */
export function loadCheckpointBytes<M extends Record<string, unknown> = Record<string, unknown>>(
  bytes: Uint8Array,
  c: { model: Module; optimizer?: Optimizer },
  name = 'checkpoint bytes',
): Promise<M> {
  return loadCheckpointFrom<M>(bytesSource(bytes), name, c);
}
