import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataLoader, InMemoryDataset } from '../src/data/index.js';
import { Module } from '../src/nn/module.js';
import { Tensor } from '../src/tensor/tensor.js';
import { evaluate } from '../src/train/metrics.js';
import { flipBatch, translateBatch, ttaLogits } from '../src/train/tta.js';

/** A 3x3 one-channel image holding 1..9 row by row, as an NHWC batch of one. */
function grid(): Tensor {
  return new Tensor(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), [1, 3, 3, 1]);
}

/** Logits: one-hot of the image's first pixel value (an integer below `classes`). */
class FirstPixelClass extends Module {
  constructor(readonly classes: number) {
    super();
  }

  forward(x: Tensor): Tensor {
    const n = x.shape[0]!;
    const size = x.size / n;
    const out = new Float32Array(n * this.classes);
    for (let i = 0; i < n; i++) out[i * this.classes + x.data[i * size]!] = 1;
    return new Tensor(out, [n, this.classes]);
  }
}

/** Logits [first pixel, 2 x last pixel]: a model that tells an image from its mirror image. */
class Lopsided extends Module {
  forward(x: Tensor): Tensor {
    const n = x.shape[0]!;
    const size = x.size / n;
    const out = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      out[2 * i] = x.data[i * size]!;
      out[2 * i + 1] = 2 * x.data[i * size + size - 1]!;
    }
    return new Tensor(out, [n, 2]);
  }
}

describe('test-time augmentation', () => {
  it('flips NHWC batches left-right, every channel together', () => {
    const x = new Tensor(Float32Array.from([1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60]), [1, 2, 3, 2]);
    assert.deepEqual([...flipBatch(x).data], [3, 30, 2, 20, 1, 10, 6, 60, 5, 50, 4, 40]);
  });

  it('translates by one pixel with reflection as torch F.pad(x, (1,)*4, "reflect") cropped', () => {
    // torch: pad reflect of [[1,2,3],[4,5,6],[7,8,9]] is
    // [[5,4,5,6,5],[2,1,2,3,2],[5,4,5,6,5],[8,7,8,9,8],[5,4,5,6,5]]; crop [0:3, 0:3] and [2:5, 2:5].
    assert.deepEqual([...translateBatch(grid(), 1, 1).data], [5, 4, 5, 2, 1, 2, 5, 4, 5]);
    assert.deepEqual([...translateBatch(grid(), -1, -1).data], [5, 6, 5, 8, 9, 8, 5, 6, 5]);
    assert.deepEqual([...translateBatch(grid(), 0, 0).data], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('averages the logits of the views with their weights', () => {
    // One row [1, 2, 3]: mirror [3, 2, 1]; shifted left [2, 3, 2] (mirror [2, 3, 2]); shifted right [2, 1, 2] (mirror the same).
    const x = new Tensor(Float32Array.from([1, 2, 3]), [1, 1, 3, 1]);
    const model = new FirstPixelClass(4);
    const infer = (t: Tensor): Tensor => model.forward(t);
    assert.deepEqual([...ttaLogits(infer, x, 'none').data], [0, 1, 0, 0]);
    assert.deepEqual([...ttaLogits(infer, x, 'flip').data], [0, 0.5, 0, 0.5]);
    assert.deepEqual([...ttaLogits(infer, x, 'flip-translate').data], [0, 0.25, 0.5, 0.25]);
  });

  it('evaluate scores the averaged logits', async () => {
    // Pixels [1, 0, 0.4], label 0: logits [1, 0.8] are right; with the mirror image's [0.4, 2] averaged in, [0.7, 1.4] are wrong.
    const ds = new InMemoryDataset('row', Uint8Array.from([255, 0, 102]), Int32Array.from([0]), 1, 3, 1, ['a', 'b']);
    const loader = new DataLoader(ds, { batchSize: 1 });
    const plain = await evaluate(new Lopsided(), loader, 2);
    const flipped = await evaluate(new Lopsided(), loader, 2, { tta: 'flip' });
    assert.equal(plain.top1, 1);
    assert.equal(flipped.top1, 0);
    assert.ok(Math.abs(flipped.loss - (Math.log(Math.exp(0.7) + Math.exp(1.4)) - 0.7)) < 1e-5, `loss ${flipped.loss}`);
  });
});
