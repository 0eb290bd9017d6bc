// Reader for the IDX format of MNIST-style data sets (raw or gzip-compressed).
//
// Layout: magic = 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 dimensions, then the values in
// row-major order, big-endian. Types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E
// float64.
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { DataError, errorText } from './errors.js';

const gunzipAsync = promisify(gunzip);

export type IdxDType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  shape: number[];
  dtype: IdxDType;
  /** Values in row-major order, in native byte order. */
  data: IdxData;
}

/** IDX type codes, their dtypes and element sizes. */
export const IDX_TYPES: Readonly<Record<number, { dtype: IdxDType; bytes: number }>> = {
  8: { dtype: 'uint8', bytes: 1 },
  9: { dtype: 'int8', bytes: 1 },
  11: { dtype: 'int16', bytes: 2 },
  12: { dtype: 'int32', bytes: 4 },
  13: { dtype: 'float32', bytes: 4 },
  14: { dtype: 'float64', bytes: 8 },
};

const hex = (v: number, digits: number) => `0x${v.toString(16).padStart(digits, '0')}`;

/** True when `bytes` starts with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses IDX bytes (already decompressed). `name` is used in error messages. Throws a DataError for a
 * truncated header or body, a bad magic number, a zero dimension count or trailing bytes.
 */
export function parseIdx(bytes: Uint8Array, name = '<IDX buffer>'): IdxArray {
  const fail = (reason: string): never => {
    throw new DataError({ file: name, reason });
  };
  if (bytes.length < 4) fail(`truncated IDX file: ${bytes.length} bytes, the header needs at least 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const type = IDX_TYPES[bytes[2]!];
  if (bytes[0] !== 0 || bytes[1] !== 0 || !type) {
    fail(
      `bad magic number ${hex(magic, 8)}: expected 0x0000TTNN with type TT one of 08 (uint8), 09 (int8), 0b (int16), 0c (int32), 0d (float32), 0e (float64)` +
        (isGzip(bytes) ? ' (the data is still gzip-compressed)' : ''),
    );
  }
  const ndim = bytes[3]!;
  if (ndim === 0) fail(`bad magic number ${hex(magic, 8)}: zero dimensions`);
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes)
    fail(
      `truncated IDX file: ${bytes.length} bytes, the header of a ${ndim}-dimensional array needs ${headerBytes}`,
    );
  const shape: number[] = [];
  let count = 1;
  for (let d = 0; d < ndim; d++) {
    const n = view.getUint32(4 + 4 * d, false);
    shape.push(n);
    count *= n;
  }
  const { dtype, bytes: size } = type!;
  const expected = count * size;
  const body = bytes.length - headerBytes;
  const what = `shape [${shape.join(', ')}] of ${dtype} needs ${expected} data bytes`;
  if (body < expected) fail(`truncated IDX file: ${what}, found ${body}`);
  if (body > expected) fail(`size mismatch: ${what}, found ${body} (${body - expected} trailing bytes)`);
  if (count > 2 ** 31 - 1) fail(`array too large: ${what}`);

  const o = headerBytes;
  let data: IdxData;
  switch (dtype) {
    case 'uint8':
    case 'int8': {
      // A copy (never a view of a Node Buffer's shared pool).
      const a = new Uint8Array(count);
      a.set(bytes.subarray(o, o + count));
      data = dtype === 'uint8' ? a : new Int8Array(a.buffer);
      break;
    }
    case 'int16': {
      const a = new Int16Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getInt16(o + 2 * i, false);
      data = a;
      break;
    }
    case 'int32': {
      const a = new Int32Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getInt32(o + 4 * i, false);
      data = a;
      break;
    }
    case 'float32': {
      const a = new Float32Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat32(o + 4 * i, false);
      data = a;
      break;
    }
    default: {
      const a = new Float64Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat64(o + 8 * i, false);
      data = a;
    }
  }
  return { shape, dtype, data };
}

/**
 * Reads an IDX file, raw or gzip-compressed (recognised by its content, whatever the file name). Errors
 * (missing file, corrupt gzip, bad header, wrong size) are DataErrors naming the file.
 */
export async function readIdx(path: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new DataError({ file: path, reason: `cannot read IDX file: ${errorText(e)}` }, { cause: e });
  }
  if (isGzip(bytes)) {
    try {
      // Large output chunks: several times faster than the default 16 KiB for the 47 MB MNIST files.
      bytes = await gunzipAsync(bytes, { chunkSize: 1 << 22 });
    } catch (e) {
      throw new DataError(
        { file: path, reason: `corrupt or truncated gzip data: ${errorText(e)}` },
        { cause: e },
      );
    }
  }
  return parseIdx(bytes, path);
}
