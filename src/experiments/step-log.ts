// steps.jsonl in a run folder: the loss and top-1 of every training batch, for the
// per-iteration curves of the reports (He et al. 2015, Fig. 1 and Fig. 6 plot training
// error against iterations). Lines are buffered, and flushed to disk before each
// checkpoint is written: every step a checkpoint covers is in the log, so a run resumed
// from it (which cuts the log back to the checkpoint's step) logs what an unbroken run does.
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { parseJsonLines } from '../train/records.js';
import type { EpochRecord, StepProgress, TrainerListener } from '../train/trainer.js';

export const STEPS_FILE = 'steps.jsonl';

/** One line of steps.jsonl. */
export interface StepLine {
  step: number;
  epoch: number;
  /** Training loss of that batch alone (null: the step was skipped, non-finite). */
  loss: number | null;
  top1: number | null;
  /** The learning rate the step was taken with. */
  lr: number;
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

export class StepLog implements TrainerListener {
  private pending: string[] = [];
  readonly path: string;

  /** `inner` still receives every event (e.g. a progress bar). */
  constructor(runDir: string, private readonly inner: TrainerListener = {}) {
    this.path = join(runDir, STEPS_FILE);
  }

  /** Forget lines of steps after `step` (a resumed run redoes them). */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readStepLines(this.path).filter((l) => l.step <= step);
    writeFileAtomic(this.path, kept.map((l) => `${JSON.stringify(l)}\n`).join(''));
  }

  onStep(p: StepProgress): void {
    const line: StepLine = { step: p.step, epoch: p.epoch, loss: finiteOrNull(p.batchLoss), top1: finiteOrNull(p.batchTop1), lr: p.batchLr };
    this.pending.push(`${JSON.stringify(line)}\n`);
    this.inner.onStep?.(p);
  }

  onEvalBatch(done: number, total: number): void {
    this.inner.onEvalBatch?.(done, total);
  }

  /** Before a checkpoint of `step` is written: the steps it covers go to disk first. */
  onCheckpoint(step: number): void {
    this.flush(true);
    this.inner.onCheckpoint?.(step);
  }

  onEpoch(r: EpochRecord): void {
    this.flush();
    this.inner.onEpoch?.(r);
  }

  /** Append the buffered lines; `sync`: and flush them to the disk (as the checkpoint after them is). */
  flush(sync = false): void {
    if (this.pending.length === 0) return;
    appendFileSync(this.path, this.pending.join(''));
    this.pending = [];
    if (!sync) return;
    const fd = openSync(this.path, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

function isStepLine(v: unknown): v is StepLine {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  const numOrNull = (x: unknown): boolean => x === null || typeof x === 'number';
  return typeof r.step === 'number' && typeof r.epoch === 'number' && typeof r.lr === 'number' && numOrNull(r.loss) && numOrNull(r.top1);
}

/** The lines of a steps.jsonl; a torn last line (a crash while appending) is dropped. */
export function readStepLines(path: string): StepLine[] {
  return parseJsonLines(readFileSync(path, 'utf8'), (v) => (isStepLine(v) ? v : null));
}
