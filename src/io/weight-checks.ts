// Checks of weights against the model they are meant for, made before the model is
// built: the state dict must hold the model's keys with the model's shapes (found by a
// dry build, so a file or flag that asks for a huge model costs nothing), and every
// value must be finite.
import { stateDictShapes } from '../nn/layers.js';
import { listKeys, type Module, shapesAgree, type StateDict } from '../nn/module.js';
import { formatShape } from '../tensor/tensor.js';
import { WeightsFileError } from './errors.js';

/** What keeps `state` from loading into a model of these state-dict shapes; null when it fits. */
export function stateDictMismatch(expected: Readonly<Record<string, readonly number[]>>, state: StateDict): string | null {
  const missing = Object.keys(expected).filter((k) => !Object.hasOwn(state, k));
  const unexpected = Object.keys(state).filter((k) => !Object.hasOwn(expected, k));
  if (missing.length > 0 || unexpected.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing keys: ${listKeys(missing)}`);
    if (unexpected.length > 0) parts.push(`unexpected keys: ${listKeys(unexpected)}`);
    return parts.join('; ');
  }
  for (const [k, shape] of Object.entries(expected)) {
    const t = state[k]!;
    if (!shapesAgree(t.shape, shape)) return `${k} has shape ${formatShape(t.shape)} in the file, the model has ${formatShape(shape)}`;
  }
  return null;
}

/**
 * Throw a WeightsFileError naming `source` when `state` does not fit the model that
 * `build` makes; `explain` turns the mismatch into the message. Nothing of the model is
 * allocated.
 */
export function checkWeightsFit(source: string, state: StateDict, build: () => Module, explain: (mismatch: string) => string): void {
  const mismatch = stateDictMismatch(stateDictShapes(build), state);
  if (mismatch !== null) throw new WeightsFileError(source, explain(mismatch));
}

/**
 * Model options a foreign state dict implies: classes from fc.weight, input channels
 * from conv1.weight (when they have the expected rank).
 */
export function optionsFromWeights(state: StateDict): { numClasses?: number; inChannels?: number } {
  const fc = state['fc.weight'];
  const conv1 = state['conv1.weight'];
  return {
    ...(fc && fc.ndim === 2 ? { numClasses: fc.shape[0]! } : {}),
    ...(conv1 && conv1.ndim === 4 ? { inChannels: conv1.shape[1]! } : {}),
  };
}

/** Throw a WeightsFileError naming `source` and the tensor when a value is NaN or infinite. */
export function checkFinite(state: StateDict, source: string): void {
  for (const [name, t] of Object.entries(state)) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      // v - v is 0 for every finite v, NaN for NaN and the infinities.
      if (v - v !== 0) {
        throw new WeightsFileError(source, `tensor "${name}" holds ${v} (value ${i + 1} of ${d.length}); a model with weights ` +
          'that are not finite answers NaN for every input: the file is damaged or comes from a diverged training run');
      }
    }
  }
}
