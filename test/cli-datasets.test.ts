// `resnet train` on the other data-set formats: CIFAR-10 binary batches and a
// class-per-folder image tree (RGB), written small by the test.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from './helpers/cli.js';
import { cifarRecords, solid, tempDir, writeImage } from './helpers/data-files.js';

describe('resnet train on CIFAR binaries and image folders', () => {
  it('trains on a CIFAR-10 binary folder and evaluates on its test batch', () => {
    const root = tempDir('cli-cifar');
    const dir = join(root, 'cifar-10-batches-bin');
    mkdirSync(dir);
    const labels = Array.from({ length: 8 }, (_, i) => [i % 10]);
    for (let b = 1; b <= 5; b++) writeFileSync(join(dir, `data_batch_${b}.bin`), cifarRecords(labels));
    writeFileSync(join(dir, 'test_batch.bin'), cifarRecords(labels.slice(0, 4)));
    const r = runCli(['train', '--dataset', 'cifar10', '--data', root, '--epochs', '1', '--batch-size', '20',
      '--out', root, '--name', 'run', '--no-progress']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /on cifar10\/train: 40 images 32x32x3, evaluating on 4 test images/);
    assert.match(r.stdout, /^test accuracy .* on 4 test images after 1 epoch/m);
  });

  it('trains on an image folder with a validation split, and names an image of the wrong channel count', async () => {
    const root = tempDir('cli-folder');
    for (let i = 0; i < 6; i++) {
      await writeImage(join(root, 'train', 'red', `${i}.png`), solid(12, 12, 3, [200 + i, 20, 20]), 12, 12, 3);
      await writeImage(join(root, 'train', 'blue', `${i}.jpg`), solid(12, 12, 3, [20, 20, 200 + i]), 12, 12, 3, 'jpeg');
    }
    await writeImage(join(root, 'test', 'red', 't.png'), solid(16, 16, 3, [210, 30, 30]), 16, 16, 3);
    const r = runCli(['train', '--dataset', 'folder', '--data', root, '--epochs', '1', '--batch-size', '5', '--val-split', '2',
      '--out', root, '--name', 'run', '--no-progress']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /on folder\/train\[10\]: 10 images 12x12x3, evaluating on 2 validation images/);
    assert.match(r.stdout, /^epoch 1\/1 .* val loss /m);
    assert.match(r.stdout, /^test accuracy .* on 1 test images/m);

    const grey = join(root, 'train', 'blue', 'grey.png');
    await writeImage(grey, solid(12, 12, 1, [90]), 12, 12, 1);
    const bad = runCli(['train', '--dataset', 'folder', '--data', root, '--epochs', '1', '--out', root, '--no-progress']);
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trim(), `resnet: ${grey}: image has 1 channel (greyscale), expected 3 (RGB); convert the image, or let the reader convert it (--convert-images)`);
  });
});
