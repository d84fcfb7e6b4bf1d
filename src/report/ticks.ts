// "Nice" axis ticks: steps of 1, 2 or 5 times a power of ten, with the axis range widened
// to whole steps (the rule of d3-array's tickIncrement / d3-scale's nice()).

export interface Ticks {
  /** Axis range after widening to whole steps. */
  min: number;
  max: number;
  step: number;
  values: number[];
}

/** The 1-2-5 step that gives about `count` intervals over [lo, hi]. */
export function tickStep(lo: number, hi: number, count: number): number {
  const raw = (hi - lo) / Math.max(1, count);
  const power = Math.floor(Math.log10(raw));
  const error = raw / 10 ** power;
  // Thresholds at the geometric means of neighbouring steps, as d3 does.
  const factor = error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.sqrt(2) ? 2 : 1;
  return factor * 10 ** power;
}

/** Decimal places needed to print multiples of `step` exactly. */
export function stepDecimals(step: number): number {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

// Steps below 1 multiply by their inverse (an integer), and a 1e-9 slack absorbs float
// noise, so 0.3 / 0.1 does not floor to 2 nor 0.07 * 100 ceil to 8.
function stepsIn(v: number, step: number): number {
  return step < 1 ? v * Math.round(1 / step) : v / step;
}

function fromSteps(k: number, step: number): number {
  return step < 1 ? k / Math.round(1 / step) : k * step;
}

function floorTo(v: number, step: number): number {
  return fromSteps(Math.floor(stepsIn(v, step) + 1e-9), step);
}

function ceilTo(v: number, step: number): number {
  return fromSteps(Math.ceil(stepsIn(v, step) - 1e-9), step);
}

function roundTo(v: number, decimals: number): number {
  const r = Number(v.toFixed(decimals));
  return Object.is(r, -0) ? 0 : r;
}

/**
 * Ticks covering [lo, hi] with about `count` intervals. A degenerate range (lo === hi) is
 * widened around the value so a flat series still gets an axis. `minStep` 1 keeps ticks on
 * whole numbers (epochs).
 */
export function niceTicks(lo: number, hi: number, count = 5, minStep = 0): Ticks {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new Error(`niceTicks: the axis range must be finite numbers, got [${lo}, ${hi}]`);
  }
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  let min = lo;
  let max = hi;
  let step = Number.NaN;
  // Widening can change the best step; settle it (d3's nice() loops the same way).
  for (let i = 0; i < 10; i++) {
    const next = Math.max(minStep, tickStep(min, max, count));
    if (next === step) break;
    step = next;
    min = floorTo(lo, step);
    max = ceilTo(hi, step);
  }
  const decimals = stepDecimals(step);
  min = roundTo(min, decimals);
  max = roundTo(max, decimals);
  const n = Math.round((max - min) / step);
  const values: number[] = [];
  for (let i = 0; i <= n; i++) values.push(roundTo(min + i * step, decimals));
  return { min, max, step, values };
}

/**
 * A tick label: as many decimals as the step needs; thousands as "k" when every tick is a
 * whole number of thousands (iteration axes: "10k", "20k").
 */
export function formatTick(value: number, step: number): string {
  if (step >= 1000 && step % 1000 === 0 && value !== 0) return `${roundTo(value / 1000, 3)}k`;
  return roundTo(value, stepDecimals(step)).toFixed(stepDecimals(step));
}

/** Percent labels for values held as fractions (0.25 -> "25%"). */
export function formatPercentTick(value: number, step: number): string {
  const decimals = Math.max(0, stepDecimals(step * 100));
  return `${(value * 100).toFixed(decimals)}%`;
}
