import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderRunReport } from '../src/report/run-report.js';
import { renderCompareReport } from '../src/report/compare-report.js';
import { perClassAccuracy, confusionAccuracy, bestEpoch } from '../src/report/run-data.js';
import { all, byClass, parseXml, textOf, type XmlNode } from './helpers/svg-parse.js';
import { CLASS_NAMES, syntheticRun } from './helpers/run-fixture.js';

const PIXEL = 'data:image/png;base64,iVBORw0KGgo=';

function byId(root: XmlNode, id: string): XmlNode {
  const n = all(root, (x) => x.attrs.id === id)[0];
  assert.ok(n, `element #${id} exists`);
  return n;
}

function cells(table: XmlNode, key: string): string[] {
  return all(table, (n) => n.tag === 'td' && n.attrs['data-key'] === key).map(textOf);
}

function card(root: XmlNode, metric: string): string {
  const c = all(root, (n) => n.attrs['data-metric'] === metric)[0]!;
  return textOf(byClass(c, 'value')[0]!);
}

test('per-class and overall accuracy come from the confusion matrix', () => {
  const ev = syntheticRun(null).evaluation!;
  const acc = perClassAccuracy(ev.confusion);
  assert.deepEqual(acc, CLASS_NAMES.map((_, t) => (100 - 5 * t) / 100));
  assert.equal(confusionAccuracy(ev.confusion), (1000 - 5 * 45) / 1000);
  assert.equal(bestEpoch(syntheticRun(null).epochs)?.epoch, 2);
  assert.deepEqual(perClassAccuracy([[0, 0], [1, 3]]).map((v) => Number.isNaN(v)), [true, false]);
});

test('report.html shows the run numbers in its cards and tables', () => {
  const run = syntheticRun(PIXEL);
  const root = parseXml(renderRunReport(run));
  assert.equal(card(root, 'final-test-accuracy'), '80.50%');
  assert.equal(card(root, 'best-test-accuracy'), '83.00%');
  assert.equal(card(root, 'final-train-loss'), '0.6000');
  assert.equal(card(root, 'epochs'), '3');
  assert.equal(card(root, 'iterations'), '120');
  assert.equal(card(root, 'throughput'), '260 img/s');
  assert.equal(card(root, 'time'), '1 min 33 s');

  const epochs = byId(root, 'epoch-table');
  assert.deepEqual(cells(epochs, 'test-acc'), ['71.00%', '83.00%', '80.50%']);
  assert.deepEqual(cells(epochs, 'iteration'), ['40', '80', '120']);
  assert.deepEqual(cells(epochs, 'lr'), ['0.100', '0.100', '0.0100']);

  const classes = byId(root, 'class-table');
  assert.deepEqual(cells(classes, 'class'), CLASS_NAMES);
  assert.equal(cells(classes, 'accuracy')[9], '55.00%');
  assert.equal(cells(classes, 'confused-with')[3], 'Coat (15)');
  assert.equal(cells(classes, 'confused-with')[0], '');

  const config = byId(root, 'config-table');
  assert.deepEqual(cells(config, 'setting'), ['model', 'dataset', 'epochs', 'batchSize', 'lr', 'milestones']);
  assert.deepEqual(cells(config, 'value'), ['resnet20', 'fashion-mnist', '3', '128', '0.1', '[2]']);
});

test('report.html draws every chart, the confusion matrix and the misclassified grid', () => {
  const root = parseXml(renderRunReport(syntheticRun(PIXEL)));
  for (const id of ['loss-chart', 'accuracy-chart', 'lr-chart', 'throughput-chart', 'confusion-matrix', 'class-accuracy-chart']) {
    assert.equal(all(byId(root, id), (n) => n.tag === 'svg').length, 1, `${id} holds one inline SVG`);
  }
  const loss = byId(root, 'loss-chart');
  assert.deepEqual(byClass(loss, 'series').map((s) => s.attrs['data-series']), ['training batches (smoothed)', 'training (epoch mean)', 'test']);
  const lr = byClass(byId(root, 'lr-chart'), 'axis').find((a) => a.attrs.class === 'axis y')!;
  assert.equal(lr.attrs['data-max'], '0.1');

  const matrix = byClass(byId(root, 'confusion-matrix'), 'cell');
  assert.equal(matrix.length, 100);
  const cell = matrix.find((c) => c.attrs['data-true'] === '4' && c.attrs['data-predicted'] === '5')!;
  assert.equal(cell.attrs['data-count'], '20');
  assert.equal(textOf(cell).endsWith('20'), true);

  const bars = byClass(byId(root, 'class-accuracy-chart'), 'bar');
  assert.deepEqual(bars.map((b) => b.attrs['data-label']), CLASS_NAMES);
  assert.equal(bars[9]!.attrs['data-value'], '0.55');

  const samples = byClass(byId(root, 'misclassified'), 'sample');
  assert.deepEqual(samples.map((s) => s.attrs['data-index']), ['3', '17', '42']);
  assert.equal(all(samples[0]!, (n) => n.tag === 'img')[0]!.attrs.src, PIXEL);
  assert.equal(textOf(byClass(samples[0]!, 'true')[0]!), 'true: Trouser');
  assert.equal(textOf(byClass(samples[0]!, 'predicted')[0]!), 'predicted: Pullover');
});

test('report.html is self-contained: no external URL, and its data is embedded', () => {
  const html = renderRunReport(syntheticRun(PIXEL));
  const root = parseXml(html);
  const urls = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
  assert.ok(urls.every((u) => u.startsWith('data:')), `only data: URIs: ${urls.filter((u) => !u.startsWith('data:')).join(', ')}`);
  assert.ok(!/<link\b/.test(html) && !/<script\b[^>]*\bsrc=/.test(html) && !/@import|url\((?!#)/.test(html));
  const external = [...html.matchAll(/https?:\/\/[^\s"'<]+/g)].map((m) => m[0]).filter((u) => u !== 'http://www.w3.org/2000/svg');
  assert.deepEqual(external, []);
  const data = JSON.parse(textOf(byId(root, 'report-data'))) as { epochs: { testAccuracy: number }[]; evaluation: { misclassified: unknown[] } };
  assert.deepEqual(data.epochs.map((e) => e.testAccuracy), [0.71, 0.83, 0.805]);
  assert.equal(data.evaluation.misclassified.length, 3);
});

test('a run without an evaluation or per-iteration records still gets a report', () => {
  const run = syntheticRun(null);
  const root = parseXml(renderRunReport({ ...run, steps: [], evaluation: undefined }));
  assert.match(textOf(byId(root, 'classes')), /No evaluation/);
  assert.deepEqual(byClass(byId(root, 'loss-chart'), 'series').map((s) => s.attrs['data-series']), ['training (epoch mean)', 'test']);
  assert.equal(card(root, 'iterations'), '120');
});

test('compare.html overlays the runs and tabulates where each ended', () => {
  const a = syntheticRun(null);
  const b = { ...syntheticRun(null), name: 'run-8', config: { model: 'resnet56' }, epochs: a.epochs.map((e) => ({ ...e, testAccuracy: e.testAccuracy + 0.05 })) };
  const root = parseXml(renderCompareReport([a, b]));
  const t = byId(root, 'run-table');
  assert.deepEqual(cells(t, 'run'), ['run-7', 'run-8']);
  assert.deepEqual(cells(t, 'model'), ['resnet20', 'resnet56']);
  assert.deepEqual(cells(t, 'test-acc'), ['80.50%', '85.50%']);
  assert.deepEqual(cells(t, 'best-test-acc'), ['83.00%', '88.00%']);
  const acc = byId(root, 'test-accuracy-chart');
  assert.deepEqual(byClass(acc, 'series').map((s) => s.attrs['data-series']), ['run-7', 'run-8']);
  assert.deepEqual(byClass(acc, 'legend-entry').map(textOf), ['run-7', 'run-8']);
  assert.throws(() => renderCompareReport([]), /no runs/);
});
