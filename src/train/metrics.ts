// Classification metrics: loss, top-1 / top-5 accuracy, per-class accuracy and the
// confusion matrix, over a whole evaluation set.
import type { DataLoader } from '../data/loader.js';
import { inferenceOf } from '../models/inference.js';
import type { Module } from '../nn/module.js';
import { crossEntropy } from '../tensor/ops.js';
import { noGrad } from '../tensor/tensor.js';
import { ttaLogits, type TtaMode } from './tta.js';

export interface EvalResult {
  /** Mean cross-entropy (no label smoothing). */
  loss: number;
  top1: number;
  top5: number;
  count: number;
  /** Accuracy of each class (NaN for a class with no images). */
  perClass: number[];
  /** confusion[true][predicted] = count. */
  confusion: number[][];
}

/** Position of the label among the scores: the number of classes scored strictly higher. */
export function rankOfLabel(logits: Float32Array, row: number, classes: number, label: number): number {
  const base = row * classes;
  const target = logits[base + label]!;
  let rank = 0;
  for (let c = 0; c < classes; c++) if (logits[base + c]! > target) rank++;
  return rank;
}

/** Index of the largest score in a row (the first one on ties). */
export function argmaxRow(logits: Float32Array, row: number, classes: number): number {
  const base = row * classes;
  let best = 0;
  for (let c = 1; c < classes; c++) if (logits[base + c]! > logits[base + best]!) best = c;
  return best;
}

export interface EvaluateOptions {
  /** Called after each batch with (batches done, batches in all). */
  onBatch?: (done: number, total: number) => void;
  /** Test-time augmentation: average the logits over these views of each batch (default 'none'). */
  tta?: TtaMode;
}

/**
 * Run the model in inference mode over every batch of `loader` through its compiled graph
 * (inferenceOf: BN folded, recompiled whenever the weights change).
 */
export async function evaluate(model: Module, loader: DataLoader, numClasses: number, opts: EvaluateOptions = {}): Promise<EvalResult> {
  const wasTraining = model.training;
  model.eval();
  const infer = inferenceOf(model);
  let lossSum = 0;
  let top1 = 0;
  let top5 = 0;
  let count = 0;
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  try {
    for await (const batch of loader.epoch(0)) {
      const { logits, loss } = noGrad(() => {
        const out = ttaLogits(infer, batch.x, opts.tta ?? 'none');
        return { logits: out.data, loss: crossEntropy(out, batch.labels).item() };
      });
      const n = batch.labels.length;
      lossSum += loss * n;
      for (let i = 0; i < n; i++) {
        const label = batch.labels[i]!;
        const predicted = argmaxRow(logits, i, numClasses);
        if (predicted === label) top1++;
        if (rankOfLabel(logits, i, numClasses, label) < 5) top5++;
        confusion[label]![predicted]!++;
      }
      count += n;
      opts.onBatch?.(batch.index + 1, loader.numBatches);
      // Let the event loop run between batches (signals, timers).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    model.train(wasTraining);
  }
  const perClass = confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? Number.NaN : row[c]! / total;
  });
  return { loss: lossSum / count, top1: top1 / count, top5: top5 / count, count, perClass, confusion };
}
