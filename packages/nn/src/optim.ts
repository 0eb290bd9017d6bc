// Optimizers with their state on the GPU. A step is one fused kernel per group of parameters (as many as the
// adapter's storage-buffer limit lets one dispatch bind: 4 for Adam on lavapipe's 16) that reads the
// gradients and updates the parameters and their state buffers in place (no intermediate tensors). The
// kernels walk the group's vec4s as one range, 2 per invocation (lavapipe: 3× faster than one float per
// invocation); every pooled buffer is a multiple of 16 bytes, so the last vec4 of a tensor stays inside its
// own buffer.
import {
  dispatch,
  FLAT_INDEX,
  f32,
  full,
  grid,
  keep,
  keepNan4,
  kernelFor,
  limits,
  MAIN_1D,
  type Tensor,
  type UWord,
} from '@wgrad/tensor';
import type { Parameter } from './module.js';

const WG = 64;
/** vec4s per invocation. */
const V = 2;
/** Parameters per dispatch at most (the uniform's `ends` array holds 12). */
const MAX_GROUP = 12;

/**
 * WGSL of a step over P parameters: parameter k's buffers are `${name}${k}` (bindings 1… in the order of
 * `buffers`, per parameter), its vec4s are [ends[k−1], ends[k]) of the invocation range, and `body(k)` updates
 * its vec4 `jj`. `fields` are the uniform's scalar fields (a multiple of 4 words).
 */
function groupSource(
  fields: string,
  buffers: readonly { name: string; access: 'read' | 'read_write' }[],
  P: number,
  body: (k: number) => string,
): string {
  let b = 1;
  const binds = Array.from({ length: P }, (_, k) =>
    buffers
      .map((x) => `@group(0) @binding(${b++}) var<storage, ${x.access}> ${x.name}${k}: array<vec4<f32>>;`)
      .join('\n'),
  ).join('\n');
  const end = (k: number) => `u.ends[${k >> 2}][${k & 3}]`;
  const cases = Array.from({ length: P }, (_, k) => {
    const cond = k === P - 1 ? '' : `if (j < ${end(k)}) `;
    const start = k === 0 ? '0u' : end(k - 1);
    return `${cond}{
        let jj = j - ${start};
        ${body(k)}
      }`;
  }).join(' else ');
  return `
struct U { ${fields}, ends: array<vec4<u32>, 3> }
@group(0) @binding(0) var<uniform> u: U;
${binds}
${MAIN_1D(WG)} {
  ${FLAT_INDEX(WG)}
  for (var q = 0u; q < ${V}u; q = q + 1u) {
    let j = i * ${V}u + q;
    if (j < ${end(P - 1)}) {
      ${cases}
    }
  }
}`;
}

/** Splits `items` into groups of at most `n`. */
function chunks<T>(items: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

/**
 * Dispatches one group step per group of parameters (with a gradient): `bufsOf(i)` are parameter i's buffers
 * in the kernel's order, `words` the uniform's scalar fields (4·k words), `perParam` its buffer count.
 */
function stepGroups(
  name: string,
  params: readonly Parameter[],
  perParam: number,
  source: (P: number) => string,
  words: (group: number[]) => UWord[],
  bufsOf: (i: number) => GPUBuffer[],
  flopsPerElement: number,
): void {
  const withGrad = params.flatMap((p, i) => (p.grad ? [i] : []));
  const P = Math.max(1, Math.min(MAX_GROUP, Math.floor(limits().maxStorageBuffersPerShaderStage / perParam)));
  for (const group of chunks(withGrad, P)) {
    const ends: number[] = [];
    let total = 0;
    for (const i of group) {
      total += Math.ceil(params[i]!.size / 4);
      ends.push(total);
    }
    while (ends.length < MAX_GROUP) ends.push(total);
    // Roofline cost (profiler): every per-parameter buffer read and all but the gradient written once.
    let elements = 0;
    for (const i of group) elements += params[i]!.size;
    dispatch(
      kernelFor(`${name}_x${group.length}`, () => source(group.length)), // `name` names the source variant
      [...words(group), ...ends],
      group.flatMap(bufsOf),
      grid(Math.ceil(total / V / WG)),
      undefined,
      { flops: elements * flopsPerElement, bytes: elements * 4 * (2 * perParam - 1) },
    );
  }
}

export abstract class Optimizer {
  /**
   * The optimizer's name as checkpoints record it ('SGD', 'Adam', 'AdamW'): a string of its own, because a
   * bundler that minifies class names would change `constructor.name` and break loading across builds. A
   * user's own subclass of Optimizer defaults to its class name.
   */
  readonly kind: string = this.constructor.name; // subclasses of wgrad's own set a fixed string
  /** Learning rate used by the next step (schedulers change it). */
  lr: number;
  /** Steps taken so far. */
  stepCount = 0;
  /** Per-parameter state tensors, by name (e.g. exp_avg), saved in checkpoints. */
  protected state: Map<string, Tensor>[];

  constructor(
    readonly params: Parameter[],
    lr: number,
  ) {
    if (!params.length) throw new Error(`${this.constructor.name}: got an empty parameter list`);
    if (!(lr >= 0)) throw new Error(`${this.constructor.name}: invalid learning rate ${lr}`);
    this.lr = lr;
    this.state = params.map(() => new Map());
  }

  /** Drops every parameter's gradient (like zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  abstract step(): void;

  /** A state tensor of the parameter, created zero-filled on first use and kept alive. */
  protected buffer(i: number, name: string): Tensor {
    const s = this.state[i]!;
    let t = s.get(name);
    if (!t) {
      t = keep(full(this.params[i]!.shape, 0));
      s.set(name, t);
    }
    return t;
  }

  /** Everything needed to resume: step count, lr and the state tensors named `state.<param index>.<name>`. */
  stateDict(): { stepCount: number; lr: number; tensors: Map<string, Tensor> } {
    const tensors = new Map<string, Tensor>();
    this.state.forEach((s, i) => {
      for (const [k, t] of s) tensors.set(`state.${i}.${k}`, t);
    });
    return { stepCount: this.stepCount, lr: this.lr, tensors };
  }

  loadStateDict(sd: { stepCount: number; lr: number; tensors: ReadonlyMap<string, Tensor> }): void {
    for (const [k, t] of sd.tensors) {
      const m = /^state\.(\d+)\.(\w+)$/.exec(k);
      const i = m ? Number(m[1]) : -1;
      const p = this.params[i];
      if (!m || !p) throw new Error(`${this.kind}.loadStateDict: unexpected key '${k}'`);
      if (t.size !== p.size)
        throw new Error(
          `${this.kind}.loadStateDict: '${k}' has ${t.size} elements, parameter ${i} has ${p.size}`,
        );
    }
    this.dispose();
    this.state = this.params.map(() => new Map());
    for (const [k, t] of sd.tensors) {
      const [, i, name] = /^state\.(\d+)\.(\w+)$/.exec(k)!;
      const view = t.reshape([...this.params[Number(i)]!.shape]);
      this.state[Number(i)]!.set(name!, keep(view.clone()));
      view.dispose();
    }
    this.stepCount = sd.stepCount;
    this.lr = sd.lr;
  }

  /**
   * Runs `fn` and then puts back the step count, the lr and the state tensors as they were, disposing state
   * that `fn` created. For dry runs that encode no GPU work (`recordKernels`), whose state tensors were never
   * written.
   */
  restoreAfter<T>(fn: () => T): T {
    const { stepCount, lr } = this;
    const saved = this.state.map((s) => new Map(s));
    try {
      return fn();
    } finally {
      this.state.forEach((s, i) => {
        for (const [k, t] of s) if (saved[i]!.get(k) !== t) t.dispose();
      });
      this.state = saved;
      this.stepCount = stepCount;
      this.lr = lr;
    }
  }

  /** Frees the optimizer state. */
  dispose(): void {
    for (const s of this.state) for (const t of s.values()) t.dispose();
    for (const s of this.state) s.clear();
  }
}

// ---------------------------------------------------------------------------------------------------------
// firsts[k]: parameter k has no momentum buffer yet (its first step: buf = d).
const sgdSource = (P: number) =>
  groupSource(
    'nesterov: u32, useMomentum: u32, lr: f32, momentum: f32, dampening: f32, wd: f32, p0: u32, p1: u32, firsts: array<vec4<u32>, 3>',
    [
      { name: 'p', access: 'read_write' },
      { name: 'g', access: 'read' },
      { name: 'buf', access: 'read_write' },
    ],
    P,
    (k) => `let pj = p${k}[jj];
        var d = g${k}[jj] + u.wd * pj;
        if (u.useMomentum == 1u) {
          var b = d;
          if (u.firsts[${k >> 2}][${k & 3}] == 0u) { b = u.momentum * buf${k}[jj] + (1.0 - u.dampening) * d; }
          buf${k}[jj] = b;
          d = select(b, d + u.momentum * b, u.nesterov == 1u);
        }
        p${k}[jj] = pj - u.lr * d;`,
  );

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD: momentum, dampening, Nesterov and L2 weight decay. */
export class SGD extends Optimizer {
  override readonly kind: string = 'SGD';
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  constructor(params: Parameter[], opts: SGDOptions = {}) {
    super(params, opts.lr ?? 1e-3);
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0))
      throw new Error('SGD: Nesterov momentum requires a momentum and zero dampening');
  }
  step(): void {
    const useM = this.momentum !== 0;
    // Whether each parameter's momentum buffer is new, read before buffer() creates it.
    const first = this.params.map((_, i) => !this.state[i]!.has('momentum_buffer'));
    stepGroups(
      'sgd_step',
      this.params,
      3,
      sgdSource,
      (group) => {
        const firsts = group.map((i) => (first[i] ? 1 : 0));
        while (firsts.length < MAX_GROUP) firsts.push(0);
        return [
          this.nesterov ? 1 : 0,
          useM ? 1 : 0,
          f32(this.lr),
          f32(this.momentum),
          f32(this.dampening),
          f32(this.weightDecay),
          0,
          0,
          ...firsts,
        ];
      },
      (i) => [
        this.params[i]!.buffer('SGD.step'),
        this.params[i]!.grad!.buffer('SGD.step'),
        this.buffer(i, 'momentum_buffer').buffer('SGD.step'),
      ],
      6, // weight decay, momentum (2), update (2), +1
    );
    this.stepCount++;
  }
}

// ---------------------------------------------------------------------------------------------------------
const adamSource = (amsgrad: boolean) => (P: number) =>
  groupSource(
    'decoupled: u32, lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, bc1: f32, bc2sqrt: f32',
    [
      { name: 'p', access: 'read_write' },
      { name: 'g', access: 'read' },
      { name: 'm', access: 'read_write' },
      { name: 'v', access: 'read_write' },
      ...(amsgrad ? [{ name: 'vmax', access: 'read_write' as const }] : []),
    ],
    P,
    (k) => `var pj = p${k}[jj];
        var gj = g${k}[jj];
        if (u.decoupled == 1u) { pj = pj * (1.0 - u.lr * u.wd); } else { gj = gj + u.wd * pj; }
        let mj = u.b1 * m${k}[jj] + (1.0 - u.b1) * gj;
        let vj = u.b2 * v${k}[jj] + (1.0 - u.b2) * gj * gj;
        m${k}[jj] = mj;
        v${k}[jj] = vj;
        ${amsgrad ? `let vm = vmax${k}[jj]; let vv = ${keepNan4('vm', keepNan4('vj', 'max(vm, vj)'))}; vmax${k}[jj] = vv;` : 'let vv = vj;'}
        let denom = sqrt(vv) / u.bc2sqrt + u.eps;
        p${k}[jj] = pj - (u.lr / u.bc1) * mj / denom;`,
  );

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

/** torch.optim.Adam (L2 weight decay added to the gradient; AMSGrad optional). */
export class Adam extends Optimizer {
  override readonly kind: string = 'Adam';
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  protected decoupled = false;
  constructor(params: Parameter[], opts: AdamOptions = {}) {
    super(params, opts.lr ?? 1e-3);
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.amsgrad = opts.amsgrad ?? false;
    if (this.betas.some((b) => !(b >= 0 && b < 1)))
      throw new Error(`${this.constructor.name}: betas must be in [0, 1), got ${this.betas}`);
  }
  step(): void {
    const t = this.stepCount + 1;
    const [b1, b2] = this.betas;
    const words = [
      this.decoupled ? 1 : 0,
      f32(this.lr),
      f32(b1),
      f32(b2),
      f32(this.eps),
      f32(this.weightDecay),
      f32(1 - b1 ** t),
      f32(Math.sqrt(1 - b2 ** t)),
    ];
    stepGroups(
      this.amsgrad ? 'adam_step_amsgrad' : 'adam_step',
      this.params,
      this.amsgrad ? 5 : 4,
      adamSource(this.amsgrad),
      () => words,
      (i) => [
        this.params[i]!.buffer('Adam.step'),
        this.params[i]!.grad!.buffer('Adam.step'),
        this.buffer(i, 'exp_avg').buffer(),
        this.buffer(i, 'exp_avg_sq').buffer(),
        ...(this.amsgrad ? [this.buffer(i, 'max_exp_avg_sq').buffer()] : []),
      ],
      14, // m and v updates (6), bias corrections (2), sqrt, add, divide, update (2), weight decay
    );
    this.stepCount = t;
  }
}

/** torch.optim.AdamW: decoupled weight decay (default 0.01). */
export class AdamW extends Adam {
  override readonly kind: string = 'AdamW';
  constructor(params: Parameter[], opts: AdamOptions = {}) {
    super(params, { ...opts, weightDecay: opts.weightDecay ?? 0.01 });
    this.decoupled = true;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Learning-rate schedules, stepped once per epoch like torch.optim.lr_scheduler.
export abstract class LRScheduler {
  readonly baseLr: number;
  epoch = 0;
  constructor(readonly optimizer: Optimizer) {
    this.baseLr = optimizer.lr;
  }
  protected abstract lrAt(epoch: number): number;
  step(): void {
    this.epoch++;
    this.optimizer.lr = this.lrAt(this.epoch);
  }
}

export class StepLR extends LRScheduler {
  constructor(
    optimizer: Optimizer,
    readonly stepSize: number,
    readonly gamma = 0.1,
  ) {
    super(optimizer);
  }
  protected lrAt(e: number): number {
    return this.baseLr * this.gamma ** Math.floor(e / this.stepSize);
  }
}

export class ExponentialLR extends LRScheduler {
  constructor(
    optimizer: Optimizer,
    readonly gamma: number,
  ) {
    super(optimizer);
  }
  protected lrAt(e: number): number {
    return this.baseLr * this.gamma ** e;
  }
}

export class CosineAnnealingLR extends LRScheduler {
  constructor(
    optimizer: Optimizer,
    readonly tMax: number,
    readonly etaMin = 0,
  ) {
    super(optimizer);
  }
  protected lrAt(e: number): number {
    return this.etaMin + ((this.baseLr - this.etaMin) * (1 + Math.cos((Math.PI * e) / this.tMax))) / 2;
  }
}
