// Training-mode BN's batch statistics on every backend: the mean and biased variance
// returned for float32 input must be that input's float64 statistics rounded to
// float32. The hard case for a one-pass kernel is a channel whose first value lies
// far from the mean: summing squares about that value, the variance comes out as a
// difference of two terms (1 + z^2) times larger than itself, z the first value's
// distance from the mean in standard deviations.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getBackend } from '../src/backend/index.js';
import { randn } from '../src/tensor/tensor.js';
import { backendsUnderTest } from './helpers/backends.js';

// float32 rounding is 2^-24 relative; 2^-22 leaves room for the double sums and the
// division, and is 30x below what float partial sums of 64 rows gave here (up to 8e-6).
const REL = 2 ** -22;

const SHAPE = [4, 8, 8, 16] as const;
const C = SHAPE[3];
const ROWS = SHAPE[0] * SHAPE[1] * SHAPE[2];

/** Channel k: offset + spread * N(0, 1), its first value `firstZ` spreads from the mean. */
function input(): Float32Array {
  const z = randn([ROWS, C], { seed: 5 }).data;
  const x = new Float32Array(ROWS * C);
  for (let k = 0; k < C; k++) {
    const offset = [0, 0.3, -2, 40][k % 4]!;
    const spread = [1, 0.05, 3][k % 3]!;
    const firstZ = [0, 2, 4, 6, 8][k % 5]!;
    for (let r = 0; r < ROWS; r++) x[r * C + k] = offset + spread * (r === 0 ? firstZ : z[r * C + k]!);
  }
  return x;
}

function float64Moments(x: Float32Array): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let i = 0; i < x.length; i++) mean[i % C] += x[i]! / ROWS;
  for (let i = 0; i < x.length; i++) variance[i % C] += (x[i]! - mean[i % C]!) ** 2 / ROWS;
  return { mean, variance };
}

for (const name of backendsUnderTest()) {
  describe(`batch statistics are float32-exact (${name} backend)`, () => {
    test('mean and biased variance with the first value up to 8 standard deviations out', () => {
      const x = input();
      const truth = float64Moments(x);
      const gamma = new Float32Array(C).fill(1);
      const beta = new Float32Array(C);
      for (const relu of [false, true]) {
        const r = getBackend(name).batchNormTraining(x, SHAPE, gamma, beta, 1e-5, relu);
        const failures: string[] = [];
        for (let k = 0; k < C; k++) {
          const m = truth.mean[k]!;
          const v = truth.variance[k]!;
          // The mean's bound adds one millionth of the spread for means near zero.
          if (!(Math.abs(r.mean[k]! - m) <= REL * (Math.abs(m) + 1e-6 * Math.sqrt(v)))) {
            failures.push(`channel ${k}: mean ${r.mean[k]} vs ${m}`);
          }
          if (!(Math.abs(r.variance[k]! - v) <= REL * v)) {
            failures.push(`channel ${k}: variance ${r.variance[k]} vs ${v} (relative error ${(Math.abs(r.variance[k]! - v) / v).toExponential(2)})`);
          }
        }
        assert.deepEqual(failures, [], `relu ${relu}`);
      }
    });
  });
}
