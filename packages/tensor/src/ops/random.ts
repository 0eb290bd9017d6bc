// Seeded GPU random numbers: Philox4x32-10, a counter-based generator. Each random op draws from the stream
// (seed, op counter, element index), so `manualSeed(n)` makes every later random op reproducible and no
// state lives on the GPU. Each invocation produces 4 values.
import { dispatch, FLAT_INDEX, f32, grid, kernelFor, MAIN_1D } from '../gpu.js';
import { type Shape, Tensor } from '../tensor.js';

const WG = 64;
let seedLo = 0x2545f491;
let seedHi = 0x9e3779b9;
let counter = 0;

/** Re-seeds the generator: every later random op (rand, randn, dropout, init) is reproducible. */
export function manualSeed(seed: number): void {
  if (!Number.isFinite(seed)) throw new Error(`manualSeed: seed must be a finite number, got ${seed}`);
  const s = Math.trunc(seed);
  seedLo = s >>> 0;
  seedHi = Math.floor(s / 2 ** 32) >>> 0;
  counter = 0;
}

/** The generator's position (seed and counter), e.g. for a checkpoint to resume the same stream. */
export function rngState(): { seedLo: number; seedHi: number; counter: number } {
  return { seedLo, seedHi, counter };
}
export function setRngState(s: { seedLo: number; seedHi: number; counter: number }): void {
  ({ seedLo, seedHi, counter } = s);
}

const PHILOX = `
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let al = a & 0xffffu; let ah = a >> 16u; let bl = b & 0xffffu; let bh = b >> 16u;
  let ll = al * bl; let hl = ah * bl; let lh = al * bh; let hh = ah * bh;
  let cross = (ll >> 16u) + (hl & 0xffffu) + lh;
  return vec2<u32>(hh + (hl >> 16u) + (cross >> 16u), (cross << 16u) | (ll & 0xffffu));
}
fn philox(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr; var k = key;
  for (var r = 0u; r < 10u; r = r + 1u) {
    let p0 = mulhilo(0xD2511F53u, c.x);
    let p1 = mulhilo(0xCD9E8D57u, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}
fn unit(x: u32) -> f32 { return f32(x >> 8u) * (1.0 / 16777216.0); }            // [0, 1)
fn unitOpen(x: u32) -> f32 { return (f32(x >> 8u) + 1.0) * (1.0 / 16777216.0); }  // (0, 1]`;

const source = (normal: boolean) => `
struct U { n: u32, k0: u32, k1: u32, op: u32, a: f32, b: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${PHILOX}
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  let base = i * 4u;
  if (base >= u.n) { return; }
  let r = philox(vec4<u32>(i, u.op, 0u, 0u), vec2<u32>(u.k0, u.k1));
  ${
    normal
      ? `let r1 = sqrt(-2.0 * log(unitOpen(r.x)));
  let r2 = sqrt(-2.0 * log(unitOpen(r.z)));
  let t1 = 6.283185307179586 * unit(r.y);
  let t2 = 6.283185307179586 * unit(r.w);
  let v = vec4<f32>(r1 * cos(t1), r1 * sin(t1), r2 * cos(t2), r2 * sin(t2)) * u.b + u.a;`
      : 'let v = vec4<f32>(unit(r.x), unit(r.y), unit(r.z), unit(r.w)) * (u.b - u.a) + u.a;'
  }
  for (var j = 0u; j < 4u; j = j + 1u) { if (base + j < u.n) { y[base + j] = v[j]; } }
}`;

function random(normal: boolean, shape: Shape, a: number, b: number, requiresGrad = false): Tensor {
  const y = new Tensor(shape, 'float32');
  const op = counter++;
  if (y.size > 0)
    dispatch(
      kernelFor(normal ? 'randn' : 'rand', () => source(normal)),
      [y.size, seedLo, seedHi, op, f32(a), f32(b)],
      [y.buffer('random')],
      grid(Math.ceil(Math.ceil(y.size / 4) / WG)),
    );
  return requiresGrad ? y.requiresGrad_(true) : y;
}

/** Uniform samples in [low, high) (default [0, 1)); `requiresGrad` makes the result a leaf that records. */
export function rand(
  shape: Shape,
  opts: { low?: number; high?: number; requiresGrad?: boolean } = {},
): Tensor {
  return random(false, shape, opts.low ?? 0, opts.high ?? 1, opts.requiresGrad);
}
/** Normal samples with the given mean and std (default 0, 1); `requiresGrad` as for `rand`. */
export function randn(
  shape: Shape,
  opts: { mean?: number; std?: number; requiresGrad?: boolean } = {},
): Tensor {
  if ((opts.std ?? 1) < 0) throw new Error(`randn: std must be ≥ 0, got ${opts.std}`);
  return random(true, shape, opts.mean ?? 0, opts.std ?? 1, opts.requiresGrad);
}
