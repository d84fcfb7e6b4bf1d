// Finite-difference gradient checks for every op on the reference backend, independent
// of PyTorch: the analytic gradient of L = sum(out * g) (g a fixed random upstream
// gradient) against central differences (L(x + h) - L(x - h)) / (2h), one input element
// at a time. L is summed in float64 and the step is measured between the float32 values
// actually fed in, so the difference quotient is limited only by the ops' float32
// rounding (at most about 1e-4 here) and by h^2 curvature: 20 times less than the
// tolerance, which still catches a gradient that is 1% off.
// Inputs keep clear of kinks (relu at 0, max-pool ties) by more than h.
import { AssertionError } from 'node:assert';
import { before, describe, it } from 'node:test';
import { F, noGrad, randn, Rng, setBackend, Tensor, tensor } from '../src/index.js';

const H = 2 ** -7;
/** |numeric - analytic| <= ATOL + RTOL * |analytic|, element by element. */
const ATOL = 5e-4;
const RTOL = 1e-3;

function lossOf(out: Tensor, g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < out.size; i++) s += out.data[i]! * g[i]!;
  return s;
}

/**
 * Compare analytic and numeric gradients of sum(f(inputs) * g) for every element of
 * every input. `f` must not depend on state that it changes (fresh BN statistics).
 */
function gradcheck(what: string, inputs: Record<string, Tensor>, f: (t: Record<string, Tensor>) => Tensor, seed = 1): void {
  for (const t of Object.values(inputs)) t.requiresGrad = true;
  const out = f(inputs);
  // Upstream gradient of magnitude 0.5..1.5 with random signs: never near 0, so every
  // output element weighs in.
  const rng = new Rng(seed);
  const g = Float32Array.from({ length: out.size }, () => (rng.uniform() < 0.5 ? -1 : 1) * (0.5 + rng.uniform()));
  out.backward(tensor(g, out.shape));
  for (const [name, t] of Object.entries(inputs)) {
    if (!t.grad) throw new AssertionError({ message: `${what}: no gradient reached input ${name}` });
    const analytic = t.grad.data;
    let worst = -1;
    let worstAt = 0;
    let worstNumeric = 0;
    for (let i = 0; i < t.size; i++) {
      const orig = t.data[i]!;
      t.data[i] = orig + H;
      const xPlus = t.data[i]!;
      const lPlus = noGrad(() => lossOf(f(inputs), g));
      t.data[i] = orig - H;
      const xMinus = t.data[i]!;
      const lMinus = noGrad(() => lossOf(f(inputs), g));
      t.data[i] = orig;
      const numeric = (lPlus - lMinus) / (xPlus - xMinus);
      const excess = Math.abs(numeric - analytic[i]!) - (ATOL + RTOL * Math.abs(analytic[i]!));
      if (!(excess <= worst)) {
        worst = Number.isNaN(excess) ? Infinity : excess;
        worstAt = i;
        worstNumeric = numeric;
      }
    }
    if (worst > 0) {
      throw new AssertionError({
        message: `${what}: gradient of ${name} ${'[' + t.shape.join(', ') + ']'} disagrees with finite differences: ` +
          `at flat index ${worstAt} analytic ${analytic[worstAt]}, numeric ${worstNumeric} ` +
          `(tolerance ${ATOL} + ${RTOL} * |analytic|)`,
      });
    }
  }
}

/** Normal values pushed at least `margin` away from 0. */
function awayFromZero(shape: number[], seed: number, margin = 0.1): Tensor {
  const t = randn(shape, { seed });
  for (let i = 0; i < t.size; i++) t.data[i] = Math.sign(t.data[i]!) * (Math.abs(t.data[i]!) + margin);
  return t;
}

/** Distinct values spaced `step` apart in random order, so max-pool windows never tie. */
function distinct(shape: number[], seed: number, step = 0.05): Tensor {
  let n = 1;
  for (const d of shape) n *= d;
  const perm = new Rng(seed).permutation(n);
  return tensor(Array.from(perm, (p) => (p - n / 2) * step), shape);
}

/**
 * Per channel, the values (j - (m - 1) / 2) * step + offset, j = 0..m-1 shuffled, m even:
 * normalised, none is within 0.5 * step of the channel mean, so BN + ReLU has no kink nearby.
 */
function spreadPerChannel(shape: [number, number, number, number], seed: number, step = 0.25): Tensor {
  const c = shape[3];
  const m = (shape[0] * shape[1] * shape[2]);
  if (m % 2 !== 0) throw new Error('spreadPerChannel needs an even count per channel');
  const rng = new Rng(seed);
  const data = new Float32Array(m * c);
  for (let k = 0; k < c; k++) {
    const perm = rng.permutation(m);
    const offset = rng.normal();
    for (let j = 0; j < m; j++) data[j * c + k] = (perm[j]! - (m - 1) / 2) * step + offset;
  }
  return tensor(data, shape);
}

function positive(shape: number[], seed: number): Tensor {
  const t = randn(shape, { seed });
  for (let i = 0; i < t.size; i++) t.data[i] = 0.5 + Math.abs(t.data[i]!) * 0.5;
  return t;
}

describe('finite-difference gradient checks (reference backend)', () => {
  before(() => setBackend('reference'));

  it('conv2d 3x3, stride 2, padding 1, with bias', () => {
    gradcheck('conv2d', { x: randn([2, 5, 5, 3], { seed: 1 }), w: randn([4, 3, 3, 3], { seed: 2 }), b: randn([4], { seed: 3 }) },
      (t) => F.conv2d(t['x']!, t['w']!, t['b']!, { stride: 2, padding: 1 }));
  });

  it('conv2d 1x1, stride 2, no bias; and 3x2 kernel with stride (1, 2), padding (0, 1)', () => {
    gradcheck('conv2d 1x1', { x: randn([2, 5, 5, 3], { seed: 4 }), w: randn([2, 3, 1, 1], { seed: 5 }) },
      (t) => F.conv2d(t['x']!, t['w']!, null, { stride: 2 }));
    gradcheck('conv2d 3x2', { x: randn([1, 4, 5, 2], { seed: 6 }), w: randn([3, 2, 3, 2], { seed: 7 }) },
      (t) => F.conv2d(t['x']!, t['w']!, null, { stride: [1, 2], padding: [0, 1] }));
  });

  it('batchNorm2d, training mode', () => {
    gradcheck('batchNorm2d train', { x: randn([2, 3, 3, 4], { seed: 8 }), w: positive([4], 9), b: randn([4], { seed: 10 }) },
      (t) => F.batchNorm2d(t['x']!, tensor([0, 0, 0, 0]), tensor([1, 1, 1, 1]), t['w']!, t['b']!, { training: true }));
  });

  it('batchNorm2d + fused ReLU, training mode', () => {
    gradcheck('batchNorm2d+relu train', { x: spreadPerChannel([2, 2, 4, 3], 11), w: positive([3], 12), b: tensor([0, 0, 0]) },
      (t) => F.batchNorm2d(t['x']!, tensor([0, 0, 0]), tensor([1, 1, 1]), t['w']!, t['b']!, { training: true, relu: true }));
  });

  it('batchNorm2d, eval mode, with and without fused ReLU', () => {
    const rm = tensor([0.2, -0.1, 0.05]);
    const rv = tensor([0.8, 1.5, 1.1]);
    gradcheck('batchNorm2d eval', { x: randn([2, 2, 3, 3], { seed: 13 }), w: positive([3], 14), b: randn([3], { seed: 15 }) },
      (t) => F.batchNorm2d(t['x']!, rm, rv, t['w']!, t['b']!, { training: false }));
    // x = running mean + a value away from 0, bias 0: the pre-activation stays off 0.
    const x = awayFromZero([2, 2, 3, 3], 16, 0.2);
    for (let i = 0; i < x.size; i++) x.data[i] += rm.data[i % 3]!;
    gradcheck('batchNorm2d+relu eval', { x, w: positive([3], 17), b: tensor([0, 0, 0]) },
      (t) => F.batchNorm2d(t['x']!, rm, rv, t['w']!, t['b']!, { training: false, relu: true }));
  });

  it('relu', () => {
    gradcheck('relu', { x: awayFromZero([2, 3, 4], 18) }, (t) => F.relu(t['x']!));
  });

  it('add and addRelu', () => {
    gradcheck('add', { a: randn([2, 3, 2, 2], { seed: 19 }), b: randn([2, 3, 2, 2], { seed: 20 }) }, (t) => F.add(t['a']!, t['b']!));
    const a = randn([2, 3, 2, 2], { seed: 21 });
    const b = awayFromZero([2, 3, 2, 2], 22);
    for (let i = 0; i < b.size; i++) b.data[i] -= a.data[i]!;
    gradcheck('addRelu', { a, b }, (t) => F.addRelu(t['a']!, t['b']!));
  });

  it('mulScalar', () => {
    gradcheck('mulScalar', { x: randn([3, 4], { seed: 23 }) }, (t) => F.mulScalar(t['x']!, -1.7));
  });

  it('padChannelsSubsample (option-A shortcut)', () => {
    gradcheck('padChannelsSubsample', { x: randn([2, 5, 5, 2], { seed: 24 }) }, (t) => F.padChannelsSubsample(t['x']!, 2, 5, 1));
  });

  it('maxPool2d 3x3, stride 2, padding 1', () => {
    gradcheck('maxPool2d', { x: distinct([2, 5, 5, 2], 25) }, (t) => F.maxPool2d(t['x']!, { kernelSize: 3, stride: 2, padding: 1 }));
  });

  it('avgPool2d 3x3, stride 2, padding 1 and 2x2, stride 2', () => {
    gradcheck('avgPool2d 3x3', { x: randn([1, 5, 5, 2], { seed: 26 }) }, (t) => F.avgPool2d(t['x']!, { kernelSize: 3, stride: 2, padding: 1 }));
    gradcheck('avgPool2d 2x2', { x: randn([1, 4, 4, 2], { seed: 27 }) }, (t) => F.avgPool2d(t['x']!, { kernelSize: 2 }));
  });

  it('globalAvgPool', () => {
    gradcheck('globalAvgPool', { x: randn([2, 3, 3, 4], { seed: 28 }) }, (t) => F.globalAvgPool(t['x']!));
  });

  it('reshape and flatten', () => {
    gradcheck('reshape', { x: randn([2, 3, 4], { seed: 29 }) }, (t) => F.mulScalar(F.reshape(t['x']!, [4, -1]), 2));
    gradcheck('flatten', { x: randn([2, 2, 2, 3], { seed: 30 }) }, (t) => F.flatten(t['x']!));
  });

  it('linear with bias, and matmul', () => {
    gradcheck('linear', { x: randn([3, 5], { seed: 31 }), w: randn([4, 5], { seed: 32 }), b: randn([4], { seed: 33 }) },
      (t) => F.linear(t['x']!, t['w']!, t['b']!));
    gradcheck('matmul', { a: randn([3, 4], { seed: 34 }), b: randn([4, 2], { seed: 35 }) }, (t) => F.matmul(t['a']!, t['b']!));
  });

  it('logSoftmax', () => {
    gradcheck('logSoftmax', { x: randn([3, 6], { seed: 36 }) }, (t) => F.logSoftmax(t['x']!));
  });

  it('crossEntropy, plain and with label smoothing 0.1', () => {
    const labels = Int32Array.from([0, 3, 1, 4]);
    gradcheck('crossEntropy', { x: randn([4, 5], { seed: 37 }) }, (t) => F.crossEntropy(t['x']!, labels));
    gradcheck('crossEntropy smoothing', { x: randn([4, 5], { seed: 38 }) },
      (t) => F.crossEntropy(t['x']!, labels, { labelSmoothing: 0.1 }));
  });

  it('sum and mean', () => {
    gradcheck('sum', { x: randn([3, 4], { seed: 39 }) }, (t) => F.sum(t['x']!));
    gradcheck('mean', { x: randn([3, 4], { seed: 40 }) }, (t) => F.mean(t['x']!));
  });
});
