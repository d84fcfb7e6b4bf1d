// A run from its prepared parts: the one place a Trainer is wired from a recipe
// (`resnet train`, the experiments and library users all come through here), and the
// resume policy: which checkpoint a stopped run continues from, which settings may
// change when it does, and what happens when no checkpoint can be read.
import { rmSync } from 'node:fs';
import { loadCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import { ConfigError, DEFAULT_CONFIG, finishConfig, mergeConfig, type TrainConfig } from './config.js';
import { RunFolder, RunFolderError } from './run-folder.js';
import { Replicas } from './replicas.js';
import type { PreparedRun } from './setup.js';
import { Trainer, type TrainerListener } from './trainer.js';

/**
 * A Trainer for `prepared`, every option from its recipe; `run` null keeps the state in
 * memory. With `replicas` > 1 its worker threads start with the first step; close them
 * with `trainer.close()`.
 */
export function trainerForRun(prepared: PreparedRun, run: RunFolder | null, listener: TrainerListener = {}): Trainer {
  const c = prepared.config;
  const { card } = prepared;
  const replicas = c.replicas > 1
    ? Replicas.start(prepared.model, { model: card.model, numClasses: card.numClasses, inChannels: card.inChannels, width: card.width },
      { replicas: c.replicas, labelSmoothing: c.labelSmoothing, maxBatch: c.batchSize })
    : null;
  return new Trainer({
    model: prepared.model, optimizer: prepared.optimizer, scheduler: prepared.scheduler,
    trainLoader: prepared.trainLoader, evalLoader: prepared.evalLoader, evalSplit: prepared.evalSplit,
    evalEvery: c.evalEvery, tta: c.tta, numClasses: prepared.card.numClasses, totalSteps: prepared.totalSteps,
    labelSmoothing: c.labelSmoothing, ema: prepared.ema, onNan: c.onNan, maxSkipped: c.maxSkipped, clipGradNorm: c.clipGradNorm,
    run, keepCheckpoints: c.keepCheckpoints, checkpointEvery: c.checkpointEvery, config: c, card: prepared.card,
    frozen: prepared.frozen, replicas, listener,
  });
}

/**
 * Settings a resumed run may change: they guard against a diverging run or say how
 * often to checkpoint, and leave every step of a healthy run as it was.
 */
export const RESUME_CHANGES = ['onNan', 'maxSkipped', 'clipGradNorm', 'checkpointEvery', 'keepCheckpoints'] as const;

export interface ResumeOptions {
  /** Settings to change (only RESUME_CHANGES may); they are saved in config.json for later resumes. */
  changes?: Readonly<Record<string, unknown>>;
  /** When no checkpoint can be read: delete them and train again from step 0 (else refuse). */
  restartIfDamaged?: boolean;
  /** How a setting is named in messages (default `.field`; the CLI passes `--flag`). */
  label?: (key: string) => string;
  /** Other settings given that a resume cannot take, as named in messages (the CLI: `--config`). */
  refused?: readonly string[];
  /** How the resume itself is named in messages (default `resume`; the CLI passes `--resume`). */
  resumeName?: string;
  /** Status lines (damaged checkpoints passed over, the changes saved). */
  say?: (line: string) => void;
}

export interface ResumePlan {
  run: RunFolder;
  /** The run's saved recipe with the changes. */
  config: TrainConfig;
  /** The newest checkpoint that loads and verifies; null: start at step 0. */
  checkpoint: LoadedCheckpoint | null;
  /** Whether damaged checkpoints were deleted to start again (restartIfDamaged). */
  restarted: boolean;
}

/**
 * The newest checkpoint that loads and verifies (damaged ones are named and passed over),
 * or null when there is none yet. When there are checkpoints but none can be read, the
 * run would start again from step 0: that is refused unless `restart` asks for it, and
 * then the damaged files are deleted (they would outrank the new ones).
 */
export function newestValidCheckpoint(run: RunFolder, restart: boolean, say: (s: string) => void):
  { checkpoint: LoadedCheckpoint | null; restarted: boolean } {
  const damaged: { path: string; why: string }[] = [];
  for (const c of run.listCheckpoints()) {
    try {
      const checkpoint = loadCheckpoint(c.path);
      for (const d of damaged) say(`skipping ${d.path}: ${d.why}`);
      return { checkpoint, restarted: false };
    } catch (e) {
      damaged.push({ path: c.path, why: e instanceof Error ? e.message : String(e) });
    }
  }
  if (damaged.length === 0) return { checkpoint: null, restarted: false };
  if (!restart) {
    const count = damaged.length === 1 ? 'its one checkpoint' : `its ${damaged.length} checkpoints`;
    throw new RunFolderError(`${run.dir}: none of ${count} can be read (the newest, ${damaged[0]!.why}); resuming would start the run ` +
      'again from step 0: add --restart-if-damaged to do that, or put back a good checkpoint');
  }
  for (const d of damaged) rmSync(d.path, { force: true });
  say(`removed ${damaged.length} damaged checkpoint${damaged.length === 1 ? '' : 's'}; starting the run again from step 0 (--restart-if-damaged)`);
  return { checkpoint: null, restarted: true };
}

/**
 * Open a stopped run to continue it: its saved recipe, the changes allowed, and the
 * checkpoint to start from. Nothing is written until every check passed, so a run that
 * cannot be resumed is left as it was.
 */
export function planResume(dir: string, opts: ResumeOptions = {}): ResumePlan {
  const changes = opts.changes ?? {};
  const label = opts.label ?? ((k: string) => `.${k}`);
  const say = opts.say ?? (() => {});
  const refused = [...(opts.refused ?? []), ...Object.keys(changes).filter((k) => !RESUME_CHANGES.some((c) => c === k)).map(label)];
  if (refused.length > 0) {
    throw new ConfigError(`${opts.resumeName ?? 'resume'} continues a run with its saved config.json; leave out ${refused.join(', ')} (or start a new run); ` +
      `only ${RESUME_CHANGES.map(label).join(', ')} may change`);
  }
  const run = RunFolder.open(dir);
  for (const f of run.removed) say(`removed ${f}, the remains of a write the interruption cut short`);
  let config = finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, run.readConfig(), run.configPath), run.configPath);
  const changed = Object.keys(changes).length > 0;
  if (changed) config = mergeConfig(config, changes, 'the changes', label);
  // The torch engine reads its own checkpoints (src/train/torch-engine.ts).
  const { checkpoint, restarted } = config.engine === 'torch' ? { checkpoint: null, restarted: false }
    : newestValidCheckpoint(run, opts.restartIfDamaged ?? false, say);
  if (changed) {
    const saved = run.readConfig();
    run.writeJson(run.configPath, { ...(typeof saved === 'object' && saved !== null ? saved : {}), ...changes });
    say(`from here on: ${Object.entries(changes).map(([k, v]) => `${label(k)} ${String(v)}`).join(', ')} (saved in ${run.configPath})`);
  }
  return { run, config, checkpoint, restarted };
}

/**
 * Put `trainer` where the plan says: at its checkpoint, or (none) back at step 0 with the
 * records of the earlier attempt cleared. `truncateSteps` cuts a step log to match.
 */
export function applyResume(trainer: Trainer, plan: ResumePlan, truncateSteps: (step: number) => void = () => {}): void {
  if (plan.checkpoint) {
    trainer.resume(plan.checkpoint);
    truncateSteps(plan.checkpoint.state.step);
  } else {
    plan.run.truncateMetrics(0);
    truncateSteps(0);
  }
}

