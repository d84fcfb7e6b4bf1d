// Turning per-iteration records into plottable lines: smoothing (a per-batch error is
// noisy) and thinning (a 64k-iteration run need not put 64k points in an SVG).
import type { Point } from './line-chart.js';

/**
 * Trailing moving average over `window` points (fewer at the start), skipping non-finite
 * values; a point whose whole window is non-finite stays NaN so the line shows a gap.
 */
export function movingAverage(points: readonly Point[], window: number): Point[] {
  if (!(window >= 1)) throw new Error(`movingAverage: window must be at least 1, got ${window}`);
  const w = Math.floor(window);
  const out: Point[] = [];
  let sum = 0;
  let count = 0;
  for (let i = 0; i < points.length; i++) {
    const y = points[i]![1];
    if (Number.isFinite(y)) {
      sum += y;
      count++;
    }
    if (i >= w) {
      const old = points[i - w]![1];
      if (Number.isFinite(old)) {
        sum -= old;
        count--;
      }
    }
    out.push([points[i]![0], count > 0 ? sum / count : Number.NaN]);
  }
  return out;
}

/** At most `maxPoints` points, keeping the first and last and evenly spaced ones between. */
export function thin(points: readonly Point[], maxPoints: number): Point[] {
  if (points.length <= maxPoints) return [...points];
  if (maxPoints < 2) throw new Error(`thin: maxPoints must be at least 2, got ${maxPoints}`);
  const out: Point[] = [];
  const stride = (points.length - 1) / (maxPoints - 1);
  for (let k = 0; k < maxPoints; k++) out.push(points[Math.round(k * stride)]!);
  return out;
}

/** A smoothing window of about 1/50 of the run, at least `min` iterations. */
export function defaultWindow(length: number, min = 10): number {
  return Math.max(min, Math.round(length / 50));
}

/**
 * The mean of the last `n` values (the "final" value of a noisy curve); NaN when any of
 * them is not finite, so a run that diverged at the end never reads as a good one.
 */
export function tailMean(values: readonly number[], n: number): number {
  const tail = values.slice(Math.max(0, values.length - n));
  if (tail.length === 0 || tail.some((v) => !Number.isFinite(v))) return Number.NaN;
  return tail.reduce((a, b) => a + b, 0) / tail.length;
}
