// Resume: a run stopped after epoch k (or in the middle of an epoch) and continued from
// its checkpoint takes exactly the steps of an unbroken run: bit-identical weights,
// BN statistics, momentum buffers, weight average and metrics; with one model and with
// two replicas sharing each batch.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_CONFIG, finishConfig, mergeConfig, type TrainConfig } from '../src/train/config.js';
import { RunFolder } from '../src/train/run-folder.js';
import { prepareRun, type PreparedRun } from '../src/train/setup.js';
import { applyResume, planResume, trainerForRun } from '../src/train/run-training.js';
import type { EpochRecord, Trainer, TrainerListener } from '../src/train/trainer.js';
import { tempDir, writeIdxFolder } from './helpers/data-files.js';

type Snapshot = Record<string, Float32Array>;

function recipe(dataDir: string, replicas: number): TrainConfig {
  // Every stateful piece is on: Nesterov momentum, no-decay groups, warmup + cosine,
  // label smoothing, EMA, crop + flip + random erasing, mixup and CutMix on most batches.
  return finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, {
    model: 'resnet20', dataset: 'fashion-mnist', data: dataDir, epochs: 3, batchSize: 8, evalBatchSize: 16,
    lr: 0.05, warmup: 1, ema: 0.9, randomErasing: 0.5, cropPadding: 1, mixup: 0.4, cutmix: 1, mixProb: 0.8, seed: 7, keepCheckpoints: 3, replicas,
  }, 'test'), 'test');
}

const trainers: Trainer[] = [];
after(async () => { await Promise.all(trainers.map((t) => t.close())); });

interface Made {
  trainer: Trainer;
  parts: PreparedRun;
}

async function makeTrainer(config: TrainConfig, run: RunFolder, listener: (m: Made) => TrainerListener): Promise<Made> {
  const parts = await prepareRun(config);
  const made: Made = { parts, trainer: null! };
  made.trainer = trainerForRun(parts, run, listener(made));
  trainers.push(made.trainer);
  return made;
}

/** Everything a step depends on, copied: weights, BN buffers, momentum, EMA. */
function snapshot({ parts }: Made): Snapshot {
  const out: Snapshot = {};
  for (const [k, t] of Object.entries(parts.model.stateDict())) out[`model.${k}`] = t.data.slice();
  parts.optimizer.stateDict().momentumBuffers.forEach((b, i) => { if (b) out[`momentum.${i}`] = b; });
  for (const [k, t] of Object.entries(parts.ema!.shadow)) out[`ema.${k}`] = t.data.slice();
  return out;
}

function assertSame(actual: Snapshot, expected: Snapshot, what: string): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(actual[k], v, `${what}: ${k} differs`);
}

function withoutTimes(records: EpochRecord[]): unknown[] {
  return records.map(({ time: _t, epochSeconds: _s, dataSeconds: _d, imagesPerSecond: _i, ...rest }) => rest);
}

for (const replicas of [1, 2]) describe(`resume, ${replicas === 1 ? 'one model' : `${replicas} replicas`}`, () => {
  const root = tempDir('resume');
  const data = join(root, 'data');
  writeIdxFolder(data, 24, 8, 8, 8);
  const config = recipe(data, replicas);
  let unbroken: { perEpoch: Snapshot[]; records: EpochRecord[] } | null = null;

  async function unbrokenRun(): Promise<{ perEpoch: Snapshot[]; records: EpochRecord[] }> {
    if (unbroken) return unbroken;
    const perEpoch: Snapshot[] = [];
    const a = await makeTrainer(config, RunFolder.create(join(root, 'a'), config), (m) => ({ onEpoch: () => perEpoch.push(snapshot(m)) }));
    const out = await a.trainer.run();
    assert.equal(out.status, 'finished');
    unbroken = { perEpoch, records: out.records };
    return unbroken;
  }

  async function resumeAndFinish(run: RunFolder): Promise<{ perEpoch: Snapshot[]; records: EpochRecord[] }> {
    const perEpoch: Snapshot[] = [];
    // The library's resume: the run's saved recipe and its newest checkpoint.
    const plan = planResume(run.dir);
    assert.equal(plan.checkpoint?.file, run.listCheckpoints()[0]!.path);
    const b = await makeTrainer(plan.config, plan.run, (m) => ({ onEpoch: () => perEpoch.push(snapshot(m)) }));
    applyResume(b.trainer, plan);
    const out = await b.trainer.run();
    assert.equal(out.status, 'finished');
    return { perEpoch, records: out.records };
  }

  it('stopped after epoch 1 and resumed: epochs 2 and 3 are bit-identical to an unbroken run', async () => {
    const a = await unbrokenRun();
    const run = RunFolder.create(join(root, 'b'), config);
    const b = await makeTrainer(config, run, (m) => ({ onEpoch: (r) => { if (r.epoch === 1) m.trainer.requestStop(); } }));
    const stopped = await b.trainer.run();
    assert.equal(stopped.status, 'stopped');
    assert.equal(stopped.state.epoch, 1);
    const resumed = await resumeAndFinish(run);
    assert.equal(resumed.perEpoch.length, 2);
    assertSame(resumed.perEpoch[0]!, a.perEpoch[1]!, 'epoch 2');
    assertSame(resumed.perEpoch[1]!, a.perEpoch[2]!, 'epoch 3');
    assert.deepEqual(withoutTimes(resumed.records), withoutTimes(a.records));
    assert.deepEqual(run.readMetrics().map((r) => r['epoch']), [1, 2, 3]);
  });

  it('stopped in the middle of epoch 2 and resumed: the same end as an unbroken run', async () => {
    const a = await unbrokenRun();
    const run = RunFolder.create(join(root, 'c'), config);
    // 3 steps per epoch: stop after step 4, the first batch of epoch 2.
    const c = await makeTrainer(config, run, (m) => ({ onStep: (p) => { if (p.step === 4) m.trainer.requestStop(); } }));
    const stopped = await c.trainer.run();
    assert.equal(stopped.status, 'stopped');
    assert.deepEqual([stopped.state.epoch, stopped.state.batchInEpoch, stopped.state.step], [1, 1, 4]);
    const resumed = await resumeAndFinish(run);
    assertSame(resumed.perEpoch[0]!, a.perEpoch[1]!, 'epoch 2');
    assertSame(resumed.perEpoch[1]!, a.perEpoch[2]!, 'epoch 3');
    assert.deepEqual(withoutTimes(resumed.records), withoutTimes(a.records));
  });
});
