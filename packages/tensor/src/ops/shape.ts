// Shape arithmetic shared by the ops: axis normalisation, broadcasting, strides and dimension collapsing.
import type { Shape } from '../tensor.js';
import { fmtShape } from '../tensor.js';

export const MAX_RANK = 8;

export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= Math.max(rank, 1))
    throw new Error(`${op}: dim ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

export function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = (typeof axes === 'number' ? [axes] : [...axes]).map((a) => normAxis(op, a, rank));
  if (new Set(list).size !== list.length) throw new Error(`${op}: repeated dim in [${list.join(',')}]`);
  return list.sort((a, b) => a - b);
}

/** NumPy broadcasting of two shapes; `op` names the op in the error. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1)
      throw new Error(
        `${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast together (dim ${i}: ${x} vs ${y})`,
      );
    out.push(x === 1 ? y : x);
  }
  return out;
}

export function contiguousStrides(shape: Shape): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = s;
    s *= shape[i]!;
  }
  return st;
}

/** Strides of `inShape` read at positions of `outShape` (right-aligned): 0 on broadcast dims. */
export function broadcastStrides(inShape: Shape, outShape: Shape): number[] {
  const st = contiguousStrides(inShape);
  const lead = outShape.length - inShape.length;
  return outShape.map((_, i) => (i < lead || inShape[i - lead] === 1 ? 0 : st[i - lead]!));
}

/**
 * Merges adjacent dims that are contiguous for every stride set (fewer dims = less index arithmetic in the
 * kernel). Returns the collapsed shape and strides. Size-1 dims are dropped.
 */
export function collapse(shape: Shape, strides: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (d === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((st, k) => outStrides[k]![last] === st[i]! * d)) {
      outShape[last]! *= d;
      strides.forEach((st, k) => {
        outStrides[k]![last] = st[i]!;
      });
    } else {
      outShape.push(d);
      strides.forEach((st, k) => {
        outStrides[k]!.push(st[i]!);
      });
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Pads a list of u32 words to `n` entries (uniform arrays have a fixed length). */
export function padWords(v: readonly number[], n = MAX_RANK): number[] {
  if (v.length > n) throw new Error(`internal: rank ${v.length} exceeds the kernel limit ${n}`);
  return [...v, ...new Array<number>(n - v.length).fill(0)];
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
