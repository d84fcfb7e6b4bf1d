// Replicas (src/train/replicas.ts): a batch split across worker threads gives the loss,
// logits and gradient that the shares computed one after another in this thread give,
// weighted by their sizes; and the running statistics are this thread's share's.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { create } from '../src/models/registry.js';
import type { Module } from '../src/nn/module.js';
import { Rng } from '../src/tensor/random.js';
import { crossEntropy } from '../src/tensor/ops.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Replicas, shareBounds } from '../src/train/replicas.js';

const SPEC = { model: 'resnet8', numClasses: 10, inChannels: 1, width: 1 };
const SMOOTH = 0.1;

function batch(rows: number, seed: number): { x: Tensor; labels: Int32Array } {
  const rng = new Rng(seed);
  const x = new Tensor(Float32Array.from({ length: rows * 8 * 8 }, () => rng.normal()), [rows, 8, 8, 1]);
  return { x, labels: Int32Array.from({ length: rows }, () => rng.int(10)) };
}

function build(): Module & { forward(x: Tensor): Tensor } {
  const m = create(SPEC.model, { numClasses: SPEC.numClasses, inChannels: SPEC.inChannels, seed: 3 });
  m.train();
  return m;
}

function closeTo(actual: Float32Array, expected: Float32Array, what: string): void {
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= 1e-5 * scale + 1e-7, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

describe('replicas', () => {
  const open: Replicas[] = [];
  after(async () => { await Promise.all(open.map((r) => r.close())); });

  it('shares a batch in nearly equal parts, in order', () => {
    assert.deepEqual(shareBounds(10, 3), [0, 4, 7, 10]);
    assert.deepEqual(shareBounds(8, 2), [0, 4, 8]);
  });

  for (const replicas of [2, 3]) {
    it(`${replicas} replicas: loss, logits and gradient of the shares, weighted by their rows`, async () => {
      const rows = 11;
      const { x, labels } = batch(rows, replicas);
      const model = build();
      const twin = build();
      const rep = Replicas.start(model, SPEC, { replicas, labelSmoothing: SMOOTH, maxBatch: 16 });
      open.push(rep);
      // Two steps, so the second runs on weights the workers copied after a change here;
      // the second with mixed targets (mixup, CutMix), each share taking its rows of them.
      const partner = Int32Array.from(labels, (l, i) => (l + i + 1) % 10);
      for (let stepNo = 0; stepNo < 2; stepNo++) {
        for (const p of model.parameters()) p.grad = null;
        const mix = stepNo === 1 ? { labels: partner, weight: 0.3 } : null;
        const got = await rep.lossAndGradients(x, labels, mix);
        assert.ok(!('problem' in got));
        // The same shares, one after another, on a twin with the same weights.
        const bounds = shareBounds(rows, replicas);
        const grads = twin.parameters().map((p) => new Float32Array(p.size));
        let loss = 0;
        const logits = new Float32Array(rows * 10);
        for (let r = 0; r < replicas; r++) {
          const [a, b] = [bounds[r]!, bounds[r + 1]!];
          for (const p of twin.parameters()) p.grad = null;
          const out = twin.forward(new Tensor(x.data.slice(a * 64, b * 64), [b - a, 8, 8, 1]));
          const l = crossEntropy(out, labels.slice(a, b), { labelSmoothing: SMOOTH, mix: mix && { labels: partner.slice(a, b), weight: 0.3 } });
          l.backward();
          loss += l.item() * (b - a) / rows;
          logits.set(out.data, a * 10);
          twin.parameters().forEach((p, i) => { for (let j = 0; j < p.size; j++) grads[i]![j] += p.grad!.data[j]! * (b - a) / rows; });
        }
        assert.ok(Math.abs(got.lossValue - loss) < 1e-5 * loss, `loss ${got.lossValue} vs ${loss}`);
        closeTo(got.logits.data, logits, 'logits');
        model.parameters().forEach((p, i) => closeTo(p.grad!.data, grads[i]!, `grad of parameter ${i}`));
        if (stepNo === 0) {
          // The running statistics are this thread's share's (the last): as a fresh model's after that share alone.
          const own = build();
          const a = bounds[replicas - 1]!;
          own.forward(new Tensor(x.data.slice(a * 64), [rows - a, 8, 8, 1]));
          own.buffers().forEach((b, i) => closeTo(model.buffers()[i]!.data, b.data, `buffer ${i}`));
        }
        // An SGD step here; the workers must pick it up.
        for (const p of model.parameters()) p.assign(p.data.map((v, j) => v - 0.1 * p.grad!.data[j]!));
        twin.parameters().forEach((p, i) => p.assign(model.parameters()[i]!.data));
      }
    });
  }

  it('the last share runs here: a batch of fewer rows than replicas runs here alone', async () => {
    const model = build();
    const twin = build();
    const rep = Replicas.start(model, SPEC, { replicas: 3, maxBatch: 8 });
    open.push(rep);
    const { x, labels } = batch(2, 9);
    const got = await rep.lossAndGradients(x, labels);
    assert.ok(!('problem' in got));
    const l = crossEntropy(twin.forward(x), labels);
    l.backward();
    assert.ok(Math.abs(got.lossValue - l.item()) < 1e-6);
    model.parameters().forEach((p, i) => closeTo(p.grad!.data, twin.parameters()[i]!.grad!.data, `grad ${i}`));
  });

  it('refuses a second image size and a batch larger than it was sized for', async () => {
    const rep = Replicas.start(build(), SPEC, { replicas: 2, maxBatch: 4 });
    open.push(rep);
    const { x, labels } = batch(4, 1);
    await rep.lossAndGradients(x, labels);
    await assert.rejects(rep.lossAndGradients(new Tensor(new Float32Array(4 * 36), [4, 6, 6, 1]), labels), /first batch had 8x8x1/);
    const big = batch(6, 2);
    await assert.rejects(rep.lossAndGradients(big.x, big.labels), /more than the 4/);
  });
});
