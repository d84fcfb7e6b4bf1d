// A one-line progress display on stderr. On a terminal the line is redrawn in place
// (at most every 100 ms, cut to the terminal width); into a file or pipe a line is
// written now and then (every 30 s by default), so logs stay readable.
import type { StepProgress, TrainerListener } from './trainer.js';

export interface ProgressStream {
  write(s: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export class ProgressLine {
  private lastDraw = 0;
  private shown = false;

  constructor(readonly stream: ProgressStream, readonly opts: { ttyIntervalMs?: number; logIntervalMs?: number } = {}) {}

  get tty(): boolean {
    return this.stream.isTTY === true;
  }

  /** Show `text` as the current state; drawn now or soon depending on the interval. */
  update(text: string, force = false): void {
    const now = Date.now();
    const interval = this.tty ? (this.opts.ttyIntervalMs ?? 100) : (this.opts.logIntervalMs ?? 30_000);
    if (!force && now - this.lastDraw < interval) return;
    this.lastDraw = now;
    if (this.tty) {
      // A pseudo-terminal may report 0 columns.
      const width = Math.max(20, (this.stream.columns || 100) - 1);
      this.stream.write(`\r${text.length > width ? text.slice(0, width) : text}\x1b[K`);
      this.shown = true;
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  /** Remove the line from a terminal (nothing to do in a log). */
  clear(): void {
    if (this.tty && this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}

function bar(done: number, total: number, width = 20): string {
  const filled = Math.round((width * done) / Math.max(1, total));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** The progress line of a training step: epoch, batch, loss, accuracy, speed, ETA. */
export function formatStep(p: StepProgress): string {
  const remainingSteps = p.totalSteps - p.step;
  const stepsPerSecond = p.imagesPerSecond / Math.max(1, p.batchSize);
  const eta = remainingSteps / Math.max(1e-9, stepsPerSecond);
  // Most telling first: a narrow terminal cuts the end of the line.
  // Loss and accuracy are NaN while every step of the epoch so far was skipped (--on-nan skip).
  const acc = Number.isFinite(p.top1) ? `${(100 * p.top1).toFixed(2)}%` : 'n/a';
  return `epoch ${p.epoch}/${p.epochs} ${p.batch}/${p.batches} loss ${Number.isFinite(p.loss) ? p.loss.toFixed(4) : 'n/a'} acc ${acc} ` +
    `${Math.round(p.imagesPerSecond)} img/s ETA ${formatDuration(eta)} lr ${p.lr.toPrecision(3)} ${bar(p.batch, p.batches)}`;
}

/** A trainer listener that draws the progress line. */
export function progressListener(line: ProgressLine): TrainerListener {
  return {
    onStep: (p) => line.update(formatStep(p), p.batch === 1),
    onEvalBatch: (done, total) => line.update(`evaluating ${bar(done, total)} ${done}/${total}`, false),
  };
}
