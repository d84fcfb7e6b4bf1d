// Reading a `resnet train` run folder (config.json, metrics.jsonl, steps.jsonl) into
// what the reports show.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { RunFolder, RunFolderError } from '../train/run-folder.js';
import type { EpochRecord, RunData, StepRecord } from '../report/run-data.js';
import type { EpochRecord as MetricsRecord } from '../train/records.js';
import { readStepLines, STEPS_FILE } from './step-log.js';

function asObject(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...v } : null;
}

/** A run's record (src/train/records.ts) as a report's epoch point (unknown values NaN). */
export function epochFromMetrics(r: MetricsRecord): EpochRecord {
  return {
    epoch: r.epoch,
    iteration: r.step,
    trainLoss: r.trainLoss ?? Number.NaN,
    trainAccuracy: r.trainTop1 ?? Number.NaN,
    testLoss: r.eval?.loss ?? Number.NaN,
    testAccuracy: r.eval?.top1 ?? Number.NaN,
    lr: r.lr,
    imagesPerSecond: r.imagesPerSecond,
    seconds: r.epochSeconds,
  };
}

export function readSteps(dir: string): StepRecord[] {
  const path = join(dir, STEPS_FILE);
  if (!existsSync(path)) return [];
  return readStepLines(path).map((l) => ({
    iteration: l.step, epoch: l.epoch, loss: l.loss ?? Number.NaN, error: l.top1 === null ? Number.NaN : 1 - l.top1, lr: l.lr,
  }));
}

/** The run's config, epochs and per-iteration records; evaluation is added by the caller. */
export function readRunData(dir: string): RunData {
  if (!existsSync(dir)) throw new RunFolderError(`${dir}: no such folder; give the folder a \`resnet train\` run wrote`);
  if (!existsSync(join(dir, 'config.json'))) {
    throw new RunFolderError(`${dir}: not a run folder (no config.json); give the folder a \`resnet train\` run wrote`);
  }
  // Not RunFolder.open: reading a report must not create anything in the folder.
  const folder = new RunFolder(dir);
  const config = asObject(folder.readConfig());
  if (config === null) throw new RunFolderError(`${folder.configPath}: expected a JSON object of training settings`);
  const epochs = folder.readMetrics().map(epochFromMetrics);
  return { name: basename(resolve(dir)), config, steps: readSteps(dir), epochs };
}
