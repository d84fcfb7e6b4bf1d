// Reading a run folder for its report: metrics.jsonl (the trainer's epoch records),
// steps.jsonl (per-iteration records), and what happens when pieces are missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StepLog, readStepLines } from '../src/experiments/step-log.js';
import { readRunData } from '../src/experiments/run-data.js';
import { loadRunForReport, writeRunReport } from '../src/experiments/run-report.js';
import type { StepProgress } from '../src/train/trainer.js';
import { tempDir } from './helpers/data-files.js';

function progress(step: number, loss: number, top1: number, lr: number): StepProgress {
  return {
    epoch: step <= 2 ? 1 : 2, epochs: 2, batch: ((step - 1) % 2) + 1, batches: 2, step, totalSteps: 4,
    loss: 0, top1: 0, lr: lr / 10, imagesPerSecond: 100, batchSize: 8, batchLoss: loss, batchTop1: top1, batchLr: lr,
  };
}

const EPOCH = { epoch: 1, step: 2, lr: 0.1, trainLoss: 2, trainTop1: 0.25, eval: null, ema: false, skippedSteps: 0, epochSeconds: 1, dataSeconds: 0.1, imagesPerSecond: 16, time: '' };

test('steps.jsonl holds each step\'s own loss, top-1 and lr; flushed at epoch ends; truncated on resume', () => {
  const dir = tempDir('step-log');
  try {
    const seen: number[] = [];
    const log = new StepLog(dir, { onStep: (p) => seen.push(p.step) });
    log.onStep(progress(1, 2.5, 0.125, 0.1));
    log.onStep(progress(2, Number.NaN, Number.NaN, 0.1));
    assert.throws(() => readFileSync(log.path), /ENOENT/, 'nothing written before the epoch ends');
    log.onEpoch(EPOCH);
    log.onStep(progress(3, 1.5, 0.5, 0.01));
    log.flush();
    assert.deepEqual(seen, [1, 2, 3], 'the wrapped listener sees every step');
    assert.deepEqual(readStepLines(log.path), [
      { step: 1, epoch: 1, loss: 2.5, top1: 0.125, lr: 0.1 },
      { step: 2, epoch: 1, loss: null, top1: null, lr: 0.1 },
      { step: 3, epoch: 2, loss: 1.5, top1: 0.5, lr: 0.01 },
    ]);
    // A line torn by a crash is dropped; a resume from step 2 forgets step 3.
    appendFileSync(log.path, '{"step": 4, "epo');
    assert.equal(readStepLines(log.path).length, 3);
    log.truncateAfter(2);
    assert.deepEqual(readStepLines(log.path).map((l) => l.step), [1, 2]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run folder reads into the report\'s records; without weights the report says so', async () => {
  const dir = join(tempDir('run-folder'), 'run-3');
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'resnet20', dataset: 'fashion-mnist', epochs: 2 }));
    const lines = [
      { ...EPOCH, eval: { split: 'test', loss: 1.5, top1: 0.6, top5: 0.9, perClass: [] } },
      { ...EPOCH, epoch: 2, step: 4, trainLoss: 1.2, trainTop1: 0.55, eval: { split: 'test', loss: 1.1, top1: 0.7, top5: 0.95, perClass: [] } },
    ];
    writeFileSync(join(dir, 'metrics.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    writeFileSync(join(dir, 'steps.jsonl'), '{"step":1,"epoch":1,"loss":2.5,"top1":0.25,"lr":0.1}\n{"step":2,"epoch":1,"loss":null,"top1":null,"lr":0.1}\n');
    const run = readRunData(dir);
    assert.equal(run.name, 'run-3');
    assert.deepEqual(run.epochs.map((e) => [e.epoch, e.iteration, e.trainLoss, e.trainAccuracy, e.testLoss, e.testAccuracy]),
      [[1, 2, 2, 0.25, 1.5, 0.6], [2, 4, 1.2, 0.55, 1.1, 0.7]]);
    assert.deepEqual(run.steps[0], { iteration: 1, epoch: 1, loss: 2.5, error: 0.75, lr: 0.1 });
    assert.ok(Number.isNaN(run.steps[1]!.loss) && Number.isNaN(run.steps[1]!.error));

    const withNote = await loadRunForReport(dir);
    assert.equal(withNote.evaluation, undefined);
    assert.match(withNote.evaluationNote ?? '', /could not be evaluated: .*best\.safetensors or final\.safetensors/);
    const page = readFileSync(await writeRunReport(dir), 'utf8');
    assert.match(page, /could not be evaluated/);
    assert.match(page, /data-metric="final-test-accuracy"><div class="value">70\.00%/);
    assert.throws(() => readRunData(join(dir, 'nope')), /no such folder/);
    assert.throws(() => readRunData(join(dir, '..')), /not a run folder \(no config\.json\)/);
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
});
