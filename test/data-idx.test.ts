import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { classCounts, DataError, FASHION_MNIST_CLASSES, loadDataset, readIdxFile, readIdxFolder, readIdxPair } from '../src/data/index.js';
import { idxBytes, syntheticIdx, tempDir, writeIdxFolder } from './helpers/data-files.js';

const NAMES = FASHION_MNIST_CLASSES;

/** Expect a DataError whose one-line message names `file` and contains `text`. */
function expectDataError(fn: () => unknown, file: string, text: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `message is not one line: ${e.message}`);
    assert.ok(e.message.startsWith(file), `message does not start with ${file}: ${e.message}`);
    assert.match(e.message, text);
    return true;
  });
}

describe('IDX reader', () => {
  for (const gzip of [true, false]) {
    it(`reads ${gzip ? 'gzipped' : 'raw'} image and label files`, () => {
      const dir = tempDir('idx');
      const written = writeIdxFolder(dir, 12, 5, 6, 5, gzip);
      const train = readIdxFolder(dir, 'fashion-mnist', 'train', NAMES);
      assert.equal(train.length, 12);
      assert.deepEqual([train.height, train.width, train.channels], [6, 5, 1]);
      assert.deepEqual(train.pixels, written.train.images);
      assert.deepEqual(Array.from(train.labels), Array.from(written.train.labels));
      assert.equal(train.classNames[9], 'Ankle boot');
      const test = readIdxFolder(dir, 'fashion-mnist', 't10k', NAMES);
      assert.equal(test.length, 5);
      assert.equal(test.name, 'fashion-mnist/test');
      assert.deepEqual(test.pixels, written.test.images);
    });
  }

  it('accepts the dotted MNIST file names (train-images.idx3-ubyte)', () => {
    const dir = tempDir('idx-dots');
    const { images, labels } = syntheticIdx(3, 4, 4);
    writeFileSync(join(dir, 'train-images.idx3-ubyte'), idxBytes([3, 4, 4], images));
    writeFileSync(join(dir, 'train-labels.idx1-ubyte'), idxBytes([3], labels));
    assert.equal(readIdxFolder(dir, 'mnist', 'train', NAMES).length, 3);
  });

  it('rejects a truncated image file, naming it and the expected size', () => {
    const dir = tempDir('idx-trunc');
    const { images, labels } = syntheticIdx(4, 6, 5);
    const full = idxBytes([4, 6, 5], images);
    const imagesFile = join(dir, 'train-images-idx3-ubyte');
    writeFileSync(imagesFile, full.subarray(0, full.length - 7));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idxBytes([4], labels));
    expectDataError(() => readIdxFolder(dir, 'fashion-mnist', 'train', NAMES), imagesFile, /truncated.*4x6x5 = 120 values.*holds 113/);
  });

  it('rejects a truncated gzip stream', () => {
    const dir = tempDir('idx-gz');
    const { images, labels } = syntheticIdx(4, 6, 5);
    const gz = gzipSync(idxBytes([4, 6, 5], images));
    const imagesFile = join(dir, 'train-images-idx3-ubyte.gz');
    writeFileSync(imagesFile, gz.subarray(0, gz.length - 10));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idxBytes([4], labels)));
    expectDataError(() => readIdxFolder(dir, 'fashion-mnist', 'train', NAMES), imagesFile, /gzip data is truncated or damaged/);
  });

  it('rejects a label out of range (a mislabelled file), naming the labels file', () => {
    const dir = tempDir('idx-label');
    const { images, labels } = syntheticIdx(4, 6, 5);
    labels[2] = 12;
    const imagesFile = join(dir, 'i');
    const labelsFile = join(dir, 'l');
    writeFileSync(imagesFile, idxBytes([4, 6, 5], images));
    writeFileSync(labelsFile, idxBytes([4], labels));
    expectDataError(() => readIdxPair(imagesFile, labelsFile, 'x', NAMES), labelsFile, /label 12 of item 2 is out of range: expected 0\.\.9/);
  });

  it('rejects image and label files of different counts', () => {
    const dir = tempDir('idx-count');
    const { images, labels } = syntheticIdx(4, 6, 5);
    const imagesFile = join(dir, 'i');
    const labelsFile = join(dir, 'l');
    writeFileSync(imagesFile, idxBytes([4, 6, 5], images));
    writeFileSync(labelsFile, idxBytes([3], labels.subarray(0, 3)));
    expectDataError(() => readIdxPair(imagesFile, labelsFile, 'x', NAMES), labelsFile, /holds 3 labels but .* holds 4 images/);
  });

  it('rejects a file that is not IDX, and swapped image/label files', () => {
    const dir = tempDir('idx-magic');
    const bogus = join(dir, 'bogus');
    writeFileSync(bogus, Buffer.from('PK\x03\x04 not idx at all'));
    const { images, labels } = syntheticIdx(4, 6, 5);
    const labelsFile = join(dir, 'labels');
    writeFileSync(labelsFile, idxBytes([4], labels));
    expectDataError(() => readIdxPair(bogus, labelsFile, 'x', NAMES), bogus, /not an IDX file/);
    const imagesFile = join(dir, 'images');
    writeFileSync(imagesFile, idxBytes([4, 6, 5], images));
    expectDataError(() => readIdxPair(labelsFile, imagesFile, 'x', NAMES), labelsFile, /expected an IDX image file with 3 dimensions/);
  });

  it('a decompression bomb (header 10x28x28, then 200 MB of zeros) is cut off at the declared size, in little memory', () => {
    const dir = tempDir('idx-bomb');
    const { images } = syntheticIdx(10, 28, 28);
    const file = join(dir, 'train-images-idx3-ubyte.gz');
    // gzip members concatenated inflate as one stream: the IDX file, then 25 members of 8 MB of zeros each.
    const zeros = gzipSync(Buffer.alloc(8 << 20), { level: 9 });
    writeFileSync(file, Buffer.concat([gzipSync(idxBytes([10, 28, 28], images)), ...new Array<Buffer>(25).fill(zeros)]));
    // In a child process, so that its peak memory is the reader's alone.
    const script = `import { readIdxFile } from ${JSON.stringify(new URL('../src/data/idx.js', import.meta.url).href)};
      const before = process.resourceUsage().maxRSS;
      let message = '';
      try { readIdxFile(${JSON.stringify(file)}); } catch (e) { message = e.message; }
      process.stdout.write(JSON.stringify({ message, grewKiB: process.resourceUsage().maxRSS - before }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const { message, grewKiB } = JSON.parse(r.stdout) as { message: string; grewKiB: number };
    assert.equal(message, `${file}: the file inflates to more than its header declares (10x28x28 = 7840 values); ` +
      'it is damaged or not an IDX file: download it again');
    // Inflated whole, the 200 MB would raise the peak by at least that much.
    assert.ok(grewKiB < 32 * 1024, `the peak memory grew by ${(grewKiB / 1024).toFixed(1)} MB while reading a 200 MB bomb`);
  });

  it('a header declaring more than an IDX data set may hold in memory is refused before inflating', () => {
    const dir = tempDir('idx-huge');
    const file = join(dir, 'train-images-idx3-ubyte.gz');
    writeFileSync(file, gzipSync(idxBytes([100000, 1000, 1000], new Uint8Array(64))));
    expectDataError(() => readIdxFile(file), file, /its header declares 100000x1000x1000 = 100000000000 values, more than the 2 GiB .*; the header is damaged/);
  });

  it('names the missing folder and the missing file', async () => {
    const missing = join(tempDir('idx-missing'), 'nope');
    await assert.rejects(loadDataset({ name: 'fashion-mnist', dir: missing }), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /nope: no such folder/);
      return true;
    });
    const empty = tempDir('idx-empty');
    expectDataError(() => readIdxFolder(empty, 'fashion-mnist', 'train', NAMES), empty, /no training images file: expected train-images-idx3-ubyte\.gz/);
  });
});

const FASHION = '/usr/share/datasets/fashion-mnist';

describe('Fashion-MNIST from the Debian package', () => {
  it('has 60000 training and 10000 test images of 28x28, balanced over 10 classes', async (t) => {
    assert.ok(existsSync(FASHION), `${FASHION} is missing: apt-get install dataset-fashion-mnist`);
    const { train, test } = await loadDataset({ name: 'fashion-mnist' });
    assert.deepEqual([train.length, train.height, train.width, train.channels], [60000, 28, 28, 1]);
    assert.equal(test!.length, 10000);
    assert.deepEqual(Array.from(classCounts(train)), new Array(10).fill(6000));
    assert.deepEqual(Array.from(classCounts(test!)), new Array(10).fill(1000));
    t.diagnostic(`first training labels ${Array.from(train.labels.subarray(0, 10)).join(',')}`);
    // The published first labels of the training set (Ankle boot, T-shirt, T-shirt, Dress, ...).
    assert.deepEqual(Array.from(train.labels.subarray(0, 10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
  });
});
