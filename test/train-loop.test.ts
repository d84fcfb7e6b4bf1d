import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Compose, DataLoader, InMemoryDataset, Normalize, RandomHorizontalFlip } from '../src/data/index.js';
import { Module } from '../src/nn/module.js';
import { CosineAnnealingLR } from '../src/optim/schedules.js';
import { paramGroupsNoDecay, SGD } from '../src/optim/sgd.js';
import { Rng } from '../src/tensor/random.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { RunFolder } from '../src/train/run-folder.js';
import { Trainer, TrainingDivergedError, type TrainerOptions } from '../src/train/trainer.js';
import { WeightsFileError } from '../src/io/errors.js';
import { tempDir } from './helpers/data-files.js';
import { TinyNet } from './helpers/tiny-net.js';

/**
 * Two classes told apart by brightness: class 0 images are dark, class 1 bright,
 * with per-pixel noise. A working training loop learns this in a few epochs.
 */
function brightnessSet(n: number, seed: number): InMemoryDataset {
  const rng = new Rng(seed);
  const size = 6 * 6;
  const px = new Uint8Array(n * size);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    const base = labels[i] === 1 ? 150 : 90;
    for (let p = 0; p < size; p++) px[i * size + p] = base + rng.int(60) - 30;
  }
  return new InMemoryDataset('brightness', px, labels, 6, 6, 1, ['dark', 'bright']);
}

/** Wraps a model and writes NaN into its input on chosen training steps (1-based). */
class Poisoned extends Module {
  calls = 0;
  constructor(readonly inner: Module, readonly poisonCalls: readonly number[]) {
    super();
  }

  forward(x: Tensor): Tensor {
    if (this.training && this.poisonCalls.includes(++this.calls)) x.data[0] = Number.NaN;
    return this.inner.forward(x);
  }
}

function trainerOptions(model: Module, epochs: number, extra: Partial<TrainerOptions> = {}): TrainerOptions {
  const transform = new Compose([new RandomHorizontalFlip(), new Normalize([0.47], [0.15])]);
  const trainLoader = new DataLoader(brightnessSet(64, 1), { batchSize: 16, shuffle: true, transform, seed: 5 });
  const evalLoader = new DataLoader(brightnessSet(32, 2), { batchSize: 32, transform: new Normalize([0.47], [0.15]) });
  const optimizer = new SGD(paramGroupsNoDecay(model, 1e-4), { lr: 0.2, momentum: 0.9, nesterov: true });
  const totalSteps = epochs * trainLoader.numBatches;
  return {
    model, optimizer, scheduler: new CosineAnnealingLR(optimizer, totalSteps), trainLoader, evalLoader,
    numClasses: 2, totalSteps, labelSmoothing: 0.1, ...extra,
  };
}

describe('Trainer', () => {
  it('learns a separable task: training loss falls, evaluation accuracy rises', async () => {
    const trainer = new Trainer(trainerOptions(new TinyNet(1, 2), 6));
    const out = await trainer.run();
    assert.equal(out.status, 'finished');
    assert.equal(out.records.length, 6);
    const first = out.records[0]!;
    const last = out.records[5]!;
    assert.ok(last.trainLoss! < first.trainLoss! - 0.1, `train loss ${first.trainLoss} -> ${last.trainLoss}`);
    assert.ok(last.eval!.top1 >= 0.9, `eval accuracy ${last.eval!.top1}`);
    assert.equal(out.state.step, 24);
    assert.equal(out.state.epoch, 6);
  });

  it('an iteration budget ends mid-epoch and still evaluates', async () => {
    const opts = trainerOptions(new TinyNet(1, 2), 1);
    const trainer = new Trainer({ ...opts, totalSteps: 6 });
    const out = await trainer.run();
    assert.equal(out.state.step, 6);
    assert.equal(out.records.length, 2);
    assert.equal(out.records[1]!.step, 6);
    assert.ok(out.records[1]!.eval !== null);
  });

  it('evalEvery evaluates every n-th epoch and always the last; 0 only the last', async () => {
    for (const [every, evaluated] of [[2, [2, 4, 5]], [0, [5]], [1, [1, 2, 3, 4, 5]]] as const) {
      const out = await new Trainer(trainerOptions(new TinyNet(1, 2), 5, { evalEvery: every })).run();
      const got = out.records.filter((r) => r.eval !== null).map((r) => r.epoch);
      assert.deepEqual(got, evaluated, `evalEvery ${every}`);
      assert.equal(out.records.length, 5);
      assert.equal(out.lastEval?.count, 32);
      // The best weights are chosen among the evaluated epochs only.
      assert.ok(out.state.best !== null && (evaluated as readonly number[]).includes(out.state.best.epoch));
    }
  });

  it('counts the time the steps wait for the loader in dataSeconds', async () => {
    // A data set that takes at least 30 ms to read each batch (as a slow disk would).
    class SlowSet extends InMemoryDataset {
      override async readImages(indices: ArrayLike<number>, out: Uint8Array): Promise<void> {
        await new Promise((resolve) => setTimeout(resolve, 30));
        this.readImagesSync(indices, out);
      }
    }
    const fast = brightnessSet(64, 1);
    const slow = new SlowSet('slow', fast.pixels, fast.labels, 6, 6, 1, ['dark', 'bright']);
    const opts = trainerOptions(new TinyNet(1, 2), 1);
    const trainLoader = new DataLoader(slow, { batchSize: 16, shuffle: true, seed: 5 });
    const out = await new Trainer({ ...opts, trainLoader }).run();
    const r = out.records[0]!;
    // The epoch's first batch is read while no step runs (later ones overlap with the step before).
    assert.ok(r.dataSeconds >= 0.025, `dataSeconds ${r.dataSeconds}`);
    assert.ok(r.dataSeconds <= r.epochSeconds, `${r.dataSeconds} of ${r.epochSeconds}`);
  });

  it('a NaN in a batch stops the run at that step, naming the step, lr and the intact last checkpoint', async () => {
    const dir = join(tempDir('nan'), 'run');
    const run = RunFolder.create(dir, {});
    // 4 steps per epoch: the NaN comes on step 6, after the epoch-1 checkpoint.
    const model = new Poisoned(new TinyNet(1, 2), [6]);
    const trainer = new Trainer(trainerOptions(model, 3, { run }));
    await assert.rejects(trainer.run(), (e: unknown) => {
      assert.ok(e instanceof TrainingDivergedError);
      // Where the NaN first shows (the loss, or only the gradient) depends on how ReLU treats NaN.
      assert.match(e.message, /^non-finite (loss \(NaN\)|gradient \(norm NaN\)) at step 6 \(epoch 2, batch 2, lr [0-9.e-]+\); the last good checkpoint is .*step-000000004\.safetensors/);
      assert.match(e.message, /resnet train --resume /);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    const ckpt = loadCheckpoint(run.checkpointPath(4));
    assert.equal(ckpt.state.step, 4);
    assert.ok(Object.values(ckpt.tensors).every((t) => t.data.every(Number.isFinite)));
  });

  it('with onNan skip, the poisoned step is skipped and training goes on with finite weights', async () => {
    const model = new Poisoned(new TinyNet(1, 2), [3]);
    const out = await new Trainer(trainerOptions(model, 2, { onNan: 'skip' })).run();
    assert.equal(out.status, 'finished');
    assert.equal(out.records[0]!.skippedSteps, 1);
    assert.equal(out.records[1]!.skippedSteps, 0);
    for (const [k, t] of Object.entries(model.stateDict())) assert.ok(t.data.every(Number.isFinite), `${k} is not finite`);
  });

  it('writes metrics.jsonl, checkpoints (newest kept), best and no final without a card', async () => {
    const dir = join(tempDir('runfolder'), 'run');
    const run = RunFolder.create(dir, {});
    const out = await new Trainer(trainerOptions(new TinyNet(1, 2), 3, { run, keepCheckpoints: 2 })).run();
    const lines = run.readMetrics();
    assert.deepEqual(lines.map((l) => l['epoch']), [1, 2, 3]);
    assert.deepEqual(run.listCheckpoints().map((c) => c.step), [12, 8]);
    assert.equal(out.checkpoint, run.checkpointPath(12));
    assert.ok(!existsSync(run.finalPath));
  });

  it('a damaged checkpoint fails its checksum with a one-line error', async () => {
    const dir = join(tempDir('damaged'), 'run');
    const run = RunFolder.create(dir, {});
    const model = new TinyNet(1, 2);
    const opts = trainerOptions(model, 1);
    const path = run.checkpointPath(1);
    saveCheckpoint(path, {
      model, optimizer: opts.optimizer, ema: null, config: { a: 1 },
      state: {
        epoch: 0, batchInEpoch: 1, step: 1, epochTotals: { lossSum: 0, lossCount: 0, correct: 0, seen: 0, skipped: 0, seconds: 0 },
        best: null, rng: new Rng(1).getState(), optimizerGroups: opts.optimizer.stateDict().groups, emaUpdates: null,
      },
    });
    assert.equal(loadCheckpoint(path).state.step, 1);
    const { readFileSync, writeFileSync } = await import('node:fs');
    const bytes = readFileSync(path);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x40;
    writeFileSync(path, bytes);
    assert.throws(() => loadCheckpoint(path), (e: unknown) => e instanceof WeightsFileError && /checksum mismatch: the checkpoint is damaged$/.test(e.message));
  });
});
