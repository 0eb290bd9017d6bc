// The Tensor class: contiguous GPU storage, shape/dtype, reverse-mode autodiff tape, disposal and scopes.
// Ops live in ./ops; the methods here are thin PyTorch-style aliases for them.
import { allocBuffer, bufferStats, freeBuffer, onCurrentDevice, readBuffer, writeBuffer } from './gpu.js';
import * as E from './ops/elementwise.js';
import * as L from './ops/linalg.js';
import * as M from './ops/movement.js';
import * as R from './ops/reduce.js';

export type DType = 'float32' | 'int32';
export type Shape = readonly number[];
export type Scalar = number;

/** Reference-counted GPU storage; views (reshape) share one. */
export class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    readonly bytes: number,
  ) {}
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs === 0) freeBuffer(this.buffer);
  }
}

/** A node of the autodiff tape: the op that made a tensor, its inputs and how to push a gradient back. */
export interface GradNode {
  op: string;
  inputs: readonly Tensor[];
  /** Given d(loss)/d(output), returns d(loss)/d(input) for each input (null where not needed). */
  backward: (grad: Tensor) => readonly (Tensor | null)[];
  /**
   * Tensors the op made in its forward pass for its backward (e.g. conv2d's im2col columns). They belong to
   * the node: freed with the output tensor, or when backward releases the graph; no scope frees them.
   */
  saved?: readonly Tensor[];
  /** Set on the stand-in node a backward() without retainGraph leaves behind (its saved tensors are freed). */
  freed?: boolean;
}

let gradEnabled = true;
let liveTensors = 0;
let nextId = 1;
const scopes: Set<Tensor>[] = [];

const finalizer = new FinalizationRegistry<Storage>((s) => {
  liveTensors--;
  s.release();
});

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly size: number;
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor after `backward()`. */
  grad: Tensor | null = null;
  /** The op that produced this tensor (null for leaves and for results made without grad). */
  gradFn: GradNode | null = null;
  private storage_: Storage | null;
  /**
   * Whether the finalizer watches this tensor. A tensor made inside a `scope()` is held by the scope, which
   * disposes it or hands it on, so it is registered only when it leaves every scope undisposed (`escape_`):
   * register + unregister cost 0.34 µs per tensor in a loop (bench:host) plus weak cells for the GC to process,
   * and most tensors of a training step never escape.
   */
  private registered_ = false;
  /** @internal Set by keep(): no enclosing scope disposes this tensor (a flag, not a WeakSet: see backward). */
  kept_ = false;

  constructor(shape: Shape, dtype: DType, storage?: Storage) {
    let size = 1;
    for (let i = 0; i < shape.length; i++) {
      const d = shape[i]!;
      if (!Number.isInteger(d) || d < 0) throw new Error(`Tensor: invalid shape ${fmtShape(shape)}`);
      size *= d;
    }
    // A plain copy (callers in JavaScript may pass a typed array, which cannot be frozen).
    this.shape = Object.freeze(Array.isArray(shape) ? shape.slice() : Array.from(shape));
    this.dtype = dtype;
    this.size = size;
    this.storage_ =
      storage ??
      new Storage(
        allocBuffer(this.size * 4, () => `a ${dtype} tensor of shape ${fmtShape(shape)}`),
        this.size * 4,
      );
    liveTensors++;
    const s = scopes[scopes.length - 1];
    if (s) s.add(this);
    else this.escape_();
  }

  /** @internal Puts the tensor under the finalizer (it is no longer held by a scope). */
  escape_(): void {
    if (this.registered_ || !this.storage_) return;
    finalizer.register(this, this.storage_, this);
    this.registered_ = true;
  }

  get ndim(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this.storage_ === null;
  }
  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /** The storage, checked: using a disposed tensor names the op that tried. */
  storage(op = 'op'): Storage {
    if (!this.storage_)
      throw new Error(`${op}: tensor #${this.id} ${fmtShape(this.shape)} was used after dispose()`);
    if (!onCurrentDevice(this.storage_.buffer))
      throw new Error(
        `${op}: tensor #${this.id} ${fmtShape(this.shape)} was made on an earlier WebGPU device (setDevice or acquireDevice installed another since); make it again, e.g. from a checkpoint`,
      );
    return this.storage_;
  }
  buffer(op = 'op'): GPUBuffer {
    return this.storage(op).buffer;
  }

  /** Frees the GPU memory now (idempotent). Also disposes `.grad`. */
  dispose(): void {
    if (!this.storage_) return;
    if (this.registered_) finalizer.unregister(this);
    this.registered_ = false;
    liveTensors--;
    this.storage_.release();
    this.storage_ = null;
    for (const t of this.gradFn?.saved ?? []) t.dispose();
    this.gradFn = null;
    this.grad?.dispose();
    this.grad = null;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Replaces this tensor's contents with `src`'s (same shape and dtype), sharing its storage: O(1). */
  assign(src: Tensor): this {
    if (src.dtype !== this.dtype || src.size !== this.size)
      throw new Error(`assign: ${this.dtype}${fmtShape(this.shape)} <- ${src.dtype}${fmtShape(src.shape)}`);
    const old = this.storage('assign'); // checked before retaining src, which would leak on a throw
    const s = src.storage('assign').retain();
    old.release();
    this.storage_ = s;
    if (this.registered_) {
      finalizer.unregister(this);
      finalizer.register(this, s, this);
    }
    return this;
  }

  // ---- readback -------------------------------------------------------------------------------------
  async toArray(): Promise<Float32Array> {
    const buf = await readBuffer(this.buffer('toArray'), this.size * 4);
    return this.dtype === 'float32' ? new Float32Array(buf) : Float32Array.from(new Int32Array(buf));
  }
  /** The raw contents in their own type (Int32Array for int32). */
  async data(): Promise<Float32Array | Int32Array> {
    const buf = await readBuffer(this.buffer('data'), this.size * 4);
    return this.dtype === 'float32' ? new Float32Array(buf) : new Int32Array(buf);
  }
  async item(): Promise<number> {
    if (this.size !== 1)
      throw new Error(`item: expected a tensor with one element, got shape ${fmtShape(this.shape)}`);
    return (await this.data())[0]!;
  }
  async toNested(): Promise<NestedArray> {
    const flat = Array.from(await this.data());
    const build = (dim: number, offset: number): NestedArray => {
      if (dim === this.shape.length) return flat[offset]!;
      const inner = shapeSize(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, offset + i * inner));
    };
    return build(0, 0);
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''}${this.isDisposed ? ', disposed' : ''})`;
  }

  // ---- autodiff -------------------------------------------------------------------------------------
  /** Sets requiresGrad (leaves only, like PyTorch) and returns this. */
  requiresGrad_(on = true): this {
    if (!this.isLeaf) throw new Error('requiresGrad_: only leaf tensors can change requiresGrad');
    if (on && this.dtype !== 'float32')
      throw new Error(`requiresGrad_: only float32 tensors can require grad (got ${this.dtype})`);
    this.requiresGrad = on;
    return this;
  }
  /** A new tensor sharing this one's storage, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.shape, this.dtype, this.storage('detach').retain());
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    backward(this, gradient, opts.retainGraph ?? false);
  }

  // ---- op aliases (PyTorch names, camelCase) ---------------------------------------------------------
  add(o: Tensor | Scalar): Tensor {
    return E.add(this, o);
  }
  sub(o: Tensor | Scalar): Tensor {
    return E.sub(this, o);
  }
  mul(o: Tensor | Scalar): Tensor {
    return E.mul(this, o);
  }
  div(o: Tensor | Scalar): Tensor {
    return E.div(this, o);
  }
  pow(o: Tensor | Scalar): Tensor {
    return E.pow(this, o);
  }
  maximum(o: Tensor | Scalar): Tensor {
    return E.maximum(this, o);
  }
  minimum(o: Tensor | Scalar): Tensor {
    return E.minimum(this, o);
  }
  eq(o: Tensor | Scalar): Tensor {
    return E.eq(this, o);
  }
  ne(o: Tensor | Scalar): Tensor {
    return E.ne(this, o);
  }
  lt(o: Tensor | Scalar): Tensor {
    return E.lt(this, o);
  }
  le(o: Tensor | Scalar): Tensor {
    return E.le(this, o);
  }
  gt(o: Tensor | Scalar): Tensor {
    return E.gt(this, o);
  }
  ge(o: Tensor | Scalar): Tensor {
    return E.ge(this, o);
  }
  neg(): Tensor {
    return E.neg(this);
  }
  exp(): Tensor {
    return E.exp(this);
  }
  log(): Tensor {
    return E.log(this);
  }
  sqrt(): Tensor {
    return E.sqrt(this);
  }
  rsqrt(): Tensor {
    return E.rsqrt(this);
  }
  reciprocal(): Tensor {
    return E.reciprocal(this);
  }
  abs(): Tensor {
    return E.abs(this);
  }
  sign(): Tensor {
    return E.sign(this);
  }
  square(): Tensor {
    return E.square(this);
  }
  sin(): Tensor {
    return E.sin(this);
  }
  cos(): Tensor {
    return E.cos(this);
  }
  tanh(): Tensor {
    return E.tanh(this);
  }
  sigmoid(): Tensor {
    return E.sigmoid(this);
  }
  relu(): Tensor {
    return E.relu(this);
  }
  leakyRelu(negativeSlope = 0.01): Tensor {
    return E.leakyRelu(this, negativeSlope);
  }
  softplus(): Tensor {
    return E.softplus(this);
  }
  log1p(): Tensor {
    return E.log1p(this);
  }
  clamp(min?: number, max?: number): Tensor {
    return E.clamp(this, min, max);
  }
  where(cond: Tensor, other: Tensor | Scalar): Tensor {
    return E.where(cond, this, other);
  }
  float(): Tensor {
    return E.cast(this, 'float32');
  }
  int(): Tensor {
    return E.cast(this, 'int32');
  }
  clone(): Tensor {
    return E.clone(this);
  }

  sum(dim?: number | number[], keepdim = false): Tensor {
    return R.sum(this, dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return R.mean(this, dim, keepdim);
  }
  /** Reduction (values only, like torch.amax) or, given a tensor, elementwise maximum (torch.max(a, b)). */
  max(dim?: number | number[] | Tensor, keepdim = false): Tensor {
    return dim instanceof Tensor ? E.maximum(this, dim) : R.max(this, dim, keepdim);
  }
  min(dim?: number | number[] | Tensor, keepdim = false): Tensor {
    return dim instanceof Tensor ? E.minimum(this, dim) : R.min(this, dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return R.argmax(this, dim, keepdim);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return R.argmin(this, dim, keepdim);
  }
  var(dim?: number | number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return R.variance(this, dim, opts);
  }
  std(dim?: number | number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return R.variance(this, dim, opts).sqrt();
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return R.logsumexp(this, dim, keepdim);
  }
  softmax(dim: number): Tensor {
    return R.softmax(this, dim);
  }
  logSoftmax(dim: number): Tensor {
    return R.logSoftmax(this, dim);
  }

  reshape(...shape: (number | number[])[]): Tensor {
    return M.reshape(this, shape.flat());
  }
  view(...shape: (number | number[])[]): Tensor {
    return M.reshape(this, shape.flat());
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return M.flatten(this, startDim, endDim);
  }
  unsqueeze(dim: number): Tensor {
    return M.unsqueeze(this, dim);
  }
  squeeze(dim?: number): Tensor {
    return M.squeeze(this, dim);
  }
  permute(...dims: (number | number[])[]): Tensor {
    return M.permute(this, dims.flat());
  }
  transpose(dim0 = -2, dim1 = -1): Tensor {
    return M.transpose(this, dim0, dim1);
  }
  get T(): Tensor {
    return M.transpose(this, -2, -1);
  }
  expand(...shape: (number | number[])[]): Tensor {
    return M.expand(this, shape.flat());
  }
  /** Per-dim slice: `[start, end]` pairs (end exclusive, negatives count from the end, null = whole dim). */
  slice(ranges: readonly ([number, number] | [number, number, number] | null)[]): Tensor {
    return M.slice(this, ranges);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return M.narrow(this, dim, start, length);
  }
  pad(pads: readonly number[], value = 0): Tensor {
    return M.pad(this, pads, value);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return M.indexSelect(this, dim, index);
  }
  gather(dim: number, index: Tensor): Tensor {
    return M.gather(this, dim, index);
  }
  matmul(o: Tensor): Tensor {
    return L.matmul(this, o);
  }
}

export type NestedArray = number | NestedArray[];

// ---------------------------------------------------------------------------------------------------------
// Making results: every op calls `record` so the tape sees it.

/** True when results of an op on `inputs` must be recorded on the tape. */
export function needsGrad(inputs: readonly Tensor[]): boolean {
  return gradEnabled && inputs.some((t) => t.requiresGrad);
}

/**
 * Attaches `backward` to `out` if any input requires grad (and grad mode is on). Returns `out`. `saved`
 * tensors (made by the forward for the backward) then belong to the node; otherwise they are freed now.
 */
export function record(
  op: string,
  out: Tensor,
  inputs: readonly Tensor[],
  backward: GradNode['backward'],
  saved?: readonly Tensor[],
): Tensor {
  if (needsGrad(inputs)) {
    out.requiresGrad = true;
    out.gradFn = { op, inputs, backward, saved };
    for (const t of saved ?? []) {
      for (const s of scopes) s.delete(t);
      t.escape_();
    }
  } else for (const t of saved ?? []) t.dispose();
  return out;
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` with gradient recording off (sync or async). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  let r: T;
  try {
    r = fn();
  } catch (e) {
    gradEnabled = prev;
    throw e;
  }
  if (r instanceof Promise) return r.finally(() => (gradEnabled = prev)) as T;
  gradEnabled = prev;
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// Backward pass.

/** Sums `g` over broadcast dimensions so that it has `shape` (the gradient rule for broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.shape.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.shape.length; i++)
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const s = axes.length ? R.sum(g, axes, true) : g;
  const r = M.reshape(s, [...shape]);
  if (s !== g && s !== r) s.dispose();
  return r;
}

function backward(root: Tensor, gradient: Tensor | undefined, retainGraph: boolean): void {
  if (root.isDisposed) throw new Error(`backward: tensor #${root.id} ${fmtShape(root.shape)} was disposed`);
  if (!root.requiresGrad)
    throw new Error('backward: tensor does not require grad (no input has requiresGrad)');
  if (!gradient && root.size !== 1)
    throw new Error(
      `backward: gradient can be implicitly created only for scalar outputs, got shape ${fmtShape(root.shape)}`,
    );
  if (gradient && (gradient.size !== root.size || gradient.dtype !== 'float32'))
    throw new Error(
      `backward: gradient ${gradient.dtype}${fmtShape(gradient.shape)} does not match output ${fmtShape(root.shape)}`,
    );
  // Topological order (iterative DFS: graphs of deep nets would overflow a recursive one).
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    if (t.gradFn?.freed)
      throw new Error(
        `backward: the graph through '${t.gradFn.op}' (tensor #${t.id} ${fmtShape(t.shape)}) was freed by an earlier backward(); pass { retainGraph: true } to backward through it again`,
      );
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i]!;
      if (c.requiresGrad && !seen.has(c)) {
        // dispose() cuts a tensor from the graph: going on would silently drop the gradients behind it.
        if (c.isDisposed)
          throw new Error(
            `backward: input ${i} of '${t.gradFn!.op}' (tensor #${c.id} ${fmtShape(c.shape)}) was disposed before backward()`,
          );
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  // A scope frees the temporaries the backward rules make; leaf gradients are kept.
  scope(() =>
    noGrad(() => {
      const grads = new Map<Tensor, Tensor>();
      grads.set(root, gradient ? M.reshape(gradient, [...root.shape]) : E.full(root.shape, 1));
      for (let k = order.length - 1; k >= 0; k--) {
        const t = order[k]!;
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        const node = t.gradFn;
        if (!node) {
          // A leaf: accumulate into .grad (kept alive beyond any scope). Accumulating swaps the storage of
          // the existing .grad tensor, so references to it stay valid (like PyTorch's in-place +=).
          if (t.grad && !t.grad.isDisposed) {
            const sum = E.add(t.grad, g);
            t.grad.assign(sum);
            sum.dispose();
            g.dispose();
          } else t.grad = keep(g);
          continue;
        }
        const gs = node.backward(g);
        const used: Tensor[] = []; // a few entries (one per input): an array beats a Set here
        const merged: Tensor[] = [];
        const inputs = node.inputs;
        for (let i = 0; i < inputs.length; i++) {
          const inp = inputs[i]!;
          let gi = gs[i];
          if (!gi || !inp.requiresGrad) continue;
          gi = sumTo(gi, inp.shape);
          // A rule may return its incoming grad or the same tensor twice: give each holder its own handle.
          if (gi === g || used.includes(gi)) gi = gi.detach();
          used.push(gi);
          const prev = grads.get(inp);
          if (prev) {
            grads.set(inp, E.add(prev, gi));
            prev.dispose();
            // Disposed after the loop: a later input may still take its own handle of the same tensor.
            merged.push(gi);
          } else grads.set(inp, gi);
        }
        for (const x of merged) x.dispose();
        for (const x of gs) if (x && x !== g && !used.includes(x)) x.dispose();
        g.dispose();
        if (!retainGraph) {
          // Release the saved tensors; a later backward through this node throws instead of going silent.
          for (const x of node.saved ?? []) x.dispose();
          // (A flag on the node, not a WeakSet: weak collections cost the GC on every step.)
          t.gradFn = { op: node.op, inputs: [], backward: () => [], freed: true };
        }
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Scopes and memory accounting.

/**
 * Runs `fn` and disposes every tensor created inside it, except the ones it returns (found in the result
 * itself, arrays and plain objects) and the ones passed to `keep()`. Works with async functions: tensors
 * created across `await` inside `fn` belong to the scope (scopes are a stack, so don't interleave two
 * concurrent async scopes).
 */
export function scope<T>(fn: () => T): T {
  const set = new Set<Tensor>();
  scopes.push(set);
  const end = (result: unknown) => {
    const i = scopes.lastIndexOf(set);
    if (i >= 0) scopes.splice(i, 1);
    const kept = new Set<Tensor>();
    collect(result, kept);
    const parent = scopes[scopes.length - 1];
    for (const t of set) {
      if (kept.has(t)) {
        if (parent) parent.add(t);
        else t.escape_();
      } else if (!t.isDisposed && !t.kept_) t.dispose();
    }
  };
  let r: T;
  try {
    r = fn();
  } catch (e) {
    end(undefined);
    throw e;
  }
  if (r instanceof Promise)
    return r.then(
      (v) => {
        end(v);
        return v;
      },
      (e) => {
        end(undefined);
        throw e;
      },
    ) as T;
  end(r);
  return r;
}

/** Exempts `t` from disposal by every enclosing scope (optimizer state, gradients, parameters). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  t.kept_ = true;
  t.escape_();
  return t;
}

function collect(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 6 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    if (v.grad) out.add(v.grad);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collect(x, out, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collect(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype)
    for (const x of Object.values(v)) collect(x, out, depth + 1);
}

export interface MemoryInfo {
  liveTensors: number;
  buffersInUse: number;
  bytesInUse: number;
  buffersPooled: number;
  bytesPooled: number;
  peakBytes: number;
  buffersCreated: number;
}

/** Live tensors and GPU buffer accounting (pooled buffers are free for reuse). */
export function memory(): MemoryInfo {
  const s = bufferStats();
  return {
    liveTensors,
    buffersInUse: s.buffersInUse,
    bytesInUse: s.bytesInUse,
    buffersPooled: s.buffersPooled,
    bytesPooled: s.bytesPooled,
    peakBytes: s.peakBytes,
    buffersCreated: s.created,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Upload helper used by creation functions.
export function upload(shape: Shape, dtype: DType, data: Float32Array | Int32Array): Tensor {
  const t = new Tensor(shape, dtype);
  if (data.length) writeBuffer(t.buffer('upload'), data);
  return t;
}
