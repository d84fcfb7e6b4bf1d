// Line charts in SVG: one or more panels side by side on the same axes (the layout of
// He et al. 2015, Fig. 6: plain nets on the left, residual nets on the right), a legend
// under each panel, thin dashed and bold series (training vs test error in the paper).
import { el, fmtCoord, svgDocument, textEl } from './svg.js';
import { formatPercentTick, formatTick, niceTicks, type Ticks } from './ticks.js';
import { linearScale, type LinearScale } from './scale.js';

export type SeriesStyle = 'bold' | 'thin-dashed' | 'normal';
export type Point = readonly [number, number];

export interface Series {
  label: string;
  /** Legend entry the series belongs to (default: its label); series sharing one show once. */
  legend?: string;
  color: string;
  style?: SeriesStyle;
  points: readonly Point[];
}

export interface Panel {
  title?: string;
  series: readonly Series[];
}

export interface AxisSpec {
  label: string;
  /** Fixed ends; otherwise the data's range widened to nice ticks. */
  min?: number;
  max?: number;
  includeZero?: boolean;
  format?: 'number' | 'percent';
  /** About how many tick intervals (default 5). */
  ticks?: number;
  /** Ticks on whole numbers only (epochs, counts). */
  integer?: boolean;
  /**
   * End the axis at this quantile of the data (e.g. 0.99), so a few early spikes (a loss
   * of 10 in the first iterations) do not flatten every curve; what lies above is clipped.
   */
  upperQuantile?: number;
}

export interface StyleKeyEntry {
  style: SeriesStyle;
  text: string;
}

export interface LineChartSpec {
  /** Prefix for element ids (clip paths), unique within one HTML page. */
  id: string;
  title?: string;
  panels: readonly Panel[];
  x: AxisSpec;
  y: AxisSpec;
  panelWidth?: number;
  panelHeight?: number;
  /** Explains the line styles once for the whole figure ("dashed: training error"). */
  styleKey?: readonly StyleKeyEntry[];
}

export interface LineChart {
  svg: string;
  width: number;
  height: number;
  x: Ticks;
  y: Ticks;
}

const STROKE: Record<SeriesStyle, { width: number; dash?: string }> = {
  bold: { width: 2.4 },
  'thin-dashed': { width: 1, dash: '4 3' },
  normal: { width: 1.6 },
};

const FONT = 12;
const MARGIN = { left: 64, right: 20, top: 12, bottom: 12 };
const PANEL_GAP = 28;
const LEGEND_ROW = 18;

/** Rough advance width of sans-serif text; enough to lay out legends without a font engine. */
export function textWidth(text: string, fontSize = FONT): number {
  return text.length * fontSize * 0.6;
}

/** The finite values of one coordinate over every point whose both coordinates are finite. */
function dataValues(panels: readonly Panel[], axis: 0 | 1): number[] {
  const values: number[] = [];
  for (const p of panels) {
    for (const s of p.series) {
      for (const pt of s.points) {
        if (Number.isFinite(pt[0]) && Number.isFinite(pt[1])) values.push(pt[axis]);
      }
    }
  }
  return values;
}

function dataRange(panels: readonly Panel[], axis: 0 | 1, upperQuantile?: number): [number, number] | null {
  const values = dataValues(panels, axis);
  if (values.length === 0) return null;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (upperQuantile !== undefined && upperQuantile < 1) {
    const sorted = values.sort((a, b) => a - b);
    hi = sorted[Math.min(sorted.length - 1, Math.floor(upperQuantile * sorted.length))]!;
  }
  return [lo, hi];
}

export function axisTicks(spec: AxisSpec, range: [number, number] | null): Ticks {
  let lo = spec.min ?? range?.[0] ?? 0;
  let hi = spec.max ?? range?.[1] ?? 1;
  if (spec.includeZero === true) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  return niceTicks(lo, hi, spec.ticks ?? 5, spec.integer === true ? 1 : 0);
}

function tickLabel(spec: AxisSpec, value: number, step: number): string {
  return spec.format === 'percent' ? formatPercentTick(value, step) : formatTick(value, step);
}

/**
 * SVG path data for a series: a new sub-path after every non-finite point, so a diverged
 * (NaN) stretch shows as a gap rather than a line to zero.
 */
export function seriesPath(points: readonly Point[], sx: (v: number) => number, sy: (v: number) => number): string {
  const parts: string[] = [];
  let pen = false;
  for (const [x, y] of points) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      pen = false;
      continue;
    }
    parts.push(`${pen ? 'L' : 'M'}${fmtCoord(sx(x))} ${fmtCoord(sy(y))}`);
    pen = true;
  }
  return parts.join('');
}

interface LegendItem {
  key: string;
  color: string;
  style: SeriesStyle;
}

/** One entry per legend key; drawn in the series' style when its series share one, else solid. */
export function legendItems(series: readonly Series[]): LegendItem[] {
  const seen = new Map<string, LegendItem>();
  for (const s of series) {
    const key = s.legend ?? s.label;
    const style = s.style ?? 'normal';
    const item = seen.get(key);
    if (item === undefined) seen.set(key, { key, color: s.color, style });
    else if (item.style !== style) item.style = 'normal';
  }
  return [...seen.values()];
}

function styleSample(x: number, y: number, color: string, style: SeriesStyle): string {
  const stroke = STROKE[style];
  return el('line', {
    x1: x, y1: y, x2: x + 24, y2: y,
    stroke: color, 'stroke-width': stroke.width, 'stroke-dasharray': stroke.dash,
  });
}

/** Flows entries left to right, wrapping at `width`; returns rows of [x offset, item]. */
function flow<T>(items: readonly T[], width: number, itemWidth: (t: T) => number): [number, T][][] {
  const rows: [number, T][][] = [];
  let row: [number, T][] = [];
  let x = 0;
  for (const item of items) {
    const w = itemWidth(item);
    if (row.length > 0 && x + w > width) {
      rows.push(row);
      row = [];
      x = 0;
    }
    row.push([x, item]);
    x += w;
  }
  if (row.length > 0) rows.push(row);
  return rows;
}

const legendItemWidth = (text: string): number => 32 + textWidth(text) + 14;

export function lineChart(spec: LineChartSpec): LineChart {
  if (spec.panels.length === 0) throw new Error(`lineChart ${spec.id}: needs at least one panel`);
  const pw = spec.panelWidth ?? 380;
  const ph = spec.panelHeight ?? 260;
  const xt = axisTicks(spec.x, dataRange(spec.panels, 0, spec.x.upperQuantile));
  const yt = axisTicks(spec.y, dataRange(spec.panels, 1, spec.y.upperQuantile));

  const legendRows = spec.panels.map((p) => flow(legendItems(p.series), pw, (it) => legendItemWidth(it.key)));
  const maxLegendRows = Math.max(0, ...legendRows.map((r) => r.length));
  const styleKey = spec.styleKey ?? [];
  const fullWidth = spec.panels.length * pw + (spec.panels.length - 1) * PANEL_GAP;
  const styleKeyRows = flow(styleKey, fullWidth, (k) => legendItemWidth(k.text));
  const hasPanelTitles = spec.panels.some((p) => p.title !== undefined);

  const titleH = spec.title === undefined ? 0 : 26;
  const panelTitleH = hasPanelTitles ? 20 : 0;
  const plotTop = MARGIN.top + titleH + panelTitleH;
  const xAxisH = 22;
  const xLabelH = 22;
  const legendTop = plotTop + ph + xAxisH + xLabelH;
  const styleKeyTop = legendTop + maxLegendRows * LEGEND_ROW + (maxLegendRows > 0 ? 6 : 0);
  const width = MARGIN.left + fullWidth + MARGIN.right;
  const height = styleKeyTop + styleKeyRows.length * LEGEND_ROW + MARGIN.bottom;

  const parts: string[] = [];
  if (spec.title !== undefined) {
    parts.push(textEl('text', { class: 'chart-title', x: width / 2, y: MARGIN.top + 16, 'text-anchor': 'middle', 'font-size': 15, 'font-weight': 'bold' }, spec.title));
  }

  spec.panels.forEach((panel, i) => {
    const left = MARGIN.left + i * (pw + PANEL_GAP);
    const sx: LinearScale = linearScale([xt.min, xt.max], [left, left + pw]);
    const sy: LinearScale = linearScale([yt.min, yt.max], [plotTop + ph, plotTop]);
    const clipId = `${spec.id}-clip-${i}`;
    const g: string[] = [];
    if (panel.title !== undefined) {
      g.push(textEl('text', { class: 'panel-title', x: left + pw / 2, y: plotTop - 7, 'text-anchor': 'middle', 'font-size': 13, 'font-weight': 'bold' }, panel.title));
    }
    g.push(el('defs', {}, el('clipPath', { id: clipId }, el('rect', { x: left, y: plotTop, width: pw, height: ph }))));

    const xTicks = xt.values.map((v) =>
      el('g', { class: 'tick', 'data-value': String(v) },
        el('line', { x1: sx(v), y1: plotTop, x2: sx(v), y2: plotTop + ph, stroke: '#e6e6e6' }),
        el('line', { x1: sx(v), y1: plotTop + ph, x2: sx(v), y2: plotTop + ph + 4, stroke: '#333' }),
        textEl('text', { x: sx(v), y: plotTop + ph + 16, 'text-anchor': 'middle', 'font-size': FONT - 1 }, tickLabel(spec.x, v, xt.step))));
    g.push(el('g', { class: 'axis x', 'data-min': String(xt.min), 'data-max': String(xt.max) }, ...xTicks));

    const yTicks = yt.values.map((v) =>
      el('g', { class: 'tick', 'data-value': String(v) },
        el('line', { x1: left, y1: sy(v), x2: left + pw, y2: sy(v), stroke: '#e6e6e6' }),
        el('line', { x1: left - 4, y1: sy(v), x2: left, y2: sy(v), stroke: '#333' }),
        // Shared y axis: labels on the first panel only.
        i === 0 ? textEl('text', { x: left - 7, y: sy(v) + 4, 'text-anchor': 'end', 'font-size': FONT - 1 }, tickLabel(spec.y, v, yt.step)) : ''));
    g.push(el('g', { class: 'axis y', 'data-min': String(yt.min), 'data-max': String(yt.max) }, ...yTicks));
    g.push(el('rect', { class: 'frame', x: left, y: plotTop, width: pw, height: ph, fill: 'none', stroke: '#333' }));

    const lines = panel.series.map((s) => {
      const stroke = STROKE[s.style ?? 'normal'];
      return el('path', {
        class: 'series', 'data-series': s.label, 'data-style': s.style ?? 'normal',
        d: seriesPath(s.points, sx, sy), fill: 'none', stroke: s.color,
        'stroke-width': stroke.width, 'stroke-dasharray': stroke.dash,
        'stroke-linejoin': 'round', 'clip-path': `url(#${clipId})`,
      });
    });
    g.push(el('g', { class: 'series-group' }, ...lines));

    const rows = legendRows[i] ?? [];
    const legend = rows.flatMap((row, r) => row.map(([dx, item]) => {
      const x = left + dx;
      const y = legendTop + r * LEGEND_ROW + 9;
      return el('g', { class: 'legend-entry', 'data-series': item.key },
        styleSample(x, y - 4, item.color, item.style),
        textEl('text', { x: x + 30, y, 'font-size': FONT }, item.key));
    }));
    g.push(el('g', { class: 'legend' }, ...legend));
    parts.push(el('g', { class: 'panel', 'data-panel': String(i) }, ...g));
  });

  const plotsRight = width - MARGIN.right;
  parts.push(textEl('text', { class: 'axis-label x', x: (MARGIN.left + plotsRight) / 2, y: plotTop + ph + xAxisH + 14, 'text-anchor': 'middle', 'font-size': FONT }, spec.x.label));
  const yMid = plotTop + ph / 2;
  parts.push(textEl('text', { class: 'axis-label y', x: 16, y: yMid, 'text-anchor': 'middle', 'font-size': FONT, transform: `rotate(-90 16 ${fmtCoord(yMid)})` }, spec.y.label));

  const keyEntries = styleKeyRows.flatMap((row, r) => row.map(([dx, k]) => {
    const y = styleKeyTop + r * LEGEND_ROW + 9;
    return el('g', { class: 'style-key-entry' },
      styleSample(MARGIN.left + dx, y - 4, '#555', k.style),
      textEl('text', { x: MARGIN.left + dx + 30, y, 'font-size': FONT, fill: '#333' }, k.text));
  }));
  if (keyEntries.length > 0) parts.push(el('g', { class: 'style-key' }, ...keyEntries));

  const svg = svgDocument(width, height, parts.join(''), spec.title);
  return { svg, width, height, x: xt, y: yt };
}

