// The kernel surface every backend implements, declared once in the KERNELS table
// below and shared by the differentiable ops (src/tensor/ops.ts), the reference
// backend (the executable spec) and the native oneDNN backend.
//
// Conventions:
// - 4-D activations are NHWC: [N, H, W, C], contiguous. Prepared convolutions,
//   relayout, inference max pooling's output and global average pooling's input also
//   take them as nChw16c (ActivationLayout), their shape still given as [N, H, W, C].
// - Conv weights are OIHW: [O, I, KH, KW] (PyTorch / ONNX layout).
// - Matrices are row-major.
// - Kernels never modify their inputs unless the name says `InPlace`; they return
//   freshly allocated outputs.

export type Shape4 = readonly [number, number, number, number];

/**
 * A tensor's values: float32, or bfloat16 as a Uint16Array of bit patterns (the upper
 * halves of the float32s they stand for). Kernels with `Bf16` in their name read and write
 * bfloat16, compute in float32 and round each result to nearest even.
 */
export type Storage = Float32Array | Uint16Array;

/** Attributes of a 2-D convolution (dilation 1, groups 1). */
export interface Conv2dAttrs {
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
}

/** Attributes of a 2-D pooling window. */
export interface Pool2dAttrs {
  readonly kernelH: number;
  readonly kernelW: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
}

/** Options that fuse an elementwise tail into a convolution (inference only). */
export interface ConvPostOps {
  /** Added to the convolution output before `relu` (the residual add). Same shape as the output. */
  readonly sum?: Float32Array;
  readonly relu?: boolean;
  /**
   * Write the output over `sum` and return it, instead of a new array (the caller no
   * longer needs the residual): saves copying it. `x` must not share memory with `sum`.
   */
  readonly inPlace?: boolean;
}

/**
 * How a 4-D activation [N, H, W, C] lies in memory: 'nhwc', or 'nchw16c' (oneDNN's
 * nChw16c): per image, C / 16 blocks of 16 channels, each block an [H, W, 16] array, so
 * that C must be a multiple of 16. With 16 channels the two are the same bytes.
 */
export type ActivationLayout = 'nhwc' | 'nchw16c';

/**
 * A convolution with its weights, bias and attributes bound (prepareConv2d): the same
 * result as conv2d(x, xShape, w, wShape, bias, attrs, post), with x, post.sum and the
 * output in `layout` (default 'nhwc'). `layout` on the function, where a backend sets
 * it, is the one the convolution runs fastest on.
 */
export type PreparedConv2d = ((x: Float32Array, xShape: Shape4, post?: ConvPostOps,
  layout?: ActivationLayout) => Float32Array) & { readonly layout?: ActivationLayout };

export interface Conv2dGrads {
  dx: Float32Array | null;
  dw: Float32Array | null;
  db: Float32Array | null;
}

/** The gradients of conv2dBf16: dx bfloat16, dW and dBias float32. */
export interface Conv2dBf16Grads {
  dx: Uint16Array | null;
  dw: Float32Array | null;
  db: Float32Array | null;
}

export interface BatchNormTrainingResult {
  readonly y: Float32Array;
  /** Per-channel batch mean. */
  readonly mean: Float32Array;
  /** Per-channel biased batch variance (the one used for normalising). */
  readonly variance: Float32Array;
}

export interface BatchNormTrainingBf16Result {
  /** bfloat16, as x. */
  readonly y: Uint16Array;
  readonly mean: Float32Array;
  readonly variance: Float32Array;
}

export interface BatchNormBf16Grads {
  readonly dx: Uint16Array;
  readonly dgamma: Float32Array;
  readonly dbeta: Float32Array;
}

export interface BatchNormGrads {
  readonly dx: Float32Array;
  readonly dgamma: Float32Array;
  readonly dbeta: Float32Array;
}

export interface MaxPoolResult {
  readonly y: Float32Array;
  /** Flat input index (within its image and channel plane) of each output's maximum; null where not asked for. */
  readonly argmax: Int32Array | null;
}

export interface SoftmaxCrossEntropyResult {
  /** Mean loss over the batch. */
  readonly loss: number;
  /** Gradient of the mean loss with respect to the logits, [N, C]. */
  readonly dlogits: Float32Array;
}

export interface SgdAttrs {
  readonly lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  /** True on the first step, where PyTorch initialises the buffer with the gradient. */
  readonly firstStep: boolean;
}

/**
 * One row's type marker: the kernel's signature, carried in the type only (the row's
 * value is an empty object). See KERNELS.
 */
export interface KernelSpec<F> {
  readonly signature?: F;
}

function kernel<F extends (...args: never[]) => unknown>(): KernelSpec<F> {
  return {};
}

/**
 * Every kernel, declared once. The `Backend` interface (what the reference backend
 * implements and the ops call), the native addon's binding type and the native adapter
 * all follow from this table, and the addon registers the same names
 * (RESNET_KERNELS in native/kernels.h), taking the same arguments in the same order.
 * Adding a kernel: a row here, its implementation in src/backend/reference.ts (the
 * executable specification), a C++ function in native/ listed in RESNET_KERNELS, and a
 * reference-vs-native check in test/native-backend.test.ts.
 */
export const KERNELS = {
  // Convolution: x NHWC [N,H,W,C], w OIHW [O,C,KH,KW], y NHWC [N,OH,OW,O].
  conv2d: kernel<(x: Float32Array, xShape: Shape4, w: Float32Array, wShape: Shape4,
    bias: Float32Array | null, attrs: Conv2dAttrs, post?: ConvPostOps) => Float32Array>(),
  /**
   * conv2d with the weights and bias given once, for inference: a backend may pack the
   * weights into its own layout once and keep per-shape state. `scale`, when given,
   * multiplies each output channel's weights (w[o] * scale[o], rounded to float32: a
   * batch norm folded in) as they are packed, so a caller folding one holds no scaled
   * copy. `w` must not change afterwards.
   */
  prepareConv2d: kernel<(w: Float32Array, wShape: Shape4, bias: Float32Array | null,
    attrs: Conv2dAttrs, scale?: Float32Array | null) => PreparedConv2d>(),
  /** An activation of shape [N, H, W, C] (C a multiple of 16) copied from the other layout into `to`. */
  relayout: kernel<(x: Float32Array, xShape: Shape4, to: ActivationLayout) => Float32Array>(),
  /**
   * The gradients of conv2d: dx (NHWC) when `needDx`, dW (OIHW) when `needDw` and dBias
   * when also `withBias`; null for each one not asked for. One call for both, so a
   * backend that converts dy (bf16) does so once.
   */
  conv2dBackward: kernel<(x: Float32Array, xShape: Shape4, dy: Float32Array, w: Float32Array, wShape: Shape4,
    attrs: Conv2dAttrs, withBias: boolean, needDx: boolean, needDw: boolean) => Conv2dGrads>(),

  // Batch normalisation over N, H, W of an NHWC tensor; `relu` fuses max(0, .) after it.
  batchNormTraining: kernel<(x: Float32Array, xShape: Shape4, gamma: Float32Array, beta: Float32Array,
    eps: number, relu: boolean) => BatchNormTrainingResult>(),
  batchNormInference: kernel<(x: Float32Array, xShape: Shape4, gamma: Float32Array, beta: Float32Array,
    mean: Float32Array, variance: Float32Array, eps: number, relu: boolean) => Float32Array>(),
  /** Gradient of training-mode batch norm; `y` (the output) is given when ReLU was fused. */
  batchNormBackward: kernel<(dy: Float32Array, x: Float32Array, xShape: Shape4, gamma: Float32Array,
    mean: Float32Array, variance: Float32Array, eps: number, y: Float32Array | null) => BatchNormGrads>(),
  /**
   * Gradient of inference-mode batch norm (constant statistics `mean`, `variance`):
   * dx = g * gamma * invStd, dgamma = sum(g * (x - mean) * invStd), dbeta = sum(g), with
   * g = dy masked by y > 0 when `y` (the output of a fused ReLU) is given.
   */
  batchNormInferenceBackward: kernel<(dy: Float32Array, x: Float32Array, xShape: Shape4, gamma: Float32Array,
    mean: Float32Array, variance: Float32Array, eps: number, y: Float32Array | null) => BatchNormGrads>(),
  /**
   * PyTorch's running statistics update, in place: running = (1 - momentum) * running +
   * momentum * batch, the variance unbiased by count / (count - 1), where `count` is the
   * number of values per channel the batch statistics came from (N * H * W).
   */
  batchNormRunningStatsInPlace: kernel<(runningMean: Float32Array, runningVar: Float32Array, mean: Float32Array,
    variance: Float32Array, momentum: number, count: number) => void>(),

  // Elementwise.
  relu: kernel<(x: Float32Array) => Float32Array>(),
  /** dy where y > 0, else 0. */
  reluBackward: kernel<(dy: Float32Array, y: Float32Array) => Float32Array>(),
  add: kernel<(a: Float32Array, b: Float32Array) => Float32Array>(),
  /** relu(a + b): the tail of a post-activation residual block. */
  addRelu: kernel<(a: Float32Array, b: Float32Array) => Float32Array>(),
  /** a += b (gradient accumulation). */
  addInPlace: kernel<(a: Float32Array, b: Float32Array) => void>(),
  scale: kernel<(x: Float32Array, s: number) => Float32Array>(),
  sum: kernel<(x: Float32Array) => number>(),
  /** n copies of value (the gradient of sum and mean). */
  fill: kernel<(n: number, value: number) => Float32Array>(),

  // Option-A shortcut: out[n,h,w,padFront + c] = x[n, h*stride, w*stride, c], zero elsewhere.
  padChannelsSubsample: kernel<(x: Float32Array, xShape: Shape4, stride: number, outC: number,
    padFront: number) => Float32Array>(),
  padChannelsSubsampleBackward: kernel<(dy: Float32Array, xShape: Shape4, stride: number, outC: number,
    padFront: number) => Float32Array>(),

  // Pooling (NHWC). Padding of max pool is -inf; avg pool counts padded cells (PyTorch default).
  /**
   * With `argmax` the indices maxPool2dBackward needs; without, the maxima alone
   * (inference), which may be written in nChw16c (`to`, default 'nhwc'; x NHWC either way).
   */
  maxPool2d: kernel<(x: Float32Array, xShape: Shape4, attrs: Pool2dAttrs, argmax: boolean,
    to?: ActivationLayout) => MaxPoolResult>(),
  maxPool2dBackward: kernel<(dy: Float32Array, argmax: Int32Array, xShape: Shape4, attrs: Pool2dAttrs) => Float32Array>(),
  avgPool2d: kernel<(x: Float32Array, xShape: Shape4, attrs: Pool2dAttrs) => Float32Array>(),
  avgPool2dBackward: kernel<(dy: Float32Array, xShape: Shape4, attrs: Pool2dAttrs) => Float32Array>(),
  /** [N,H,W,C] -> [N,C], x in `layout` (default 'nhwc'). */
  globalAvgPool: kernel<(x: Float32Array, xShape: Shape4, layout?: ActivationLayout) => Float32Array>(),
  globalAvgPoolBackward: kernel<(dy: Float32Array, xShape: Shape4) => Float32Array>(),

  /**
   * C[M,N] = op(A) op(B) (+ bias[N] broadcast over rows), op = transpose when the flag is set.
   * A is [M,K] (or [K,M] when transA), B is [K,N] (or [N,K] when transB).
   */
  matmul: kernel<(a: Float32Array, b: Float32Array, m: number, n: number, k: number,
    transA: boolean, transB: boolean, bias: Float32Array | null) => Float32Array>(),
  /** Column sums of a [rows, cols] matrix (the bias gradient). */
  sumRows: kernel<(x: Float32Array, rows: number, cols: number) => Float32Array>(),

  logSoftmax: kernel<(x: Float32Array, rows: number, cols: number) => Float32Array>(),
  /** Gradient of log-softmax given its output y. */
  logSoftmaxBackward: kernel<(dy: Float32Array, y: Float32Array, rows: number, cols: number) => Float32Array>(),
  /** Mean cross-entropy of logits [N,C] against integer labels with label smoothing. */
  softmaxCrossEntropy: kernel<(logits: Float32Array, n: number, c: number, labels: Int32Array,
    labelSmoothing: number) => SoftmaxCrossEntropyResult>(),

  /** PyTorch's SGD update, in place on `param` and `momentumBuf`. */
  sgdStep: kernel<(param: Float32Array, grad: Float32Array, momentumBuf: Float32Array | null, attrs: SgdAttrs) => void>(),

  // bfloat16 storage (precision 'bf16'): the activations and their gradients between the
  // convolutions, half the bytes of float32. Each is its float32 kernel above on the
  // widened inputs, rounded once (src/backend/bf16.ts writes that out for the reference).
  toBf16: kernel<(x: Float32Array) => Uint16Array>(),
  fromBf16: kernel<(x: Uint16Array) => Float32Array>(),
  /** conv2d on bf16-rounded x (as given, or a Float32Array rounded) and weights; y bfloat16. */
  conv2dBf16: kernel<(x: Storage, xShape: Shape4, w: Float32Array, wShape: Shape4, bias: Float32Array | null,
    attrs: Conv2dAttrs) => Uint16Array>(),
  /** The gradients of conv2dBf16 from a bfloat16 dy: dx bfloat16, dW and dBias float32. */
  conv2dBackwardBf16: kernel<(x: Storage, xShape: Shape4, dy: Uint16Array, w: Float32Array, wShape: Shape4,
    attrs: Conv2dAttrs, withBias: boolean, needDx: boolean, needDw: boolean) => Conv2dBf16Grads>(),
  batchNormTrainingBf16: kernel<(x: Uint16Array, xShape: Shape4, gamma: Float32Array, beta: Float32Array,
    eps: number, relu: boolean) => BatchNormTrainingBf16Result>(),
  batchNormBackwardBf16: kernel<(dy: Uint16Array, x: Uint16Array, xShape: Shape4, gamma: Float32Array,
    mean: Float32Array, variance: Float32Array, eps: number, y: Uint16Array | null) => BatchNormBf16Grads>(),
  /** a + b, either input float32 or bfloat16. */
  addBf16: kernel<(a: Storage, b: Storage) => Uint16Array>(),
  addReluBf16: kernel<(a: Storage, b: Storage) => Uint16Array>(),
  reluBackwardBf16: kernel<(dy: Uint16Array, y: Uint16Array) => Uint16Array>(),
  addInPlaceBf16: kernel<(a: Uint16Array, b: Uint16Array) => void>(),
} as const;

export type KernelName = keyof typeof KERNELS;

/** The kernels as functions, typed from their rows in KERNELS. */
export type Kernels = { readonly [K in KernelName]: NonNullable<(typeof KERNELS)[K]['signature']> };

/** The names of KERNELS, in table order. */
export const KERNEL_NAMES = Object.keys(KERNELS) as readonly KernelName[];

/** The kernel surface every backend implements. */
export interface Backend extends Kernels {
  readonly name: 'reference' | 'native';
  /** Threads each kernel call runs on. */
  readonly threads: () => number;
}
