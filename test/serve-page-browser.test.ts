// The page of `resnet serve`, in headless Chromium: a real Fashion-MNIST test image
// uploaded through the file input gets, in the DOM, the top-5 the server's JSON API
// answers for the same bytes (same classes in the same order, probabilities within 1e-3);
// the in-browser mode (onnxruntime-web on GET /v1/model.onnx) gives the same top-1; and
// no request leaves the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { readIdxFile } from '../src/data/idx.js';
import { main } from '../src/cli/program.js';
import { startServer } from '../src/serve/server.js';
import { ImageClassifier } from '../src/train/classify.js';
import { loadModelFile } from '../src/train/model-file.js';
import { launchChromium, watchedPage } from './helpers/chromium.js';
import { quiet } from './helpers/cli.js';

const FASHION_TEST_IMAGES = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz';
const SCREENSHOT = join(dirname(fileURLToPath(import.meta.url)), 'artifacts', 'serve-page.png');
const TOKEN = 'page-token-5678';

interface Score {
  class: string;
  index: number;
  probability: number;
}

function sameTop(dom: Score[], json: Score[], what: string): void {
  assert.equal(dom.length, 5, `${what}: five classes shown`);
  assert.deepEqual(dom.map((s) => [s.class, s.index]), json.map((s) => [s.class, s.index]), `${what}: the classes in the server's order`);
  dom.forEach((s, i) => assert.ok(Math.abs(s.probability - json[i]!.probability) <= 1e-3,
    `${what}: ${s.class} ${s.probability} on the page, ${json[i]!.probability} from the server`));
}

test('the page shows the server\'s top-5 for an uploaded image, and the in-browser mode agrees on top-1', { timeout: 300_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'serve-page-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const code = await quiet(() => main(['train', '--model', 'resnet20', '--subset', '512', '--test-subset', '100', '--epochs', '2',
    '--batch-size', '64', '--eval-batch-size', '100', '--out', out, '--name', 'tiny', '--no-progress']));
  assert.equal(code, 0, 'resnet train succeeds');

  // Real images: the first two of the Fashion-MNIST test set, one as the 28x28 greyscale PNG
  // it is, one enlarged to a 90x70 RGB JPEG (so the server resizes and converts it).
  const images = readIdxFile(FASHION_TEST_IMAGES);
  const pixels = (i: number): Buffer => Buffer.from(images.data.subarray(i * 784, (i + 1) * 784));
  const png = join(out, 'test-0.png');
  const jpg = join(out, 'test-1.jpg');
  await sharp(pixels(0), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toFile(png);
  await sharp(pixels(1), { raw: { width: 28, height: 28, channels: 1 } }).resize(90, 70).toColourspace('srgb').jpeg({ quality: 92 }).toFile(jpg);

  assert.equal((await sharp(png).metadata()).channels, 1, 'the PNG is greyscale, as the model\'s input');
  const classifier = new ImageClassifier(loadModelFile(join(out, 'tiny')));
  const server = await startServer(classifier, {
    host: '127.0.0.1', port: 0, token: TOKEN, maxBatch: 8, maxWaitMs: 5, maxQueue: 64, maxBody: 1e6, maxPixels: 1e6, convertImages: true,
    log: (line) => t.diagnostic(line),
  });
  t.after(() => server.close());
  const serverTop = async (file: string, type: string): Promise<Score[]> => {
    const r = await fetch(`${server.url}/v1/predict?k=5`, {
      method: 'POST', headers: { 'content-type': type, authorization: `Bearer ${TOKEN}` }, body: readFileSync(file),
    });
    assert.equal(r.status, 200);
    return ((await r.json()) as { results: { top: Score[] }[] }).results[0]!.top;
  };

  const browser = await launchChromium();
  t.after(() => browser.close());
  const { page, requests, consoleErrors } = await watchedPage(browser);
  await page.goto(`${server.url}/`, { waitUntil: 'load' });
  // Without the token the page cannot read the model and says so; with it, it can.
  await page.locator('#status.error').waitFor();
  assert.match(await page.locator('#status').innerText(), /401: missing bearer token/);
  consoleErrors.length = 0;
  await page.fill('#token', TOKEN);
  await page.dispatchEvent('#token', 'change');
  await page.waitForFunction(() => document.getElementById('model')?.textContent?.startsWith('resnet20 trained on fashion-mnist'));

  const shown = async (name: string, mode: string): Promise<Score[]> => {
    const card = page.locator(`.result[data-name="${name}"][data-mode="${mode}"]`);
    await card.locator('xpath=self::*[@data-state!="pending"]').waitFor({ timeout: 120_000 });
    assert.equal(await card.getAttribute('data-state'), 'done', `${name} (${mode}): ${await card.locator('.latency').innerText()}`);
    assert.match(await card.locator('.latency').innerText(), mode === 'server' ? /^\d+\.\d ms round trip, \d+\.\d ms on the server$/ : /^\d+\.\d ms in this browser/);
    return card.locator('.top li').evaluateAll((lis) => lis.map((li) => ({
      class: li.getAttribute('data-class') ?? '', index: Number(li.getAttribute('data-index')), probability: Number(li.getAttribute('data-probability')),
    })));
  };

  // Server mode: both files through the file input at once.
  await page.setInputFiles('#files', [png, jpg]);
  const pngServer = await serverTop(png, 'image/png');
  sameTop(await shown('test-0.png', 'server'), pngServer, 'test-0.png');
  sameTop(await shown('test-1.jpg', 'server'), await serverTop(jpg, 'image/jpeg'), 'test-1.jpg');
  const bars = await page.locator('.result[data-name="test-0.png"] .top li .bar span').evaluateAll((spans) => spans.map((s) => (s as HTMLElement).style.width));
  assert.equal(bars.length, 5);
  bars.forEach((w, i) => assert.ok(w.endsWith('%') && Math.abs(parseFloat(w) - pngServer[i]!.probability * 100) <= 0.006,
    `bar ${i} is ${w} long for a probability of ${pngServer[i]!.probability}`));

  // In-browser mode: the same PNG, classified by onnxruntime-web in the page.
  await page.check('input[name="mode"][value="browser"]');
  await page.setInputFiles('#files', [png]);
  const inBrowser = await shown('test-0.png', 'browser');
  assert.equal(inBrowser.length, 5);
  assert.deepEqual([inBrowser[0]!.class, inBrowser[0]!.index], [pngServer[0]!.class, pngServer[0]!.index], 'the same top-1 as the server');
  // A 28x28 greyscale PNG needs no resampling, so both sides see the same input: the same probabilities too.
  sameTop(inBrowser, pngServer, 'test-0.png in the browser');

  const foreign = requests.filter((u) => !u.startsWith(`${server.url}/`) && !u.startsWith(`blob:${server.url}/`));
  assert.deepEqual(foreign, [], 'every request goes to the server itself');
  assert.ok(requests.some((u) => u.endsWith('/v1/model.onnx')), 'the in-browser mode fetched the ONNX model');
  assert.ok(requests.some((u) => u.endsWith('.wasm')), 'onnxruntime-web\'s wasm came from the server');
  assert.deepEqual(consoleErrors, []);

  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  t.diagnostic(`screenshot: ${SCREENSHOT}`);
});
