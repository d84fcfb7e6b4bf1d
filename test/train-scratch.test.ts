// The kernel scratch (withScratch, native/runtime.cc): inside a scope the native kernels'
// outputs are views into a few reused buffers; a training step run that way must give
// exactly what it gives with ordinary outputs, and nothing it returns may point into
// the scratch. With poison on, closing a scope fills the released memory with NaN, so an
// output that outlives its scope shows up as NaN in whatever read it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backend, scratchFloat32, setBackend, withScratch, withScratchFrame } from '../src/backend/index.js';
import { loadNativeBinding } from '../src/backend/native-binding.js';
import { create } from '../src/models/registry.js';
import { SGD } from '../src/optim/sgd.js';
import { add, conv2d, crossEntropy, relu } from '../src/tensor/ops.js';
import { Rng } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { lossAndBackward } from '../src/train/loss-step.js';

function batch(rows: number, seed: number): { x: Tensor; labels: Int32Array } {
  const rng = new Rng(seed);
  const x = new Tensor(Float32Array.from({ length: rows * 12 * 12 }, () => rng.normal()), [rows, 12, 12, 1]);
  return { x, labels: Int32Array.from({ length: rows }, () => rng.int(10)) };
}

function model(): ReturnType<typeof create> {
  const m = create('resnet8', { numClasses: 10, inChannels: 1, seed: 5 });
  m.train();
  return m;
}

describe('kernel scratch', () => {
  const binding = loadNativeBinding();
  let previous: ReturnType<typeof backend>;
  before(() => {
    previous = backend();
    setBackend('native');
    binding.setScratchPoison(true);
  });
  after(() => {
    binding.setScratchPoison(false);
    setBackend(previous);
  });

  it('hands out views of shared buffers inside a scope and fresh arrays outside', () => {
    const x = new Tensor(Float32Array.from({ length: 4096 }, (_, i) => (i % 7) - 3), [4096]);
    const outside = relu(x);
    let a: Float32Array | null = null;
    let b: Float32Array | null = null;
    const sum = withScratch(() => {
      a = relu(x).data;
      b = relu(x).data;
      assert.equal(a.buffer, b.buffer, 'two outputs of one scope share a scratch buffer');
      assert.notEqual(a.byteOffset, b.byteOffset);
      assert.deepEqual(a, outside.data);
      return a.reduce((s, v) => s + v, 0);
    });
    assert.equal(sum, outside.data.reduce((s, v) => s + v, 0));
    assert.equal(outside.data.buffer.byteLength, outside.data.byteLength, 'outside a scope: a buffer of its own');
    // Poisoned on close: what escaped the scope reads NaN (the check below can fail).
    assert.ok(Number.isNaN(a![0]!) && Number.isNaN(b![4095]!));
    assert.ok(binding.scratchStats().peakBytes >= 2 * 4096 * 4);
    assert.equal(binding.scratchStats().depth, 0);
  });

  it('reuses memory only when the outermost scope closes', () => {
    const x = new Tensor(new Float32Array(256).fill(2), [256]);
    withScratch(() => {
      const outer = relu(x);
      withScratch(() => relu(x));
      assert.equal(outer.data[0], 2, 'an inner scope does not release the outer one');
    });
  });

  it('a parameter used twice keeps its summed gradient after the scope', () => {
    const rng = new Rng(7);
    const x = new Tensor(Float32Array.from({ length: 2 * 6 * 6 * 2 }, () => rng.normal()), [2, 6, 6, 2]);
    const seed = new Tensor(Float32Array.from({ length: 2 * 6 * 6 * 3 }, () => rng.normal()), [2, 6, 6, 3]);
    const w = new Tensor(Float32Array.from({ length: 3 * 2 * 3 * 3 }, () => rng.normal()), [3, 2, 3, 3], true);
    conv2d(x, w, null, { padding: 1 }).backward(seed);
    const once = w.grad!.data.slice();
    w.grad = null;
    withScratch(() => add(conv2d(x, w, null, { padding: 1 }), conv2d(x, w, null, { padding: 1 })).backward(seed));
    assert.deepEqual(w.grad!.data, once.map((v) => 2 * v));
  });

  it('a frame releases what was carved in it, and only that: the next frame reuses the same memory', () => {
    const x = new Tensor(new Float32Array(1024).fill(3), [1024]);
    withScratch(() => {
      const before = relu(x).data;
      const kept = scratchFloat32(2048);
      assert.equal(kept.buffer, before.buffer, 'scratchFloat32 carves from the scratch inside a scope');
      const seen: Float32Array[] = [];
      for (let i = 0; i < 2; i++) {
        withScratchFrame(() => {
          const y = relu(x).data;
          seen.push(y);
          kept.set(y, i * 1024);
        });
      }
      assert.equal(seen[0]!.byteOffset, seen[1]!.byteOffset, 'the second frame reuses the first frame\'s memory');
      assert.ok(Number.isNaN(seen[1]![0]!), 'what a frame made reads NaN (poison) once it closes');
      assert.deepEqual([before[0], before[1023], kept[0], kept[2047]], [3, 3, 3, 3], 'what was carved before the frames stays');
      const after = relu(x).data;
      assert.equal(after.byteOffset, seen[0]!.byteOffset, 'the scope carves on from where the frames began');
    });
    const own = scratchFloat32(8);
    assert.equal(own.buffer.byteLength, own.byteLength, 'outside a scope: an array of its own');
    assert.equal(binding.scratchStats().depth, 0);
  });

  it('frames and plain scopes close in order: a mismatch is named', () => {
    withScratch(() => {
      binding.scratchFrameOpen();
      assert.throws(() => binding.scratchClose(), /innermost scratch scope is a frame/);
      binding.scratchFrameClose();
      assert.throws(() => binding.scratchFrameClose(), /innermost scratch scope is not a frame/);
    });
    assert.equal(binding.scratchStats().depth, 0);
  });

  it('refuses an async function', () => {
    assert.throws(() => withScratch(async () => 1), /synchronous work only/);
    assert.equal(binding.scratchStats().depth, 0);
  });

  it('a training step in the scratch equals the same step with ordinary outputs, bit for bit', () => {
    const plain = model();
    const scoped = model();
    const optA = new SGD(plain.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
    const optB = new SGD(scoped.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
    for (let step = 0; step < 3; step++) {
      const { x, labels } = batch(6, 10 + step);
      optA.zeroGrad();
      const logits = plain.forward(x);
      const loss = crossEntropy(logits, labels, { labelSmoothing: 0.1 });
      loss.backward();
      optA.step();
      optB.zeroGrad();
      const r = lossAndBackward(scoped, x, labels, { labelSmoothing: 0.1 });
      assert.ok(!('problem' in r));
      // The step's results outlive the (poisoned) scratch.
      assert.equal(r.lossValue, loss.item());
      assert.deepEqual(r.logits.data, logits.data);
      for (const p of scoped.parameters()) assert.ok(p.grad && p.grad.data.every(Number.isFinite), 'gradient copied out');
      optB.step();
    }
    const a = plain.stateDict();
    for (const [k, t] of Object.entries(scoped.stateDict())) assert.deepEqual(t.data, a[k]!.data, k);
  });
});
