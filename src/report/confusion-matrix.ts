// A confusion matrix as an SVG heat map: rows are true classes, columns predicted ones,
// each cell shaded by its share of the row (so rare classes read as clearly as common
// ones) and labelled with its count.
import { el, fmtCoord, svgDocument, textEl } from './svg.js';
import { blueRamp, textOnRamp } from './palette.js';
import { textWidth } from './line-chart.js';

export interface ConfusionMatrixSpec {
  title?: string;
  classNames: readonly string[];
  /** counts[true][predicted]. */
  counts: readonly (readonly number[])[];
  cellSize?: number;
}

export interface ConfusionMatrixChart {
  svg: string;
  width: number;
  height: number;
}

export function checkConfusionCounts(classNames: readonly string[], counts: readonly (readonly number[])[]): void {
  const k = classNames.length;
  if (counts.length !== k || counts.some((row) => row.length !== k)) {
    throw new Error(`confusion matrix: expected ${k}x${k} counts for ${k} classes, got ${counts.length} rows of ` +
      `${counts.map((r) => r.length).join('/')}`);
  }
}

export function confusionMatrixChart(spec: ConfusionMatrixSpec): ConfusionMatrixChart {
  const { classNames, counts } = spec;
  checkConfusionCounts(classNames, counts);
  const k = classNames.length;
  const cell = spec.cellSize ?? (k <= 12 ? 40 : Math.max(8, Math.floor(480 / k)));
  const showCounts = cell >= 24;
  const fontSize = Math.min(12, Math.max(7, cell * 0.3));
  const nameWidth = Math.max(...classNames.map((n) => textWidth(n, 12)), 20);
  const titleH = spec.title === undefined ? 0 : 26;
  const left = 34 + nameWidth + 8;
  const top = 12 + titleH + 22;
  const bottom = 12 + nameWidth + 8;
  const width = left + k * cell + 16;
  const height = top + k * cell + bottom;

  const parts: string[] = [];
  if (spec.title !== undefined) {
    parts.push(textEl('text', { class: 'chart-title', x: width / 2, y: 28, 'text-anchor': 'middle', 'font-size': 15, 'font-weight': 'bold' }, spec.title));
  }
  parts.push(textEl('text', { class: 'axis-label x', x: left + (k * cell) / 2, y: top - 8, 'text-anchor': 'middle', 'font-size': 12 }, 'predicted class'));
  const yMid = top + (k * cell) / 2;
  parts.push(textEl('text', { class: 'axis-label y', x: 14, y: yMid, 'text-anchor': 'middle', 'font-size': 12, transform: `rotate(-90 14 ${fmtCoord(yMid)})` }, 'true class'));

  counts.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    const y = top + t * cell;
    parts.push(textEl('text', { class: 'row-label', x: left - 6, y: y + cell / 2 + 4, 'text-anchor': 'end', 'font-size': 12 }, classNames[t] ?? ''));
    row.forEach((count, p) => {
      const share = total > 0 ? count / total : 0;
      const x = left + p * cell;
      parts.push(el('g', { class: 'cell', 'data-true': String(t), 'data-predicted': String(p), 'data-count': String(count) },
        el('rect', { x, y, width: cell, height: cell, fill: blueRamp(share), stroke: '#ffffff', 'stroke-width': 0.5 },
          textEl('title', {}, `true ${classNames[t]}, predicted ${classNames[p]}: ${count} (${(share * 100).toFixed(1)}% of row)`)),
        showCounts && count > 0
          ? textEl('text', { x: x + cell / 2, y: y + cell / 2 + fontSize / 3, 'text-anchor': 'middle', 'font-size': fontSize, fill: textOnRamp(share) }, String(count))
          : ''));
    });
  });
  classNames.forEach((name, p) => {
    const x = left + p * cell + cell / 2 + 4;
    const y = top + k * cell + 6;
    parts.push(textEl('text', { class: 'column-label', x, y, 'text-anchor': 'end', 'font-size': 12, transform: `rotate(-90 ${fmtCoord(x)} ${fmtCoord(y)})` }, name));
  });
  return { svg: svgDocument(width, height, parts.join(''), spec.title ?? 'confusion matrix'), width, height };
}
