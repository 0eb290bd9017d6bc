// Creating tensors from host data and by shape.

import { dispatch, FLAT_INDEX, f32, grid, i32, kernel, MAIN_1D } from './gpu.js';
import { full } from './ops/elementwise.js';
import { type DType, fmtShape, type NestedArray, type Shape, Tensor, upload } from './tensor.js';

export interface TensorOptions {
  shape?: Shape;
  dtype?: DType;
  requiresGrad?: boolean;
}

/** Halfway between the largest float32 and 2^128: values from here on round to Infinity in float32. */
const F32_MAX = 3.4028235677973366e38;

/** Flattens rectangular nested arrays, checking that every row has the same length. */
function flattenNested(data: NestedArray): { shape: number[]; flat: number[] } {
  const shape: number[] = [];
  let probe: NestedArray = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0] as NestedArray;
    if (probe === undefined) break;
  }
  const flat: number[] = [];
  const walk = (v: NestedArray, depth: number, path: number[]) => {
    if (depth === shape.length) {
      if (typeof v !== 'number')
        throw new Error(`tensor: expected a number at [${path.join('][')}], got ${JSON.stringify(v)}`);
      flat.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth])
      throw new Error(
        `tensor: ragged nested array at [${path.join('][')}]: expected length ${shape[depth]}, got ${Array.isArray(v) ? v.length : typeof v}`,
      );
    v.forEach((x, i) => {
      walk(x, depth + 1, [...path, i]);
    });
  };
  walk(data, 0, []);
  return { shape, flat };
}

/**
 * A tensor from host data: a number, nested arrays, or a flat array / typed array (with `shape`, default
 * 1-D). dtype defaults to int32 for Int32Array, else float32. Non-finite values are rejected.
 */
export function tensor(data: NestedArray | ArrayLike<number>, opts: TensorOptions = {}): Tensor {
  let shape: number[];
  let values: ArrayLike<number>;
  if (typeof data === 'number') {
    shape = [];
    values = [data];
  } else if (ArrayBuffer.isView(data) || (opts.shape && Array.isArray(data) && !data.some(Array.isArray))) {
    values = data as ArrayLike<number>;
    shape = opts.shape ? [...opts.shape] : [values.length];
  } else if (Array.isArray(data)) {
    const f = flattenNested(data as NestedArray);
    shape = f.shape;
    values = f.flat;
  } else throw new Error(`tensor: unsupported data of type ${typeof data}`);
  if (opts.shape && opts.shape.reduce((a, b) => a * b, 1) !== values.length)
    throw new Error(`tensor: ${values.length} values do not fill shape ${fmtShape(opts.shape)}`);
  if (opts.shape) shape = [...opts.shape];
  const dtype: DType = opts.dtype ?? (data instanceof Int32Array ? 'int32' : 'float32');
  let typed: Float32Array | Int32Array;
  if (dtype === 'float32' && values instanceof Float32Array) {
    // Fast path for float32 host batches (data loaders): a tight finiteness loop and a memcpy, ≈ 40× faster
    // than the generic checks and Float32Array.from (4.8 → ~0.1 ms for a 128×784 batch).
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v - v !== 0) throw new Error(`tensor: non-finite value ${v} at flat index ${i}`);
    }
    typed = new Float32Array(values);
  } else {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      // Checked against the float32 range too: 1e39 is finite in JS but Infinity in a Float32Array.
      if (typeof v !== 'number' || !Number.isFinite(v) || (dtype === 'float32' && Math.abs(v) >= F32_MAX))
        throw new Error(`tensor: non-finite value ${v} at flat index ${i}`);
      if (dtype === 'int32' && (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31))
        throw new Error(`tensor: int32 value ${v} at flat index ${i} is not a 32-bit integer`);
    }
    typed = dtype === 'float32' ? new Float32Array(values) : new Int32Array(values);
  }
  const t = upload(shape, dtype, typed);
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

export const zeros = (shape: Shape, dtype: DType = 'float32') => full(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = 'float32') => full(shape, 1, dtype);
export const zerosLike = (t: Tensor) => full(t.shape, 0, t.dtype);
export const onesLike = (t: Tensor) => full(t.shape, 1, t.dtype);
export const fullLike = (t: Tensor, value: number) => full(t.shape, value, t.dtype);

// mode 0: float32; 1: int32 rounded from the float value; 2: exact int32 arithmetic (integer start and
// step: float32 would round values above 2^24).
const ARANGE = `
struct U { n: u32, start: f32, step: f32, mode: u32, istart: i32, istep: i32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> y: array<u32>;
${MAIN_1D(256)} {
  ${FLAT_INDEX(256)}
  if (i >= u.n) { return; }
  let v = u.start + f32(i) * u.step;
  var r = bitcast<u32>(v);
  if (u.mode == 1u) { r = bitcast<u32>(i32(round(v))); }
  if (u.mode == 2u) { r = bitcast<u32>(u.istart + i32(i) * u.istep); }
  y[i] = r;
}`;

/** Values start, start+step, … below end (PyTorch's arange; int32 when all arguments are integers). */
export function arange(start: number, end?: number, step = 1, dtype?: DType): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  if (step === 0 || !Number.isFinite(s) || !Number.isFinite(e) || !Number.isFinite(step))
    throw new Error(`arange: invalid range start=${s} end=${e} step=${step}`);
  const n = Math.max(0, Math.ceil((e - s) / step));
  const dt: DType = dtype ?? ([s, e, step].every(Number.isInteger) ? 'int32' : 'float32');
  const exact = dt === 'int32' && Number.isInteger(s) && Number.isInteger(step);
  if (dt === 'int32' && n && [s, s + (n - 1) * step].some((v) => v < -(2 ** 31) || v >= 2 ** 31))
    throw new Error(`arange: values from ${s} to ${e} do not fit int32`);
  const y = new Tensor([n], dt);
  if (n)
    dispatch(
      kernel('arange', ARANGE),
      [n, f32(s), f32(step), exact ? 2 : dt === 'int32' ? 1 : 0, i32(exact ? s : 0), i32(exact ? step : 0)],
      [y.buffer('arange')],
      grid(Math.ceil(n / 256)),
    );
  return y;
}

export function linspace(start: number, end: number, steps: number): Tensor {
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`linspace: steps must be a positive integer, got ${steps}`);
  const y = new Tensor([steps], 'float32');
  const step = steps === 1 ? 0 : (end - start) / (steps - 1);
  dispatch(
    kernel('arange', ARANGE),
    [steps, f32(start), f32(step), 0, i32(0), i32(0)],
    [y.buffer('linspace')],
    grid(Math.ceil(steps / 256)),
  );
  return y;
}
