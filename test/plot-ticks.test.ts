import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPercentTick, formatTick, niceTicks, tickStep } from '../src/report/ticks.js';

test('tick steps are 1, 2 or 5 times a power of ten', () => {
  assert.equal(tickStep(0, 1, 5), 0.2);
  assert.equal(tickStep(0, 10, 5), 2);
  assert.equal(tickStep(0, 100, 10), 10);
  assert.equal(tickStep(0, 64000, 5), 10000);
  assert.equal(tickStep(0, 0.034, 5), 0.005);
  // 7/5 = 1.4 is below sqrt(2): step 1, not 2.
  assert.equal(tickStep(0, 7, 5), 1);
});

test('the axis range widens to whole steps around the data', () => {
  const t = niceTicks(0.013, 0.871, 5);
  assert.deepEqual(t, { min: 0, max: 1, step: 0.2, values: [0, 0.2, 0.4, 0.6, 0.8, 1] });
  const iters = niceTicks(0, 11730, 5);
  assert.deepEqual(iters.values, [0, 2000, 4000, 6000, 8000, 10000, 12000]);
  assert.equal(iters.max, 12000);
});

test('float noise does not push a bound one step out', () => {
  // 0.3 / 0.1 is 2.9999999999999996 in floating point; 0.07 * 100 is 7.000000000000001.
  assert.deepEqual(niceTicks(0.3, 0.7, 4).values, [0.3, 0.4, 0.5, 0.6, 0.7]);
  assert.deepEqual(niceTicks(0.03, 0.07, 4).values, [0.03, 0.04, 0.05, 0.06, 0.07]);
});

test('negative and degenerate ranges still give an axis', () => {
  assert.deepEqual(niceTicks(-3.2, 4.9, 4).values, [-4, -2, 0, 2, 4, 6]);
  const flat = niceTicks(2, 2, 5);
  assert.ok(flat.min < 2 && flat.max > 2, `flat range widened: ${JSON.stringify(flat)}`);
  assert.deepEqual(niceTicks(0, 0, 2).values, [-1, 0, 1]);
  assert.throws(() => niceTicks(0, Number.NaN), /finite/);
});

test('whole-number axes never get fractional ticks', () => {
  assert.deepEqual(niceTicks(1, 2, 5).values, [1, 1.2, 1.4, 1.6, 1.8, 2]);
  assert.deepEqual(niceTicks(1, 2, 5, 1).values, [1, 2]);
  assert.deepEqual(niceTicks(0, 3, 5, 1).values, [0, 1, 2, 3]);
  assert.deepEqual(niceTicks(0, 40, 5, 1).values, [0, 10, 20, 30, 40]);
});

test('tick labels carry the decimals the step needs', () => {
  assert.equal(formatTick(0.4, 0.2), '0.4');
  assert.equal(formatTick(0.25, 0.05), '0.25');
  assert.equal(formatTick(2, 0.5), '2.0');
  assert.equal(formatTick(20000, 5000), '20k');
  assert.equal(formatTick(0, 5000), '0');
  assert.equal(formatTick(1500, 500), '1500');
  assert.equal(formatPercentTick(0.25, 0.05), '25%');
  assert.equal(formatPercentTick(0.025, 0.005), '2.5%');
});
