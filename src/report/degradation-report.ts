// The degradation experiment's figure, table and verdict (He et al. 2015, Fig. 1 and
// Fig. 6): one panel per family (plain, ResNet, pre-activation ResNet) on the same axes,
// training error thin and dashed, test error bold.
import { lineChart, type LineChart, type Point, type Series } from './line-chart.js';
import { defaultWindow, movingAverage, tailMean, thin } from './series.js';
import { seriesColor } from './palette.js';
import { duration, figure, num, page, pct, section, table, type Column } from './html.js';
import { el, textEl } from './svg.js';
import type { EpochRecord, StepRecord } from './run-data.js';

export type NetFamily = 'plain' | 'resnet' | 'preact';

export const FAMILY_TITLES: Record<NetFamily, string> = {
  plain: 'plain networks',
  resnet: 'ResNets',
  preact: 'pre-activation ResNets',
};

const DATASET_TITLES: Record<string, string> = {
  'fashion-mnist': 'Fashion-MNIST', mnist: 'MNIST', cifar10: 'CIFAR-10', cifar100: 'CIFAR-100', folder: 'an image folder',
};

/** How a data set is written in titles: "Fashion-MNIST", "CIFAR-10". */
export function datasetTitle(name: string): string {
  return DATASET_TITLES[name] ?? name;
}

export interface DegradationNet {
  family: NetFamily;
  depth: number;
  /** Display name, e.g. "plain-56". */
  name: string;
  parameters: number;
  steps: readonly StepRecord[];
  epochs: readonly EpochRecord[];
  seconds: number;
}

export interface DegradationRun {
  dataset: string;
  budget: string;
  /** The shared recipe, shown in the report. */
  recipe: Readonly<Record<string, unknown>>;
  nets: readonly DegradationNet[];
}

export interface NetSummary {
  name: string;
  family: NetFamily;
  depth: number;
  parameters: number;
  iterations: number;
  /** Mean per-batch training loss over the last tenth of the iterations. */
  trainLoss: number;
  /** Mean per-batch training error over the same iterations. */
  trainError: number;
  /** Test error after the last epoch. */
  testError: number;
  seconds: number;
}

export interface FamilyVerdict {
  family: NetFamily;
  shallow: string;
  deep: string;
  shallowLoss: number;
  deepLoss: number;
  /** The deeper net ends with a higher training loss than the shallower one. */
  degraded: boolean;
  sentence: string;
}

export interface DegradationSummary {
  nets: NetSummary[];
  verdicts: FamilyVerdict[];
  /** Plain nets degrade and no residual family does: the paper's claim holds here. */
  reproduced: boolean;
  verdict: string;
}

/** How many final iterations make a net's "final" training loss and error. */
export function tailLength(iterations: number): number {
  return Math.max(1, Math.min(iterations, Math.max(20, Math.round(iterations / 10))));
}

export function summarizeNet(net: DegradationNet): NetSummary {
  const n = tailLength(net.steps.length);
  const last = net.epochs[net.epochs.length - 1];
  return {
    name: net.name, family: net.family, depth: net.depth, parameters: net.parameters,
    iterations: net.steps[net.steps.length - 1]?.iteration ?? 0,
    trainLoss: tailMean(net.steps.map((s) => s.loss), n),
    trainError: tailMean(net.steps.map((s) => s.error), n),
    testError: last === undefined ? Number.NaN : 1 - last.testAccuracy,
    seconds: net.seconds,
  };
}

// A diverged net (NaN loss) counts as the worst possible loss.
const comparable = (loss: number): number => (Number.isFinite(loss) ? loss : Infinity);

function familyVerdict(family: NetFamily, nets: readonly NetSummary[]): FamilyVerdict | null {
  const sorted = nets.filter((n) => n.family === family).sort((a, b) => a.depth - b.depth);
  const shallow = sorted[0];
  const deep = sorted[sorted.length - 1];
  if (shallow === undefined || deep === undefined || shallow === deep) return null;
  const degraded = comparable(deep.trainLoss) > comparable(shallow.trainLoss);
  const losses = `(${num(deep.trainLoss, 3)} vs ${num(shallow.trainLoss, 3)})`;
  let sentence: string;
  if (family === 'plain') {
    sentence = degraded
      ? `${deep.name} ends with higher training loss than ${shallow.name} ${losses}: degradation reproduced.`
      : `${deep.name} ends with training loss at or below ${shallow.name} ${losses}: no degradation at this budget.`;
  } else {
    sentence = degraded
      ? `${deep.name} ends above ${shallow.name} ${losses}: the residual nets also degrade at this budget.`
      : `${deep.name} ends at or below ${shallow.name} ${losses}: residual learning removes the degradation.`;
  }
  return { family, shallow: shallow.name, deep: deep.name, shallowLoss: shallow.trainLoss, deepLoss: deep.trainLoss, degraded, sentence };
}

export function summarizeDegradation(run: DegradationRun): DegradationSummary {
  const nets = run.nets.map(summarizeNet);
  const families: NetFamily[] = ['plain', 'resnet', 'preact'];
  const verdicts = families.map((f) => familyVerdict(f, nets)).filter((v): v is FamilyVerdict => v !== null);
  const plain = verdicts.find((v) => v.family === 'plain');
  const residual = verdicts.filter((v) => v.family !== 'plain');
  const reproduced = plain !== undefined && plain.degraded && residual.length > 0 && residual.every((v) => !v.degraded);
  const verdict = verdicts.length === 0
    ? 'Needs at least two depths of one family to compare.'
    : verdicts.map((v) => v.sentence).join(' ');
  return { nets, verdicts, reproduced, verdict };
}

function families(run: DegradationRun): NetFamily[] {
  const order: NetFamily[] = ['plain', 'resnet', 'preact'];
  return order.filter((f) => run.nets.some((n) => n.family === f));
}

// The same depth has the same colour in every panel: shallowest orange, deepest red (as
// the paper's Fig. 6 pairs them), depths between from the rest of the palette.
const BETWEEN_COLORS = [0, 2, 4, 5, 8].map(seriesColor);

function depthColor(run: DegradationRun, depth: number): string {
  const depths = [...new Set(run.nets.map((n) => n.depth))].sort((a, b) => a - b);
  const i = depths.indexOf(depth);
  if (i === 0) return seriesColor(3);
  if (i === depths.length - 1) return seriesColor(1);
  return BETWEEN_COLORS[(i - 1) % BETWEEN_COLORS.length] ?? seriesColor(0);
}

function smoothedSteps(net: DegradationNet, value: (s: StepRecord) => number): Point[] {
  const raw: Point[] = net.steps.map((s) => [s.iteration, value(s)]);
  return raw.length === 0 ? [] : thin(movingAverage(raw, defaultWindow(raw.length)), 500);
}

/** Fig. 6 layout: training error (thin dashed) and test error (bold) per family panel. */
export function degradationErrorChart(run: DegradationRun): LineChart {
  return lineChart({
    id: 'degradation-error',
    title: `${datasetTitle(run.dataset)}: training and test error`,
    x: { label: 'iterations', includeZero: true, integer: true },
    y: { label: 'error', format: 'percent', includeZero: true },
    panels: families(run).map((f) => ({
      title: FAMILY_TITLES[f],
      series: run.nets.filter((n) => n.family === f).sort((a, b) => a.depth - b.depth).flatMap((n): Series[] => [
        { label: `${n.name} training error`, legend: n.name, color: depthColor(run, n.depth), style: 'thin-dashed', points: smoothedSteps(n, (s) => s.error) },
        { label: `${n.name} test error`, legend: n.name, color: depthColor(run, n.depth), style: 'bold', points: n.epochs.map((e): Point => [e.iteration, 1 - e.testAccuracy]) },
      ]),
    })),
    styleKey: [{ style: 'thin-dashed', text: 'training error (smoothed)' }, { style: 'bold', text: 'test error' }],
  });
}

/** The quantity the degradation claim is about: training loss per family panel. */
export function degradationLossChart(run: DegradationRun): LineChart {
  return lineChart({
    id: 'degradation-loss',
    title: `${datasetTitle(run.dataset)}: training loss`,
    x: { label: 'iterations', includeZero: true, integer: true },
    y: { label: 'training loss (smoothed)', includeZero: true, upperQuantile: 0.98 },
    panels: families(run).map((f) => ({
      title: FAMILY_TITLES[f],
      series: run.nets.filter((n) => n.family === f).sort((a, b) => a.depth - b.depth).map((n): Series => (
        { label: `${n.name} training loss`, legend: n.name, color: depthColor(run, n.depth), style: 'normal', points: smoothedSteps(n, (s) => s.loss) })),
    })),
  });
}

const fmtParams = (p: number): string => (p >= 1e6 ? `${(p / 1e6).toFixed(2)}M` : `${(p / 1e3).toFixed(0)}k`);

/** The summary as a Markdown table plus the verdict, for a README. */
export function degradationMarkdown(run: DegradationRun, summary: DegradationSummary): string {
  const lines = [
    `| net | parameters | iterations | final training loss | final training error | final test error | time |`,
    `|---|---:|---:|---:|---:|---:|---:|`,
    ...summary.nets.map((n) => `| ${n.name} | ${fmtParams(n.parameters)} | ${n.iterations} | ${num(n.trainLoss, 3)} | ${pct(n.trainError)} | ${pct(n.testError)} | ${duration(n.seconds)} |`),
    '',
    `Data set ${datasetTitle(run.dataset)}, budget \`${run.budget}\`. Final training loss and error: mean over the last tenth of the iterations (per training batch).`,
    '',
    `**${summary.verdict}**`,
  ];
  return lines.join('\n') + '\n';
}

export function renderDegradationReport(run: DegradationRun, summary: DegradationSummary,
  charts: { error: LineChart; loss: LineChart } = { error: degradationErrorChart(run), loss: degradationLossChart(run) }): string {
  const cols: Column<NetSummary>[] = [
    { header: 'net', key: 'net', text: true, value: (n) => n.name },
    { header: 'parameters', key: 'parameters', value: (n) => fmtParams(n.parameters) },
    { header: 'iterations', key: 'iterations', value: (n) => String(n.iterations) },
    { header: 'final training loss', key: 'train-loss', value: (n) => num(n.trainLoss, 3) },
    { header: 'final training error', key: 'train-error', value: (n) => pct(n.trainError) },
    { header: 'final test error', key: 'test-error', value: (n) => pct(n.testError) },
    { header: 'time', key: 'time', value: (n) => duration(n.seconds) },
  ];
  const recipe = Object.entries(run.recipe).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ');
  return page({
    title: `Degradation experiment on ${datasetTitle(run.dataset)}`,
    subtitle: `Budget ${run.budget}; ${run.nets.map((n) => n.name).join(', ')}; one recipe and seed for every net.`,
    sections: [
      section('verdict', 'Verdict', textEl('p', { class: 'verdict', 'data-reproduced': String(summary.reproduced) }, summary.verdict)),
      section('summary', 'Summary', table('summary-table', cols, summary.nets),
        textEl('p', { class: 'note' }, 'Final training loss and error: mean over the last tenth of the iterations, per training batch. Test error: after the last epoch.')),
      section('figures', 'Curves', el('div', { class: 'charts' },
        figure(charts.error.svg, 'Thin dashed: training error (per batch, smoothed); bold: test error. The layout of He et al. 2015, Fig. 6.', 'error-chart'),
        figure(charts.loss.svg, 'Training loss per batch, smoothed.', 'loss-chart'))),
      section('recipe', 'Recipe', textEl('p', { class: 'note' }, recipe)),
    ],
    data: { dataset: run.dataset, budget: run.budget, recipe: run.recipe, summary },
  });
}
