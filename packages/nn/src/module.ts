// Module and Parameter, as in torch.nn: parameters and child modules are found by reflection on the
// instance's own fields (in declaration order), so `this.fc1 = new Linear(…)` registers `fc1.weight`.
import { keep, noGrad, type Tensor, Tensor as TensorClass } from '@wgrad/tensor';

/** A leaf tensor that a Module owns and an optimizer updates. Kept alive outside any scope(). */
export class Parameter extends TensorClass {
  constructor(data: Tensor) {
    super(data.shape, data.dtype, data.storage('Parameter').retain());
    data.dispose();
    this.requiresGrad = data.dtype === 'float32';
    keep(this);
  }
}

export abstract class Module {
  training = true;
  private buffers_ = new Map<string, Tensor>();

  /** Registers a non-trainable tensor saved in stateDict() (e.g. running statistics). */
  registerBuffer(name: string, t: Tensor): void {
    this.buffers_.set(name, keep(t));
  }

  /** Tensors in, a tensor out; layers may take options after their tensors (e.g. Linear's fused activation). */
  // biome-ignore lint/suspicious/noExplicitAny: each module narrows its own arguments
  abstract forward(...args: any[]): Tensor;

  /** Calls forward (torch's `module(x)`). */
  // biome-ignore lint/suspicious/noExplicitAny: as forward
  call(...args: any[]): Tensor {
    return this.forward(...args);
  }

  /** Child modules in field order (name → module). */
  *namedChildren(): Generator<[string, Module]> {
    for (const [k, v] of Object.entries(this)) if (v instanceof Module) yield [k, v];
  }
  children(): Module[] {
    return [...this.namedChildren()].map(([, m]) => m);
  }
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [k, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${k}` : k);
  }
  /** Parameters with dotted PyTorch-style names, e.g. `encoder.0.weight`. */
  *namedParameters(prefix = ''): Generator<[string, Parameter]> {
    for (const [k, v] of Object.entries(this))
      if (v instanceof Parameter) yield [prefix ? `${prefix}.${k}` : k, v];
    for (const [k, m] of this.namedChildren()) yield* m.namedParameters(prefix ? `${prefix}.${k}` : k);
  }
  parameters(): Parameter[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }
  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    for (const [k, t] of this.buffers_) yield [prefix ? `${prefix}.${k}` : k, t];
    for (const [k, m] of this.namedChildren()) yield* m.namedBuffers(prefix ? `${prefix}.${k}` : k);
  }

  /** Parameters and buffers by name, the keys of a PyTorch state_dict. */
  stateDict(): Map<string, Tensor> {
    return new Map<string, Tensor>([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies tensors into this module's parameters/buffers by name. Everything is checked (missing and
   * unexpected keys when strict, shapes, dtypes) before anything is written, so a bad state never half-loads.
   */
  loadStateDict(state: ReadonlyMap<string, Tensor>, opts: { strict?: boolean; source?: string } = {}): void {
    const strict = opts.strict ?? true;
    const src = opts.source ? `${opts.source}: ` : '';
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length || unexpected.length))
      throw new Error(
        `${src}loadStateDict: ${missing.length ? `missing keys [${missing.join(', ')}]` : ''}${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected keys [${unexpected.join(', ')}]` : ''}`,
      );
    for (const [k, t] of own) {
      const s = state.get(k);
      if (!s) continue;
      if (
        s.dtype !== t.dtype ||
        s.shape.length !== t.shape.length ||
        s.shape.some((d, i) => d !== t.shape[i])
      )
        throw new Error(
          `${src}loadStateDict: '${k}' has ${s.dtype}[${s.shape}] but the module expects ${t.dtype}[${t.shape}]`,
        );
    }
    noGrad(() => {
      for (const [k, t] of own) {
        const s = state.get(k);
        if (!s) continue;
        // assign() shares the copy's storage: drop the copy's own handle so no extra tensor stays live.
        const copy = s.clone();
        t.assign(copy);
        copy.dispose();
      }
    });
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }

  /** One line per module: a short description of its own settings (overridden by layers). */
  extraRepr(): string {
    return '';
  }

  /** A PyTorch-like printout with parameter counts. */
  toString(): string {
    const lines: string[] = [];
    const walk = (m: Module, name: string, depth: number) => {
      const own = [...Object.values(m)]
        .filter((v) => v instanceof Parameter)
        .reduce((n, p) => n + (p as Parameter).size, 0);
      const total = m.numParameters();
      const label = `${'  '.repeat(depth)}${name ? `(${name}): ` : ''}${m.constructor.name}(${m.extraRepr()})`;
      const count = total
        ? `  # ${total.toLocaleString('en-US')} params${own && own !== total ? ` (${own} own)` : ''}`
        : '';
      lines.push(label + count);
      for (const [k, c] of m.namedChildren()) walk(c, k, depth + 1);
    };
    walk(this, '', 0);
    return lines.join('\n');
  }
}
