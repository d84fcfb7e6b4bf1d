// Batch-norm folding for inference: with fixed running statistics, BN after a
// convolution is an affine map per output channel, so the pair is one convolution:
//   BN(W*x + b) = g (W*x + b - m) / sqrt(v + eps) + beta
//              = (W s)*x + (beta + (b - m) s),   s = g / sqrt(v + eps)
// (torch.nn.utils.fusion.fuse_conv_bn_weights). The scale s and the shift are computed
// in float64 and rounded once to float32; the weights are W times the rounded s.
import { scaleOutputChannels } from '../backend/reference.js';
import type { Tensor } from '../tensor/tensor.js';

/** A convolution's weight (OIHW) and optional bias, as Conv2d has them. */
export interface ConvWeights {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
}

/** A batch norm's affine parameters and running statistics, as BatchNorm2d has them. */
export interface BatchNormStatistics {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly eps: number;
}

export interface FoldedConv {
  /** OIHW, the convolution's weight shape. */
  readonly weight: Float32Array;
  /** One value per output channel. */
  readonly bias: Float32Array;
}

/** What folding `bn` into `conv` does, per output channel: the weights' scale s and the new bias. */
export interface BatchNormFold {
  readonly scale: Float32Array;
  readonly bias: Float32Array;
}

/**
 * The scale and bias of the convolution equal to `bn(conv(x))` in eval mode, without
 * the scaled weights (Backend.prepareConv2d's `scale` applies it as it packs them).
 */
export function batchNormFold(conv: ConvWeights, bn: BatchNormStatistics): BatchNormFold {
  const out = conv.weight.shape[0]!;
  if (bn.weight.size !== out) {
    throw new Error(`foldBatchNorm: the batch norm has ${bn.weight.size} channels, the convolution before it outputs ${out}`);
  }
  const scale = new Float32Array(out);
  const bias = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const s = bn.weight.data[o]! / Math.sqrt(bn.runningVar.data[o]! + bn.eps);
    scale[o] = s;
    const b = conv.bias ? conv.bias.data[o]! : 0;
    bias[o] = bn.bias.data[o]! + (b - bn.runningMean.data[o]!) * s;
  }
  return { scale, bias };
}

/** The weight and bias of one convolution equal to `bn(conv(x))` in eval mode. */
export function foldBatchNorm(conv: ConvWeights, bn: BatchNormStatistics): FoldedConv {
  const { scale, bias } = batchNormFold(conv, bn);
  return { weight: scaleOutputChannels(conv.weight.data, conv.weight.shape[0]!, scale), bias };
}
