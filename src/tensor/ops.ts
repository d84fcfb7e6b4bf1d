// Differentiable ops. Each op checks its shapes, runs one backend kernel forward and
// records, right beside it, its gradient expressed in backend kernels.
//
// bf16 precision: a convolution's output is bfloat16, and batch norm (training) and the
// residual add keep bfloat16 inputs bfloat16, so the activations and their gradients
// between convolutions take half the bytes. Every other op reads a bfloat16 input as
// float32 (`Tensor.data`) and writes float32.
import type { Conv2dAttrs, Pool2dAttrs, Shape4 } from '../backend/backend.js';
import { backend, precision } from '../backend/index.js';
import { conv2dOutShape, numel, pool2dOutShape, subsampleSize } from '../backend/shapes.js';
import { formatShape, fromOp, Tensor, tracksGrad } from './tensor.js';

function shapeError(op: string, detail: string): Error {
  return new Error(`${op}: ${detail}`);
}

function as4d(op: string, what: string, t: Tensor): Shape4 {
  if (t.ndim !== 4) throw shapeError(op, `${what} must be 4-D NHWC [N, H, W, C], got ${formatShape(t.shape)}`);
  return [t.shape[0]!, t.shape[1]!, t.shape[2]!, t.shape[3]!];
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.ndim !== b.ndim || a.shape.some((d, i) => d !== b.shape[i])) {
    throw shapeError(op, `shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`);
  }
}

function pair(v: number | readonly [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

// ------------------------------------------------------------- convolution

export interface Conv2dOptions {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
}

/** 2-D convolution: x NHWC [N,H,W,C], weight OIHW [O,C,KH,KW], optional bias [O]. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  const xs = as4d(op, 'input', x);
  if (weight.ndim !== 4) throw shapeError(op, `weight must be 4-D OIHW, got ${formatShape(weight.shape)}`);
  const ws: Shape4 = [weight.shape[0]!, weight.shape[1]!, weight.shape[2]!, weight.shape[3]!];
  if (xs[3] !== ws[1]) {
    throw shapeError(op, `input ${formatShape(xs)} has ${xs[3]} channels but weight ${formatShape(ws)} expects ${ws[1]}`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== ws[0])) {
    throw shapeError(op, `bias ${formatShape(bias.shape)} must be [${ws[0]}] for weight ${formatShape(ws)}`);
  }
  const [strideH, strideW] = pair(opts.stride ?? 1);
  const [padH, padW] = pair(opts.padding ?? 0);
  const attrs: Conv2dAttrs = { strideH, strideW, padH, padW };
  const ys = conv2dOutShape(xs, ws, attrs);
  if (ys[1] <= 0 || ys[2] <= 0) {
    throw shapeError(op, `input ${formatShape(xs)} is too small for kernel ${ws[2]}x${ws[3]} with padding ${padH},${padW}`);
  }
  const be = backend();
  const inputs = bias ? [x, weight, bias] : [x, weight];
  const needW = (): boolean => weight.requiresGrad || (bias?.requiresGrad ?? false);
  if (precision() === 'bf16') {
    const y = be.conv2dBf16(x.storage, xs, weight.data, ws, bias ? bias.data : null, attrs);
    return fromOp(op, y, ys, inputs, (dy) => {
      const g = be.conv2dBackwardBf16(x.storage, xs, dy, weight.data, ws, attrs, bias !== null, x.requiresGrad, needW());
      return [g.dx, g.dw, g.db];
    }, { attrs: { ...attrs } });
  }
  const y = be.conv2d(x.data, xs, weight.data, ws, bias ? bias.data : null, attrs);
  return fromOp(op, y, ys, inputs, (dy) => {
    const g = be.conv2dBackward(x.data, xs, dy, weight.data, ws, attrs, bias !== null, x.requiresGrad, needW());
    return [g.dx, g.dw, g.db];
  }, { attrs: { ...attrs } });
}

// ------------------------------------------------------------- batch norm

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
  /** Fuse a ReLU after the normalisation. */
  relu?: boolean;
}

/**
 * Batch normalisation over N, H, W of an NHWC tensor, as torch.nn.functional.batch_norm:
 * training mode normalises with the batch mean and biased variance and updates the
 * running statistics with momentum, using the unbiased variance; inference mode uses
 * the running statistics.
 */
export function batchNorm2d(x: Tensor, runningMean: Tensor, runningVar: Tensor, weight: Tensor, bias: Tensor,
  opts: BatchNormOptions): Tensor {
  const op = opts.relu ? 'batchNorm2d+relu' : 'batchNorm2d';
  const xs = as4d(op, 'input', x);
  const c = xs[3];
  for (const [name, t] of [['weight', weight], ['bias', bias], ['running_mean', runningMean], ['running_var', runningVar]] as const) {
    if (t.size !== c) throw shapeError(op, `input ${formatShape(xs)} has ${c} channels but ${name} has shape ${formatShape(t.shape)}`);
  }
  const eps = opts.eps ?? 1e-5;
  const relu = opts.relu ?? false;
  const be = backend();
  if (!opts.training) {
    const y = be.batchNormInference(x.data, xs, weight.data, bias.data, runningMean.data, runningVar.data, eps, relu);
    return fromOp(op, y, xs, [x, weight, bias], (dy) => {
      const g = be.batchNormInferenceBackward(dy, x.data, xs, weight.data, runningMean.data, runningVar.data, eps,
        relu ? y : null);
      return [g.dx, g.dgamma, g.dbeta];
    }, { attrs: { eps, relu, training: false }, inputs: [x, weight, bias, runningMean, runningVar] });
  }
  const count = numel(xs) / c;
  if (count <= 1) {
    throw shapeError(op, `expected more than 1 value per channel in training mode, got input ${formatShape(xs)}`);
  }
  const updateRunningStats = (mean: Float32Array, variance: Float32Array): void => {
    be.batchNormRunningStatsInPlace(runningMean.data, runningVar.data, mean, variance, opts.momentum ?? 0.1, count);
    runningMean.markModified();
    runningVar.markModified();
  };
  const trace = { attrs: { eps, relu, training: true }, inputs: [x, weight, bias, runningMean, runningVar] };
  const xb = x.storage;
  if (xb instanceof Uint16Array) {
    const r = be.batchNormTrainingBf16(xb, xs, weight.data, bias.data, eps, relu);
    updateRunningStats(r.mean, r.variance);
    return fromOp(op, r.y, xs, [x, weight, bias], (dy) => {
      const g = be.batchNormBackwardBf16(dy, xb, xs, weight.data, r.mean, r.variance, eps, relu ? r.y : null);
      return [g.dx, g.dgamma, g.dbeta];
    }, trace);
  }
  const r = be.batchNormTraining(x.data, xs, weight.data, bias.data, eps, relu);
  updateRunningStats(r.mean, r.variance);
  return fromOp(op, r.y, xs, [x, weight, bias], (dy) => {
    const g = be.batchNormBackward(dy, x.data, xs, weight.data, r.mean, r.variance, eps, relu ? r.y : null);
    return [g.dx, g.dgamma, g.dbeta];
  }, trace);
}

// ------------------------------------------------------------- elementwise

export function relu(x: Tensor): Tensor {
  const be = backend();
  const y = be.relu(x.data);
  return fromOp('relu', y, x.shape, [x], (dy) => [be.reluBackward(dy, y)]);
}

/** Whether an element-wise op on these inputs computes in bfloat16 storage (either one is). */
function anyBf16(a: Tensor, b: Tensor): boolean {
  return a.storage instanceof Uint16Array || b.storage instanceof Uint16Array;
}

export function add(a: Tensor, b: Tensor): Tensor {
  sameShape('add', a, b);
  const be = backend();
  if (anyBf16(a, b)) return fromOp('add', be.addBf16(a.storage, b.storage), a.shape, [a, b], (dy) => [dy, dy]);
  return fromOp('add', be.add(a.data, b.data), a.shape, [a, b], (dy) => [dy, dy]);
}

/** relu(a + b) in one kernel: the end of a post-activation (v1) residual block. */
export function addRelu(a: Tensor, b: Tensor): Tensor {
  sameShape('addRelu', a, b);
  const be = backend();
  if (anyBf16(a, b)) {
    const y = be.addReluBf16(a.storage, b.storage);
    return fromOp('addRelu', y, a.shape, [a, b], (dy) => {
      const g = be.reluBackwardBf16(dy, y);
      return [g, g];
    });
  }
  const y = be.addRelu(a.data, b.data);
  return fromOp('addRelu', y, a.shape, [a, b], (dy) => {
    const g = be.reluBackward(dy, y);
    return [g, g];
  });
}

export function mulScalar(x: Tensor, s: number): Tensor {
  const be = backend();
  return fromOp('mulScalar', be.scale(x.data, s), x.shape, [x], (dy) => [be.scale(dy, s)], { attrs: { scale: s } });
}

/**
 * The option-A shortcut of He et al. 2015 (sec. 3.3): subsample by `stride`
 * (x[:, ::s, ::s]) and zero-pad the channels up to `outChannels`, `padFront` zero
 * channels before the input's.
 */
export function padChannelsSubsample(x: Tensor, stride: number, outChannels: number, padFront: number): Tensor {
  const op = 'padChannelsSubsample';
  const xs = as4d(op, 'input', x);
  const ys = [xs[0], subsampleSize(xs[1], stride), subsampleSize(xs[2], stride), outChannels];
  if (padFront < 0 || padFront + xs[3] > outChannels) {
    throw shapeError(op, `input ${formatShape(xs)} does not fit output ${formatShape(ys)}: ` +
      `cannot place ${xs[3]} channels at offset ${padFront} in ${outChannels} output channels`);
  }
  const be = backend();
  return fromOp(op, be.padChannelsSubsample(x.data, xs, stride, outChannels, padFront), ys, [x],
    (dy) => [be.padChannelsSubsampleBackward(dy, xs, stride, outChannels, padFront)], { attrs: { stride, outChannels, padFront } });
}

// ------------------------------------------------------------- pooling

export interface Pool2dOptions {
  kernelSize: number | readonly [number, number];
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
}

function poolAttrs(op: string, xs: Shape4, o: Pool2dOptions): Pool2dAttrs {
  const [kernelH, kernelW] = pair(o.kernelSize);
  const [strideH, strideW] = pair(o.stride ?? o.kernelSize);
  const [padH, padW] = pair(o.padding ?? 0);
  if (padH * 2 > kernelH || padW * 2 > kernelW) {
    throw shapeError(op, `padding ${padH},${padW} must be at most half the kernel ${kernelH}x${kernelW}`);
  }
  const attrs = { kernelH, kernelW, strideH, strideW, padH, padW };
  const ys = pool2dOutShape(xs, attrs);
  if (ys[1] <= 0 || ys[2] <= 0) throw shapeError(op, `input ${formatShape(xs)} is too small for kernel ${kernelH}x${kernelW}`);
  return attrs;
}

export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const op = 'maxPool2d';
  const xs = as4d(op, 'input', x);
  const attrs = poolAttrs(op, xs, opts);
  const be = backend();
  // The indices only where a gradient will need them.
  const r = be.maxPool2d(x.data, xs, attrs, tracksGrad([x]));
  return fromOp(op, r.y, pool2dOutShape(xs, attrs), [x], (dy) => [be.maxPool2dBackward(dy, r.argmax!, xs, attrs)], { attrs: { ...attrs } });
}

/** Average pooling; padded cells count in the divisor (PyTorch's count_include_pad=True). */
export function avgPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const op = 'avgPool2d';
  const xs = as4d(op, 'input', x);
  const attrs = poolAttrs(op, xs, opts);
  const be = backend();
  return fromOp(op, be.avgPool2d(x.data, xs, attrs), pool2dOutShape(xs, attrs), [x],
    (dy) => [be.avgPool2dBackward(dy, xs, attrs)], { attrs: { ...attrs } });
}

/** Mean over H and W: [N,H,W,C] -> [N,C]. */
export function globalAvgPool(x: Tensor): Tensor {
  const op = 'globalAvgPool';
  const xs = as4d(op, 'input', x);
  const be = backend();
  return fromOp(op, be.globalAvgPool(x.data, xs), [xs[0], xs[3]], [x], (dy) => [be.globalAvgPoolBackward(dy, xs)]);
}

// ------------------------------------------------------------- shape

/** Same values, new shape (one dimension may be -1). Shares storage (and dtype) with x. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1);
  const inferred = shape.length - known.length;
  if (inferred > 1) throw shapeError('reshape', `only one dimension may be -1, got ${formatShape(shape)}`);
  const rest = numel(known);
  const resolved = shape.map((d) => (d === -1 ? (rest === 0 ? 0 : x.size / rest) : d));
  if (numel(resolved) !== x.size || resolved.some((d) => !Number.isInteger(d))) {
    throw shapeError('reshape', `cannot view ${formatShape(x.shape)} (${x.size} values) as ${formatShape(shape)}`);
  }
  return fromOp('reshape', x.storage, resolved, [x], (dy) => [dy]);
}

/** [N, ...] -> [N, prod(...)]. */
export function flatten(x: Tensor): Tensor {
  if (x.ndim < 1) throw shapeError('flatten', `needs at least one dimension, got shape ${formatShape(x.shape)}`);
  return reshape(x, [x.shape[0]!, -1]);
}

// ------------------------------------------------------------- linear algebra

/** Matrix product of 2-D tensors. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 2 || b.ndim !== 2 || a.shape[1] !== b.shape[0]) {
    throw shapeError('matmul', `cannot multiply ${formatShape(a.shape)} by ${formatShape(b.shape)}`);
  }
  const [m, k] = [a.shape[0]!, a.shape[1]!];
  const n = b.shape[1]!;
  const be = backend();
  return fromOp('matmul', be.matmul(a.data, b.data, m, n, k, false, false, null), [m, n], [a, b], (dy) => [
    a.requiresGrad ? be.matmul(dy, b.data, m, k, n, false, true, null) : null,
    b.requiresGrad ? be.matmul(a.data, dy, k, n, m, true, false, null) : null,
  ]);
}

/** y = x W^T + b, x [N, in], W [out, in], b [out] (torch.nn.functional.linear). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const op = 'linear';
  if (x.ndim !== 2) throw shapeError(op, `input must be 2-D [N, features], got ${formatShape(x.shape)}`);
  if (weight.ndim !== 2 || weight.shape[1] !== x.shape[1]) {
    throw shapeError(op, `input ${formatShape(x.shape)} has ${x.shape[1]} features but weight ${formatShape(weight.shape)} expects ${weight.shape[1]}`);
  }
  const [n, inF] = [x.shape[0]!, x.shape[1]!];
  const outF = weight.shape[0]!;
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw shapeError(op, `bias ${formatShape(bias.shape)} must be [${outF}] for weight ${formatShape(weight.shape)}`);
  }
  const be = backend();
  const y = be.matmul(x.data, weight.data, n, outF, inF, false, true, bias ? bias.data : null);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return fromOp(op, y, [n, outF], inputs, (dy) => [
    x.requiresGrad ? be.matmul(dy, weight.data, n, inF, outF, false, false, null) : null,
    weight.requiresGrad ? be.matmul(dy, x.data, outF, inF, n, true, false, null) : null,
    bias?.requiresGrad ? be.sumRows(dy, n, outF) : null,
  ]);
}

// ------------------------------------------------------------- losses and reductions

function as2d(op: string, x: Tensor): [number, number] {
  if (x.ndim !== 2) throw shapeError(op, `input must be 2-D [N, classes], got ${formatShape(x.shape)}`);
  return [x.shape[0]!, x.shape[1]!];
}

/** log(softmax(x)) along the last dimension of a 2-D tensor. */
export function logSoftmax(x: Tensor): Tensor {
  const [rows, cols] = as2d('logSoftmax', x);
  const be = backend();
  const y = be.logSoftmax(x.data, rows, cols);
  return fromOp('logSoftmax', y, x.shape, [x], (dy) => [be.logSoftmaxBackward(dy, y, rows, cols)]);
}

/**
 * Mixed targets (mixup, CutMix): row i's target is weight x the target of its label plus
 * (1 - weight) x that of labels[i] here, smoothed alike; the loss is the same mix of the
 * two losses.
 */
export interface MixTargets {
  readonly labels: Int32Array;
  readonly weight: number;
}

export interface CrossEntropyOptions {
  /** PyTorch's label_smoothing: targets (1 - s) on the label plus s / C everywhere. */
  labelSmoothing?: number;
  mix?: MixTargets | null;
}

function checkLabels(op: string, logits: Tensor, labels: Int32Array, noun: 'label' | 'mix label'): void {
  const [n, c] = logits.shape as [number, number];
  if (labels.length !== n) {
    throw shapeError(op, `logits ${formatShape(logits.shape)} has ${n} rows but ${noun}s ${formatShape([labels.length])} has ${labels.length}`);
  }
  for (let i = 0; i < n; i++) {
    const l = labels[i]!;
    if (!(l >= 0 && l < c)) throw shapeError(op, `${noun} ${l} at position ${i} is out of range for ${c} classes`);
  }
}

/** Mean cross-entropy of logits [N, C] (not probabilities) against integer labels. */
export function crossEntropy(logits: Tensor, labels: Int32Array, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const [n, c] = as2d(op, logits);
  checkLabels(op, logits, labels, 'label');
  const s = opts.labelSmoothing ?? 0;
  if (!(s >= 0 && s <= 1)) throw shapeError(op, `labelSmoothing must be in [0, 1], got ${s}`);
  const be = backend();
  let r = be.softmaxCrossEntropy(logits.data, n, c, labels, s);
  const mix = opts.mix ?? null;
  if (mix) {
    const w = mix.weight;
    if (!(w >= 0 && w <= 1)) throw shapeError(op, `mix weight must be in [0, 1], got ${w}`);
    checkLabels(op, logits, mix.labels, 'mix label');
    const other = be.softmaxCrossEntropy(logits.data, n, c, mix.labels, s);
    r = { loss: w * r.loss + (1 - w) * other.loss, dlogits: be.add(be.scale(r.dlogits, w), be.scale(other.dlogits, 1 - w)) };
  }
  const { loss, dlogits } = r;
  return fromOp(op, new Float32Array([loss]), [], [logits], (dy) => [be.scale(dlogits, dy[0]!)]);
}

/** Sum of all values, a 0-D tensor. */
export function sum(x: Tensor): Tensor {
  const be = backend();
  return fromOp('sum', new Float32Array([be.sum(x.data)]), [], [x], (dy) => [be.fill(x.size, dy[0]!)]);
}

/** Mean of all values, a 0-D tensor. */
export function mean(x: Tensor): Tensor {
  if (x.size === 0) throw shapeError('mean', 'mean of an empty tensor');
  const be = backend();
  const n = x.size;
  return fromOp('mean', new Float32Array([be.sum(x.data) / n]), [], [x], (dy) => [be.fill(n, dy[0]! / n)]);
}
