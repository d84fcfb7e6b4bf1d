// The native backend: every kernel of `Backend` runs in the oneDNN addon, zero-copy on
// the caller's Float32Arrays. This file only adapts the typed attribute objects to the
// addon's flat arguments; sizes are checked inside the addon.
import type { Backend, Conv2dAttrs, Pool2dAttrs } from './backend.js';
import { loadNativeBinding, type ConvAttrsTuple, type NativeBinding, type PoolAttrsTuple } from './native-binding.js';

function convAttrs(a: Conv2dAttrs): ConvAttrsTuple {
  return [a.strideH, a.strideW, a.padH, a.padW];
}

function poolAttrs(a: Pool2dAttrs): PoolAttrsTuple {
  return [a.kernelH, a.kernelW, a.strideH, a.strideW, a.padH, a.padW];
}

function makeBackend(b: NativeBinding): Backend {
  return {
    name: 'native',
    conv2d: (x, xShape, w, wShape, bias, attrs, post) =>
      b.conv2d(x, xShape, w, wShape, bias, convAttrs(attrs), post?.sum ?? null, post?.relu ?? false),
    conv2dBackwardData: (dy, w, wShape, xShape, attrs) => b.conv2dBackwardData(dy, w, wShape, xShape, convAttrs(attrs)),
    conv2dBackwardWeights: (x, xShape, dy, wShape, attrs, withBias) =>
      b.conv2dBackwardWeights(x, xShape, dy, wShape, convAttrs(attrs), withBias),
    batchNormTraining: (x, xShape, gamma, beta, eps, relu) => b.batchNormTraining(x, xShape, gamma, beta, eps, relu),
    batchNormAddReluTraining: (x, xShape, gamma, beta, eps, residual) =>
      b.batchNormTraining(x, xShape, gamma, beta, eps, true, residual),
    batchNormInference: (x, xShape, gamma, beta, mean, variance, eps, relu) =>
      b.batchNormInference(x, xShape, gamma, beta, mean, variance, eps, relu),
    batchNormBackward: (dy, x, xShape, gamma, mean, variance, eps, y) =>
      b.batchNormBackward(dy, x, xShape, gamma, mean, variance, eps, y),
    relu: (x) => b.relu(x),
    reluBackward: (dy, y) => b.reluBackward(dy, y),
    add: (x, y) => b.add(x, y),
    addRelu: (x, y) => b.addRelu(x, y),
    addInPlace: (x, y) => b.addInPlace(x, y),
    scale: (x, s) => b.scale(x, s),
    sum: (x) => b.sum(x),
    padChannelsSubsample: (x, xShape, stride, outC, padFront) => b.padChannelsSubsample(x, xShape, stride, outC, padFront),
    padChannelsSubsampleBackward: (dy, xShape, stride, outC, padFront) =>
      b.padChannelsSubsampleBackward(dy, xShape, stride, outC, padFront),
    maxPool2d: (x, xShape, attrs) => b.maxPool2d(x, xShape, poolAttrs(attrs)),
    maxPool2dBackward: (dy, argmax, xShape, attrs) => b.maxPool2dBackward(dy, argmax, xShape, poolAttrs(attrs)),
    avgPool2d: (x, xShape, attrs) => b.avgPool2d(x, xShape, poolAttrs(attrs)),
    avgPool2dBackward: (dy, xShape, attrs) => b.avgPool2dBackward(dy, xShape, poolAttrs(attrs)),
    globalAvgPool: (x, xShape) => b.globalAvgPool(x, xShape),
    globalAvgPoolBackward: (dy, xShape) => b.globalAvgPoolBackward(dy, xShape),
    matmul: (x, y, m, n, k, transA, transB, bias) => b.matmul(x, y, m, n, k, transA, transB, bias),
    sumRows: (x, rows, cols) => b.sumRows(x, rows, cols),
    logSoftmax: (x, rows, cols) => b.logSoftmax(x, rows, cols),
    logSoftmaxBackward: (dy, y, rows, cols) => b.logSoftmaxBackward(dy, y, rows, cols),
    softmaxCrossEntropy: (logits, n, c, labels, labelSmoothing) =>
      b.softmaxCrossEntropy(logits, n, c, labels, labelSmoothing),
    sgdStep: (param, grad, buf, a) =>
      b.sgdStep(param, grad, buf, a.lr, a.momentum, a.dampening, a.weightDecay, a.nesterov, a.firstStep),
  };
}

let instance: Backend | null = null;

/** The oneDNN backend; throws an Error with the reason when the addon cannot load. */
export function loadNativeBackend(): Backend {
  instance ??= makeBackend(loadNativeBinding());
  return instance;
}

/** Threads the native kernels use (OpenMP; all cores unless RESNET_THREADS is set). */
export function nativeThreads(): number {
  return loadNativeBinding().getThreads();
}

export function setNativeThreads(threads: number): void {
  loadNativeBinding().setThreads(threads);
}

/** oneDNN's effective instruction set and whether it has native bf16 dot products. */
export function nativeCpu(): { isa: string; bf16: boolean } {
  const b = loadNativeBinding();
  return { isa: b.cpuIsa, bf16: b.nativeBf16 };
}

/** Precision of the native convolutions (the other kernels always compute in float32). */
export function setNativeConvPrecision(precision: 'fp32' | 'bf16'): void {
  loadNativeBinding().setConvPrecision(precision);
}

export function nativeConvPrecision(): 'fp32' | 'bf16' {
  return loadNativeBinding().getConvPrecision();
}

/** The oneDNN version the addon runs on. */
export function onednnVersion(): string {
  return loadNativeBinding().onednnVersion;
}
