// Eval-mode inference compiled from a network's module tree, for every block kind the
// builders make. What eval mode allows and training does not:
// - a batch norm that follows a convolution is folded into it (src/nn/fold.ts);
// - the ReLU after it and the residual add before it run as the convolution's post-ops
//   (Backend.conv2d `post`), so a v1 basic block is two kernel calls instead of six;
// - a batch norm that follows an addition (the input of a pre-activation block, whose
//   raw value the identity shortcut still needs, and the v2 network's final BN) runs as
//   one inference kernel with its ReLU;
// - nothing couples the images of a batch, so the batch goes through the whole network
//   a chunk of images at a time, and one chunk's activations stay in cache from one
//   layer to the next.
// The weights and statistics are copied when compiling: compile again after they change
// (a training step, loadStateDict, an EMA swap).
import type { Backend, Conv2dAttrs, ConvPostOps, Pool2dAttrs, PreparedConv2d, Shape4 } from '../backend/backend.js';
import { backend } from '../backend/index.js';
import { conv2dOutShape, pool2dOutShape, subsampleSize } from '../backend/shapes.js';
import { foldBatchNorm } from '../nn/fold.js';
import { BatchNorm2d, Conv2d, Identity, type Linear, MaxPool2d, type Module, Sequential } from '../nn/index.js';
import { noGrad, Tensor } from '../tensor/tensor.js';
import { BasicBlock, Bottleneck } from './blocks.js';
import { checkImageBatch } from './network.js';
import { PlainBlock, PlainBottleneck } from './plain_blocks.js';
import { PreActBlock, PreActBottleneck } from './preact_blocks.js';
import { PreActResNet } from './preact_resnet.js';
import { ResNet } from './resnet.js';
import { ZeroPadShortcut } from './shortcuts.js';

/** Logits [N, numClasses] of an NHWC batch [N, H, W, inChannels]. */
export type InferenceFn = (x: Tensor) => Tensor;

export interface InferenceOptions {
  /** Images per pass through the network (default 16); the last chunk may be smaller. */
  chunk?: number;
}

/** The module tree holds something compileInference has no compiled form for. */
export class UnsupportedModelError extends Error {
  override readonly name = 'UnsupportedModelError';
}

/** An activation batch between compiled steps, NHWC. */
interface Activation {
  readonly data: Float32Array;
  readonly shape: Shape4;
}

/** One layer or block of the compiled network. */
type Step = (be: Backend, x: Activation) => Activation;

interface ConvPlan {
  readonly weight: Float32Array;
  readonly wShape: Shape4;
  readonly bias: Float32Array | null;
  readonly attrs: Conv2dAttrs;
  /** The convolution prepared (weights packed once) on each backend it has run on. */
  readonly prepared: Map<Backend, PreparedConv2d>;
}

interface BatchNormPlan {
  readonly gamma: Float32Array;
  readonly beta: Float32Array;
  readonly mean: Float32Array;
  readonly variance: Float32Array;
  readonly eps: number;
}

/** `conv` with the batch norm after it folded in, or the bare convolution when `bn` is null. */
function convPlan(conv: Conv2d, bn: BatchNorm2d | null): ConvPlan {
  const { weight, bias } = bn ? foldBatchNorm(conv, bn) : { weight: conv.weight.data.slice(), bias: conv.bias?.data.slice() ?? null };
  const k = conv.kernelSize;
  const attrs = { strideH: conv.stride, strideW: conv.stride, padH: conv.padding, padW: conv.padding };
  return { weight, wShape: [conv.outChannels, conv.inChannels, k, k], bias, attrs, prepared: new Map() };
}

function runConv(be: Backend, p: ConvPlan, x: Activation, post: ConvPostOps = {}): Activation {
  let conv = p.prepared.get(be);
  if (!conv) {
    conv = be.prepareConv2d(p.weight, p.wShape, p.bias, p.attrs);
    p.prepared.set(be, conv);
  }
  return { data: conv(x.data, x.shape, post), shape: conv2dOutShape(x.shape, p.wShape, p.attrs) };
}

function batchNormPlan(bn: BatchNorm2d): BatchNormPlan {
  return {
    gamma: bn.weight.data.slice(), beta: bn.bias.data.slice(),
    mean: bn.runningMean.data.slice(), variance: bn.runningVar.data.slice(), eps: bn.eps,
  };
}

function runBatchNormRelu(be: Backend, p: BatchNormPlan, x: Activation): Activation {
  return { data: be.batchNormInference(x.data, x.shape, p.gamma, p.beta, p.mean, p.variance, p.eps, true), shape: x.shape };
}

function unsupported(where: string, what: Module): UnsupportedModelError {
  return new UnsupportedModelError(`compileInference: ${where} is a ${what.constructor.name}, which it cannot compile ` +
    '(it compiles the blocks and shortcuts of models.create); run noGrad(() => model.eval().forward(x)) instead');
}

/** h(x): identity, option A (subsample + zero channels), or a 1x1 projection with (v1) or without (v2) BN. */
function shortcutStep(m: Module, where: string): Step {
  if (m instanceof Identity) return (_be, x) => x;
  if (m instanceof ZeroPadShortcut) {
    return (be, x) => {
      const [n, h, w] = x.shape;
      return {
        data: be.padChannelsSubsample(x.data, x.shape, m.stride, m.outChannels, m.padFront),
        shape: [n, subsampleSize(h, m.stride), subsampleSize(w, m.stride), m.outChannels],
      };
    };
  }
  if (m instanceof Sequential && m[0] instanceof Conv2d) {
    const bn = m.length === 2 && m[1] instanceof BatchNorm2d ? m[1] : null;
    if (m.length === 1 || bn) {
      const projection = convPlan(m[0], bn);
      return (be, x) => runConv(be, projection, x);
    }
  }
  throw unsupported(`${where}.downsample`, m);
}

/** v1 (He et al. 2015, Fig. 5): conv-BN-ReLU ..., conv-BN, add h(x), ReLU: the add and ReLU are the last conv's post-ops. */
function postActivationBlock(convs: readonly ConvPlan[], shortcut: Step): Step {
  return (be, x) => {
    const sum = shortcut(be, x).data;
    let y = x;
    convs.forEach((c, i) => {
      y = runConv(be, c, y, i === convs.length - 1 ? { sum, relu: true } : { relu: true });
    });
    return y;
  };
}

/** The plain twin (sec. 3.3): conv-BN-ReLU throughout, no shortcut. */
function plainBlock(convs: readonly ConvPlan[]): Step {
  return (be, x) => convs.reduce((y, c) => runConv(be, c, y, { relu: true }), x);
}

/**
 * v2 (He et al. 2016, eq. 4): BN-ReLU, then conv-BN-ReLU ... with each BN folded into
 * the conv before it, and a last bare conv that adds h(x) as its post-op (no ReLU).
 * A shape-changing shortcut reads the pre-activated input, the identity the raw one.
 */
function preActivationBlock(bn1: BatchNormPlan, convs: readonly ConvPlan[], shortcut: Step, shortcutReadsPreact: boolean): Step {
  return (be, x) => {
    const preact = runBatchNormRelu(be, bn1, x);
    const sum = shortcut(be, shortcutReadsPreact ? preact : x).data;
    let y = preact;
    convs.forEach((c, i) => {
      y = runConv(be, c, y, i === convs.length - 1 ? { sum } : { relu: true });
    });
    return y;
  };
}

function blockStep(block: Module, where: string): Step {
  if (block instanceof BasicBlock) {
    return postActivationBlock([convPlan(block.conv1, block.bn1), convPlan(block.conv2, block.bn2)],
      shortcutStep(block.downsample, where));
  }
  if (block instanceof Bottleneck) {
    return postActivationBlock([convPlan(block.conv1, block.bn1), convPlan(block.conv2, block.bn2), convPlan(block.conv3, block.bn3)],
      shortcutStep(block.downsample, where));
  }
  if (block instanceof PlainBlock) return plainBlock([convPlan(block.conv1, block.bn1), convPlan(block.conv2, block.bn2)]);
  if (block instanceof PlainBottleneck) {
    return plainBlock([convPlan(block.conv1, block.bn1), convPlan(block.conv2, block.bn2), convPlan(block.conv3, block.bn3)]);
  }
  if (block instanceof PreActBlock) {
    return preActivationBlock(batchNormPlan(block.bn1), [convPlan(block.conv1, block.bn2), convPlan(block.conv2, null)],
      shortcutStep(block.downsample, where), !(block.downsample instanceof Identity));
  }
  if (block instanceof PreActBottleneck) {
    return preActivationBlock(batchNormPlan(block.bn1),
      [convPlan(block.conv1, block.bn2), convPlan(block.conv2, block.bn3), convPlan(block.conv3, null)],
      shortcutStep(block.downsample, where), !(block.downsample instanceof Identity));
  }
  throw unsupported(where, block);
}

/** The ImageNet stem's 3x3 stride-2 max pool, or nothing for the CIFAR stem. */
function maxPoolSteps(m: Module): Step[] {
  if (m instanceof Identity) return [];
  if (m instanceof MaxPool2d) {
    const k = m.kernelSize;
    const s = m.opts.stride ?? k;
    const p = m.opts.padding ?? 0;
    const attrs: Pool2dAttrs = { kernelH: k, kernelW: k, strideH: s, strideW: s, padH: p, padW: p };
    return [(be, x) => ({ data: be.maxPool2d(x.data, x.shape, attrs).y, shape: pool2dOutShape(x.shape, attrs) })];
  }
  throw unsupported('maxpool', m);
}

/** Every step from the input to the last feature map (before global pooling). */
function featureSteps(model: ResNet | PreActResNet): Step[] {
  const v2 = model instanceof PreActResNet;
  // v1: conv-BN-ReLU; v2: a bare convolution, the first block normalises (timm resnetv2 stem).
  const stem = v2 ? convPlan(model.conv1, null) : convPlan(model.conv1, model.bn1);
  const steps: Step[] = [(be, x) => runConv(be, stem, x, { relu: !v2 })];
  steps.push(...maxPoolSteps(model.maxpool));
  model.stages.forEach((stage, i) => {
    for (let j = 0; j < stage.length; j++) steps.push(blockStep(stage[j]!, `layer${i + 1}.${j}`));
  });
  if (v2) {
    // The final BN-ReLU before pooling (He et al. 2016, appendix).
    const bn = batchNormPlan(model.bn);
    steps.push((be, x) => runBatchNormRelu(be, bn, x));
  }
  return steps;
}

function classifier(fc: Linear): (be: Backend, features: Float32Array, n: number) => Float32Array {
  const weight = fc.weight.data.slice();
  const bias = fc.bias?.data.slice() ?? null;
  // y = x W^T + b (torch.nn.Linear).
  return (be, features, n) => be.matmul(features, weight, n, fc.outFeatures, fc.inFeatures, false, true, bias);
}

/**
 * A function computing the logits of `model` in eval mode, as
 * `noGrad(() => model.eval().forward(x))` does (equal within float32 rounding), for
 * every network models.create builds. It reads the weights now: compile again after
 * they change. It runs on the backend selected when it is called and does not change
 * the model's train/eval mode.
 */
export function compileInference(model: Module, opts: InferenceOptions = {}): InferenceFn {
  if (!(model instanceof ResNet || model instanceof PreActResNet)) throw unsupported('the model', model);
  const chunk = opts.chunk ?? 16;
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`compileInference: chunk must be a positive integer, got ${chunk}`);
  const steps = featureSteps(model);
  const fc = classifier(model.fc);
  const classes = model.fc.outFeatures;
  const name = model.constructor.name;
  const inChannels = model.inChannels;

  const runChunk = (be: Backend, x: Activation): Float32Array => {
    const features = steps.reduce((y, step) => step(be, y), x);
    return fc(be, be.globalAvgPool(features.data, features.shape), x.shape[0]);
  };
  return (x) => {
    checkImageBatch(name, x, inChannels);
    const [n = 0, h = 0, w = 0, c = 0] = x.shape;
    const be = backend();
    const logits = new Float32Array(n * classes);
    const perImage = h * w * c;
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      const images = x.data.subarray(start * perImage, (start + m) * perImage);
      logits.set(runChunk(be, { data: images, shape: [m, h, w, c] }), start * classes);
    }
    return new Tensor(logits, [n, classes]);
  };
}

/**
 * compileInference(model) for the networks it knows; for any other module tree, the
 * module's own forward (without autograd), in whatever mode the model is in.
 */
export function compileInferenceOrForward(model: Module, opts: InferenceOptions = {}): InferenceFn {
  try {
    return compileInference(model, opts);
  } catch (e) {
    if (!(e instanceof UnsupportedModelError)) throw e;
    return (x) => noGrad(() => model.forward(x));
  }
}
