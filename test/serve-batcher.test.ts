// The server's building blocks in-process: the dynamic batcher (when batches run, what
// they hold, a full queue, a failing batch) and the pixel limit of decodeImage.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeImage, ImageTooLargeError, SHARP_MAX_PIXELS } from '../src/data/image-decode.js';
import { Batcher, QueueFullError } from '../src/serve/batcher.js';
import { batchBuckets } from '../src/serve/metrics.js';
import { solid, tempDir, writeImage } from './helpers/data-files.js';
import { pngBomb } from './helpers/png-bomb.js';

/** A batcher whose batches double their items, recording each batch. */
function recording(opts: { maxBatch: number; maxWaitMs: number; maxQueue: number }, fail?: (items: number[]) => boolean) {
  const batches: number[][] = [];
  const sizes: number[] = [];
  const batcher = new Batcher<number, number>((items) => {
    batches.push(items);
    if (fail?.(items)) throw new Error(`batch ${items.join(',')} failed`);
    return items.map((x) => 2 * x);
  }, opts, { batchRan: (n) => sizes.push(n) });
  return { batcher, batches, sizes };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Batcher', () => {
  it('runs a batch as soon as it is full, and holds the rest until drained', async () => {
    const { batcher, batches, sizes } = recording({ maxBatch: 3, maxWaitMs: 600_000, maxQueue: 10 });
    const first = batcher.submitAll([1, 2]);
    const second = batcher.submitAll([3, 4, 5, 6, 7]);
    assert.equal(batcher.depth, 7);
    assert.deepEqual(await first, [2, 4]);
    await tick();
    await tick();
    // Two full batches ran; the seventh item waits for more (the wait is ten minutes).
    assert.deepEqual(batches, [[1, 2, 3], [4, 5, 6]]);
    assert.equal(batcher.depth, 1);
    batcher.drain();
    assert.deepEqual(await second, [6, 8, 10, 12, 14]);
    assert.deepEqual(batches, [[1, 2, 3], [4, 5, 6], [7]]);
    assert.deepEqual(sizes, [3, 3, 1]);
    // Draining: a new item runs at once.
    assert.deepEqual(await batcher.submitAll([8]), [16]);
  });

  it('runs a partial batch after maxWaitMs', async () => {
    const { batcher, batches } = recording({ maxBatch: 8, maxWaitMs: 1, maxQueue: 8 });
    assert.deepEqual(await Promise.all([batcher.submitAll([1]), batcher.submitAll([2, 3])]), [[2], [4, 6]]);
    assert.deepEqual(batches, [[1, 2, 3]]);
  });

  it('refuses items that do not all fit in the queue, queueing none of them', async () => {
    const { batcher } = recording({ maxBatch: 4, maxWaitMs: 600_000, maxQueue: 3 });
    const queued = batcher.submitAll([1, 2]);
    assert.throws(() => batcher.submitAll([3, 4]), (e: unknown) => e instanceof QueueFullError &&
      e.message === 'the queue is full (2 of 3 images waiting)');
    assert.equal(batcher.depth, 2);
    assert.throws(() => batcher.checkRoom(2), QueueFullError);
    batcher.checkRoom(1);
    batcher.drain();
    assert.deepEqual(await queued, [2, 4]);
  });

  it('rejects every item of a batch that throws, and runs the next batch', async () => {
    const { batcher, batches } = recording({ maxBatch: 2, maxWaitMs: 600_000, maxQueue: 10 }, (items) => items.includes(2));
    const bad = batcher.submitAll([1, 2]);
    const good = batcher.submitAll([3, 4]);
    await assert.rejects(bad, /batch 1,2 failed/);
    assert.deepEqual(await good, [6, 8]);
    assert.deepEqual(batches, [[1, 2], [3, 4]]);
  });

  it('checks its options', () => {
    assert.throws(() => recording({ maxBatch: 0, maxWaitMs: 5, maxQueue: 1 }), /maxBatch must be an integer >= 1, got 0/);
    assert.throws(() => recording({ maxBatch: 1, maxWaitMs: -1, maxQueue: 1 }), /maxWaitMs must be an integer >= 0, got -1/);
  });

  it('has batch-size buckets up to the largest batch', () => {
    assert.deepEqual(batchBuckets(16), [1, 2, 4, 8, 16]);
    assert.deepEqual(batchBuckets(12), [1, 2, 4, 8, 12]);
    assert.deepEqual(batchBuckets(1), [1]);
  });
});

describe('decodeImage pixel limit', () => {
  const dir = tempDir('decode-limit');

  it('refuses a PNG that claims 50,000 x 50,000 pixels from its header, by default and under a limit', async () => {
    const bomb = join(dir, 'bomb.png');
    writeFileSync(bomb, pngBomb());
    const opts = { height: 8, width: 8, channels: 3 } as const;
    await assert.rejects(decodeImage(bomb, opts), (e: unknown) => e instanceof ImageTooLargeError &&
      e.message === `${bomb}: image is 50000x50000 = 2500000000 pixels, more than the limit of ${SHARP_MAX_PIXELS}; use a smaller image`);
    await assert.rejects(decodeImage({ name: 'upload', bytes: pngBomb() }, { ...opts, maxPixels: 1e6 }), (e: unknown) => e instanceof ImageTooLargeError &&
      e.message === 'upload: image is 50000x50000 = 2500000000 pixels, more than the limit of 1000000; use a smaller image');
  });

  it('decodes an image of exactly the limit, from a file or its bytes alike, and refuses one pixel more', async () => {
    const file = join(dir, 'ten.png');
    await writeImage(file, solid(10, 12, 3, [10, 200, 30]), 10, 12, 3);
    const opts = { height: 4, width: 4, channels: 3 } as const;
    const fromFile = await decodeImage(file, { ...opts, maxPixels: 120 });
    const fromBytes = await decodeImage({ name: 'ten', bytes: readFileSync(file) }, { ...opts, maxPixels: 120 });
    assert.deepEqual(fromBytes, fromFile);
    assert.deepEqual(Array.from(fromFile.subarray(0, 3)), [10, 200, 30]);
    await assert.rejects(decodeImage(file, { ...opts, maxPixels: 119 }), /image is 12x10 = 120 pixels, more than the limit of 119/);
  });
});
