// Module: the unit models are built from. Parameter and child-module names come from
// attribute paths (`this.conv1 = new Conv2d(...)` is `conv1`, `Sequential` children
// are `0`, `1`, ...), so state-dict keys are PyTorch's and torchvision checkpoints
// load unchanged. Buffers (BN running statistics) are registered by name.
import { formatShape, Tensor } from '../tensor/tensor.js';

/** A tensor that is trained: requiresGrad is on. */
export class Parameter extends Tensor {
  constructor(data: Float32Array, shape: readonly number[]) {
    super(data, shape, true);
  }
}

export type StateDict = Record<string, Tensor>;

export interface LoadStateDictOptions {
  /** Require exactly the module's keys (default true). With false, report instead. */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export abstract class Module {
  training = true;
  private readonly buffersByName = new Map<string, Tensor>();

  abstract forward(x: Tensor): Tensor;

  /** Register a non-trained tensor that belongs in the state dict (e.g. running_mean). */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.buffersByName.set(name, t);
    return t;
  }

  /** Direct children, named by the attribute holding them, in declaration order. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of Object.entries(this)) if (v instanceof Module) out.push([k, v]);
    return out;
  }

  /** Every module in the tree, this one first, with dotted paths ('' for this). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const stack: [string, Module][] = [[prefix, this]];
    while (stack.length > 0) {
      const [path, m] = stack.pop()!;
      out.push([path, m]);
      const children = m.namedChildren();
      for (let i = children.length - 1; i >= 0; i--) {
        const [name, child] = children[i]!;
        stack.push([path ? `${path}.${name}` : name, child]);
      }
    }
    return out;
  }

  /** Parameters with their state-dict names (e.g. `layer1.0.conv1.weight`). */
  namedParameters(): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [k, v] of Object.entries(m)) {
        if (v instanceof Parameter) out.push([path ? `${path}.${k}` : k, v]);
      }
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [k, v] of m.buffersByName) out.push([path ? `${path}.${k}` : k, v]);
    }
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  /**
   * Name -> tensor for every parameter and buffer, in module order (as PyTorch: a
   * module's parameters, then its buffers, then its children). The tensors share
   * storage with the model.
   */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [path, m] of this.namedModules()) {
      const key = (k: string): string => (path ? `${path}.${k}` : k);
      for (const [k, v] of Object.entries(m)) if (v instanceof Parameter) out[key(k)] = v;
      for (const [k, v] of m.buffersByName) out[key(k)] = v;
    }
    return out;
  }

  /**
   * Copy values from a state dict into this module. Every shape must match; with
   * `strict` (the default) the key sets must match too. Errors name the key and shapes.
   */
  loadStateDict(state: StateDict, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !(k in state));
    const unexpectedKeys = Object.keys(state).filter((k) => !(k in own));
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0)) {
      const parts: string[] = [];
      if (missingKeys.length) parts.push(`missing keys: ${listKeys(missingKeys)}`);
      if (unexpectedKeys.length) parts.push(`unexpected keys: ${listKeys(unexpectedKeys)}`);
      throw new Error(`loadStateDict: the state dict does not match the model (${parts.join('; ')}). ` +
        'Pass { strict: false } to load the matching keys only.');
    }
    for (const [k, target] of Object.entries(own)) {
      const src = state[k];
      if (src && !shapesAgree(src.shape, target.shape)) {
        throw new Error(`loadStateDict: size mismatch for ${k}: the checkpoint has shape ${formatShape(src.shape)}, ` +
          `the model expects ${formatShape(target.shape)}`);
      }
    }
    for (const [k, target] of Object.entries(own)) {
      const src = state[k];
      if (src) target.assign(src.data);
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Training mode (batch statistics in BN) for this module and all below it. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Inference mode (running statistics in BN). */
  eval(): this {
    return this.train(false);
  }

  /** Set every parameter's gradient to null. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Number of trained values. */
  numParameters(): number {
    let n = 0;
    for (const p of this.parameters()) n += p.size;
    return n;
  }
}

/**
 * Whether a stored tensor of shape `src` loads into one of shape `target`: the same
 * shape, or one value each (PyTorch stores num_batches_tracked as a 0-D int64; [] and
 * [1] are taken alike).
 */
export function shapesAgree(src: readonly number[], target: readonly number[]): boolean {
  if (src.length === target.length) return src.every((d, i) => d === target[i]);
  const one = (s: readonly number[]): boolean => s.every((d) => d === 1);
  return one(src) && one(target);
}

/** Keys for a message: the first eight, then how many in all. */
export function listKeys(keys: readonly string[]): string {
  const shown = keys.slice(0, 8).join(', ');
  return keys.length > 8 ? `${shown}, ... (${keys.length} in all)` : shown;
}
