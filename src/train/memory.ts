// Will a batch fit in memory? Estimated from the model summary before anything large is
// allocated, so a too-large --batch-size ends in a message instead of an allocation
// failure (or the kernel's out-of-memory killer) minutes into a run.
//
// Training keeps every layer's output for the backward pass and allocates gradients of
// the same sizes while it runs; measured peaks on the native backend are 1.5-1.7 times the
// sum of the layer outputs (resnet20, resnet18), so the estimate takes twice that sum.
// Inference keeps a few layers alive at a time: three times the largest output.
import { freemem, totalmem } from 'node:os';
import { summarize } from '../models/summary.js';
import type { Module } from '../nn/module.js';
import { ConfigError } from './config.js';

const FLOAT = 4;
const TRAINING_FACTOR = 2;
const INFERENCE_FACTOR = 3;
/** Weights, gradients, momentum and a checkpoint's serialised copy. */
const PARAMETER_COPIES = 4;

export interface MemoryNeed {
  /** Bytes of activations per image in a training step. */
  trainingBytesPerImage: number;
  /** Bytes of activations per image in an evaluation pass. */
  inferenceBytesPerImage: number;
  /** Bytes independent of the batch size. */
  fixedBytes: number;
}

/** What one image of `inputShape` ([h, w, c]) costs `model` in training and in evaluation. */
export function memoryNeed(model: Module, inputShape: readonly [number, number, number]): MemoryNeed {
  const s = summarize(model, inputShape);
  const sizes = s.layers.map((l) => l.outputShape.reduce((a, b) => a * b, 1));
  const sum = sizes.reduce((a, b) => a + b, inputShape[0] * inputShape[1] * inputShape[2]);
  return {
    trainingBytesPerImage: TRAINING_FACTOR * sum * FLOAT,
    inferenceBytesPerImage: INFERENCE_FACTOR * Math.max(0, ...sizes) * FLOAT,
    fixedBytes: PARAMETER_COPIES * s.totalParams * FLOAT,
  };
}

/**
 * Memory this process can still use: the system's available memory, or less under a
 * container's limit (process.constrainedMemory, cgroups).
 */
export function availableMemory(): number {
  const free = freemem();
  const limit = process.constrainedMemory?.() ?? 0;
  // Unlimited cgroups report a huge number; a real limit is below the machine's memory.
  if (limit > 0 && limit < totalmem()) return Math.min(free, Math.max(0, limit - process.memoryUsage().rss));
  return free;
}

export function formatBytes(n: number): string {
  for (const [unit, size] of [['TB', 1e12], ['GB', 1e9], ['MB', 1e6], ['kB', 1e3]] as const) {
    if (n >= size) return `${(n / size).toFixed(1)} ${unit}`;
  }
  return `${Math.round(n)} B`;
}

export interface BatchUse {
  /** The flag that sets the batch size, named in the message. */
  flag: string;
  batch: number;
  mode: 'training' | 'inference';
}

export interface BatchCheck {
  model: Module;
  modelName: string;
  inputShape: readonly [number, number, number];
  batches: readonly BatchUse[];
  /** Bytes available; default: availableMemory(). */
  available?: number;
}

/** A ConfigError naming the flag when a training step or an evaluation pass would not fit in memory. */
export function checkBatchesFit(c: BatchCheck): void {
  const need = memoryNeed(c.model, c.inputShape);
  const available = c.available ?? availableMemory();
  const [h, w, ch] = c.inputShape;
  for (const { flag, batch, mode } of c.batches) {
    if (batch <= 0) continue;
    const perImage = mode === 'training' ? need.trainingBytesPerImage : need.inferenceBytesPerImage;
    const total = need.fixedBytes + batch * perImage;
    if (total <= available) continue;
    const most = Math.floor((available - need.fixedBytes) / perImage);
    const advice = most >= 1 ? `use ${flag} ${most} or less` : 'choose a smaller model or a machine with more memory';
    const what = mode === 'training' ? 'a training step' : 'an evaluation pass';
    throw new ConfigError(`${flag} ${batch}: ${what} of ${c.modelName} on ${h}x${w}x${ch} images needs about ${formatBytes(total)} ` +
      `(${formatBytes(perImage)} per image), but ${formatBytes(available)} of memory is available; ${advice}`);
  }
}
