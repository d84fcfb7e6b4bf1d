import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  degradationErrorChart, degradationLossChart, degradationMarkdown, renderDegradationReport, summarizeDegradation,
  tailLength, type DegradationNet, type DegradationRun, type NetFamily,
} from '../src/report/degradation-report.js';
import type { StepRecord } from '../src/report/run-data.js';
import { all, byClass, parseXml, textOf } from './helpers/svg-parse.js';

/** A net whose per-batch loss falls from 2 to `finalLoss` over 200 iterations (2 epochs). */
function net(family: NetFamily, depth: number, finalLoss: number, testAccuracy = 0.8): DegradationNet {
  const steps: StepRecord[] = [];
  for (let it = 1; it <= 200; it++) {
    const loss = it > 180 ? finalLoss : 2 - ((2 - finalLoss) * it) / 180;
    steps.push({ iteration: it, epoch: it <= 100 ? 1 : 2, loss, error: loss / 4, lr: 0.1 });
  }
  const name = `${family === 'plain' ? 'plain' : family === 'resnet' ? 'resnet' : 'preact-resnet'}-${depth}`;
  return {
    family, depth, name, parameters: depth * 15000, steps, seconds: depth * 3,
    epochs: [1, 2].map((epoch) => ({
      epoch, iteration: epoch * 100, trainLoss: finalLoss, trainAccuracy: 0.8, testLoss: 0.5,
      testAccuracy: epoch === 2 ? testAccuracy : 0.5, lr: 0.1, imagesPerSecond: 100, seconds: 10,
    })),
  };
}

function run(nets: DegradationNet[]): DegradationRun {
  return { dataset: 'fashion-mnist', budget: 'quick', recipe: { lr: 0.1, seed: 1 }, nets };
}

test('the final training loss is the mean of the last tenth of the iterations', () => {
  assert.equal(tailLength(200), 20);
  assert.equal(tailLength(5000), 500);
  assert.equal(tailLength(7), 7);
  const s = summarizeDegradation(run([net('plain', 20, 0.3), net('plain', 56, 0.45)]));
  const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  close(s.nets[0]!.trainLoss, 0.3);
  close(s.nets[1]!.trainLoss, 0.45);
  close(s.nets[1]!.trainError, 0.45 / 4);
  assert.equal(s.nets[1]!.testError, 1 - 0.8);
  assert.equal(s.nets[1]!.iterations, 200);
});

test('verdict: plain nets degrade and residual nets do not -> reproduced', () => {
  const s = summarizeDegradation(run([net('plain', 20, 0.3), net('plain', 56, 0.45), net('resnet', 20, 0.28), net('resnet', 56, 0.2)]));
  assert.equal(s.reproduced, true);
  assert.deepEqual(s.verdicts.map((v) => [v.family, v.shallow, v.deep, v.degraded]), [['plain', 'plain-20', 'plain-56', true], ['resnet', 'resnet-20', 'resnet-56', false]]);
  assert.equal(s.verdict, 'plain-56 ends with higher training loss than plain-20 (0.450 vs 0.300): degradation reproduced. ' +
    'resnet-56 ends at or below resnet-20 (0.200 vs 0.280): residual learning removes the degradation.');
});

test('verdict: not reproduced when the deep plain net trains as well, or a residual net degrades', () => {
  const noGap = summarizeDegradation(run([net('plain', 20, 0.3), net('plain', 56, 0.3), net('resnet', 20, 0.28), net('resnet', 56, 0.2)]));
  assert.equal(noGap.reproduced, false);
  assert.match(noGap.verdict, /plain-56 ends with training loss at or below plain-20 \(0\.300 vs 0\.300\): no degradation/);
  const residualWorse = summarizeDegradation(run([net('plain', 20, 0.3), net('plain', 56, 0.5), net('resnet', 20, 0.2), net('resnet', 56, 0.25)]));
  assert.equal(residualWorse.reproduced, false);
  assert.match(residualWorse.verdict, /resnet-56 ends above resnet-20/);
  // Three families and three depths: the deepest is compared with the shallowest.
  const three = summarizeDegradation(run([net('plain', 56, 0.5), net('plain', 20, 0.3), net('plain', 32, 0.4),
    net('resnet', 20, 0.3), net('resnet', 56, 0.2), net('preact', 20, 0.3), net('preact', 56, 0.3)]));
  assert.equal(three.reproduced, true);
  assert.deepEqual(three.verdicts.map((v) => `${v.shallow}<${v.deep}`), ['plain-20<plain-56', 'resnet-20<resnet-56', 'preact-resnet-20<preact-resnet-56']);
  assert.equal(summarizeDegradation(run([net('plain', 20, 0.3)])).reproduced, false);
});

test('a diverged net (NaN loss at the end) counts as the worst loss', () => {
  const diverged = net('plain', 56, Number.NaN);
  const s = summarizeDegradation(run([net('plain', 20, 0.3), diverged, net('resnet', 20, 0.3), net('resnet', 56, 0.25)]));
  assert.ok(Number.isNaN(s.nets[1]!.trainLoss));
  assert.equal(s.verdicts[0]!.degraded, true);
  assert.equal(s.reproduced, true);
  assert.match(s.verdict, /\(n\/a vs 0\.300\)/);
});

test('the figure has one panel per family on shared axes, dashed training and bold test error', () => {
  const r = run([net('plain', 20, 0.3), net('plain', 56, 0.45), net('resnet', 20, 0.28), net('resnet', 56, 0.2)]);
  const chart = degradationErrorChart(r);
  const root = parseXml(chart.svg);
  assert.deepEqual(byClass(root, 'panel-title').map(textOf), ['plain networks', 'ResNets']);
  const panels = byClass(root, 'panel');
  const names = panels.map((p) => byClass(p, 'series').map((s) => `${s.attrs['data-series']}:${s.attrs['data-style']}`));
  assert.deepEqual(names, [
    ['plain-20 training error:thin-dashed', 'plain-20 test error:bold', 'plain-56 training error:thin-dashed', 'plain-56 test error:bold'],
    ['resnet-20 training error:thin-dashed', 'resnet-20 test error:bold', 'resnet-56 training error:thin-dashed', 'resnet-56 test error:bold'],
  ]);
  assert.deepEqual(panels.map((p) => byClass(p, 'legend-entry').map(textOf)), [['plain-20', 'plain-56'], ['resnet-20', 'resnet-56']]);
  // Same depth, same colour in both panels; the two depths differ.
  const color = (p: number, i: number): string => byClass(panels[p]!, 'series')[i]!.attrs.stroke!;
  assert.equal(color(0, 0), color(1, 0));
  assert.equal(color(0, 2), color(1, 2));
  assert.notEqual(color(0, 0), color(0, 2));
  // Errors run from 0 to 2/4 = 50%: the axis goes 0..50% for both panels.
  assert.equal(chart.y.min, 0);
  assert.equal(chart.y.max, 0.5);
  assert.deepEqual(chart.x.values, [0, 50, 100, 150, 200]);
  assert.deepEqual(byClass(root, 'style-key-entry').map(textOf), ['training error (smoothed)', 'test error']);
  const loss = degradationLossChart(r);
  assert.equal(loss.y.max, 2);
  assert.equal(byClass(parseXml(loss.svg), 'series').length, 4);
});

test('the markdown table and the report page carry the numbers and the verdict', () => {
  const r = run([net('plain', 20, 0.3), net('plain', 56, 0.45), net('resnet', 20, 0.28), net('resnet', 56, 0.2)]);
  const s = summarizeDegradation(r);
  const md = degradationMarkdown(r, s);
  assert.match(md, /\| plain-56 \| 840k \| 200 \| 0\.450 \| 11\.25% \| 20\.00% \| 2 min 48 s \|/);
  assert.match(md, /\*\*plain-56 ends with higher training loss than plain-20/);
  const root = parseXml(renderDegradationReport(r, s));
  const verdict = all(root, (n) => n.attrs.class === 'verdict')[0]!;
  assert.equal(verdict.attrs['data-reproduced'], 'true');
  assert.equal(textOf(verdict), s.verdict);
  const rows = all(root, (n) => n.tag === 'td' && n.attrs['data-key'] === 'train-loss').map(textOf);
  assert.deepEqual(rows, ['0.300', '0.450', '0.280', '0.200']);
});
