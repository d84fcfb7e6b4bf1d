import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { imageDataUri, svgToPng, writeSvgAsPng } from '../src/report/png.js';
import { lineChart } from '../src/report/line-chart.js';
import { svgDocument, el } from '../src/report/svg.js';

test('an SVG renders to a PNG of its size times the scale, with its colours', async () => {
  // Left half red, right half white (the document background).
  const svg = svgDocument(40, 20, el('rect', { x: 0, y: 0, width: 20, height: 20, fill: '#ff0000' }));
  const png = await svgToPng(svg, 2);
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [80, 40, 3]);
  const px = (x: number, y: number): number[] => [...data.subarray((y * 80 + x) * 3, (y * 80 + x) * 3 + 3)];
  assert.deepEqual(px(10, 20), [255, 0, 0]);
  assert.deepEqual(px(70, 20), [255, 255, 255]);
});

test('a chart is written as a PNG file atomically', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plot-png-'));
  try {
    const chart = lineChart({ id: 't', x: { label: 'x' }, y: { label: 'y' }, panels: [{ series: [{ label: 's', color: '#000', points: [[0, 0], [1, 1]] }] }] });
    const path = join(dir, 'chart.png');
    await writeSvgAsPng(chart.svg, path, 1);
    assert.deepEqual(readdirSync(dir), ['chart.png']);
    const meta = await sharp(readFileSync(path)).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, Math.round(chart.width));
    assert.equal(meta.height, Math.round(chart.height));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('raw grey pixels become a crisp upscaled PNG data URI', async () => {
  const pixels = Uint8Array.from([0, 255, 128, 64]);
  const uri = await imageDataUri({ width: 2, height: 2, channels: 1, pixels }, 3);
  assert.match(uri, /^data:image\/png;base64,/);
  const png = Buffer.from(uri.slice('data:image/png;base64,'.length), 'base64');
  assert.equal((await sharp(png).metadata()).channels, 1, 'a grey image stays one channel');
  const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [6, 6, 1]);
  // Nearest-neighbour: each source pixel is a 3x3 block.
  assert.deepEqual([data[0], data[4], data[6 * 4], data[6 * 5 + 5]], [0, 255, 128, 64]);
  await assert.rejects(imageDataUri({ width: 3, height: 2, channels: 1, pixels }), /4 bytes do not make a 2x3x1 image/);
});
