// The live training dashboard. In headless Chromium: the page shows the charts of
// report.html for one run (the same SVG, from the same code), and a chart gains a point
// when a line is appended to the run's metrics.jsonl while the page is open, without a
// reload; a folder of runs shows them overlaid as `resnet compare` does, and a run that
// appears in it joins the charts. From the command line: `resnet train --dashboard 0`
// streams the run's charts while it trains; `resnet dashboard` refuses a missing folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { main } from '../src/cli/program.js';
import { startDashboard } from '../src/serve/dashboard.js';
import { assertUsageError, quiet, runCli, startCli } from './helpers/cli.js';
import { launchChromium, watchedPage } from './helpers/chromium.js';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const TRAIN_ARGS = ['train', '--model', 'resnet20', '--subset', '192', '--test-subset', '100', '--epochs', '2',
  '--batch-size', '64', '--eval-batch-size', '100', '--no-progress'];

/** Points of each series drawn in `chart` (M and L commands of its paths). */
function pointsPerSeries(page: Page, chart: string): Promise<number[]> {
  return page.locator(`#${chart} path.series`).evaluateAll((paths) =>
    paths.map((p) => (p.getAttribute('d') ?? '').split(/[ML]/).filter((s) => s.trim() !== '').length));
}

/** The <section id="curves"> of a page. */
function curvesSection(html: string): string {
  const m = /<section id="curves">[\s\S]*?<\/section>/.exec(html);
  assert.ok(m, 'the page has a curves section');
  return m[0];
}

test('the dashboard redraws the report\'s charts live as a run appends to metrics.jsonl, and overlays a folder of runs', { timeout: 300_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'dashboard-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const runs = join(out, 'runs');
  assert.equal(await quiet(() => main([...TRAIN_ARGS, '--out', runs, '--name', 'a'])), 0, 'resnet train succeeds');
  const runA = join(runs, 'a');

  const single = await startDashboard([runA], { host: '127.0.0.1', port: 0, pollMs: 200, log: (l) => t.diagnostic(l) });
  t.after(() => single.close());
  // The same charts as report.html, byte for byte.
  assert.equal(await (await fetch(`${single.url}/charts`)).text(), curvesSection(readFileSync(join(runA, 'report.html'), 'utf8')));

  const browser = await launchChromium();
  t.after(() => browser.close());
  const { page, requests, consoleErrors } = await watchedPage(browser);
  await page.goto(`${single.url}/`, { waitUntil: 'load' });
  for (const id of ['loss-chart', 'accuracy-chart', 'lr-chart', 'throughput-chart']) {
    const box = await page.locator(`#${id} svg`).boundingBox();
    assert.ok(box !== null && box.width > 200 && box.height > 150, `#${id} is drawn (${JSON.stringify(box)})`);
  }
  assert.deepEqual(await pointsPerSeries(page, 'throughput-chart'), [2], 'one throughput point per epoch');
  // The live connection is open once the status line says so.
  await page.waitForFunction(() => document.getElementById('live-status')?.textContent?.includes('updated'));
  await page.evaluate(() => {
    (window as unknown as { notReloaded: boolean }).notReloaded = true;
  });

  // A third epoch's line, as the trainer appends it.
  const lines = readFileSync(join(runA, 'metrics.jsonl'), 'utf8').trim().split('\n');
  const last = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown> & { epoch: number; step: number; imagesPerSecond: number };
  appendFileSync(join(runA, 'metrics.jsonl'), `${JSON.stringify({ ...last, epoch: 3, step: last.step + 3, imagesPerSecond: last.imagesPerSecond * 1.5 })}\n`);
  await page.waitForFunction(() => {
    const d = document.querySelector('#throughput-chart path.series')?.getAttribute('d') ?? '';
    return d.split(/[ML]/).filter((s) => s.trim() !== '').length === 3;
  }, undefined, { timeout: 30_000 });
  assert.deepEqual(await pointsPerSeries(page, 'throughput-chart'), [3], 'the chart gained the appended epoch');
  assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'swapped in without a reload');
  assert.equal(await page.locator('#accuracy-chart path.series[data-series="test"]').evaluate((p) =>
    (p.getAttribute('d') ?? '').split(/[ML]/).filter((s) => s.trim() !== '').length), 3, 'the test accuracy curve gained it too');
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

  // A folder of runs: overlaid; a run copied into it joins the charts while the page is open.
  const folder = await startDashboard([runs], { host: '127.0.0.1', port: 0, pollMs: 200, log: (l) => t.diagnostic(l) });
  t.after(() => folder.close());
  cpSync(runA, join(runs, 'b'), { recursive: true });
  await page.goto(`${folder.url}/`, { waitUntil: 'load' });
  assert.deepEqual(await page.locator('#test-accuracy-chart path.series').evaluateAll((ps) => ps.map((p) => p.getAttribute('data-series'))), ['a', 'b']);
  await page.waitForFunction(() => document.getElementById('live-status')?.textContent?.includes('updated'));
  cpSync(runA, join(runs, 'c'), { recursive: true });
  await page.waitForFunction(() => document.querySelectorAll('#test-accuracy-chart path.series').length === 3, undefined, { timeout: 30_000 });
  assert.deepEqual(await page.locator('#train-loss-chart path.series').evaluateAll((ps) => ps.map((p) => p.getAttribute('data-series'))), ['a', 'b', 'c']);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-compare.png'), fullPage: true });

  const foreign = requests.filter((u) => !u.startsWith(`${single.url}/`) && !u.startsWith(`${folder.url}/`));
  assert.deepEqual(foreign, [], 'the page asks nothing but its own server');
  assert.deepEqual(consoleErrors, []);
});

test('resnet train --dashboard streams the run\'s charts while it trains; resnet dashboard refuses a missing folder', { timeout: 300_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'dashboard-cli-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const proc = startCli([...TRAIN_ARGS, '--epochs', '3', '--out', out, '--name', 'live', '--dashboard', '0']);
  const url = /dashboard: (http:\/\/\S+)\n/.exec(await proc.waitForStdout(/dashboard: http:\/\/\S+\n/))![1]!;
  // Every event until the dashboard closes with the end of training.
  const r = await fetch(`${url}/events`);
  assert.equal(r.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const events = (await r.text()).split('\n\n').filter((e) => e.startsWith('event: charts\n'))
    .map((e) => JSON.parse(e.slice('event: charts\ndata: '.length)) as { version: number; html: string; runs: string[] });
  const done = await proc.done;
  assert.equal(done.status, 0, done.stderr);
  assert.ok(events.length >= 2, `the charts were sent again as the run wrote (${events.length} events)`);
  const versions = events.map((e) => e.version);
  assert.deepEqual(versions, [...versions].sort((a, b) => a - b), 'versions increase');
  const final = events[events.length - 1]!;
  assert.deepEqual(final.runs, ['live']);
  const throughput = /<figure id="throughput-chart">[\s\S]*?<path class="series"[^>]* d="([^"]*)"/.exec(final.html);
  assert.ok(throughput, 'the last event has the throughput chart');
  assert.ok(throughput[1]!.split(/[ML]/).filter((s) => s.trim() !== '').length >= 2, 'with the epochs trained while it was open');

  assertUsageError(runCli(['dashboard', join(out, 'nothing-here')]), /nothing-here: no such folder/);
  assertUsageError(runCli(['dashboard', out, '--port', 'eighty']), /--port must be an integer from 0 to 65535/);
  // A bad port is refused before anything is read or written.
  assertUsageError(runCli([...TRAIN_ARGS, '--out', out, '--name', 'bad-port', '--dashboard', '70000']), /--dashboard must be an integer from 0 to 65535, got "70000"/);
  assert.ok(!existsSync(join(out, 'bad-port')), 'no run folder for a refused command');
});
