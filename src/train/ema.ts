// Exponential moving average of a model's weights (Polyak averaging; timm ModelEmaV2):
// after each step, avg = d * avg + (1 - d) * current for every parameter and BN running
// statistic. The decay ramps up as min(d, (1 + n) / (10 + n)) over the first updates,
// as TensorFlow's ExponentialMovingAverage with num_updates, so early averages are not
// dominated by the random initialisation.
import type { Module, StateDict } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';

export class ModelEma {
  /** Averaged copy of every state-dict entry, by name. */
  readonly shadow: StateDict;
  updates = 0;

  constructor(model: Module, readonly decay: number) {
    if (!(decay > 0 && decay < 1)) throw new RangeError(`EMA decay must be in (0, 1), got ${decay}`);
    this.shadow = {};
    for (const [k, t] of Object.entries(model.stateDict())) this.shadow[k] = new Tensor(t.data.slice(), t.shape);
  }

  /** The decay used by the next update. */
  currentDecay(): number {
    return Math.min(this.decay, (1 + this.updates) / (10 + this.updates));
  }

  update(model: Module): void {
    const d = this.currentDecay();
    this.updates++;
    for (const [k, t] of Object.entries(model.stateDict())) {
      const avg = this.shadow[k]!.data;
      const cur = t.data;
      // A counter is copied, not averaged.
      if (k.endsWith('num_batches_tracked')) {
        avg.set(cur);
        continue;
      }
      for (let i = 0; i < avg.length; i++) avg[i] = d * avg[i]! + (1 - d) * cur[i]!;
    }
  }

  /** Put the averaged values into `model`; the returned function puts the model's own back. */
  private swapIn(model: Module): () => void {
    const own = model.stateDict();
    const saved = Object.entries(own).map(([k, t]) => [k, t.data.slice()] as const);
    for (const [k, t] of Object.entries(own)) t.assign(this.shadow[k]!.data);
    return () => {
      for (const [k, data] of saved) own[k]!.assign(data);
    };
  }

  /** Run `fn` with the averaged values in `model`, then put the model's own back. */
  async withAveraged<T>(model: Module, fn: () => Promise<T>): Promise<T> {
    const restore = this.swapIn(model);
    try {
      return await fn();
    } finally {
      restore();
    }
  }

  withAveragedSync<T>(model: Module, fn: () => T): T {
    const restore = this.swapIn(model);
    try {
      return fn();
    } finally {
      restore();
    }
  }
}
