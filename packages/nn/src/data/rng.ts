// A small seeded PRNG for data shuffling (independent of the GPU RNG in @wgrad/tensor, so that the order of
// the data never depends on how many random numbers the model drew).

/** splitmix32: scrambles a 32-bit state; used to seed xoshiro128** from one number. */
function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [state, (z ^ (z >>> 16)) >>> 0];
}

/** Folds any finite number (negative, fractional, beyond 2^32) into 32 bits deterministically. */
function seedBits(seed: number): [number, number] {
  if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  const frac = Math.round((seed - Math.floor(seed)) * 2 ** 32) >>> 0;
  return [lo, (hi ^ Math.imul(frac, 0x9e3779b1)) >>> 0];
}

/**
 * xoshiro128** (Blackman & Vigna), seeded through splitmix32. Deterministic across platforms: the same seed
 * gives the same stream everywhere.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed = 0) {
    const [lo, hi] = seedBits(seed);
    let st = lo ^ Math.imul(hi, 0x27d4eb2d);
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      let v: number;
      [st, v] = splitmix32(st);
      out.push(v);
    }
    [this.s0, this.s1, this.s2, this.s3] = out as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** A uniform integer in [0, n) without modulo bias (n ≤ 2^32). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32)
      throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    let r = this.nextU32();
    while (r >= limit) r = this.nextU32();
    return r % n;
  }

  /** Shuffles `a` in place (Fisher–Yates) and returns it. */
  shuffle<A extends { length: number; [i: number]: number }>(a: A): A {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A random permutation of 0..n-1 determined by `seed`. */
export function permutation(n: number, seed: number): Int32Array {
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`permutation: n must be a non-negative integer, got ${n}`);
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return new Rng(seed).shuffle(a);
}
