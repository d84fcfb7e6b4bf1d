// Horizontal bar chart of fractions in [0, 1] (per-class accuracy), one labelled bar per
// category with its value printed at the end of the bar.
import { el, svgDocument, textEl } from './svg.js';
import { formatPercentTick, niceTicks } from './ticks.js';
import { linearScale } from './scale.js';
import { textWidth } from './line-chart.js';

export interface BarChartSpec {
  title?: string;
  labels: readonly string[];
  /** Fractions in [0, 1], one per label. */
  values: readonly number[];
  color?: string;
  xLabel?: string;
}

export interface BarChart {
  svg: string;
  width: number;
  height: number;
}

export function fractionBarChart(spec: BarChartSpec): BarChart {
  const { labels, values } = spec;
  if (labels.length !== values.length) {
    throw new Error(`bar chart: ${labels.length} labels but ${values.length} values`);
  }
  const bar = 22;
  const gap = 6;
  const titleH = spec.title === undefined ? 0 : 26;
  const left = 16 + Math.max(20, ...labels.map((l) => textWidth(l, 12)));
  const plotW = 360;
  const top = 12 + titleH;
  const plotH = labels.length * (bar + gap) + gap;
  const width = left + plotW + 60;
  const height = top + plotH + 46;
  const ticks = niceTicks(0, 1, 5);
  const sx = linearScale([ticks.min, ticks.max], [left, left + plotW]);

  const parts: string[] = [];
  if (spec.title !== undefined) {
    parts.push(textEl('text', { class: 'chart-title', x: width / 2, y: 28, 'text-anchor': 'middle', 'font-size': 15, 'font-weight': 'bold' }, spec.title));
  }
  parts.push(el('g', { class: 'axis x', 'data-min': String(ticks.min), 'data-max': String(ticks.max) },
    ...ticks.values.map((v) => el('g', { class: 'tick', 'data-value': String(v) },
      el('line', { x1: sx(v), y1: top, x2: sx(v), y2: top + plotH, stroke: '#e6e6e6' }),
      textEl('text', { x: sx(v), y: top + plotH + 16, 'text-anchor': 'middle', 'font-size': 11 }, formatPercentTick(v, ticks.step))))));
  labels.forEach((label, i) => {
    const v = values[i] ?? Number.NaN;
    const y = top + gap + i * (bar + gap);
    const w = Number.isFinite(v) ? Math.max(0, sx(Math.min(1, Math.max(0, v))) - left) : 0;
    parts.push(el('g', { class: 'bar', 'data-label': label, 'data-value': String(v) },
      textEl('text', { x: left - 6, y: y + bar / 2 + 4, 'text-anchor': 'end', 'font-size': 12 }, label),
      el('rect', { x: left, y, width: w, height: bar, fill: spec.color ?? '#4e79a7' }),
      textEl('text', { x: left + w + 4, y: y + bar / 2 + 4, 'font-size': 11 }, Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : 'n/a')));
  });
  parts.push(el('line', { x1: left, y1: top, x2: left, y2: top + plotH, stroke: '#333' }));
  if (spec.xLabel !== undefined) {
    parts.push(textEl('text', { class: 'axis-label x', x: left + plotW / 2, y: top + plotH + 36, 'text-anchor': 'middle', 'font-size': 12 }, spec.xLabel));
  }
  return { svg: svgDocument(width, height, parts.join(''), spec.title ?? 'bar chart'), width, height };
}
