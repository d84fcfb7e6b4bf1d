import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataLoader, InMemoryDataset, RandomCrop, RandomErasing, RandomHorizontalFlip, randomSubset, trainValSplit, type Batch } from '../src/data/index.js';
import { Compose } from '../src/data/transforms.js';

/** n images of 4x3x2 whose every pixel is the image's index; label = index mod 5. */
function indexedSet(n: number): InMemoryDataset {
  const size = 4 * 3 * 2;
  const px = Uint8Array.from({ length: n * size }, (_, i) => Math.floor(i / size));
  const labels = Int32Array.from({ length: n }, (_, i) => i % 5);
  return new InMemoryDataset('indexed', px, labels, 4, 3, 2, ['a', 'b', 'c', 'd', 'e']);
}

async function collect(loader: DataLoader, epoch: number, from = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(epoch, from)) out.push(b);
  return out;
}

describe('DataLoader', () => {
  it('batches every image once per epoch as NHWC float32 in [0, 1] with matching labels', async () => {
    const ds = indexedSet(10);
    const loader = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 3 });
    assert.equal(loader.numBatches, 3);
    const batches = await collect(loader, 0);
    assert.deepEqual(batches.map((b) => b.x.shape), [[4, 4, 3, 2], [4, 4, 3, 2], [2, 4, 3, 2]]);
    const seen: number[] = [];
    for (const b of batches) {
      b.indices.forEach((idx, k) => {
        seen.push(idx);
        const img = b.x.data.subarray(k * 24, (k + 1) * 24);
        assert.ok(img.every((v) => v === Math.fround(idx / 255)), 'pixels belong to the image named by indices');
        assert.equal(b.labels[k], idx % 5);
      });
    }
    assert.deepEqual(seen.slice().sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.notDeepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'shuffled');
  });

  it('keeps the order without shuffle, drops the last partial batch with dropLast', async () => {
    const loader = new DataLoader(indexedSet(10), { batchSize: 4, dropLast: true });
    const batches = await collect(loader, 0);
    assert.equal(batches.length, 2);
    assert.deepEqual(Array.from(batches[1]!.indices), [4, 5, 6, 7]);
  });

  it('shuffles differently each epoch, identically for the same seed', async () => {
    const a = new DataLoader(indexedSet(50), { batchSize: 50, shuffle: true, seed: 1 });
    const b = new DataLoader(indexedSet(50), { batchSize: 50, shuffle: true, seed: 1 });
    const c = new DataLoader(indexedSet(50), { batchSize: 50, shuffle: true, seed: 2 });
    assert.deepEqual(a.order(0), b.order(0));
    assert.notDeepEqual(a.order(0), a.order(1));
    assert.notDeepEqual(a.order(0), c.order(0));
  });

  it('makes any batch alone exactly as in a full pass (resume mid-epoch), augmentation included', async () => {
    const transform = new Compose([new RandomCrop(1), new RandomHorizontalFlip(), new RandomErasing({ p: 0.7, value: 0.5 })]);
    const ds = indexedSet(23);
    const loader = new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 9, transform });
    const full = await collect(loader, 2);
    const resumed = await collect(new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 9, transform }), 2, 3);
    assert.equal(resumed.length, 2);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(resumed[i]!.x.data, full[i + 3]!.x.data);
      assert.deepEqual(resumed[i]!.labels, full[i + 3]!.labels);
    }
    const alone = await loader.batch(2, 1);
    assert.deepEqual(alone.x.data, full[1]!.x.data);
    // The padding zeros of the crop show up, so the augmentation did run.
    assert.ok(full.some((b) => b.x.data.some((v) => v === 0)) && full.some((b) => b.x.data.some((v) => v === 0.5)));
  });

  it('refuses a batch size of 0 and a data set smaller than one dropLast batch', () => {
    assert.throws(() => new DataLoader(indexedSet(3), { batchSize: 0 }), /batch size must be a positive integer/);
    assert.throws(() => new DataLoader(indexedSet(3), { batchSize: 4, dropLast: true }), /fewer than one batch/);
  });

  it('makes the next batch in a macrotask of its own: while the caller awaits, not before its step', async () => {
    const ds = indexedSet(8);
    const made: number[] = [];
    const counting = Object.assign(Object.create(ds) as InMemoryDataset, {
      readImages: async (idx: ArrayLike<number>, out: Uint8Array): Promise<void> => {
        made.push(idx[0]!);
        return ds.readImages(idx, out);
      },
    });
    const loader = new DataLoader(counting, { batchSize: 2 });
    const it = loader.epoch(0);
    assert.equal((await it.next()).value?.index, 0);
    // A step that runs synchronously and then awaits only promises (microtasks): batch 1
    // has not been made yet, so it cannot have delayed the start of this step.
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(made, [0]);
    // A step that waits for another thread (a macrotask): batch 1 is made meanwhile.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(made, [0, 2]);
    assert.equal((await it.next()).value?.index, 1);
    await it.return(undefined);
  });

  it('a caller stopping early leaves no failing prefetch behind', async () => {
    let reads = 0;
    const ds = indexedSet(8);
    const failing = Object.assign(Object.create(ds) as InMemoryDataset, {
      readImages: async (idx: ArrayLike<number>, out: Uint8Array): Promise<void> => {
        if (++reads > 1) throw new Error('disk gone');
        return ds.readImages(idx, out);
      },
    });
    const loader = new DataLoader(failing, { batchSize: 2 });
    for await (const b of loader.epoch(0)) {
      assert.equal(b.index, 0);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(reads, 2);
  });
});

describe('subsets and splits', () => {
  it('a random subset is seeded, sorted and of the asked size', async () => {
    const ds = indexedSet(100);
    const s1 = randomSubset(ds, 10, 4);
    const s2 = randomSubset(ds, 10, 4);
    assert.equal(s1.length, 10);
    assert.deepEqual(s1.labels, s2.labels);
    const px = new Uint8Array(10 * 24);
    await s1.readImages(Int32Array.from({ length: 10 }, (_, i) => i), px);
    const ids = Array.from({ length: 10 }, (_, i) => px[i * 24]!);
    assert.deepEqual(ids, ids.slice().sort((a, b) => a - b));
    assert.deepEqual(Array.from(s1.labels), ids.map((i) => i % 5));
    assert.equal(randomSubset(ds, 500, 0), ds);
  });

  it('train/validation split is disjoint and covers the set', async () => {
    const ds = indexedSet(50);
    const { train, val } = trainValSplit(ds, 5, 0);
    assert.equal(train.length, 45);
    assert.equal(val.length, 5);
    const ids = async (d: typeof train): Promise<number[]> => {
      const px = new Uint8Array(d.length * 24);
      await d.readImages(Int32Array.from({ length: d.length }, (_, i) => i), px);
      return Array.from({ length: d.length }, (_, i) => px[i * 24]!);
    };
    const all = [...await ids(train), ...await ids(val)].sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 50 }, (_, i) => i));
    assert.throws(() => trainValSplit(ds, 50, 0), /validation size must be an integer in 1\.\.49/);
  });
});
