import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DataError, loadDataset, readCifar } from '../src/data/index.js';
import { cifarRecords, syntheticPixel, tempDir } from './helpers/data-files.js';

function expectDataError(p: Promise<unknown> | (() => unknown), file: string, text: RegExp): Promise<void> | void {
  const check = (e: unknown): boolean => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'));
    assert.ok(e.message.startsWith(file), `message does not start with ${file}: ${e.message}`);
    assert.match(e.message, text);
    return true;
  };
  if (typeof p === 'function') return assert.throws(p, check);
  return assert.rejects(p, check);
}

/** A cifar-10-batches-bin folder with `perBatch` records in each of the 6 files. */
function writeCifar10(root: string, perBatch: number): string {
  const dir = join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  const labels = Array.from({ length: perBatch }, (_, i) => [(i * 7) % 10]);
  for (let b = 1; b <= 5; b++) writeFileSync(join(dir, `data_batch_${b}.bin`), cifarRecords(labels));
  writeFileSync(join(dir, 'test_batch.bin'), cifarRecords(labels));
  writeFileSync(join(dir, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n');
  return dir;
}

describe('CIFAR binary reader', () => {
  it('reads CIFAR-10 batches from the extracted folder or its parent, planar -> HWC', () => {
    const root = tempDir('cifar10');
    const dir = writeCifar10(root, 3);
    for (const given of [root, dir]) {
      const train = readCifar(given, 'cifar10', 'train');
      assert.equal(train.length, 15);
      assert.deepEqual([train.height, train.width, train.channels], [32, 32, 3]);
      assert.deepEqual(Array.from(train.labels.subarray(0, 4)), [0, 7, 4, 0]);
      assert.equal(train.classNames[9], 'truck');
      // Record 1 of the second batch file is image 4; pixel (y=2, x=5) channel c.
      const img = train.image(4);
      const p = 2 * 32 + 5;
      for (let c = 0; c < 3; c++) assert.equal(img[p * 3 + c], syntheticPixel(1, p) ^ (c * 85));
    }
    assert.equal(readCifar(root, 'cifar10', 'test').length, 3);
  });

  it('reads CIFAR-100 fine labels by default and coarse labels on request', () => {
    const root = tempDir('cifar100');
    const dir = join(root, 'cifar-100-binary');
    mkdirSync(dir);
    const labels = [[3, 97], [19, 5]];
    writeFileSync(join(dir, 'train.bin'), cifarRecords(labels));
    writeFileSync(join(dir, 'test.bin'), cifarRecords(labels.slice(0, 1)));
    const fine = readCifar(root, 'cifar100', 'train');
    assert.deepEqual(Array.from(fine.labels), [97, 5]);
    assert.equal(fine.classNames.length, 100);
    const coarse = readCifar(root, 'cifar100', 'train', { coarse: true });
    assert.deepEqual(Array.from(coarse.labels), [3, 19]);
    assert.equal(coarse.classNames.length, 20);
    assert.equal(fine.image(1)[3 * 40 + 2], syntheticPixel(1, 40) ^ 170);
  });

  it('rejects a truncated batch file, naming it and the record size', () => {
    const root = tempDir('cifar-trunc');
    const dir = writeCifar10(root, 2);
    const bad = join(dir, 'data_batch_3.bin');
    writeFileSync(bad, cifarRecords([[1], [2]]).subarray(0, 3073 + 100));
    expectDataError(() => readCifar(root, 'cifar10', 'train'), bad, /3173 bytes is not a whole number of 3073-byte CIFAR-10 records/);
  });

  it('rejects a record with a label out of range', () => {
    const root = tempDir('cifar-label');
    const dir = writeCifar10(root, 2);
    const bad = join(dir, 'test_batch.bin');
    writeFileSync(bad, cifarRecords([[1], [10]]));
    expectDataError(() => readCifar(root, 'cifar10', 'test'), bad, /record 1 has label 10, expected 0\.\.9/);
  });

  it('names a folder without batches and a missing folder', async () => {
    const empty = tempDir('cifar-empty');
    expectDataError(() => readCifar(empty, 'cifar10', 'train'), empty, /no CIFAR-10 binary batches here: expected test_batch\.bin/);
    const missing = join(empty, 'absent');
    await expectDataError(loadDataset({ name: 'cifar100', dir: missing }), missing, /no such folder; expected the extracted CIFAR-100/);
    await expectDataError(loadDataset({ name: 'cifar10' }), 'cifar10', /give its folder with --data DIR/);
  });
});
