// Colours for series and heat maps. The series colours are the Tableau 10 set (d3's
// schemeTableau10): distinct for the common kinds of colour blindness.
export const SERIES_COLORS = [
  '#4e79a7', '#e15759', '#59a14f', '#f28e2b', '#b07aa1',
  '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#bab0ac',
] as const;

export function seriesColor(i: number): string {
  return SERIES_COLORS[((i % SERIES_COLORS.length) + SERIES_COLORS.length) % SERIES_COLORS.length] ?? '#4e79a7';
}

/** White to dark blue as t goes 0 -> 1 (a sequential ramp for the confusion matrix). */
export function blueRamp(t: number): string {
  const u = Math.min(1, Math.max(0, t));
  const from = [247, 251, 255];
  const to = [8, 48, 107];
  const c = from.map((f, i) => Math.round(f + ((to[i] ?? 0) - f) * u));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** Text colour that stays readable on blueRamp(t). */
export function textOnRamp(t: number): string {
  return t > 0.5 ? '#ffffff' : '#1a1a1a';
}
