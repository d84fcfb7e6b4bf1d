// compare.html: several runs overlaid on the same axes (test accuracy, test loss,
// training loss), with a table of where each ended.
import { lineChart, type Point, type Series } from './line-chart.js';
import { defaultWindow, movingAverage, thin } from './series.js';
import { seriesColor } from './palette.js';
import { duration, figure, num, page, pct, section, table, type Column } from './html.js';
import { el } from './svg.js';
import { bestEpoch, type RunData } from './run-data.js';

function perEpoch(runs: readonly RunData[], value: (e: RunData['epochs'][number]) => number): Series[] {
  return runs.map((r, i) => ({
    label: r.name, color: seriesColor(i), style: 'bold',
    points: r.epochs.map((e): Point => [e.iteration, value(e)]),
  }));
}

function trainingLoss(runs: readonly RunData[]): Series[] {
  return runs.map((r, i) => {
    const raw: Point[] = r.steps.map((s) => [s.iteration, s.loss]);
    const points = raw.length > 0 ? thin(movingAverage(raw, defaultWindow(raw.length)), 600) : r.epochs.map((e): Point => [e.iteration, e.trainLoss]);
    return { label: r.name, color: seriesColor(i), style: 'normal', points };
  });
}

/** Several runs overlaid (test accuracy, test loss, training loss) as one page section; the live dashboard shows the same. */
export function compareCurves(runs: readonly RunData[]): string {
  const x = { label: 'iterations', includeZero: true, integer: true };
  const acc = lineChart({ id: 'cmp-acc', title: 'Test accuracy', x, y: { label: 'top-1 accuracy', format: 'percent' }, panels: [{ series: perEpoch(runs, (e) => e.testAccuracy) }], panelWidth: 460 });
  const testLoss = lineChart({ id: 'cmp-test-loss', title: 'Test loss', x, y: { label: 'cross-entropy loss', includeZero: true }, panels: [{ series: perEpoch(runs, (e) => e.testLoss) }], panelWidth: 460 });
  const trainLoss = lineChart({ id: 'cmp-train-loss', title: 'Training loss (smoothed)', x, y: { label: 'cross-entropy loss', includeZero: true, upperQuantile: 0.98 }, panels: [{ series: trainingLoss(runs) }], panelWidth: 460 });
  return section('curves', 'Curves', el('div', { class: 'charts' }, figure(acc.svg, undefined, 'test-accuracy-chart'), figure(testLoss.svg, undefined, 'test-loss-chart'), figure(trainLoss.svg, undefined, 'train-loss-chart')));
}

export function renderCompareReport(runs: readonly RunData[]): string {
  if (runs.length === 0) throw new Error('compare: no runs given');
  const last = (r: RunData): RunData['epochs'][number] | undefined => r.epochs[r.epochs.length - 1];
  const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
  const cols: Column<RunData>[] = [
    { header: 'run', key: 'run', text: true, value: (r) => r.name },
    { header: 'model', key: 'model', text: true, value: (r) => str(r.config.model) },
    { header: 'epochs', key: 'epochs', value: (r) => String(r.epochs.length) },
    { header: 'final train loss', key: 'train-loss', value: (r) => num(last(r)?.trainLoss) },
    { header: 'final test acc', key: 'test-acc', value: (r) => pct(last(r)?.testAccuracy) },
    { header: 'best test acc', key: 'best-test-acc', value: (r) => pct(bestEpoch(r.epochs)?.testAccuracy) },
    { header: 'time', key: 'time', value: (r) => duration(r.epochs.reduce((a, e) => a + (Number.isFinite(e.seconds) ? e.seconds : 0), 0)) },
  ];
  return page({
    title: `Comparison of ${runs.length} runs`,
    subtitle: runs.map((r) => r.name).join(', '),
    sections: [
      section('runs', 'Runs', table('run-table', cols, runs)),
      compareCurves(runs),
    ],
    data: runs.map((r) => ({ name: r.name, config: r.config, epochs: r.epochs })),
  });
}
