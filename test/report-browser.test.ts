// report.html of a real (tiny) training run, opened in headless Chromium: the charts and
// tables render with the run's numbers, and the page asks the network for nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { main } from '../src/cli/program.js';
import { launchChromium, watchedPage } from './helpers/chromium.js';
import { quiet } from './helpers/cli.js';

const SCREENSHOT = join(dirname(fileURLToPath(import.meta.url)), 'artifacts', 'report-browser.png');

interface MetricsLine {
  epoch: number;
  step: number;
  trainLoss: number;
  eval: { top1: number } | null;
}

const pct = (v: number): string => `${(v * 100).toFixed(2)}%`;

test('report.html of a training run renders its numbers in Chromium without any network request', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'report-browser-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const code = await quiet(() => main(['train', '--model', 'resnet20', '--subset', '192', '--test-subset', '100', '--epochs', '2',
    '--batch-size', '64', '--eval-batch-size', '100', '--out', out, '--name', 'tiny', '--no-progress']));
  assert.equal(code, 0, 'resnet train succeeds');
  const runDir = join(out, 'tiny');
  // `resnet report` regenerates the page the training run wrote.
  rmSync(join(runDir, 'report.html'));
  assert.equal(await quiet(() => main(['report', runDir])), 0, 'resnet report succeeds');
  assert.ok(existsSync(join(runDir, 'report.html')));

  const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricsLine);
  assert.equal(metrics.length, 2);
  const steps = readFileSync(join(runDir, 'steps.jsonl'), 'utf8').trim().split('\n');
  assert.equal(steps.length, 6, 'one steps.jsonl line per iteration (3 batches x 2 epochs)');

  const browser = await launchChromium();
  t.after(() => browser.close());
  const { page, requests, consoleErrors } = await watchedPage(browser);
  const url = pathToFileURL(join(runDir, 'report.html')).href;
  await page.goto(url, { waitUntil: 'load' });

  const cardValue = (metric: string): Promise<string> => page.locator(`[data-metric="${metric}"] .value`).innerText();
  const last = metrics[metrics.length - 1]!;
  assert.equal(await cardValue('final-test-accuracy'), pct(last.eval!.top1));
  assert.equal(await cardValue('final-train-loss'), last.trainLoss.toFixed(4));
  assert.equal(await cardValue('epochs'), '2');
  assert.equal(await cardValue('iterations'), String(last.step));
  assert.deepEqual(await page.locator('#epoch-table td[data-key="test-acc"]').allInnerTexts(), metrics.map((m) => pct(m.eval!.top1)));
  assert.deepEqual(await page.locator('#config-table td[data-key="setting"]').first().innerText(), 'model');

  // Every chart is laid out at a real size, and its lines have length.
  for (const id of ['loss-chart', 'accuracy-chart', 'lr-chart', 'throughput-chart', 'confusion-matrix', 'class-accuracy-chart']) {
    const box = await page.locator(`#${id} svg`).boundingBox();
    assert.ok(box !== null && box.width > 200 && box.height > 150, `#${id} is drawn (${JSON.stringify(box)})`);
  }
  const lengths = await page.locator('#loss-chart path.series').evaluateAll((paths) =>
    paths.map((p) => (p instanceof SVGPathElement ? p.getTotalLength() : 0)));
  assert.equal(lengths.length, 3);
  assert.ok(lengths.every((l) => l > 10), `loss curves have length: ${lengths.join(', ')}`);

  // The confusion matrix counts the 100 test images; the grid shows the misclassified ones, decoded.
  const counts = await page.locator('#confusion-matrix g.cell').evaluateAll((cells) => cells.map((c) => Number(c.getAttribute('data-count'))));
  assert.equal(counts.length, 100);
  assert.equal(counts.reduce((a, b) => a + b, 0), 100);
  const right = counts.filter((_, i) => i % 11 === 0).reduce((a, b) => a + b, 0);
  const images = await page.locator('#misclassified img').evaluateAll((imgs) =>
    imgs.map((i) => (i instanceof HTMLImageElement ? [i.complete, i.naturalWidth] : [false, 0])));
  assert.equal(images.length, Math.min(40, 100 - right));
  assert.ok(images.every(([complete, w]) => complete === true && w === 84), 'every misclassified image decoded (28 px x 3)');
  assert.equal(await page.locator('#class-table tbody tr').count(), 10);
  assert.match(await page.locator('#classes h2').innerText(), new RegExp(`^Test set: ${pct(right / 100).replace('.', '\\.')} correct with best\\.safetensors`));

  assert.deepEqual(requests, [url], 'the page loads nothing but itself');
  assert.deepEqual(consoleErrors, []);

  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  const stats = await sharp(SCREENSHOT).stats();
  assert.ok(stats.channels.some((c) => c.stdev > 20), 'the screenshot is not blank');
  t.diagnostic(`screenshot: ${SCREENSHOT}`);
});
