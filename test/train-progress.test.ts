import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, formatStep, ProgressLine } from '../src/train/progress.js';
import type { StepProgress } from '../src/train/trainer.js';

function fakeStream(isTTY: boolean, columns = 60): { write: (s: string) => boolean; isTTY: boolean; columns: number; out: string[] } {
  const out: string[] = [];
  return { out, isTTY, columns, write: (s: string) => { out.push(s); return true; } };
}

const step: StepProgress = {
  epoch: 2, epochs: 30, batch: 100, batches: 469, step: 569, totalSteps: 14070, loss: 0.41234, top1: 0.8512, lr: 0.0987,
  imagesPerSecond: 640, batchSize: 128, batchLoss: 0.4, batchTop1: 0.85, batchLr: 0.0987,
};

describe('progress line', () => {
  it('shows epoch, batch, running loss and accuracy, speed, ETA and lr', () => {
    // (14070 - 569) steps at 640 / 128 = 5 steps/s: 2700 s = 45 minutes.
    assert.equal(formatStep(step), 'epoch 2/30 100/469 loss 0.4123 acc 85.12% 640 img/s ETA 45m00s lr 0.0987 [####----------------]');
    assert.equal(formatDuration(3725), '1h02m');
    assert.equal(formatDuration(42), '42s');
  });

  it('redraws in place on a terminal, cut to its width, at most every interval', () => {
    const s = fakeStream(true, 30);
    const line = new ProgressLine(s, { ttyIntervalMs: 60_000 });
    line.update('a'.repeat(50), true);
    line.update('dropped: too soon');
    line.clear();
    assert.deepEqual(s.out, [`\r${'a'.repeat(29)}\x1b[K`, '\r\x1b[K']);
  });

  it('writes whole lines, rarely, into a log', () => {
    const s = fakeStream(false);
    const line = new ProgressLine(s, { logIntervalMs: 60_000 });
    line.update('first', true);
    line.update('second');
    line.clear();
    assert.deepEqual(s.out, ['first\n']);
  });
});
