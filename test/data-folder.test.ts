import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DataError, decodeImage, ImageFolderDataset, listImageFolder, loadDataset, readImageFolder } from '../src/data/index.js';
import sharp from 'sharp';
import { solid, tempDir, writeImage } from './helpers/data-files.js';

async function expectDataError(p: Promise<unknown>, file: string, text: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'));
    assert.ok(e.message.startsWith(file), `message does not start with ${file}: ${e.message}`);
    assert.match(e.message, text);
    return true;
  });
}

/** Gradient image: pixel (y, x) channel c = 10 * y + 3 * x + 50 * c. */
function gradient(h: number, w: number, channels: number): Uint8Array {
  const out = new Uint8Array(h * w * channels);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < channels; c++) {
    out[(y * w + x) * channels + c] = 10 * y + 3 * x + 50 * c;
  }
  return out;
}

describe('image folder reader', () => {
  it('reads a class-per-folder tree of PNG and JPEG files with sorted class names', async () => {
    const root = tempDir('folder');
    await writeImage(join(root, 'train', 'cat', 'a.png'), gradient(8, 8, 3), 8, 8, 3);
    await writeImage(join(root, 'train', 'cat', 'b.jpg'), solid(8, 8, 3, [200, 100, 50]), 8, 8, 3, 'jpeg');
    await writeImage(join(root, 'train', 'ant', 'c.png'), solid(8, 8, 3, [1, 2, 3]), 8, 8, 3);
    writeFileSync(join(root, 'train', 'ant', 'notes.txt'), 'not an image');
    await writeImage(join(root, 'test', 'cat', 'd.png'), solid(8, 8, 3, [9, 9, 9]), 8, 8, 3);
    const listing = listImageFolder(join(root, 'train'));
    assert.deepEqual(listing.classNames, ['ant', 'cat']);
    assert.equal(listing.files.length, 3);
    const { train, test } = await loadDataset({ name: 'folder', dir: root });
    assert.deepEqual([train.length, train.height, train.width, train.channels], [3, 8, 8, 3]);
    assert.deepEqual(Array.from(train.labels), [0, 1, 1]);
    assert.deepEqual(test!.classNames, ['ant', 'cat']);
    assert.deepEqual(Array.from(test!.labels), [1]);
    const px = new Uint8Array(3 * 64 * 3);
    await train.readImages([0, 1, 2], px);
    // PNG is lossless: exact pixels. JPEG at quality 100 of a solid colour: within 2.
    assert.deepEqual(Array.from(px.subarray(0, 3)), [1, 2, 3]);
    const g = gradient(8, 8, 3);
    assert.deepEqual(px.subarray(64 * 3, 2 * 64 * 3), g);
    for (let i = 0; i < 64; i++) {
      assert.ok(Math.abs(px[2 * 192 + 3 * i]! - 200) <= 2 && Math.abs(px[2 * 192 + 3 * i + 1]! - 100) <= 2);
    }
  });

  it('reads greyscale images as one channel and resizes to the requested size', async () => {
    const root = tempDir('folder-grey');
    await writeImage(join(root, 'x', 'a.png'), solid(10, 6, 1, [77]), 10, 6, 1);
    await writeImage(join(root, 'y', 'b.png'), solid(4, 4, 1, [200]), 4, 4, 1);
    const ds = await readImageFolder(root, 'grey', { size: 5 });
    assert.deepEqual([ds.length, ds.height, ds.width, ds.channels], [2, 5, 5, 1]);
    assert.ok(ds.image(0).every((v) => v === 77));
    assert.ok(ds.image(1).every((v) => v === 200));
  });

  it('decodes lazily from disk with the same pixels as in memory', async () => {
    const root = tempDir('folder-lazy');
    for (let i = 0; i < 5; i++) await writeImage(join(root, `c${i % 2}`, `${i}.png`), gradient(6, 6, 1).map((v) => v + i), 6, 6, 1);
    const lazy = await ImageFolderDataset.open(root, 'lazy');
    const memory = await lazy.toMemory();
    const out = new Uint8Array(2 * 36);
    await lazy.readImages([4, 1], out);
    assert.deepEqual(out.subarray(0, 36), memory.image(4));
    assert.deepEqual(out.subarray(36), memory.image(1));
  });

  it('rejects an image with the wrong channel count, naming it and what is expected', async () => {
    const root = tempDir('folder-channels');
    await writeImage(join(root, 'a', '1.png'), solid(4, 4, 3, [5]), 4, 4, 3);
    const grey = join(root, 'b', '2.png');
    await writeImage(grey, solid(4, 4, 1, [5]), 4, 4, 1);
    await expectDataError(readImageFolder(root, 'mixed'), grey, /image has 1 channel \(greyscale\), expected 3 \(RGB\).*--convert-images/);
    const rgba = join(root, 'rgba.png');
    await writeImage(rgba, solid(4, 4, 4, [5, 6, 7, 255]), 4, 4, 4);
    await expectDataError(decodeImage(rgba, { height: 4, width: 4, channels: 3 }), rgba, /has 4 channels \(RGBA\), expected 3 \(RGB\)/);
    const converted = await readImageFolder(root, 'mixed', { convert: true });
    assert.equal(converted.channels, 3);
    assert.deepEqual(Array.from(converted.image(1).subarray(0, 3)), [5, 5, 5]);
    const rgb = await decodeImage(rgba, { height: 4, width: 4, channels: 3, convert: true });
    assert.deepEqual(Array.from(rgb.subarray(0, 3)), [5, 6, 7]);
  });

  it('names a CMYK JPEG as CMYK, and converts it to RGB on request', async () => {
    const root = tempDir('folder-cmyk');
    const cmyk = join(root, 'c.jpg');
    writeFileSync(cmyk, await sharp(Buffer.from(solid(4, 4, 3, [200, 40, 30])), { raw: { width: 4, height: 4, channels: 3 } })
      .toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer());
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    await expectDataError(decodeImage(cmyk, { height: 4, width: 4, channels: 3 }), cmyk, /image is CMYK \(4 channels\), expected 3 \(RGB\)/);
    const rgb = await decodeImage(cmyk, { height: 4, width: 4, channels: 3, convert: true });
    assert.equal(rgb.length, 4 * 4 * 3);
    // Converted without a colour profile the red stays red: the black channel is folded in, not dropped as if it were alpha.
    assert.ok(rgb[0]! > 150 && rgb[1]! < 80 && rgb[2]! < 80, `pixel 0 is ${Array.from(rgb.subarray(0, 3)).join(',')}`);
  });

  it('rejects a truncated or non-image file, naming it', async () => {
    const root = tempDir('folder-bad');
    await writeImage(join(root, 'a', '1.png'), solid(4, 4, 3, [5]), 4, 4, 3);
    const bad = join(root, 'a', '2.png');
    writeFileSync(bad, 'this is not a png');
    await expectDataError(readImageFolder(root, 'bad'), bad, /cannot decode the image .*expected a PNG or JPEG/);
    const png = join(root, 'a', '1.png');
    const truncated = join(root, 'a', '3.png');
    const { readFileSync } = await import('node:fs');
    writeFileSync(truncated, readFileSync(png).subarray(0, 40));
    writeFileSync(bad, readFileSync(png));
    await expectDataError(readImageFolder(root, 'bad'), truncated, /cannot decode the image/);
  });

  it('names a missing folder, a folder without classes, a test class unknown to training', async () => {
    const root = tempDir('folder-missing');
    const missing = join(root, 'nowhere');
    await expectDataError(loadDataset({ name: 'folder', dir: missing }), missing, /no such folder; expected one subfolder per class/);
    await expectDataError(loadDataset({ name: 'folder', dir: root }), root, /has no class subfolders/);
    await writeImage(join(root, 'train', 'a', '1.png'), solid(4, 4, 3, [5]), 4, 4, 3);
    await writeImage(join(root, 'test', 'zebra', '1.png'), solid(4, 4, 3, [5]), 4, 4, 3);
    await expectDataError(loadDataset({ name: 'folder', dir: root }), join(root, 'test', 'zebra'), /not one of the 1 training classes/);
  });
});
