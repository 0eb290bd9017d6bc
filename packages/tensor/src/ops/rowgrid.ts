// Row-grid kernels: the innermost dim of a (collapsed) shape on the lanes, each lane walking up to `yb` rows of
// the next dim, the outer dims flattened on the workgroup's z. They index without dividing a flat index by
// uniform sizes, which lavapipe runs as a scalar `divl` per lane and dim, and on CPU adapters a workgroup
// takes enough rows to share lavapipe's fixed cost per workgroup. Used by the strided copy, the elementwise
// broadcast form, pooling, nearest upsampling and gather (measured there).
import { cpuAdapter, runtime } from '../gpu.js';
import { MAX_RANK } from './shape.js';

/** Outer dims a row-grid kernel splits off z (the two innermost dims are X and Y). */
export const OUTER = MAX_RANK - 2;

/**
 * The shape of a row-grid kernel over Z × Y × X elements: X on the lanes (`gx` per workgroup: 64, or 8 when
 * X < 64), up to `yb` rows of Y per lane, Z on the workgroup's z. lavapipe pays a fixed cost per workgroup
 * (a 64-element workgroup of a permute cost ≈ 0.6 µs), so on CPU adapters a workgroup takes up to ≈ 4096
 * elements (fewer when Y is short: a Y of 1 gives 64); a GPU gets one row per workgroup. Either way enough
 * rows per lane that the rows fit the grid. Null when X or Z exceed the adapter's workgroup limits.
 */
export function rowGrid(
  X: number,
  Y: number,
  Z: number,
): { gx: number; yb: number; groups: [number, number, number] } | null {
  const max = runtime().maxWorkgroupsPerDim;
  const gx = X >= 64 ? 64 : 8;
  const want = cpuAdapter() ? Math.max(1, Math.floor(4096 / Math.min(X, gx))) : 1;
  const yb = Math.max(1, Math.min(Y, Math.max(want, Math.ceil(Y / max))));
  const groups: [number, number, number] = [Math.ceil(X / gx), Math.ceil(Y / yb), Z];
  return groups.every((g) => g <= max) ? { gx, yb, groups } : null;
}

/**
 * X, Y and Z of a collapsed shape of rank ≥ 1, and the uniform words of its outer sizes: innermost first,
 * 1 past the last (so that unused dims split nothing off), padded to MAX_RANK words.
 */
export function gridDims(shape: readonly number[]): { X: number; Y: number; Z: number; sizes: number[] } {
  const r = shape.length;
  const outer = shape.slice(0, Math.max(0, r - 2)).reverse();
  return {
    X: shape[r - 1] ?? 1,
    Y: r > 1 ? shape[r - 2]! : 1,
    Z: outer.reduce((p, d) => p * d, 1),
    sizes: [...outer, ...new Array<number>(MAX_RANK - outer.length).fill(1)],
  };
}

/** The uniform words of one operand's strides over a gridDims shape: (x, y, outer innermost first), 0-padded. */
export function gridStrides(st: readonly number[]): number[] {
  const r = st.length;
  const words = [st[r - 1] ?? 0, r > 1 ? st[r - 2]! : 0, ...st.slice(0, Math.max(0, r - 2)).reverse()];
  return [...words, ...new Array<number>(MAX_RANK - words.length).fill(0)];
}

/**
 * WGSL: `var rem = wid.z;` then, for each outer dim d (sizes in `sizes`, an array<vec4<u32>, 2> of gridDims
 * words), its index split off `rem` and added to every `offsets` variable times that operand's stride (an
 * array<vec4<u32>> of gridStrides words, operand k's two vec4s from `at(k)`). The divisions are per workgroup.
 */
export function splitOuter(
  sizes: string,
  offsets: readonly { name: string; st: string; at: number }[],
): string {
  const word = (arr: string, at: number, w: number) => `${arr}[${at + (w >> 2)}][${w & 3}]`;
  return `var rem = wid.z;
  ${Array.from(
    { length: OUTER },
    (_, d) =>
      `{ let s = ${word(sizes, 0, d)}; let c = rem % s; rem = rem / s; ${offsets
        .map((o) => `${o.name} = ${o.name} + c * ${word(o.st, o.at, d + 2)};`)
        .join(' ')} }`,
  ).join('\n  ')}`;
}

/**
 * WGSL: main() of a row-grid kernel up to the body of its row loop: `head` (before the lanes past `X` return;
 * it may set up per-lane offsets at row y0 = wid.y · `yb` for the body to advance), then `row` from y0 over at
 * most `yb` rows of `Y`. Close the body with ROW_GRID_END.
 */
export const rowGridMain = (gx: number, X: string, Y: string, yb: string, head = '') =>
  `@compute @workgroup_size(${gx}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let y0 = wid.y * ${yb};
  ${head}
  if (gid.x >= ${X}) { return; }
  let yEnd = min(y0 + ${yb}, ${Y});
  for (var row = y0; row < yEnd; row = row + 1u) {`;
export const ROW_GRID_END = `
  }
}`;
