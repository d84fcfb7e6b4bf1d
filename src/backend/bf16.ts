// What the bfloat16 kernels compute, written once in terms of the float32 ones: widen the
// inputs, run the float32 kernel, round each output to the nearest bfloat16 (ties to
// even). The reference backend's bf16 rows are these over its own float32 kernels; the
// native ones compute the same in one pass (and tests hold them to it).
import type { Kernels, Storage } from './backend.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** x rounded to bfloat16 bit patterns, ties to even; a NaN stays a (quiet) NaN. */
export function roundToBf16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    f32[0] = x[i]!;
    const u = u32[0]!;
    out[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x40 : ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** The float32 values bfloat16 bit patterns stand for (exact). */
export function widenBf16(x: Uint16Array): Float32Array {
  const out = new Float32Array(x.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < x.length; i++) bits[i] = x[i]! << 16;
  return out;
}

/** The kernels of the bf16 storage rows of KERNELS. */
export type Bf16KernelName = 'toBf16' | 'fromBf16' | 'conv2dBf16' | 'conv2dBackwardBf16' | 'batchNormTrainingBf16' |
  'batchNormBackwardBf16' | 'addBf16' | 'addReluBf16' | 'reluBackwardBf16' | 'addInPlaceBf16';

type Float32Kernels = Pick<Kernels, 'conv2d' | 'conv2dBackward' | 'batchNormTraining' | 'batchNormBackward' | 'add' |
  'addRelu' | 'reluBackward'>;

/** The bf16 storage kernels computed by `fp`'s float32 kernels (see the file's head). */
export function bf16Kernels(fp: Float32Kernels): Pick<Kernels, Bf16KernelName> {
  const wide = (x: Storage): Float32Array => (x instanceof Uint16Array ? widenBf16(x) : x);
  /** What a bf16 convolution reads: the value rounded to bfloat16, as float32. */
  const rounded = (x: Storage): Float32Array => widenBf16(x instanceof Uint16Array ? x : roundToBf16(x));
  return {
    toBf16: roundToBf16,
    fromBf16: widenBf16,
    conv2dBf16: (x, xShape, w, wShape, bias, attrs) =>
      roundToBf16(fp.conv2d(rounded(x), xShape, rounded(w), wShape, bias, attrs)),
    conv2dBackwardBf16: (x, xShape, dy, w, wShape, attrs, withBias, needDx, needDw) => {
      const g = fp.conv2dBackward(rounded(x), xShape, widenBf16(dy), rounded(w), wShape, attrs, withBias, needDx, needDw);
      return { dx: g.dx && roundToBf16(g.dx), dw: g.dw, db: g.db };
    },
    batchNormTrainingBf16: (x, xShape, gamma, beta, eps, relu) => {
      const r = fp.batchNormTraining(widenBf16(x), xShape, gamma, beta, eps, relu);
      return { y: roundToBf16(r.y), mean: r.mean, variance: r.variance };
    },
    batchNormBackwardBf16: (dy, x, xShape, gamma, mean, variance, eps, y) => {
      const g = fp.batchNormBackward(widenBf16(dy), widenBf16(x), xShape, gamma, mean, variance, eps, y && widenBf16(y));
      return { dx: roundToBf16(g.dx), dgamma: g.dgamma, dbeta: g.dbeta };
    },
    addBf16: (a, b) => roundToBf16(fp.add(wide(a), wide(b))),
    addReluBf16: (a, b) => roundToBf16(fp.addRelu(wide(a), wide(b))),
    reluBackwardBf16: (dy, y) => roundToBf16(fp.reluBackward(widenBf16(dy), widenBf16(y))),
    addInPlaceBf16: (a, b) => {
      a.set(roundToBf16(fp.add(widenBf16(a), widenBf16(b))));
    },
  };
}
