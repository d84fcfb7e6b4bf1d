// The loss and gradients of one batch on one model: what a training step computes before
// the optimizer, on this thread's model or a replica's (replicas.ts).
import { withScratch } from '../backend/index.js';
import type { Module } from '../nn/module.js';
import { crossEntropy, type CrossEntropyOptions } from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';

export type LossStep = { lossValue: number; logits: Tensor } | { problem: string };

/**
 * Forward, cross-entropy (mean over the rows; `loss`: label smoothing and mixed targets)
 * and backward; a non-finite loss stops
 * before backward. The activations and their gradients live in the kernel scratch for
 * the length of this call; what it returns (the loss value, a copy of the logits, the
 * parameters' gradients, which backward always copies) outlives it.
 */
export function lossAndBackward(model: Module, x: Tensor, labels: Int32Array, loss: CrossEntropyOptions): LossStep {
  return withScratch((): LossStep => {
    const logits = model.forward(x);
    const value = crossEntropy(logits, labels, loss);
    const lossValue = value.item();
    if (!Number.isFinite(lossValue)) return { problem: `loss (${lossValue})` };
    value.backward();
    return { lossValue, logits: logits.clone() };
  });
}
