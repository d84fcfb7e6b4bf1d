// report.html of one training run: config, loss/accuracy and learning-rate curves,
// throughput, confusion matrix, per-class accuracy and misclassified test images.
import { lineChart, type Point, type Series } from './line-chart.js';
import { confusionMatrixChart } from './confusion-matrix.js';
import { fractionBarChart } from './bar-chart.js';
import { defaultWindow, movingAverage, thin } from './series.js';
import { SERIES_COLORS } from './palette.js';
import { card, duration, figure, num, page, pct, section, table, type Column } from './html.js';
import { el, textEl } from './svg.js';
import { bestEpoch, confusionAccuracy, perClassAccuracy, type EpochRecord, type Evaluation, type RunData } from './run-data.js';

const MAX_POINTS = 600;
const [BLUE, RED, GREEN, ORANGE] = SERIES_COLORS;

function stepSeries(run: RunData, label: string, color: string, value: (s: RunData['steps'][number]) => number, smooth: boolean): Series[] {
  if (run.steps.length === 0) return [];
  const raw: Point[] = run.steps.map((s) => [s.iteration, value(s)]);
  const pts = smooth ? movingAverage(raw, defaultWindow(raw.length)) : raw;
  return [{ label, color, style: 'thin-dashed', points: thin(pts, MAX_POINTS) }];
}

function epochSeries(epochs: readonly EpochRecord[], label: string, color: string, value: (e: EpochRecord) => number): Series[] {
  const pts: Point[] = epochs.map((e) => [e.iteration, value(e)]);
  return pts.some((p) => Number.isFinite(p[1])) ? [{ label, color, style: 'bold', points: pts }] : [];
}

/** The run's curves (loss, accuracy, learning rate, throughput) as one page section; the live dashboard shows the same. */
export function runCurves(run: RunData): string {
  const { epochs } = run;
  const x = { label: 'iterations', includeZero: true, integer: true };
  const loss = lineChart({
    id: 'loss', title: 'Loss', x, y: { label: 'cross-entropy loss', includeZero: true, upperQuantile: 0.98 }, panelWidth: 420, panelHeight: 240,
    panels: [{ series: [
      ...stepSeries(run, 'training batches (smoothed)', BLUE!, (s) => s.loss, true),
      ...epochSeries(epochs, 'training (epoch mean)', BLUE!, (e) => e.trainLoss),
      ...epochSeries(epochs, 'test', RED!, (e) => e.testLoss),
    ] }],
  });
  const accuracy = lineChart({
    id: 'accuracy', title: 'Accuracy', x, y: { label: 'top-1 accuracy', format: 'percent' }, panelWidth: 420, panelHeight: 240,
    panels: [{ series: [
      ...stepSeries(run, 'training batches (smoothed)', BLUE!, (s) => 1 - s.error, true),
      ...epochSeries(epochs, 'training (epoch mean)', BLUE!, (e) => e.trainAccuracy),
      ...epochSeries(epochs, 'test', RED!, (e) => e.testAccuracy),
    ] }],
  });
  const lrPoints: Point[] = run.steps.length > 0 ? run.steps.map((s) => [s.iteration, s.lr]) : epochs.map((e) => [e.iteration, e.lr]);
  const lr = lineChart({
    id: 'lr', title: 'Learning rate', x, y: { label: 'learning rate', includeZero: true }, panelWidth: 420, panelHeight: 200,
    panels: [{ series: [{ label: 'learning rate', color: GREEN!, style: 'normal', points: thin(lrPoints, MAX_POINTS) }] }],
  });
  const throughput = lineChart({
    id: 'throughput', title: 'Training throughput', x: { label: 'epoch', integer: true }, y: { label: 'images / s', includeZero: true }, panelWidth: 420, panelHeight: 200,
    panels: [{ series: [{ label: 'images per second', color: ORANGE!, style: 'normal', points: epochs.map((e) => [e.epoch, e.imagesPerSecond]) }] }],
  });
  return section('curves', 'Training curves',
    el('div', { class: 'charts' },
      figure(loss.svg, 'Thin dashed: per-batch training values, smoothed; bold: one point per epoch.', 'loss-chart'),
      figure(accuracy.svg, undefined, 'accuracy-chart'),
      figure(lr.svg, undefined, 'lr-chart'),
      figure(throughput.svg, undefined, 'throughput-chart')));
}

function epochTable(epochs: readonly EpochRecord[]): string {
  const cols: Column<EpochRecord>[] = [
    { header: 'epoch', key: 'epoch', value: (e) => String(e.epoch) },
    { header: 'iterations', key: 'iteration', value: (e) => String(e.iteration) },
    { header: 'lr', key: 'lr', value: (e) => (Number.isFinite(e.lr) ? e.lr.toPrecision(3) : 'n/a') },
    { header: 'train loss', key: 'train-loss', value: (e) => num(e.trainLoss) },
    { header: 'train acc', key: 'train-acc', value: (e) => pct(e.trainAccuracy) },
    { header: 'test loss', key: 'test-loss', value: (e) => num(e.testLoss) },
    { header: 'test acc', key: 'test-acc', value: (e) => pct(e.testAccuracy) },
    { header: 'img/s', key: 'img-per-s', value: (e) => (Number.isFinite(e.imagesPerSecond) ? e.imagesPerSecond.toFixed(0) : 'n/a') },
    { header: 'time', key: 'seconds', value: (e) => duration(e.seconds) },
  ];
  return section('epochs', 'Epochs', el('div', { class: 'scroll' }, table('epoch-table', cols, epochs)));
}

function summaryCards(run: RunData): string {
  const last = run.epochs[run.epochs.length - 1];
  const best = bestEpoch(run.epochs);
  const totalSeconds = run.epochs.reduce((a, e) => a + (Number.isFinite(e.seconds) ? e.seconds : 0), 0);
  const speeds = run.epochs.map((e) => e.imagesPerSecond).filter(Number.isFinite);
  const meanSpeed = speeds.length > 0 ? speeds.reduce((a, b) => a + b, 0) / speeds.length : Number.NaN;
  return section('summary', 'Summary', el('div', { class: 'cards' },
    card('final-test-accuracy', 'final test accuracy', pct(last?.testAccuracy)),
    card('best-test-accuracy', `best test accuracy${best === undefined ? '' : ` (epoch ${best.epoch})`}`, pct(best?.testAccuracy)),
    card('final-train-loss', 'final training loss', num(last?.trainLoss)),
    card('epochs', 'epochs', String(run.epochs.length)),
    card('iterations', 'iterations', String(last?.iteration ?? run.steps[run.steps.length - 1]?.iteration ?? 0)),
    card('throughput', 'mean training throughput', Number.isFinite(meanSpeed) ? `${meanSpeed.toFixed(0)} img/s` : 'n/a'),
    card('time', 'training time', duration(totalSeconds))));
}

interface ClassRow {
  name: string;
  accuracy: number;
  count: number;
  confusedWith: string;
}

function classRows(ev: Evaluation): ClassRow[] {
  const acc = perClassAccuracy(ev.confusion);
  return ev.confusion.map((row, t) => {
    let worst = -1;
    row.forEach((c, p) => {
      if (p !== t && c > 0 && (worst < 0 || c > (row[worst] ?? 0))) worst = p;
    });
    return {
      name: ev.classNames[t] ?? String(t),
      accuracy: acc[t] ?? Number.NaN,
      count: row.reduce((a, b) => a + b, 0),
      confusedWith: worst < 0 ? '' : `${ev.classNames[worst] ?? worst} (${row[worst]})`,
    };
  });
}

function evaluationSections(ev: Evaluation): string[] {
  const matrix = confusionMatrixChart({ classNames: ev.classNames, counts: ev.confusion });
  const acc = perClassAccuracy(ev.confusion);
  const bars = fractionBarChart({ labels: ev.classNames, values: acc, xLabel: 'test accuracy of the class' });
  const cols: Column<ClassRow>[] = [
    { header: 'class', key: 'class', text: true, value: (r) => r.name },
    { header: 'accuracy', key: 'accuracy', value: (r) => pct(r.accuracy) },
    { header: 'test images', key: 'count', value: (r) => String(r.count) },
    { header: 'most often mistaken for', key: 'confused-with', text: true, value: (r) => r.confusedWith },
  ];
  const grid = ev.misclassified.map((m) => el('div', { class: 'sample', 'data-index': String(m.index) },
    m.image === undefined ? textEl('div', { class: 'note' }, `#${m.index}`) : el('img', { src: m.image, alt: `test image ${m.index}` }),
    textEl('div', { class: 'true' }, `true: ${ev.classNames[m.label] ?? m.label}`),
    textEl('div', { class: 'predicted' }, `predicted: ${ev.classNames[m.predicted] ?? m.predicted}`)));
  const wrong = ev.confusion.reduce((a, row, t) => a + row.reduce((b, c, p) => b + (p === t ? 0 : c), 0), 0);
  return [
    section('classes', `Test set: ${pct(confusionAccuracy(ev.confusion))} correct${ev.weights === undefined ? '' : ` with ${ev.weights}`}`,
      el('div', { class: 'charts' }, figure(matrix.svg, 'Rows: true class; columns: predicted class; shade: share of the row.', 'confusion-matrix'),
        figure(bars.svg, undefined, 'class-accuracy-chart')),
      table('class-table', cols, classRows(ev))),
    section('misclassified', 'Misclassified test images',
      textEl('p', { class: 'note' }, `${ev.misclassified.length} of ${wrong} misclassified test images shown.`),
      el('div', { class: 'grid' }, ...grid)),
  ];
}

function configSection(config: Readonly<Record<string, unknown>>): string {
  const rows = Object.entries(config);
  const cols: Column<[string, unknown]>[] = [
    { header: 'setting', key: 'setting', text: true, value: ([k]) => k },
    { header: 'value', key: 'value', cellClass: 'json', value: ([, v]) => (typeof v === 'string' ? v : JSON.stringify(v)) },
  ];
  return section('config', 'Configuration', table('config-table', cols, rows));
}

export function renderRunReport(run: RunData): string {
  const model = typeof run.config.model === 'string' ? run.config.model : 'model';
  const dataset = typeof run.config.dataset === 'string' ? run.config.dataset : 'data set';
  const sections = [summaryCards(run), runCurves(run), epochTable(run.epochs)];
  if (run.evaluation !== undefined) sections.push(...evaluationSections(run.evaluation));
  else sections.push(section('classes', 'Test set', textEl('p', { class: 'note' }, run.evaluationNote ?? 'No evaluation of the final weights was recorded for this run.')));
  sections.push(configSection(run.config));
  return page({
    title: `${model} on ${dataset}: ${run.name}`,
    subtitle: `Run folder ${run.name}. ${run.epochs.length} epochs, ${run.steps.length} recorded iterations.`,
    sections,
    data: { name: run.name, config: run.config, epochs: run.epochs, evaluation: run.evaluation === undefined ? null : {
      classNames: run.evaluation.classNames, confusion: run.evaluation.confusion,
      misclassified: run.evaluation.misclassified.map(({ index, label, predicted }) => ({ index, label, predicted })),
    } },
  });
}
