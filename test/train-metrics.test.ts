import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataLoader, InMemoryDataset } from '../src/data/index.js';
import { Module, Parameter } from '../src/nn/module.js';
import { Tensor } from '../src/tensor/tensor.js';
import { evaluate } from '../src/train/metrics.js';
import { ModelEma } from '../src/train/ema.js';
import { clipGradNorm, gradNorm } from '../src/train/grads.js';
import { softmaxRows } from '../src/train/probabilities.js';

/** Logits looked up by the image's first pixel value (0..255), for exact metric checks. */
class LookupModel extends Module {
  constructor(readonly table: number[][]) {
    super();
  }

  forward(x: Tensor): Tensor {
    const n = x.shape[0]!;
    const size = x.size / n;
    const c = this.table[0]!.length;
    const out = new Float32Array(n * c);
    for (let i = 0; i < n; i++) out.set(this.table[Math.round(x.data[i * size]! * 255)]!, i * c);
    return new Tensor(out, [n, c]);
  }
}

describe('evaluation metrics', () => {
  it('top-1, top-5, per-class accuracy, confusion matrix and loss', async () => {
    // 7 classes. Image v has label v % 7 and gets logits from table[v].
    const table: number[][] = [];
    const labels: number[] = [];
    const ranks = [0, 1, 4, 5, 0, 6, 2, 0];
    ranks.forEach((rank, v) => {
      const label = v % 7;
      // Scores 7 - position: the label is put at position `rank`.
      const order = [0, 1, 2, 3, 4, 5, 6].filter((c) => c !== label);
      order.splice(rank, 0, label);
      const row = new Array<number>(7).fill(0);
      order.forEach((cls, pos) => (row[cls] = 7 - pos));
      table.push(row);
      labels.push(label);
    });
    const px = Uint8Array.from(labels.map((_, v) => v));
    const ds = new InMemoryDataset('t', px, Int32Array.from(labels), 1, 1, 1, ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    const r = await evaluate(new LookupModel(table), new DataLoader(ds, { batchSize: 3 }), 7);
    assert.equal(r.count, 8);
    assert.equal(r.top1, 3 / 8);
    assert.equal(r.top5, 6 / 8);
    // Class 0 holds images 0 (right) and 7 (right); class 1 image 1 (wrong, predicted the top class).
    assert.equal(r.perClass[0], 1);
    assert.equal(r.perClass[1], 0);
    assert.equal(r.confusion[0]![0], 2);
    assert.equal(r.confusion.flat().reduce((a, b) => a + b, 0), 8);
    const expectedLoss = table.map((row, v) => {
      const p = softmaxRows(Float32Array.from(row), 1, 7);
      return -Math.log(p[labels[v]!]!);
    }).reduce((a, b) => a + b, 0) / 8;
    assert.ok(Math.abs(r.loss - expectedLoss) < 1e-5, `loss ${r.loss} vs ${expectedLoss}`);
  });
});

class TwoParams extends Module {
  a = new Parameter(Float32Array.from([3, 0]), [2]);
  b = new Parameter(Float32Array.from([4]), [1]);
  forward(x: Tensor): Tensor {
    return x;
  }
}

describe('gradient helpers and EMA', () => {
  it('global gradient norm and clipping (torch clip_grad_norm_)', () => {
    const m = new TwoParams();
    m.a.grad = new Tensor(Float32Array.from([3, 0]), [2]);
    m.b.grad = new Tensor(Float32Array.from([4]), [1]);
    assert.equal(gradNorm(m.parameters()), 5);
    clipGradNorm(m.parameters(), 1);
    assert.ok(Math.abs(gradNorm(m.parameters()) - 1) < 1e-6);
    m.b.grad.data[0] = Number.NaN;
    assert.ok(Number.isNaN(gradNorm(m.parameters())));
  });

  it('EMA ramps its decay and averages every entry', async () => {
    const m = new TwoParams();
    const ema = new ModelEma(m, 0.99);
    m.a.data[0] = 13;
    ema.update(m);
    // First decay min(0.99, 1/10) = 0.1: 0.1 * 3 + 0.9 * 13.
    assert.ok(Math.abs(ema.shadow['a']!.data[0]! - 12) < 1e-5);
    assert.ok(Math.abs(ema.currentDecay() - 2 / 11) < 1e-12);
    const seen = await ema.withAveraged(m, async () => m.a.data[0]);
    assert.ok(Math.abs(seen! - 12) < 1e-5);
    assert.equal(m.a.data[0], 13, 'own weights are back');
  });
});
