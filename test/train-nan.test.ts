// Numerical guards of the training loop: a NaN injected into a batch, a NaN weight and an
// infinite gradient each stop the run at that very step with a one-line message naming
// the step, the learning rate and the last good checkpoint, and that checkpoint is
// intact. --on-nan skip steps over the bad batch; --clip-grad-norm bounds each update.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Batch, DataLoader, InMemoryDataset, Normalize } from '../src/data/index.js';
import { Module, type Parameter } from '../src/nn/module.js';
import { CosineAnnealingLR } from '../src/optim/schedules.js';
import { SGD } from '../src/optim/sgd.js';
import { Rng } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { clipGradNorm, gradNorm } from '../src/train/grads.js';
import { RunFolder } from '../src/train/run-folder.js';
import { Trainer, TrainingDivergedError, type TrainerOptions } from '../src/train/trainer.js';
import { readRunData } from '../src/experiments/run-data.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/data-files.js';
import { TinyNet } from './helpers/tiny-net.js';

/** Dark (class 0) and bright (class 1) 6x6 images with noise. */
function brightnessSet(n: number, seed: number): InMemoryDataset {
  const rng = new Rng(seed);
  const px = new Uint8Array(n * 36);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  for (let i = 0; i < px.length; i++) px[i] = (labels[Math.floor(i / 36)] === 1 ? 150 : 90) + rng.int(60) - 30;
  return new InMemoryDataset('brightness', px, labels, 6, 6, 1, ['dark', 'bright']);
}

type Fault = 'input' | 'weight' | 'gradient';

/** A loader that writes a NaN into the batches of chosen training steps (1-based; 4 batches per epoch). */
class PoisonedLoader extends DataLoader {
  constructor(readonly atSteps: readonly number[]) {
    super(brightnessSet(64, 1), { batchSize: 16, shuffle: true, transform: new Normalize([0.47], [0.15]), seed: 5 });
  }

  override async batch(epoch: number, index: number, order?: Int32Array): Promise<Batch> {
    const b = await super.batch(epoch, index, order);
    if (this.atSteps.includes(epoch * this.numBatches + index + 1)) b.x.data[5] = Number.NaN;
    return b;
  }
}

/** TinyNet that, on chosen training steps (1-based), puts a NaN in a weight or an infinity in a gradient. */
class Faulty extends Module {
  readonly net = new TinyNet(1, 2);
  private calls = 0;
  private poisonGradient = false;

  constructor(readonly fault: Fault, readonly atSteps: readonly number[]) {
    super();
  }

  forward(x: Tensor): Tensor {
    const now = this.training && this.atSteps.includes(++this.calls);
    if (now && this.fault === 'weight') this.net.fc.weight.data[0] = Number.NaN;
    this.poisonGradient = now && this.fault === 'gradient';
    return this.net.forward(x);
  }

  /** The trainer asks for the parameters after the backward pass, to measure the gradients. */
  override parameters(): Parameter[] {
    const params = super.parameters();
    const grad = params[0]?.grad;
    if (this.poisonGradient && grad) {
      grad.data[0] = Number.POSITIVE_INFINITY;
      this.poisonGradient = false;
    }
    return params;
  }
}

const LR = 0.2;

function options(model: Faulty, extra: Partial<TrainerOptions> = {}): TrainerOptions {
  // 4 steps per epoch, 3 epochs, no augmentation: every step is the same in every run.
  const trainLoader = new PoisonedLoader(model.fault === 'input' ? model.atSteps : []);
  const optimizer = new SGD(model.parameters(), { lr: LR, momentum: 0.9 });
  return {
    model, optimizer, scheduler: new CosineAnnealingLR(optimizer, 12), trainLoader, evalLoader: null, numClasses: 2, totalSteps: 12,
    ...extra,
  };
}

/** The cosine schedule's lr for step `step` (1-based) of 12: the value the message must show. */
function lrAtStep(step: number): string {
  return (LR * (1 + Math.cos((Math.PI * (step - 1)) / 12)) / 2).toPrecision(4);
}

describe('non-finite values stop the run at their step', () => {
  const cases: [Fault, RegExp][] = [
    ['input', /^non-finite input \(1 of 576 values NaN or infinite\)/],
    ['weight', /^non-finite loss \(NaN\)/],
    ['gradient', /^non-finite gradient \(norm Infinity\)/],
  ];
  for (const [fault, what] of cases) {
    it(`a ${fault === 'input' ? 'NaN in the batch' : fault === 'weight' ? 'NaN weight' : 'n infinite gradient'} at step 7: message names step, lr and the intact last checkpoint`, async () => {
      const dir = join(tempDir(`nan-${fault}`), 'run');
      const run = RunFolder.create(dir, {});
      // Checkpoints after steps 2, 4 (epoch end) and 6: the last good one is step 6.
      const trainer = new Trainer(options(new Faulty(fault, [7]), { run, checkpointEvery: 2, keepCheckpoints: 5 }));
      const lastGood = run.checkpointPath(6);
      let message = '';
      await assert.rejects(trainer.run(), (e: unknown) => {
        assert.ok(e instanceof TrainingDivergedError, String(e));
        message = e.message;
        return true;
      });
      assert.match(message, what);
      assert.ok(message.includes(` at step 7 (epoch 2, batch 3, lr ${lrAtStep(7)}); the last good checkpoint is ${lastGood}. `), message);
      assert.ok(message.endsWith(`Continue with a guard: resnet train --resume ${dir} --clip-grad-norm 1 (or --on-nan skip), or start a new run with a lower --lr`), message);
      assert.ok(!message.includes('\n'), 'one line');
      // The checkpoint loads and passes its checksum; nothing newer was written after the fault.
      assert.deepEqual(run.listCheckpoints().map((c) => c.step), [6, 4, 2]);
      const bytes = readFileSync(lastGood);
      const ckpt = loadCheckpoint(lastGood);
      assert.equal(ckpt.state.step, 6);
      for (const [k, t] of Object.entries(ckpt.tensors)) assert.ok(t.data.every(Number.isFinite), `${k} is not finite`);
      assert.deepEqual(readFileSync(lastGood), bytes);
    });
  }

  it('the checkpoint before the fault resumes to the run the fault interrupted', async () => {
    const dir = join(tempDir('nan-resume'), 'run');
    const run = RunFolder.create(dir, {});
    await assert.rejects(new Trainer(options(new Faulty('input', [7]), { run, checkpointEvery: 2 })).run(), TrainingDivergedError);
    const clean = new Faulty('input', []);
    const resumed = new Trainer(options(clean));
    resumed.resume(loadCheckpoint(run.checkpointPath(6)));
    await resumed.run();
    const reference = new Faulty('input', []);
    await new Trainer(options(reference)).run();
    for (const [k, t] of Object.entries(reference.stateDict())) assert.deepEqual(clean.stateDict()[k]!.data, t.data, `${k} differs`);
  });

  it('--on-nan skip steps over a NaN batch: the step is counted as skipped, weights and BN statistics stay finite', async () => {
    const skipping = new Faulty('input', [3]);
    const out = await new Trainer(options(skipping, { onNan: 'skip' })).run();
    assert.equal(out.status, 'finished');
    assert.equal(out.state.step, 12);
    assert.deepEqual(out.records.map((r) => r.skippedSteps), [1, 0, 0]);
    for (const [k, t] of Object.entries(skipping.stateDict())) assert.ok(t.data.every(Number.isFinite), `${k} is not finite`);
  });
});

describe('--on-nan skip stops a run it cannot save', () => {
  it('more than half of an epoch skipped: the run stops at that step, naming the count and the limit', async () => {
    const dir = join(tempDir('nan-skip-limit'), 'run');
    const run = RunFolder.create(dir, {});
    const trainer = new Trainer(options(new Faulty('input', [5, 6, 7]), { onNan: 'skip', run, keepCheckpoints: 5 }));
    await assert.rejects(trainer.run(), (e: unknown) => {
      assert.ok(e instanceof TrainingDivergedError, String(e));
      assert.equal(e.message, `non-finite input (1 of 576 values NaN or infinite) at step 7 (epoch 2, batch 3, lr ${lrAtStep(7)}); ` +
        `3 of the 4 steps of epoch 2 skipped, more than --max-skipped 0.5 allows; the last good checkpoint is ${run.checkpointPath(4)}. ` +
        `Start a new run with a lower --lr, or continue with clipping: resnet train --resume ${dir} --clip-grad-norm 1`);
      return true;
    });
    // Two of four skipped is half, not more: the run goes on.
    const out = await new Trainer(options(new Faulty('input', [5, 6]), { onNan: 'skip' })).run();
    assert.deepEqual(out.records.map((r) => r.skippedSteps), [0, 2, 0]);
  });

  it('the epoch\'s accuracy is over the steps taken; an epoch without one records null, not 0', async () => {
    const dir = join(tempDir('nan-skip-null'), 'run');
    const run = RunFolder.create(dir, {});
    const batches: { step: number; top1: number }[] = [];
    const trainer = new Trainer(options(new Faulty('input', [2, 5, 6, 7, 8]), {
      onNan: 'skip', maxSkipped: 1, run, listener: { onStep: (p) => batches.push({ step: p.step, top1: p.batchTop1 }) },
    }));
    const out = await trainer.run();
    assert.equal(out.status, 'finished');
    assert.deepEqual(out.records.map((r) => r.skippedSteps), [1, 4, 0]);
    // Epoch 1: three of its four batches of 16 were trained on.
    const taken = batches.filter((b) => b.step <= 4 && b.step !== 2).map((b) => b.top1 * 16);
    assert.equal(out.records[0]!.trainTop1, taken.reduce((a, b) => a + b, 0) / 48);
    assert.deepEqual([out.records[1]!.trainLoss, out.records[1]!.trainTop1], [null, null]);
    const written = readFileSync(run.metricsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual([written[1]!['trainLoss'], written[1]!['trainTop1']], [null, null]);
    // A report reads the unknown values as unknown.
    const epochs = readRunData(dir).epochs;
    assert.ok(Number.isNaN(epochs[1]!.trainLoss) && Number.isNaN(epochs[1]!.trainAccuracy));
    assert.ok(Number.isFinite(epochs[2]!.trainLoss));
  });
});

describe('resnet train diverging (end to end)', () => {
  it('a learning rate of 1e30: one line naming the step, lr and last checkpoint, exit 1; --resume with --on-nan skip goes on', () => {
    const out = tempDir('cli-diverge');
    const runDir = join(out, 'x');
    const r = runCli(['train', '--lr', '1e30', '--warmup', '0', '--subset', '128', '--test-subset', '32', '--iterations', '6',
      '--batch-size', '32', '--checkpoint-every', '1', '--out', out, '--name', 'x', '--no-progress']);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    const m = /^resnet: non-finite (loss \(NaN\)|loss \(Infinity\)|gradient \(norm (NaN|Infinity)\)) at step (\d+) \(epoch 1, batch \d+, lr [0-9.]+e\+29\); the last good checkpoint is (\S+step-(\d+)\.safetensors)\. Continue with a guard: resnet train --resume (\S+) --clip-grad-norm 1 \(or --on-nan skip\), or start a new run with a lower --lr$/.exec(lines[0]!);
    assert.ok(m, lines[0]);
    const [step, checkpoint, checkpointStep, dir] = [Number(m[3]), m[4]!, Number(m[5]), m[6]!];
    assert.equal(checkpointStep, step - 1, 'the checkpoint of the step before');
    assert.equal(dir, runDir);
    assert.equal(loadCheckpoint(checkpoint).state.step, step - 1);

    // Every later step is NaN too: skipping them cannot save the run, so it stops once more than half of an epoch is skipped.
    const resumed = runCli(['train', '--resume', runDir, '--on-nan', 'skip', '--no-progress']);
    assert.equal(resumed.status, 1, resumed.stderr);
    assert.match(resumed.stderr, /resnet: from here on: --on-nan skip \(saved in .*config\.json\)/);
    assert.match(resumed.stderr, new RegExp(`resnet: resuming from ${checkpoint.replace(/[.]/g, '\\.')}`));
    const stopped = resumed.stderr.trim().split('\n').pop()!;
    assert.match(stopped, /^resnet: non-finite .* at step \d+ \(epoch 1, batch \d+, lr [0-9.]+e\+29\); \d of the \d steps of epoch \d skipped, more than --max-skipped 0\.5 allows; the last good checkpoint is \S+\. Start a new run with a lower --lr, or continue with clipping: resnet train --resume \S+ --clip-grad-norm 1$/);
    // Allowed to skip every step, the run finishes; what it cannot know is null, not 0.
    const unguarded = runCli(['train', '--resume', runDir, '--max-skipped', '1', '--no-progress']);
    assert.equal(unguarded.status, 0, unguarded.stderr);
    const records = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n')
      .map((line) => JSON.parse(line) as { skippedSteps: number; trainLoss: number | null; trainTop1: number | null });
    assert.equal(records.length, 2);
    assert.equal(typeof records[0]!.trainLoss, 'number', 'the first step, before the weights blew up, was taken');
    assert.deepEqual([records[1]!.skippedSteps, records[1]!.trainLoss, records[1]!.trainTop1], [2, null, null]);
    assert.match(unguarded.stdout, /^epoch 2\/2 {2}train loss n\/a acc n\/a  .*2 steps skipped/m);
    assert.equal((JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as { onNan: string }).onNan, 'skip');
    const refused = runCli(['train', '--resume', runDir, '--lr', '0.1']);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /leave out --lr \(or start a new run\); only --on-nan, --max-skipped, --clip-grad-norm, --checkpoint-every, --keep-checkpoints may change/);
  });
});

describe('gradient norm and clipping', () => {
  it('gradNorm is the global L2 norm, and not finite when any gradient is not', () => {
    const model = new TinyNet(1, 2);
    const params = model.parameters();
    let expected = 0;
    params.forEach((p, i) => {
      p.grad = new Tensor(Float32Array.from({ length: p.size }, (_, j) => ((i + 1) * (j - 2)) / 10), p.shape);
      for (const v of p.grad.data) expected += v * v;
    });
    assert.ok(Math.abs(gradNorm(params) - Math.sqrt(expected)) < 1e-9 * Math.sqrt(expected));
    params[1]!.grad!.data[0] = Number.NaN;
    assert.ok(Number.isNaN(gradNorm(params)));
    params[1]!.grad!.data[0] = Number.NEGATIVE_INFINITY;
    assert.equal(gradNorm(params), Number.POSITIVE_INFINITY);
  });

  it('clipGradNorm scales to max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_, and leaves small gradients alone', () => {
    const model = new TinyNet(1, 2);
    const params = model.parameters();
    for (const p of params) p.grad = new Tensor(Float32Array.from({ length: p.size }, (_, j) => (j % 5) - 2), p.shape);
    const before = params.map((p) => p.grad!.data.slice());
    const norm = gradNorm(params);
    clipGradNorm(params, 1.5);
    const factor = 1.5 / (norm + 1e-6);
    params.forEach((p, i) => p.grad!.data.forEach((v, j) => assert.equal(v, Math.fround(before[i]![j]! * factor))));
    assert.ok(Math.abs(gradNorm(params) - 1.5) < 1e-5);
    const after = params.map((p) => p.grad!.data.slice());
    clipGradNorm(params, 10);
    params.forEach((p, i) => assert.deepEqual(p.grad!.data, after[i]));
  });

  it('a training step with --clip-grad-norm c moves the weights by at most lr * c', async () => {
    const model = new TinyNet(1, 2);
    const clip = 1e-3;
    const trainLoader = new DataLoader(brightnessSet(64, 1), { batchSize: 16, transform: new Normalize([0.47], [0.15]) });
    const optimizer = new SGD(model.parameters(), { lr: 0.5, momentum: 0 });
    const before = model.parameters().map((p) => p.data.slice());
    const trainer = new Trainer({
      model, optimizer, scheduler: new CosineAnnealingLR(optimizer, 1000), trainLoader, evalLoader: null, numClasses: 2, totalSteps: 1,
      clipGradNorm: clip,
    });
    await trainer.run();
    let moved = 0;
    model.parameters().forEach((p, i) => p.data.forEach((v, j) => { moved += (v - before[i]![j]!) ** 2; }));
    assert.ok(Math.sqrt(moved) > 0.5 * clip * 0.5, `the step moved the weights (${Math.sqrt(moved)})`);
    assert.ok(Math.sqrt(moved) <= 0.5 * clip * (1 + 1e-5), `update norm ${Math.sqrt(moved)} > lr * clip`);
  });
});
