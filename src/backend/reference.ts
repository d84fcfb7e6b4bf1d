// The reference backend: plain loops in TypeScript, no tricks. It is the executable
// specification the native backend is checked against, and the fallback wherever the
// native addon is unavailable. Accumulations that decide accuracy (batch statistics,
// loss) are done in float64.
import type {
  ActivationLayout, Backend, BatchNormGrads, BatchNormTrainingResult, Conv2dAttrs, Conv2dGrads, ConvPostOps, MaxPoolResult,
  Pool2dAttrs, PreparedConv2d, SgdAttrs, Shape4, SoftmaxCrossEntropyResult,
} from './backend.js';
import { bf16Kernels } from './bf16.js';
import { conv2dOutShape, pool2dOutShape, subsampleSize } from './shapes.js';

/** post.sum, checked usable as the output of a convolution of x written in place. */
function inPlaceTarget(x: Float32Array, sum: Float32Array | undefined, size: number): Float32Array {
  if (!sum) throw new Error('conv2d: post.inPlace needs post.sum, the array to write the output over');
  if (sum.length !== size) throw new Error(`conv2d: post.sum has ${sum.length} elements, the output ${size}`);
  const overlap = x.buffer === sum.buffer && x.byteOffset < sum.byteOffset + sum.byteLength && sum.byteOffset < x.byteOffset + x.byteLength;
  if (overlap) throw new Error('conv2d: post.inPlace: x shares memory with post.sum; pass a copy of one');
  return sum;
}

function conv2d(x: Float32Array, xShape: Shape4, w: Float32Array, wShape: Shape4,
  bias: Float32Array | null, a: Conv2dAttrs, post?: ConvPostOps): Float32Array {
  const [n, h, wd, c] = xShape;
  const [o, , kh, kw] = wShape;
  const [, oh, ow] = conv2dOutShape(xShape, wShape, a);
  // In place, each output element overwrites the residual it alone reads.
  const y = post?.inPlace ? inPlaceTarget(x, post.sum, n * oh * ow * o) : new Float32Array(n * oh * ow * o);
  // Weights as [KH, KW, C, O] so the innermost loop walks contiguous memory.
  const wt = new Float32Array(w.length);
  for (let oc = 0; oc < o; oc++)
    for (let ic = 0; ic < c; ic++)
      for (let i = 0; i < kh; i++)
        for (let j = 0; j < kw; j++)
          wt[((i * kw + j) * c + ic) * o + oc] = w[((oc * c + ic) * kh + i) * kw + j]!;
  const acc = new Float64Array(o);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        if (bias) for (let oc = 0; oc < o; oc++) acc[oc] = bias[oc]!;
        else acc.fill(0);
        for (let i = 0; i < kh; i++) {
          const iy = oy * a.strideH - a.padH + i;
          if (iy < 0 || iy >= h) continue;
          for (let j = 0; j < kw; j++) {
            const ix = ox * a.strideW - a.padW + j;
            if (ix < 0 || ix >= wd) continue;
            const xBase = ((b * h + iy) * wd + ix) * c;
            const wBase = (i * kw + j) * c * o;
            for (let ic = 0; ic < c; ic++) {
              const xv = x[xBase + ic]!;
              if (xv === 0) continue;
              const wRow = wBase + ic * o;
              for (let oc = 0; oc < o; oc++) acc[oc] += xv * wt[wRow + oc]!;
            }
          }
        }
        const yBase = ((b * oh + oy) * ow + ox) * o;
        for (let oc = 0; oc < o; oc++) {
          let v = acc[oc]!;
          if (post?.sum) v += post.sum[yBase + oc]!;
          if (post?.relu && v < 0) v = 0;
          y[yBase + oc] = v;
        }
      }
  return y;
}

/** OIHW weights with each output channel's taken times `scale[o]` (rounded to float32): prepareConv2d's `scale`. */
export function scaleOutputChannels(w: Float32Array, outChannels: number, scale: Float32Array): Float32Array {
  const per = w.length / outChannels;
  const out = new Float32Array(w.length);
  for (let o = 0; o < outChannels; o++) {
    const s = scale[o]!;
    for (let i = o * per; i < (o + 1) * per; i++) out[i] = w[i]! * s;
  }
  return out;
}

function prepareConv2d(w: Float32Array, wShape: Shape4, bias: Float32Array | null, a: Conv2dAttrs,
  scale?: Float32Array | null): PreparedConv2d {
  const weights = scale ? scaleOutputChannels(w, wShape[0], scale) : w;
  return (x, xShape, post, layout = 'nhwc') => {
    if (layout === 'nhwc') return conv2d(x, xShape, weights, wShape, bias, a, post);
    if (layout !== 'nchw16c') throw new Error(`prepareConv2d: layout must be 'nhwc' or 'nchw16c', got ${String(layout)}`);
    // The NHWC convolution between relayouts.
    const yShape = conv2dOutShape(xShape, wShape, a);
    const sum = post?.sum && relayout(post.sum, yShape, 'nhwc');
    const y = relayout(conv2d(relayout(x, xShape, 'nhwc'), xShape, weights, wShape, bias, a, { sum, relu: post?.relu }),
      yShape, 'nchw16c');
    if (!post?.inPlace) return y;
    const target = inPlaceTarget(x, post.sum, y.length);
    target.set(y);
    return target;
  };
}

function relayout(x: Float32Array, xShape: Shape4, to: ActivationLayout): Float32Array {
  if (to !== 'nhwc' && to !== 'nchw16c') throw new Error(`relayout: layout must be 'nhwc' or 'nchw16c', got ${String(to)}`);
  const [n, h, w, c] = xShape;
  if (c % 16 !== 0) throw new Error(`relayout: layout 'nchw16c' needs channels in multiples of 16, x has ${c}`);
  if (x.length !== n * h * w * c) throw new Error(`relayout: x has ${x.length} elements, expected ${n * h * w * c}`);
  const y = new Float32Array(x.length);
  const hw = h * w;
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < hw; p++) {
      for (let ch = 0; ch < c; ch++) {
        const plain = (i * hw + p) * c + ch;
        const blocked = ((i * (c / 16) + (ch >> 4)) * hw + p) * 16 + (ch & 15);
        if (to === 'nchw16c') y[blocked] = x[plain]!;
        else y[plain] = x[blocked]!;
      }
    }
  }
  return y;
}

function conv2dBackward(x: Float32Array, xShape: Shape4, dy: Float32Array, w: Float32Array, wShape: Shape4,
  a: Conv2dAttrs, withBias: boolean, needDx: boolean, needDw: boolean): Conv2dGrads {
  const g = needDw ? conv2dBackwardWeights(x, xShape, dy, wShape, a, withBias) : null;
  return { dx: needDx ? conv2dBackwardData(dy, w, wShape, xShape, a) : null, dw: g?.dw ?? null, db: g?.db ?? null };
}

function conv2dBackwardData(dy: Float32Array, w: Float32Array, wShape: Shape4, xShape: Shape4,
  a: Conv2dAttrs): Float32Array {
  const [n, h, wd, c] = xShape;
  const [o, , kh, kw] = wShape;
  const [, oh, ow] = conv2dOutShape(xShape, wShape, a);
  const dx = new Float64Array(n * h * wd * c);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        const dyBase = ((b * oh + oy) * ow + ox) * o;
        for (let i = 0; i < kh; i++) {
          const iy = oy * a.strideH - a.padH + i;
          if (iy < 0 || iy >= h) continue;
          for (let j = 0; j < kw; j++) {
            const ix = ox * a.strideW - a.padW + j;
            if (ix < 0 || ix >= wd) continue;
            const dxBase = ((b * h + iy) * wd + ix) * c;
            for (let oc = 0; oc < o; oc++) {
              const g = dy[dyBase + oc]!;
              if (g === 0) continue;
              for (let ic = 0; ic < c; ic++) dx[dxBase + ic] += g * w[((oc * c + ic) * kh + i) * kw + j]!;
            }
          }
        }
      }
  return Float32Array.from(dx);
}

function conv2dBackwardWeights(x: Float32Array, xShape: Shape4, dy: Float32Array, wShape: Shape4,
  a: Conv2dAttrs, withBias: boolean): { dw: Float32Array; db: Float32Array | null } {
  const [n, h, wd, c] = xShape;
  const [o, , kh, kw] = wShape;
  const [, oh, ow] = conv2dOutShape(xShape, wShape, a);
  const dw = new Float64Array(o * c * kh * kw);
  const db = new Float64Array(o);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        const dyBase = ((b * oh + oy) * ow + ox) * o;
        for (let oc = 0; oc < o; oc++) {
          const g = dy[dyBase + oc]!;
          if (withBias) db[oc] += g;
          if (g === 0) continue;
          for (let i = 0; i < kh; i++) {
            const iy = oy * a.strideH - a.padH + i;
            if (iy < 0 || iy >= h) continue;
            for (let j = 0; j < kw; j++) {
              const ix = ox * a.strideW - a.padW + j;
              if (ix < 0 || ix >= wd) continue;
              const xBase = ((b * h + iy) * wd + ix) * c;
              for (let ic = 0; ic < c; ic++) dw[((oc * c + ic) * kh + i) * kw + j] += g * x[xBase + ic]!;
            }
          }
        }
      }
  return { dw: Float32Array.from(dw), db: withBias ? Float32Array.from(db) : null };
}

/** Per-channel mean and biased variance over N, H, W (two-pass, float64). */
function channelMoments(x: Float32Array, c: number): { mean: Float64Array; variance: Float64Array } {
  const count = x.length / c;
  const mean = new Float64Array(c);
  for (let i = 0; i < x.length; i++) mean[i % c] += x[i]!;
  for (let k = 0; k < c; k++) mean[k] /= count;
  const variance = new Float64Array(c);
  for (let i = 0; i < x.length; i++) {
    const d = x[i]! - mean[i % c]!;
    variance[i % c] += d * d;
  }
  for (let k = 0; k < c; k++) variance[k] /= count;
  return { mean, variance };
}

function normalize(x: Float32Array, c: number, mean: ArrayLike<number>, variance: ArrayLike<number>,
  gamma: Float32Array, beta: Float32Array, eps: number, relu: boolean): Float32Array {
  const y = new Float32Array(x.length);
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let k = 0; k < c; k++) {
    scale[k] = gamma[k]! / Math.sqrt(variance[k]! + eps);
    shift[k] = beta[k]! - mean[k]! * scale[k]!;
  }
  for (let i = 0; i < x.length; i++) {
    const k = i % c;
    const v = x[i]! * scale[k]! + shift[k]!;
    y[i] = relu && v < 0 ? 0 : v;
  }
  return y;
}

function batchNormTraining(x: Float32Array, xShape: Shape4, gamma: Float32Array, beta: Float32Array,
  eps: number, relu: boolean): BatchNormTrainingResult {
  const c = xShape[3];
  const { mean, variance } = channelMoments(x, c);
  return {
    y: normalize(x, c, mean, variance, gamma, beta, eps, relu),
    mean: Float32Array.from(mean),
    variance: Float32Array.from(variance),
  };
}

function batchNormInference(x: Float32Array, xShape: Shape4, gamma: Float32Array, beta: Float32Array,
  mean: Float32Array, variance: Float32Array, eps: number, relu: boolean): Float32Array {
  return normalize(x, xShape[3], mean, variance, gamma, beta, eps, relu);
}

// dx = gamma * invStd / M * (M * g - sum(g) - xhat * sum(g * xhat)), with g the
// gradient reaching the normalised output (masked by the fused ReLU when present).
function batchNormBackward(dy: Float32Array, x: Float32Array, xShape: Shape4, gamma: Float32Array,
  mean: Float32Array, variance: Float32Array, eps: number, y: Float32Array | null): BatchNormGrads {
  const c = xShape[3];
  const count = x.length / c;
  const invStd = new Float64Array(c);
  for (let k = 0; k < c; k++) invStd[k] = 1 / Math.sqrt(variance[k]! + eps);
  const g = y ? reluBackward(dy, y) : dy;
  const sumG = new Float64Array(c);
  const sumGX = new Float64Array(c);
  for (let i = 0; i < x.length; i++) {
    const k = i % c;
    const xhat = (x[i]! - mean[k]!) * invStd[k]!;
    sumG[k] += g[i]!;
    sumGX[k] += g[i]! * xhat;
  }
  const dx = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const k = i % c;
    const xhat = (x[i]! - mean[k]!) * invStd[k]!;
    dx[i] = (gamma[k]! * invStd[k]! / count) * (count * g[i]! - sumG[k]! - xhat * sumGX[k]!);
  }
  return { dx, dgamma: Float32Array.from(sumGX), dbeta: Float32Array.from(sumG) };
}

function batchNormInferenceBackward(dy: Float32Array, x: Float32Array, xShape: Shape4, gamma: Float32Array,
  mean: Float32Array, variance: Float32Array, eps: number, y: Float32Array | null): BatchNormGrads {
  const c = xShape[3];
  const invStd = new Float64Array(c);
  for (let k = 0; k < c; k++) invStd[k] = 1 / Math.sqrt(variance[k]! + eps);
  const g = y ? reluBackward(dy, y) : dy;
  // y = (x - mean) * invStd * gamma + beta with constant statistics.
  const dx = new Float32Array(x.length);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  for (let i = 0; i < x.length; i++) {
    const k = i % c;
    dx[i] = g[i]! * gamma[k]! * invStd[k]!;
    dgamma[k] += g[i]! * (x[i]! - mean[k]!) * invStd[k]!;
    dbeta[k] += g[i]!;
  }
  return { dx, dgamma: Float32Array.from(dgamma), dbeta: Float32Array.from(dbeta) };
}

function batchNormRunningStatsInPlace(runningMean: Float32Array, runningVar: Float32Array, mean: Float32Array,
  variance: Float32Array, momentum: number, count: number): void {
  const unbias = count / (count - 1);
  for (let k = 0; k < runningMean.length; k++) {
    runningMean[k] = (1 - momentum) * runningMean[k]! + momentum * mean[k]!;
    runningVar[k] = (1 - momentum) * runningVar[k]! + momentum * variance[k]! * unbias;
  }
}

function relu(x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! > 0 ? x[i]! : 0;
  return y;
}

function reluBackward(dy: Float32Array, y: Float32Array): Float32Array {
  const dx = new Float32Array(dy.length);
  for (let i = 0; i < dy.length; i++) dx[i] = y[i]! > 0 ? dy[i]! : 0;
  return dx;
}

function add(a: Float32Array, b: Float32Array): Float32Array {
  const y = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i]! + b[i]!;
  return y;
}

function addRelu(a: Float32Array, b: Float32Array): Float32Array {
  const y = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i]! + b[i]!;
    y[i] = v > 0 ? v : 0;
  }
  return y;
}

function addInPlace(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i]!;
}

function scale(x: Float32Array, s: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! * s;
  return y;
}

function sum(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]!;
  return s;
}

function fill(n: number, value: number): Float32Array {
  return new Float32Array(n).fill(value);
}

function padChannelsSubsample(x: Float32Array, xShape: Shape4, stride: number, outC: number,
  padFront: number): Float32Array {
  const [n, h, w, c] = xShape;
  const oh = subsampleSize(h, stride);
  const ow = subsampleSize(w, stride);
  const y = new Float32Array(n * oh * ow * outC);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const src = ((b * h + i * stride) * w + j * stride) * c;
        const dst = ((b * oh + i) * ow + j) * outC + padFront;
        for (let k = 0; k < c; k++) y[dst + k] = x[src + k]!;
      }
  return y;
}

function padChannelsSubsampleBackward(dy: Float32Array, xShape: Shape4, stride: number, outC: number,
  padFront: number): Float32Array {
  const [n, h, w, c] = xShape;
  const oh = subsampleSize(h, stride);
  const ow = subsampleSize(w, stride);
  const dx = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const dst = ((b * h + i * stride) * w + j * stride) * c;
        const src = ((b * oh + i) * ow + j) * outC + padFront;
        for (let k = 0; k < c; k++) dx[dst + k] = dy[src + k]!;
      }
  return dx;
}

function maxPool2d(x: Float32Array, xShape: Shape4, a: Pool2dAttrs, withArgmax: boolean,
  to: ActivationLayout = 'nhwc'): MaxPoolResult {
  if (to === 'nchw16c') {
    if (withArgmax) throw new Error(`maxPool2d: layout 'nchw16c' holds the maxima alone: argmax must be false`);
    return { y: relayout(maxPool2d(x, xShape, a, false).y, pool2dOutShape(xShape, a), to), argmax: null };
  }
  if (to !== 'nhwc') throw new Error(`maxPool2d: layout must be 'nhwc' or 'nchw16c', got ${String(to)}`);
  const [n, h, w, c] = xShape;
  const [, oh, ow] = pool2dOutShape(xShape, a);
  const y = new Float32Array(n * oh * ow * c);
  const argmax = new Int32Array(withArgmax ? y.length : 0);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let k = 0; k < c; k++) {
          let best = -Infinity;
          let bestIdx = -1;
          for (let i = 0; i < a.kernelH; i++) {
            const iy = oy * a.strideH - a.padH + i;
            if (iy < 0 || iy >= h) continue;
            for (let j = 0; j < a.kernelW; j++) {
              const ix = ox * a.strideW - a.padW + j;
              if (ix < 0 || ix >= w) continue;
              const v = x[((b * h + iy) * w + ix) * c + k]!;
              if (v > best || bestIdx < 0 || Number.isNaN(v)) {
                best = v;
                bestIdx = iy * w + ix;
              }
            }
          }
          const o = ((b * oh + oy) * ow + ox) * c + k;
          y[o] = best;
          if (withArgmax) argmax[o] = bestIdx;
        }
  return { y, argmax: withArgmax ? argmax : null };
}

function maxPool2dBackward(dy: Float32Array, argmax: Int32Array, xShape: Shape4, a: Pool2dAttrs): Float32Array {
  const [n, h, w, c] = xShape;
  const [, oh, ow] = pool2dOutShape(xShape, a);
  const dx = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < oh * ow; p++)
      for (let k = 0; k < c; k++) {
        const o = (b * oh * ow + p) * c + k;
        dx[(b * h * w + argmax[o]!) * c + k] += dy[o]!;
      }
  return dx;
}

function avgPool2d(x: Float32Array, xShape: Shape4, a: Pool2dAttrs): Float32Array {
  const [n, h, w, c] = xShape;
  const [, oh, ow] = pool2dOutShape(xShape, a);
  const y = new Float32Array(n * oh * ow * c);
  const area = a.kernelH * a.kernelW;
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let k = 0; k < c; k++) {
          let s = 0;
          for (let i = 0; i < a.kernelH; i++) {
            const iy = oy * a.strideH - a.padH + i;
            if (iy < 0 || iy >= h) continue;
            for (let j = 0; j < a.kernelW; j++) {
              const ix = ox * a.strideW - a.padW + j;
              if (ix >= 0 && ix < w) s += x[((b * h + iy) * w + ix) * c + k]!;
            }
          }
          y[((b * oh + oy) * ow + ox) * c + k] = s / area;
        }
  return y;
}

function avgPool2dBackward(dy: Float32Array, xShape: Shape4, a: Pool2dAttrs): Float32Array {
  const [n, h, w, c] = xShape;
  const [, oh, ow] = pool2dOutShape(xShape, a);
  const dx = new Float32Array(n * h * w * c);
  const area = a.kernelH * a.kernelW;
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let k = 0; k < c; k++) {
          const g = dy[((b * oh + oy) * ow + ox) * c + k]! / area;
          for (let i = 0; i < a.kernelH; i++) {
            const iy = oy * a.strideH - a.padH + i;
            if (iy < 0 || iy >= h) continue;
            for (let j = 0; j < a.kernelW; j++) {
              const ix = ox * a.strideW - a.padW + j;
              if (ix >= 0 && ix < w) dx[((b * h + iy) * w + ix) * c + k] += g;
            }
          }
        }
  return dx;
}

function globalAvgPool(x: Float32Array, xShape: Shape4, layout: ActivationLayout = 'nhwc'): Float32Array {
  if (layout === 'nchw16c') return globalAvgPool(relayout(x, xShape, 'nhwc'), xShape);
  if (layout !== 'nhwc') throw new Error(`globalAvgPool: layout must be 'nhwc' or 'nchw16c', got ${String(layout)}`);
  const [n, h, w, c] = xShape;
  const y = new Float32Array(n * c);
  const acc = new Float64Array(c);
  for (let b = 0; b < n; b++) {
    acc.fill(0);
    const base = b * h * w * c;
    for (let i = 0; i < h * w * c; i++) acc[i % c] += x[base + i]!;
    for (let k = 0; k < c; k++) y[b * c + k] = acc[k]! / (h * w);
  }
  return y;
}

function globalAvgPoolBackward(dy: Float32Array, xShape: Shape4): Float32Array {
  const [n, h, w, c] = xShape;
  const dx = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h * w * c; i++) dx[b * h * w * c + i] = dy[b * c + (i % c)]! / (h * w);
  return dx;
}

function matmul(a: Float32Array, b: Float32Array, m: number, n: number, k: number,
  transA: boolean, transB: boolean, bias: Float32Array | null): Float32Array {
  const y = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j]! : 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i]! : a[i * k + p]!;
        const bv = transB ? b[j * k + p]! : b[p * n + j]!;
        s += av * bv;
      }
      y[i * n + j] = s;
    }
  return y;
}

function sumRows(x: Float32Array, rows: number, cols: number): Float32Array {
  const acc = new Float64Array(cols);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < cols; j++) acc[j] += x[r * cols + j]!;
  return Float32Array.from(acc);
}

function logSoftmax(x: Float32Array, rows: number, cols: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, x[base + j]!);
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[base + j]! - max);
    const lse = max + Math.log(s);
    for (let j = 0; j < cols; j++) y[base + j] = x[base + j]! - lse;
  }
  return y;
}

function logSoftmaxBackward(dy: Float32Array, y: Float32Array, rows: number, cols: number): Float32Array {
  const dx = new Float32Array(dy.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += dy[base + j]!;
    for (let j = 0; j < cols; j++) dx[base + j] = dy[base + j]! - Math.exp(y[base + j]!) * s;
  }
  return dx;
}

// Label smoothing as PyTorch: target = (1 - eps) * onehot + eps / C.
function softmaxCrossEntropy(logits: Float32Array, n: number, c: number, labels: Int32Array,
  labelSmoothing: number): SoftmaxCrossEntropyResult {
  const logp = logSoftmax(logits, n, c);
  const dlogits = new Float32Array(n * c);
  let loss = 0;
  const off = labelSmoothing / c;
  for (let r = 0; r < n; r++) {
    const label = labels[r]!;
    for (let j = 0; j < c; j++) {
      const target = (j === label ? 1 - labelSmoothing : 0) + off;
      const lp = logp[r * c + j]!;
      if (target !== 0) loss -= target * lp;
      dlogits[r * c + j] = (Math.exp(lp) - target) / n;
    }
  }
  return { loss: loss / n, dlogits };
}

// PyTorch torch.optim.SGD: g += wd * p; buf = momentum * buf + (1 - dampening) * g
// (buf = g on the first step); g = nesterov ? g + momentum * buf : buf; p -= lr * g.
function sgdStep(param: Float32Array, grad: Float32Array, buf: Float32Array | null, a: SgdAttrs): void {
  for (let i = 0; i < param.length; i++) {
    let g = grad[i]!;
    if (a.weightDecay !== 0) g += a.weightDecay * param[i]!;
    if (buf && a.momentum !== 0) {
      const b = a.firstStep ? g : a.momentum * buf[i]! + (1 - a.dampening) * g;
      buf[i] = b;
      g = a.nesterov ? g + a.momentum * b : b;
    }
    param[i] = param[i]! - a.lr * g;
  }
}

export const referenceBackend: Backend = {
  name: 'reference',
  threads: () => 1,
  conv2d, prepareConv2d, relayout, conv2dBackward,
  batchNormTraining, batchNormInference, batchNormBackward, batchNormInferenceBackward, batchNormRunningStatsInPlace,
  relu, reluBackward, add, addRelu, addInPlace, scale, sum, fill,
  padChannelsSubsample, padChannelsSubsampleBackward,
  maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, globalAvgPool, globalAvgPoolBackward,
  matmul, sumRows, logSoftmax, logSoftmaxBackward, softmaxCrossEntropy, sgdStep,
  ...bf16Kernels({ conv2d, conv2dBackward, batchNormTraining, batchNormBackward, add, addRelu, reluBackward }),
};
