// Eval-mode inference of a v1 ResNet with every batch norm folded into the convolution
// before it, and the ReLU and the residual add fused into the convolution as oneDNN
// post-ops: per basic block two kernel calls instead of six. Folding uses the running
// statistics: w' = w * g / sqrt(v + eps), b' = beta - m * g / sqrt(v + eps).
import type { Backend, Conv2dAttrs, Shape4 } from '../src/backend/backend.js';
import { conv2dOutShape } from '../src/backend/shapes.js';
import { BatchNorm2d, Conv2d, Identity, MaxPool2d, Module, Sequential } from '../src/nn/index.js';
import { BasicBlock, Bottleneck, type ResNet } from '../src/models/index.js';

interface FoldedConv {
  readonly w: Float32Array;
  readonly wShape: Shape4;
  readonly bias: Float32Array;
  readonly attrs: Conv2dAttrs;
}

function fold(conv: Conv2d, bn: BatchNorm2d): FoldedConv {
  const [o, c, kh, kw] = conv.weight.shape;
  if (o === undefined || c === undefined || kh === undefined || kw === undefined) throw new Error('fold: conv weight is not 4-D');
  const per = c * kh * kw;
  const w = new Float32Array(conv.weight.data.length);
  const bias = new Float32Array(o);
  for (let k = 0; k < o; k++) {
    const s = bn.weight.data[k]! / Math.sqrt(bn.runningVar.data[k]! + bn.eps);
    for (let i = 0; i < per; i++) w[k * per + i] = conv.weight.data[k * per + i]! * s;
    const b0 = conv.bias ? conv.bias.data[k]! : 0;
    bias[k] = bn.bias.data[k]! + (b0 - bn.runningMean.data[k]!) * s;
  }
  const p = conv.padding;
  return { w, wShape: [o, c, kh, kw], bias, attrs: { strideH: conv.stride, strideW: conv.stride, padH: p, padW: p } };
}

type Step = (be: Backend, x: Float32Array, xShape: Shape4) => { y: Float32Array; shape: Shape4 };

function convStep(f: FoldedConv, relu: boolean): Step {
  return (be, x, xShape) => ({
    y: be.conv2d(x, xShape, f.w, f.wShape, f.bias, f.attrs, { relu }),
    shape: conv2dOutShape(xShape, f.wShape, f.attrs),
  });
}

/** The projection of a shortcut (conv1x1 + BN) or null for the identity. */
function shortcutOf(m: Module): FoldedConv | null {
  if (m instanceof Identity) return null;
  if (m instanceof Sequential && m.length === 2 && m[0] instanceof Conv2d && m[1] instanceof BatchNorm2d) return fold(m[0], m[1]);
  throw new Error('fused inference: only identity and projection (conv + BN) shortcuts are supported');
}

/** conv-BN(-ReLU) chains of the residual branch; the last one takes the shortcut as its sum post-op. */
function blockStep(chain: FoldedConv[], shortcut: FoldedConv | null): Step {
  return (be, x, xShape) => {
    const sc = shortcut ? be.conv2d(x, xShape, shortcut.w, shortcut.wShape, shortcut.bias, shortcut.attrs) : x;
    let y = x;
    let shape = xShape;
    chain.forEach((f, i) => {
      const last = i === chain.length - 1;
      y = be.conv2d(y, shape, f.w, f.wShape, f.bias, f.attrs, last ? { sum: sc, relu: true } : { relu: true });
      shape = conv2dOutShape(shape, f.wShape, f.attrs);
    });
    return { y, shape };
  };
}

/**
 * A function computing the logits [N, numClasses] of an NHWC batch, equal to
 * model.eval().forward. With BN folded nothing couples the images of a batch, so the
 * batch runs through the whole network `chunk` images at a time: one chunk's
 * activations stay in cache from one layer to the next.
 */
export function compileFusedInference(model: ResNet, chunk = 16): (be: Backend, x: Float32Array, xShape: Shape4) => Float32Array {
  const steps: Step[] = [convStep(fold(model.conv1, model.bn1), true)];
  if (model.maxpool instanceof MaxPool2d) {
    const k = model.maxpool.kernelSize;
    const s = model.maxpool.opts.stride ?? k;
    const p = model.maxpool.opts.padding ?? 0;
    const attrs = { kernelH: k, kernelW: k, strideH: s, strideW: s, padH: p, padW: p };
    steps.push((be, x, xShape) => {
      const y = be.maxPool2d(x, xShape, attrs).y;
      const oh = Math.floor((xShape[1] + 2 * p - k) / s) + 1;
      const ow = Math.floor((xShape[2] + 2 * p - k) / s) + 1;
      return { y, shape: [xShape[0], oh, ow, xShape[3]] };
    });
  }
  for (const block of model.blocks) {
    if (block instanceof BasicBlock) {
      steps.push(blockStep([fold(block.conv1, block.bn1), fold(block.conv2, block.bn2)], shortcutOf(block.downsample)));
    } else if (block instanceof Bottleneck) {
      steps.push(blockStep([fold(block.conv1, block.bn1), fold(block.conv2, block.bn2), fold(block.conv3, block.bn3)],
        shortcutOf(block.downsample)));
    } else {
      throw new Error(`fused inference: unsupported block ${block.constructor.name}`);
    }
  }
  const fcW = model.fc.weight.data;
  const fcB = model.fc.bias ? model.fc.bias.data : null;
  const classes = model.numClasses;
  const runChunk = (be: Backend, x: Float32Array, xShape: Shape4): Float32Array => {
    let y = x;
    let shape = xShape;
    for (const step of steps) ({ y, shape } = step(be, y, shape));
    const pooled = be.globalAvgPool(y, shape);
    return be.matmul(pooled, fcW, shape[0], classes, shape[3], false, true, fcB);
  };
  return (be, x, xShape) => {
    const [n, h, w, c] = xShape;
    if (n <= chunk) return runChunk(be, x, xShape);
    const logits = new Float32Array(n * classes);
    const per = h * w * c;
    for (let s = 0; s < n; s += chunk) {
      const m = Math.min(chunk, n - s);
      logits.set(runChunk(be, x.subarray(s * per, (s + m) * per), [m, h, w, c]), s * classes);
    }
    return logits;
  };
}
