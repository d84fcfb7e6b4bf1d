// Training checkpoints: everything needed to continue a run exactly where it stopped,
// in one safetensors file written atomically (temporary file, fsync, rename).
//   model.<name>              the model's state dict
//   optimizer.momentum.<name> SGD momentum buffer of each parameter that has one
//   ema.<name>                the weight average, when the run keeps one
//   metadata: format, the training state (JSON), the run config (JSON) and a SHA-256
//   checksum of all of the above, verified on load.
import { stateChecksum as checksum } from '../io/checksum.js';
import { WeightsFileError } from '../io/errors.js';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { stateDictMismatch } from '../io/weight-checks.js';
import type { Module, Parameter, StateDict } from '../nn/module.js';
import type { LRScheduler } from '../optim/schedules.js';
import type { SGD, SgdState } from '../optim/sgd.js';
import type { RngState } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { readBytes } from '../data/files.js';
import type { ModelEma } from './ema.js';

export const CHECKPOINT_FORMAT = 'resnet-ts.checkpoint.v1';

/** Where a run is: enough, with the tensors, to take the next step as an unbroken run would. */
export interface TrainingState {
  /** Epoch in progress (0-based); equals the number of finished epochs when batchInEpoch is 0. */
  epoch: number;
  /** Batches of `epoch` already trained. */
  batchInEpoch: number;
  /** Optimizer steps taken (also the schedule's position). */
  step: number;
  /** Running sums of the epoch in progress, so its reported loss and accuracy are whole. */
  epochTotals: {
    lossSum: number; lossCount: number; correct: number; seen: number;
    /** Steps skipped for a non-finite loss or gradient. */
    skipped: number;
    /** Training time of the epoch so far. */
    seconds: number;
    /** Of `seconds`, the time spent waiting for the loader's batches (absent in older checkpoints: 0). */
    dataSeconds?: number;
  };
  /** Best evaluation top-1 so far and the epoch (1-based) it was reached at. */
  best: { top1: number; epoch: number } | null;
  /** The process-wide generator's state. */
  rng: RngState;
  optimizerGroups: SgdState['groups'];
  emaUpdates: number | null;
}

export interface CheckpointParts {
  model: Module;
  optimizer: SGD;
  ema: ModelEma | null;
  state: TrainingState;
  config: unknown;
}

export interface LoadedCheckpoint {
  file: string;
  state: TrainingState;
  config: unknown;
  tensors: StateDict;
}

/** Parameter name of each optimizer parameter, in the optimizer's group order. */
function optimizerParamNames(model: Module, optimizer: SGD): string[] {
  const names = new Map<Parameter, string>(model.namedParameters().map(([n, p]) => [p, n]));
  return optimizer.paramGroups.flatMap((g) => g.params.map((p) => {
    const n = names.get(p);
    if (n === undefined) throw new Error('checkpoint: the optimizer holds a parameter that is not in the model');
    return n;
  }));
}

export function checkpointTensors(parts: Omit<CheckpointParts, 'state' | 'config'>): StateDict {
  const out: StateDict = {};
  for (const [k, t] of Object.entries(parts.model.stateDict())) out[`model.${k}`] = t;
  const names = optimizerParamNames(parts.model, parts.optimizer);
  parts.optimizer.stateDict().momentumBuffers.forEach((buf, i) => {
    if (buf) out[`optimizer.momentum.${names[i]}`] = new Tensor(buf, [buf.length]);
  });
  if (parts.ema) for (const [k, t] of Object.entries(parts.ema.shadow)) out[`ema.${k}`] = t;
  return out;
}

export function saveCheckpoint(path: string, parts: CheckpointParts): void {
  const tensors = checkpointTensors(parts);
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    state: JSON.stringify(parts.state),
    config: JSON.stringify(parts.config),
  };
  metadata['checksum'] = checksum(tensors, metadata);
  writeFileAtomic(path, [serializeSafetensors(tensors, metadata)]);
}

/** Read and verify a checkpoint; any damage is a WeightsFileError naming the file. */
export function loadCheckpoint(file: string): LoadedCheckpoint {
  const { tensors, metadata } = parseSafetensors(readBytes(file), file);
  if (metadata['format'] !== CHECKPOINT_FORMAT) {
    throw new WeightsFileError(file, `not a training checkpoint (format ${JSON.stringify(metadata['format'] ?? null)}, expected ${CHECKPOINT_FORMAT})`);
  }
  const { checksum: stored, ...rest } = metadata;
  if (stored !== checksum(tensors, rest)) {
    throw new WeightsFileError(file, 'checksum mismatch: the checkpoint is damaged');
  }
  let state: unknown;
  let config: unknown;
  try {
    state = JSON.parse(rest['state'] ?? '');
    config = JSON.parse(rest['config'] ?? '');
  } catch {
    throw new WeightsFileError(file, 'the checkpoint state is not valid JSON');
  }
  if (!isTrainingState(state)) throw new WeightsFileError(file, 'the checkpoint state lacks fields this version needs');
  return { file, state, config, tensors };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isTrainingState(v: unknown): v is TrainingState {
  if (!isRecord(v) || !isCount(v['epoch']) || !isCount(v['batchInEpoch']) || !isCount(v['step'])) return false;
  const t = v['epochTotals'];
  if (!isRecord(t) || !['lossSum', 'lossCount', 'correct', 'seen', 'skipped', 'seconds'].every((k) => typeof t[k] === 'number')) return false;
  const best = v['best'];
  if (best !== null && !(isRecord(best) && typeof best['top1'] === 'number' && isCount(best['epoch']))) return false;
  const rng = v['rng'];
  if (!isRecord(rng) || !Array.isArray(rng['s']) || rng['s'].length !== 4 || !rng['s'].every(isCount)) return false;
  if (rng['spare'] !== undefined && rng['spare'] !== null && typeof rng['spare'] !== 'number') return false;
  const groups = v['optimizerGroups'];
  if (!Array.isArray(groups) || !groups.every((g) => isRecord(g) && ['lr', 'initialLr', 'momentum'].every((k) => typeof g[k] === 'number'))) return false;
  return v['emaUpdates'] === null || isCount(v['emaUpdates']);
}

/** Put a checkpoint's tensors and state back into the model, optimizer, schedule and EMA. */
export function restoreCheckpoint(ckpt: LoadedCheckpoint, parts: { model: Module; optimizer: SGD; scheduler: LRScheduler; ema: ModelEma | null }): void {
  const prefixed = (prefix: string): StateDict => {
    const out: StateDict = {};
    for (const [k, t] of Object.entries(ckpt.tensors)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = t;
    return out;
  };
  const fail = (what: string, e: unknown): WeightsFileError =>
    new WeightsFileError(ckpt.file, `${what} do not fit this run (${e instanceof Error ? e.message : String(e)})`);
  const weights = prefixed('model.');
  const shapes = Object.fromEntries(Object.entries(parts.model.stateDict()).map(([k, t]) => [k, t.shape]));
  const mismatch = stateDictMismatch(shapes, weights);
  if (mismatch !== null) throw new WeightsFileError(ckpt.file, `the model weights do not fit this run (${mismatch})`);
  parts.model.loadStateDict(weights);
  const momentum = prefixed('optimizer.momentum.');
  const names = optimizerParamNames(parts.model, parts.optimizer);
  try {
    parts.optimizer.loadStateDict({
      groups: ckpt.state.optimizerGroups,
      momentumBuffers: names.map((n) => momentum[n]?.data ?? null),
    });
  } catch (e) {
    throw fail('the optimizer state', e);
  }
  parts.scheduler.loadStateDict({ lastStep: ckpt.state.step });
  if (parts.ema) {
    const avg = prefixed('ema.');
    for (const [k, t] of Object.entries(parts.ema.shadow)) {
      const src = avg[k];
      if (!src || src.size !== t.size) throw new WeightsFileError(ckpt.file, `the weight average has no entry ${k} of ${t.size} values`);
      t.data.set(src.data);
    }
    parts.ema.updates = ckpt.state.emaUpdates ?? 0;
  }
}
