// The record of a run: one line of metrics.jsonl per finished epoch. This is the one
// definition of its fields and the one parser of the file's lines; the Trainer writes
// records, RunFolder stores and reads them, reports and resumed runs read them back.

export interface EvalSummary {
  split: 'test' | 'val';
  loss: number;
  top1: number;
  top5: number;
  perClass: number[];
}

/** One line of metrics.jsonl. */
export interface EpochRecord {
  /** 1-based number of the finished epoch. */
  epoch: number;
  step: number;
  lr: number;
  /** Mean over the steps taken (not skipped); null when every step of the epoch was skipped. */
  trainLoss: number | null;
  trainTop1: number | null;
  eval: EvalSummary | null;
  /** Whether `eval` is of the weight average. */
  ema: boolean;
  skippedSteps: number;
  epochSeconds: number;
  /** Of epochSeconds, the time the steps waited for the loader's batches (reading, augmenting). */
  dataSeconds: number;
  imagesPerSecond: number;
  time: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A parsed metrics.jsonl line as a record; null when it is not one (no epoch number).
 * Fields an older version did not write read as NaN (numbers), null or 0 (dataSeconds).
 */
export function parseEpochRecord(r: unknown): EpochRecord | null {
  if (!isObject(r) || typeof r['epoch'] !== 'number') return null;
  const num = (k: string): number => (typeof r[k] === 'number' ? r[k] : Number.NaN);
  const known = (k: string): number | null => (typeof r[k] === 'number' ? r[k] : null);
  const ev = r['eval'];
  let evalSummary: EvalSummary | null = null;
  if (isObject(ev)) {
    const n = (k: string): number => (typeof ev[k] === 'number' ? ev[k] : Number.NaN);
    evalSummary = {
      split: ev['split'] === 'val' ? 'val' : 'test', loss: n('loss'), top1: n('top1'), top5: n('top5'),
      perClass: Array.isArray(ev['perClass']) ? ev['perClass'].map((x) => (typeof x === 'number' ? x : Number.NaN)) : [],
    };
  }
  return {
    epoch: num('epoch'), step: num('step'), lr: num('lr'), trainLoss: known('trainLoss'), trainTop1: known('trainTop1'),
    eval: evalSummary, ema: r['ema'] === true, skippedSteps: num('skippedSteps'), epochSeconds: num('epochSeconds'),
    dataSeconds: known('dataSeconds') ?? 0, imagesPerSecond: num('imagesPerSecond'), time: typeof r['time'] === 'string' ? r['time'] : '',
  };
}

/** One record as its metrics.jsonl line. */
export function epochRecordLine(r: EpochRecord): string {
  return `${JSON.stringify(r)}\n`;
}

/**
 * The values of JSON-lines text (metrics.jsonl, steps.jsonl) that `accept` takes. A line
 * that does not parse, the torn last line of a crash while appending, is dropped: it is
 * rewritten when its step or epoch is redone.
 */
export function parseJsonLines<T>(text: string, accept: (v: unknown) => T | null): T[] {
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    const r = accept(v);
    if (r !== null) out.push(r);
  }
  return out;
}

/** The records of metrics.jsonl text; a torn last line and foreign lines are dropped. */
export function parseEpochRecords(text: string): EpochRecord[] {
  return parseJsonLines(text, parseEpochRecord);
}
