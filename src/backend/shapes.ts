// Shape arithmetic shared by every backend and op (PyTorch semantics, floor mode).
import type { Conv2dAttrs, Pool2dAttrs, Shape4 } from './backend.js';

/** Output length of a convolution or pooling window along one axis. */
export function windowOutSize(inSize: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((inSize + 2 * pad - kernel) / stride) + 1;
}

/** NHWC output shape of a convolution of x (NHWC) with w (OIHW). */
export function conv2dOutShape(xShape: Shape4, wShape: Shape4, a: Conv2dAttrs): Shape4 {
  const [n, h, w] = xShape;
  const [o, , kh, kw] = wShape;
  return [n, windowOutSize(h, kh, a.strideH, a.padH), windowOutSize(w, kw, a.strideW, a.padW), o];
}

/** NHWC output shape of a pooling window over x (NHWC). */
export function pool2dOutShape(xShape: Shape4, a: Pool2dAttrs): Shape4 {
  const [n, h, w, c] = xShape;
  return [n, windowOutSize(h, a.kernelH, a.strideH, a.padH), windowOutSize(w, a.kernelW, a.strideW, a.padW), c];
}

/** Spatial size after the option-A subsample: ceil(size / stride), as x[:, ::s, ::s]. */
export function subsampleSize(size: number, stride: number): number {
  return Math.ceil(size / stride);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
