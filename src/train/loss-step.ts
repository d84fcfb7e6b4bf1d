// The loss and gradients of one batch on one model: what a training step computes before
// the optimizer, on this thread's model or a replica's (replicas.ts).
import type { Module } from '../nn/module.js';
import { crossEntropy } from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';

export type LossStep = { lossValue: number; logits: Tensor } | { problem: string };

/** Forward, cross-entropy (mean over the rows) and backward; a non-finite loss stops before backward. */
export function lossAndBackward(model: Module, x: Tensor, labels: Int32Array, labelSmoothing: number): LossStep {
  const logits = model.forward(x);
  const loss = crossEntropy(logits, labels, { labelSmoothing });
  const lossValue = loss.item();
  if (!Number.isFinite(lossValue)) return { problem: `loss (${lossValue})` };
  loss.backward();
  return { lossValue, logits };
}
