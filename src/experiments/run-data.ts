// Reading a `resnet train` run folder (config.json, metrics.jsonl, steps.jsonl) into
// what the reports show.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { RunFolder, RunFolderError } from '../train/run-folder.js';
import type { EpochRecord, RunData, StepRecord } from '../report/run-data.js';
import { readStepLines, STEPS_FILE } from './step-log.js';

function asObject(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...v } : null;
}

function numberOf(r: Record<string, unknown>, key: string): number {
  const v = r[key];
  return typeof v === 'number' ? v : Number.NaN;
}

/** A metrics.jsonl line (src/train/trainer.ts EpochRecord) as a report's epoch record. */
export function epochFromMetrics(r: Record<string, unknown>): EpochRecord {
  const ev = asObject(r.eval);
  return {
    epoch: numberOf(r, 'epoch'),
    iteration: numberOf(r, 'step'),
    trainLoss: numberOf(r, 'trainLoss'),
    trainAccuracy: numberOf(r, 'trainTop1'),
    testLoss: ev === null ? Number.NaN : numberOf(ev, 'loss'),
    testAccuracy: ev === null ? Number.NaN : numberOf(ev, 'top1'),
    lr: numberOf(r, 'lr'),
    imagesPerSecond: numberOf(r, 'imagesPerSecond'),
    seconds: numberOf(r, 'epochSeconds'),
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
  const epochs = folder.readMetrics().filter((r) => typeof r.epoch === 'number').map(epochFromMetrics);
  return { name: basename(resolve(dir)), config, steps: readSteps(dir), epochs };
}
