// An image folder too large for memory streams from disk instead of failing to allocate:
// past the in-memory limit the set decodes batch by batch, and training on it takes
// exactly the steps that training on the decoded copy takes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DataLoader, ImageFolderDataset, IN_MEMORY_LIMIT, inMemoryLimit, InMemoryDataset, loadDataset, Normalize, type ImageDataset,
} from '../src/data/index.js';
import { CosineAnnealingLR } from '../src/optim/schedules.js';
import { SGD } from '../src/optim/sgd.js';
import { Trainer } from '../src/train/trainer.js';
import { tempDir, writeImage } from './helpers/data-files.js';
import { TinyNet } from './helpers/tiny-net.js';

async function writeTree(root: string): Promise<void> {
  for (const split of ['train', 'test']) {
    for (let i = 0; i < (split === 'train' ? 24 : 8); i++) {
      const label = i % 2;
      const pixels = Uint8Array.from({ length: 8 * 8 * 3 }, (_, p) => (label === 1 ? 150 : 70) + ((p * 7 + i * 13) % 50));
      await writeImage(join(root, split, `class${label}`, `${i}.png`), pixels, 8, 8, 3);
    }
  }
}

async function trainedWeights(train: ImageDataset): Promise<Float32Array[]> {
  const model = new TinyNet(3, 2);
  const loader = new DataLoader(train, { batchSize: 8, shuffle: true, seed: 3, transform: new Normalize([0.5, 0.5, 0.5], [0.2, 0.2, 0.2]) });
  const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  await new Trainer({
    model, optimizer, scheduler: new CosineAnnealingLR(optimizer, 6), trainLoader: loader, evalLoader: null, numClasses: 2, totalSteps: 6,
  }).run();
  return model.parameters().map((p) => p.data.slice());
}

describe('image folders larger than memory', () => {
  it('the in-memory limit is a quarter of the free memory, at most 2 GiB', () => {
    assert.equal(inMemoryLimit(8e9), 2e9);
    assert.equal(inMemoryLimit(64e9), IN_MEMORY_LIMIT);
    assert.equal(inMemoryLimit(1000), 250);
  });

  it('a tree over the limit streams from disk; training on it equals training on the decoded copy', async () => {
    const root = tempDir('stream');
    await writeTree(root);
    // 32 images of 8x8x3 are 6144 bytes of pixels.
    const streamed = await loadDataset({ name: 'folder', dir: root, inMemoryLimit: 6143 });
    const decoded = await loadDataset({ name: 'folder', dir: root, inMemoryLimit: 6144 });
    assert.ok(streamed.train instanceof ImageFolderDataset && streamed.test instanceof ImageFolderDataset, 'over the limit: streamed');
    assert.ok(decoded.train instanceof InMemoryDataset && decoded.test instanceof InMemoryDataset, 'within the limit: in memory');
    const a = new Uint8Array(5 * 192);
    const b = new Uint8Array(5 * 192);
    await streamed.train.readImages([23, 0, 7, 7, 12], a);
    await decoded.train.readImages([23, 0, 7, 7, 12], b);
    assert.deepEqual(a, b);
    const fromDisk = await trainedWeights(streamed.train);
    const fromMemory = await trainedWeights(decoded.train);
    fromMemory.forEach((w, i) => assert.deepEqual(fromDisk[i], w, `parameter ${i} differs`));
  });
});
