import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineChart, type LineChartSpec } from '../src/report/line-chart.js';
import { all, byClass, parseXml, pathPoints, textOf, type XmlNode } from './helpers/svg-parse.js';

// Known data: iterations 0..9000, errors between 0.05 and 0.62 across two panels.
const spec: LineChartSpec = {
  id: 'fig',
  title: 'Fashion-MNIST',
  x: { label: 'iterations' },
  y: { label: 'error', format: 'percent', includeZero: true },
  panels: [
    {
      title: 'plain',
      series: [
        { label: 'plain-20 train', legend: 'plain-20', color: '#f28e2b', style: 'thin-dashed', points: [[0, 0.62], [4500, 0.2], [9000, 0.05]] },
        { label: 'plain-20 test', legend: 'plain-20', color: '#f28e2b', style: 'bold', points: [[3000, 0.3], [9000, 0.1]] },
        { label: 'plain-56 train', legend: 'plain-56', color: '#e15759', style: 'thin-dashed', points: [[0, 0.6], [9000, 0.12]] },
      ],
    },
    {
      title: 'ResNet',
      series: [
        { label: 'resnet-20 train', legend: 'resnet-20', color: '#f28e2b', style: 'thin-dashed', points: [[0, 0.6], [9000, 0.06]] },
      ],
    },
  ],
  styleKey: [{ style: 'thin-dashed', text: 'training error' }, { style: 'bold', text: 'test error' }],
};

function panels(root: XmlNode): XmlNode[] {
  return byClass(root, 'panel');
}

function tickLabels(axis: XmlNode): string[] {
  return byClass(axis, 'tick').map(textOf);
}

function frame(panel: XmlNode): { left: number; top: number; right: number; bottom: number } {
  const r = byClass(panel, 'frame')[0]!;
  const left = Number(r.attrs.x);
  const top = Number(r.attrs.y);
  return { left, top, right: left + Number(r.attrs.width), bottom: top + Number(r.attrs.height) };
}

test('both panels share nice axis ranges computed from all the data', () => {
  const chart = lineChart(spec);
  assert.deepEqual(chart.x.values, [0, 2000, 4000, 6000, 8000, 10000]);
  assert.deepEqual(chart.y.values, [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  const root = parseXml(chart.svg);
  const ps = panels(root);
  assert.equal(ps.length, 2);
  for (const p of ps) {
    const x = byClass(p, 'x').find((n) => n.attrs.class === 'axis x')!;
    const y = byClass(p, 'y').find((n) => n.attrs.class === 'axis y')!;
    assert.equal(x.attrs['data-min'], '0');
    assert.equal(x.attrs['data-max'], '10000');
    assert.equal(y.attrs['data-max'], '0.7');
    assert.deepEqual(tickLabels(x), ['0', '2k', '4k', '6k', '8k', '10k']);
  }
  // The shared y axis is labelled once, on the left panel.
  assert.deepEqual(tickLabels(byClass(ps[0]!, 'y')[0]!), ['0%', '10%', '20%', '30%', '40%', '50%', '60%', '70%']);
  assert.deepEqual(tickLabels(byClass(ps[1]!, 'y')[0]!), ['', '', '', '', '', '', '', '']);
  // Both panels have the same height and width, side by side.
  const f0 = frame(ps[0]!);
  const f1 = frame(ps[1]!);
  assert.equal(f0.top, f1.top);
  assert.equal(f0.bottom, f1.bottom);
  assert.equal(f0.right - f0.left, f1.right - f1.left);
  assert.ok(f1.left > f0.right);
});

test('series paths put known points at the right pixels', () => {
  const root = parseXml(lineChart(spec).svg);
  const p0 = panels(root)[0]!;
  const f = frame(p0);
  const sx = (v: number): number => f.left + (v / 10000) * (f.right - f.left);
  const sy = (v: number): number => f.bottom - (v / 0.7) * (f.bottom - f.top);
  const series = byClass(p0, 'series');
  assert.deepEqual(series.map((s) => s.attrs['data-series']), ['plain-20 train', 'plain-20 test', 'plain-56 train']);
  const pts = pathPoints(series[0]!.attrs.d!);
  assert.deepEqual(pts.map((p) => p.cmd), ['M', 'L', 'L']);
  const expected: [number, number][] = [[0, 0.62], [4500, 0.2], [9000, 0.05]];
  expected.forEach(([x, y], i) => {
    assert.ok(Math.abs(pts[i]!.x - sx(x)) < 0.01, `point ${i} x: ${pts[i]!.x} vs ${sx(x)}`);
    assert.ok(Math.abs(pts[i]!.y - sy(y)) < 0.01, `point ${i} y: ${pts[i]!.y} vs ${sy(y)}`);
  });
  // Training error thin and dashed, test error bold and solid (Fig. 6 of He et al. 2015).
  assert.equal(series[0]!.attrs['stroke-dasharray'], '4 3');
  assert.equal(series[0]!.attrs['stroke-width'], '1');
  assert.equal(series[1]!.attrs['stroke-dasharray'], undefined);
  assert.equal(series[1]!.attrs['stroke-width'], '2.4');
  assert.equal(series[1]!.attrs.stroke, '#f28e2b');
});

test('a non-finite value breaks the line instead of drawing to zero', () => {
  const chart = lineChart({
    id: 'gap', x: { label: 'x' }, y: { label: 'y' },
    panels: [{ series: [{ label: 's', color: '#000', points: [[0, 1], [1, 2], [2, Number.NaN], [3, 2], [4, 3]] }] }],
  });
  const d = byClass(parseXml(chart.svg), 'series')[0]!.attrs.d!;
  assert.deepEqual(pathPoints(d).map((p) => p.cmd), ['M', 'L', 'M', 'L']);
  assert.deepEqual(chart.y.values, [1, 1.5, 2, 2.5, 3]);
});

test('the legend lists each net once per panel, and the style key explains the line styles', () => {
  const root = parseXml(lineChart(spec).svg);
  const ps = panels(root);
  const entries = (p: XmlNode): string[] => byClass(p, 'legend-entry').map(textOf);
  assert.deepEqual(entries(ps[0]!), ['plain-20', 'plain-56']);
  assert.deepEqual(entries(ps[1]!), ['resnet-20']);
  // plain-20 has a dashed and a bold series: its swatch is a solid line in its colour.
  const swatch = all(byClass(ps[0]!, 'legend-entry')[0]!, (n) => n.tag === 'line')[0]!;
  assert.equal(swatch.attrs.stroke, '#f28e2b');
  assert.equal(swatch.attrs['stroke-dasharray'], undefined);
  const plain56 = all(byClass(ps[0]!, 'legend-entry')[1]!, (n) => n.tag === 'line')[0]!;
  assert.equal(plain56.attrs['stroke-dasharray'], '4 3');
  assert.deepEqual(byClass(root, 'style-key-entry').map(textOf), ['training error', 'test error']);
  assert.equal(textOf(byClass(root, 'chart-title')[0]!), 'Fashion-MNIST');
  assert.deepEqual(byClass(root, 'panel-title').map(textOf), ['plain', 'ResNet']);
  assert.equal(textOf(byClass(root, 'axis-label').find((n) => n.attrs.class === 'axis-label y')!), 'error');
});

test('fixed axis ends override the data range, and labels are escaped', () => {
  const chart = lineChart({
    id: 'fixed', x: { label: 'epoch', min: 0, max: 50 }, y: { label: 'loss <log>', min: 0, max: 2 },
    panels: [{ series: [{ label: 'a & b', color: '#000', points: [[1, 0.5], [10, 0.25]] }] }],
  });
  assert.deepEqual(chart.x.values, [0, 10, 20, 30, 40, 50]);
  assert.deepEqual(chart.y.values, [0, 0.5, 1, 1.5, 2]);
  assert.ok(chart.svg.includes('loss &lt;log&gt;'));
  const root = parseXml(chart.svg);
  assert.deepEqual(byClass(root, 'legend-entry').map(textOf), ['a & b']);
  assert.throws(() => lineChart({ id: 'none', x: { label: 'x' }, y: { label: 'y' }, panels: [] }), /at least one panel/);
});

test('an upper quantile keeps a few spikes from flattening the curves; the spikes are clipped', () => {
  const points: [number, number][] = Array.from({ length: 100 }, (_, i) => [i, i < 1 ? 50 : 1 + i / 100]);
  const spec: LineChartSpec = { id: 'q', x: { label: 'x' }, y: { label: 'loss', includeZero: true }, panels: [{ series: [{ label: 's', color: '#000', points }] }] };
  assert.equal(lineChart(spec).y.max, 50);
  const clipped = lineChart({ ...spec, y: { ...spec.y, upperQuantile: 0.98 } });
  assert.equal(clipped.y.max, 2);
  const path = byClass(parseXml(clipped.svg), 'series')[0]!;
  assert.equal(path.attrs['clip-path'], 'url(#q-clip-0)');
  assert.equal(all(parseXml(clipped.svg), (n) => n.attrs.id === 'q-clip-0').length, 1);
});
