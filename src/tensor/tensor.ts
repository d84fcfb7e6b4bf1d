// Tensor with tape-based reverse-mode autograd. Each differentiable op records a
// GradNode on its output (its inputs and a closure mapping the output's gradient to the
// inputs' gradients); `backward()` walks the graph iteratively in reverse topological
// order, so a 3000-op-deep ResNet-1001 does not overflow the stack, and sums the
// gradients of a tensor used twice (a residual input). Values are float32, or bfloat16
// for the activations of a network in bf16 precision (see `dtype`); a gradient always has
// the dtype of its tensor.
import type { Storage } from '../backend/backend.js';
import { backend } from '../backend/index.js';
import { numel } from '../backend/shapes.js';
import { defaultRng, Rng } from './random.js';

/**
 * Maps the gradient of an op's output (in the output's dtype) to the gradients of its
 * inputs (null: none), each float32 or bfloat16: it is converted to its input's dtype.
 */
export type BackwardFn<G extends Storage = Storage> = (gradOutput: G) => readonly (Storage | null)[];

/** Element types of a tensor's values. */
export type DType = 'float32' | 'bfloat16';

export function dtypeOf(s: Storage): DType {
  return s instanceof Uint16Array ? 'bfloat16' : 'float32';
}

/** `s` in `dtype` (itself when it already is). */
export function toDtype(s: Storage, dtype: DType): Storage {
  if (dtypeOf(s) === dtype) return s;
  return s instanceof Uint16Array ? backend().fromBf16(s) : backend().toBf16(s);
}

export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly backward: BackwardFn;
}

let gradEnabled = true;

/** Run `fn` without recording operations for autograd (like torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  readonly shape: readonly number[];
  /**
   * Contiguous row-major values; 4-D activations are NHWC. A Uint16Array holds bfloat16
   * bit patterns (an activation in bf16 precision).
   */
  readonly storage: Storage;
  /** The float32 copy of bfloat16 values, made when first read through `data`. */
  private widened: Float32Array | null = null;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  /** The op that produced this tensor, while its graph is alive. */
  node: GradNode | null = null;
  /**
   * Bumped by every in-place write through `assign` / `markModified` (optimizer steps,
   * loadStateDict, weight averaging, running statistics): what is derived from the
   * values (a compiled network) compares it to know whether it is still current.
   */
  private writes = 0;

  constructor(data: Storage, shape: readonly number[], requiresGrad = false) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`Tensor: invalid shape ${formatShape(shape)}`);
    }
    if (data.length !== numel(shape)) {
      throw new Error(`Tensor: ${data.length} values do not fill shape ${formatShape(shape)} (${numel(shape)} values)`);
    }
    this.storage = data;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = requiresGrad;
  }

  get size(): number {
    return this.storage.length;
  }

  get dtype(): DType {
    return dtypeOf(this.storage);
  }

  /**
   * The values as float32: the storage itself, or (bfloat16) its exact float32 copy, which
   * writes do not reach (`assign` writes either).
   */
  get data(): Float32Array {
    if (this.storage instanceof Float32Array) return this.storage;
    this.widened ??= backend().fromBf16(this.storage);
    return this.widened;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** How many in-place writes the values have had (see `assign`, `markModified`). */
  get version(): number {
    return this.writes;
  }

  /** Record an in-place write to `data` made by a kernel (an optimizer step, running statistics). */
  markModified(): void {
    this.writes++;
  }

  /** Overwrite the values with `values` (same length) in place. */
  assign(values: ArrayLike<number>): void {
    if (values.length !== this.size) {
      throw new Error(`assign: ${values.length} values for a tensor of shape ${formatShape(this.shape)} (${this.size} values)`);
    }
    if (this.storage instanceof Float32Array) {
      this.storage.set(values);
    } else {
      this.storage.set(backend().toBf16(Float32Array.from(values)));
      this.widened = null;
    }
    this.writes++;
  }

  /** A copy of the values. */
  toFloat32Array(): Float32Array {
    return this.data.slice();
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) {
      throw new Error(`item(): tensor of shape ${formatShape(this.shape)} has ${this.size} values, expected 1`);
    }
    return this.data[0]!;
  }

  /** The same values, cut off from the graph. */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape);
  }

  /** A deep copy (values, dtype and shape), not part of any graph. */
  clone(): Tensor {
    return new Tensor(this.storage.slice(), this.shape);
  }

  /**
   * Reverse-mode differentiation from this tensor. Without an argument the tensor must
   * hold one value (a loss). The graph is freed afterwards.
   */
  backward(gradient?: Tensor): void {
    if (!this.requiresGrad) {
      throw new Error('backward(): this tensor does not require grad (no input had requiresGrad, or it was made under noGrad)');
    }
    let seed: Storage;
    if (gradient) {
      if (gradient.size !== this.size) {
        throw new Error(`backward(): gradient shape ${formatShape(gradient.shape)} does not match tensor shape ${formatShape(this.shape)}`);
      }
      seed = toDtype(gradient.storage, this.dtype);
    } else {
      if (this.size !== 1) {
        throw new Error(`backward(): implicit gradient needs a one-value tensor, got shape ${formatShape(this.shape)}; pass a gradient`);
      }
      seed = toDtype(new Float32Array([1]), this.dtype);
    }
    runBackward(this, seed);
  }

  toString(): string {
    const head = Array.from(this.data.subarray(0, 6), (v) => v.toPrecision(4)).join(', ');
    const type = this.dtype === 'float32' ? '' : `, ${this.dtype}`;
    return `Tensor(${formatShape(this.shape)}${type}, [${head}${this.size > 6 ? ', ...' : ''}])`;
  }
}

/**
 * Tensors whose op record a backward pass has consumed. Differentiating through one
 * again would silently stop there (it looks like a leaf), so it is an error, as in PyTorch.
 */
const freedGraph = new WeakSet<Tensor>();

function checkNotFreed(t: Tensor): void {
  if (freedGraph.has(t)) {
    throw new Error('backward(): the graph through this tensor was already freed by an earlier backward(); ' +
      'run the forward pass again to differentiate once more');
  }
}

/** Post-order of the graph under `root`: every tensor after the tensors it depends on. */
function topologicalOrder(root: Tensor): Tensor[] {
  checkNotFreed(root);
  const order: Tensor[] = [];
  const visited = new Set<Tensor>([root]);
  const stack: { t: Tensor; next: number }[] = [{ t: root, next: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const inputs = frame.t.node?.inputs ?? [];
    if (frame.next < inputs.length) {
      const child = inputs[frame.next++]!;
      if (child.requiresGrad && !visited.has(child)) {
        checkNotFreed(child);
        visited.add(child);
        stack.push({ t: child, next: 0 });
      }
    } else {
      stack.pop();
      order.push(frame.t);
    }
  }
  return order;
}

function runBackward(root: Tensor, seed: Storage): void {
  const be = backend();
  const order = topologicalOrder(root);
  const grads = new Map<Tensor, Storage>([[root, seed]]);
  // Gradient arrays handed out by backward closures may alias each other (add passes
  // its gradient to both inputs), so a sum is only done in place on an array we own.
  const owned = new Set<Storage>();
  // Every gradient is converted to its tensor's dtype here, so each op's backward
  // receives its output's dtype.
  const accumulate = (t: Tensor, given: Storage): void => {
    const g = toDtype(given, t.dtype);
    if (g !== given) owned.add(g);
    const prev = grads.get(t);
    // prev and g both have t's dtype.
    if (!prev) {
      grads.set(t, g);
    } else if (owned.has(prev)) {
      if (prev instanceof Uint16Array) be.addInPlaceBf16(prev, g as Uint16Array);
      else be.addInPlace(prev, g as Float32Array);
    } else {
      const sum = prev instanceof Uint16Array ? be.addBf16(prev, g) : be.add(prev, g as Float32Array);
      owned.add(sum);
      grads.set(t, sum);
    }
  };
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i]!;
    const g = grads.get(t);
    grads.delete(t);
    if (!g) continue;
    const node = t.node;
    if (node) {
      const inputGrads = node.backward(g);
      // A closure may hand `g` itself to several inputs (add, reshape): from here on
      // it is shared, so no later sum may write into it.
      owned.delete(g);
      node.inputs.forEach((input, k) => {
        const ig = inputGrads[k];
        if (ig && input.requiresGrad) accumulate(input, ig);
      });
      t.node = null;
      freedGraph.add(t);
    } else if (t.grad && t.grad.storage instanceof Float32Array && g instanceof Float32Array) {
      be.addInPlace(t.grad.storage, g);
    } else if (t.grad) {
      t.grad = new Tensor(be.addBf16(t.grad.storage, g).slice(), t.shape);
    } else {
      // Always a copy: `g` may live in a kernel scratch (withScratch) that the step reuses.
      t.grad = new Tensor(g.slice(), t.shape);
    }
  }
}

/** An op's non-tensor arguments (stride, padding, eps, ...), as a tracer records them. */
export type OpAttrs = Readonly<Record<string, number | boolean | readonly number[]>>;

/** One op as a graph tracer sees it: every tensor it read (weights and statistics included). */
export interface OpRecord {
  readonly op: string;
  readonly attrs: OpAttrs;
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
}

/** What an op tells a tracer beyond its differentiable inputs. */
export interface OpTrace {
  readonly attrs?: OpAttrs;
  /** Every tensor read, when more than the differentiable inputs (running statistics). */
  readonly inputs?: readonly Tensor[];
}

let opObserver: ((r: OpRecord) => void) | null = null;

/** Run `fn` with `observer` seeing every op (src/graph/trace.ts records the graph this way). */
export function observeOps<T>(observer: (r: OpRecord) => void, fn: () => T): T {
  const prev = opObserver;
  opObserver = observer;
  try {
    return fn();
  } finally {
    opObserver = prev;
  }
}

/** Whether an op on these inputs records its backward: grad mode is on and one of them needs a gradient. */
export function tracksGrad(inputs: readonly Tensor[]): boolean {
  return gradEnabled && inputs.some((t) => t.requiresGrad);
}

/**
 * Wrap a kernel's output as a tensor and, when any input needs a gradient and grad
 * mode is on (tracksGrad), record how to differentiate it.
 */
export function fromOp<S extends Storage>(op: string, data: S, shape: readonly number[],
  inputs: readonly Tensor[], backwardFn: BackwardFn<S>, trace: OpTrace = {}): Tensor {
  const out = new Tensor(data, shape);
  opObserver?.({ op, attrs: trace.attrs ?? {}, inputs: trace.inputs ?? inputs, output: out });
  if (tracksGrad(inputs)) {
    out.requiresGrad = true;
    // runBackward hands each op a gradient of its output's dtype, which is S's.
    out.node = { op, inputs, backward: backwardFn as BackwardFn };
  }
  return out;
}

// ---------------------------------------------------------------- factories

export interface RandomOptions {
  /** Seed a fresh generator for this call only. */
  seed?: number;
  /** Draw from this generator (default: the process-wide one, see manualSeed). */
  rng?: Rng;
  requiresGrad?: boolean;
}

/** A tensor from values (copied) and a shape; the shape defaults to 1-D. */
export function tensor(values: ArrayLike<number>, shape?: readonly number[], requiresGrad = false): Tensor {
  const data = Float32Array.from(values);
  return new Tensor(data, shape ?? [data.length], requiresGrad);
}

export function zeros(shape: readonly number[], requiresGrad = false): Tensor {
  return new Tensor(new Float32Array(numel(shape)), shape, requiresGrad);
}

export function ones(shape: readonly number[], requiresGrad = false): Tensor {
  return full(shape, 1, requiresGrad);
}

export function full(shape: readonly number[], value: number, requiresGrad = false): Tensor {
  return new Tensor(new Float32Array(numel(shape)).fill(value), shape, requiresGrad);
}

function pickRng(opts: RandomOptions): Rng {
  if (opts.rng) return opts.rng;
  if (opts.seed !== undefined) return new Rng(opts.seed);
  return defaultRng;
}

/** Standard normal values. */
export function randn(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const rng = pickRng(opts);
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  return new Tensor(data, shape, opts.requiresGrad ?? false);
}

/** Uniform values in [0, 1). */
export function rand(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const rng = pickRng(opts);
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform();
  return new Tensor(data, shape, opts.requiresGrad ?? false);
}
