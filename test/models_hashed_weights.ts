// Weights both PyTorch (scripts/make_model_fixtures.py) and these tests compute bit for
// bit from an integer hash, so fixtures of 11M- and 25M-parameter models need not ship
// the weights. Keep in step with hashed_tensor() / hashed_input() in that script.
import * as models from '../src/models/index.js';
import type { Module } from '../src/nn/index.js';
import { Tensor } from '../src/tensor/tensor.js';

export const HASH_SEED = 20151210;

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** u_i in [0, 1): murmur3's fmix32 of (i*0x9E3779B1 + fnv1a(key)*0x85EBCA77 + seed) mod 2^32. */
export function hashedUniform(key: string, n: number, seed = HASH_SEED): Float64Array {
  const k = fnv1a32(key);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let x = (Math.imul(i, 0x9e3779b1) + Math.imul(k, 0x85ebca77) + seed) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b) >>> 0;
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35) >>> 0;
    x ^= x >>> 16;
    out[i] = (x >>> 0) / 4294967296;
  }
  return out;
}

/** The value of state-dict entry `name` with `shape`, as the fixture script fills it. */
export function hashedTensorValues(name: string, shape: readonly number[], seed = HASH_SEED): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = hashedUniform(name, n, seed);
  const out = new Float32Array(n);
  let map: (v: number) => number;
  if (name.endsWith('running_var')) map = (v) => 0.5 + v;
  else if (name.endsWith('running_mean') || name.endsWith('bias')) map = (v) => (2 * v - 1) * 0.1;
  else if (shape.length === 1) map = (v) => 0.5 + v;
  else if (shape.length === 4) {
    const bound = Math.sqrt(6 / (shape[1]! * shape[2]! * shape[3]!));
    map = (v) => (2 * v - 1) * bound;
  } else if (shape.length === 2) {
    const bound = 1 / Math.sqrt(shape[1]!);
    map = (v) => (2 * v - 1) * bound;
  } else {
    throw new Error(`no hash rule for ${name} [${shape.join(', ')}]`);
  }
  for (let i = 0; i < n; i++) out[i] = map(u[i]!);
  return out;
}

/** Fill every parameter and buffer of `model` from the hash (num_batches_tracked = 0). */
export function loadHashedWeights(model: Module, seed = HASH_SEED): void {
  const state: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(model.stateDict())) {
    state[name] = name.endsWith('num_batches_tracked')
      ? new Tensor(new Float32Array(t.size), t.shape)
      : new Tensor(hashedTensorValues(name, t.shape, seed), t.shape);
  }
  model.loadStateDict(state);
}

/** The fixture input, NHWC, uniform in [-1, 1). */
export function hashedInput(shape: readonly number[], seed = HASH_SEED): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = hashedUniform('input', n, seed);
  const out = new Float32Array(n);
  // float32 arithmetic as numpy's: round u first, then 2u (exact), then - 1 (rounded).
  for (let i = 0; i < n; i++) out[i] = Math.fround(Math.fround(u[i]!) * 2) - 1;
  return new Tensor(out, shape);
}

/** Set the BN shifts the fixture script moved to keep pre-activations away from zero. */
export function applyBiasAdjustments(model: Module, adjustments: Readonly<Record<string, readonly (readonly [number, number])[]>>): void {
  const state = model.stateDict();
  for (const [key, changes] of Object.entries(adjustments)) {
    const t = state[key];
    if (!t) throw new Error(`bias adjustment for ${key}, which the model does not have`);
    for (const [channel, value] of changes) t.data[channel] = value;
  }
}

// Building a 25M-parameter model takes a while: each (name, classes) is built once per
// test file, to be refilled from the hash before every use.
const built = new Map<string, models.ResidualNetwork>();

/** The model `name` with `numClasses` outputs, built on first use and shared after that. */
export function sharedModel(name: string, numClasses: number): models.ResidualNetwork {
  const key = `${name}/${numClasses}`;
  let model = built.get(key);
  if (!model) {
    model = models.create(name, { numClasses, seed: 1 });
    built.set(key, model);
  }
  return model;
}
