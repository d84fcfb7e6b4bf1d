// The training loop: SGD steps over the training loader, evaluation after every epoch,
// metrics.jsonl, a checkpoint after every epoch (every N steps on request, and when asked
// to stop), the best and final weights. Every piece of state a step depends on is in the checkpoint, and the
// loader makes any batch from (seed, epoch, batch) alone, so a resumed run takes
// exactly the steps the unbroken run would have taken.
import type { Batch, DataLoader } from '../data/loader.js';
import type { Module } from '../nn/module.js';
import type { LRScheduler } from '../optim/schedules.js';
import type { SGD } from '../optim/sgd.js';
import { defaultRng } from '../tensor/random.js';
import type { ModelEma } from './ema.js';
import { clipGradNorm, gradNorm } from './grads.js';
import { lossAndBackward, type LossStep } from './loss-step.js';
import { argmaxRow, evaluate, type EvalResult } from './metrics.js';
import { type LoadedCheckpoint, restoreCheckpoint, saveCheckpoint, type TrainingState } from './checkpoint.js';
import { type ModelCard, saveModelFile } from './model-file.js';
import type { EpochRecord } from './records.js';
import type { RunFolder } from './run-folder.js';
import type { Replicas } from './replicas.js';
import type { TtaMode } from './tta.js';

export interface TrainerOptions {
  model: Module;
  optimizer: SGD;
  scheduler: LRScheduler;
  trainLoader: DataLoader;
  /** Evaluated after every epoch (see evalEvery); null: no evaluation. */
  evalLoader: DataLoader | null;
  /** Evaluate after every this many epochs and after the last one; 0: after the last one only (default 1). */
  evalEvery?: number;
  /** Test-time augmentation of the evaluations (default 'none'). */
  tta?: TtaMode;
  /** What evalLoader holds, for the records. */
  evalSplit?: 'test' | 'val';
  numClasses: number;
  totalSteps: number;
  labelSmoothing?: number;
  ema?: ModelEma | null;
  onNan?: 'stop' | 'skip';
  /**
   * With onNan 'skip': stop the run when more than this fraction of an epoch's steps is
   * skipped (default 0.5; 1: never). Skipping cannot rescue a run whose weights are gone.
   */
  maxSkipped?: number;
  clipGradNorm?: number | null;
  /** Where checkpoints, metrics and weights go; null: nowhere (the state stays in memory). */
  run?: RunFolder | null;
  keepCheckpoints?: number;
  /**
   * Also write a checkpoint after every this many steps within an epoch (a crash then
   * loses at most that many steps); null: only at the end of each epoch and when stopped.
   */
  checkpointEvery?: number | null;
  /** Stored in every checkpoint, so a checkpoint alone says how it was made. */
  config?: unknown;
  /** Written with the best and final weights so they can be rebuilt without the run. */
  card?: ModelCard | null;
  /**
   * The parts of the model not trained in an epoch (0-based): no gradient, so no step,
   * and their BN layers in inference mode (running statistics kept); see fine-tune.ts.
   */
  frozen?: ((epoch: number) => readonly Module[]) | null;
  /**
   * Model replicas in worker threads that share each batch (replicas.ts); null: this
   * thread's model alone takes every batch. The caller closes them.
   */
  replicas?: Replicas | null;
  listener?: TrainerListener;
}

export interface StepProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  step: number;
  totalSteps: number;
  /** Mean loss and top-1 of the epoch so far (training batches, augmented). */
  loss: number;
  top1: number;
  lr: number;
  imagesPerSecond: number;
  /** Images per step (the last batch of an epoch may be smaller). */
  batchSize: number;
  /** Loss and top-1 of this step's batch alone (NaN for a skipped step), and the lr it was taken with. */
  batchLoss: number;
  batchTop1: number;
  batchLr: number;
}

export type { EpochRecord, EvalSummary } from './records.js';

export interface TrainerListener {
  onStep?(p: StepProgress): void;
  onEvalBatch?(done: number, total: number): void;
  onEpoch?(r: EpochRecord): void;
  /** Before a checkpoint after `step` steps is written (a step log flushes what it covers). */
  onCheckpoint?(step: number): void;
}

export interface TrainOutcome {
  status: 'finished' | 'stopped';
  state: TrainingState;
  records: EpochRecord[];
  /** The evaluation after the last finished epoch. */
  lastEval: EvalResult | null;
  /** The newest checkpoint written or resumed from. */
  checkpoint: string | null;
}

/** A non-finite loss or gradient stopped the run; the message says where and what to do. */
export class TrainingDivergedError extends Error {
  override readonly name = 'TrainingDivergedError';
}

function countNonFinite(data: Float32Array): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) n++;
  return n;
}

function emptyTotals(): TrainingState['epochTotals'] {
  return { lossSum: 0, lossCount: 0, correct: 0, seen: 0, skipped: 0, seconds: 0, dataSeconds: 0 };
}

export class Trainer {
  readonly state: TrainingState;
  readonly records: EpochRecord[] = [];
  private stopRequested = false;
  private lastCheckpoint: string | null = null;
  private lastEval: EvalResult | null = null;
  private lastBatch = { loss: Number.NaN, top1: Number.NaN, lr: Number.NaN };
  private readonly o: TrainerOptions;

  constructor(opts: TrainerOptions) {
    this.o = opts;
    this.state = {
      epoch: 0, batchInEpoch: 0, step: 0, epochTotals: emptyTotals(), best: null,
      rng: defaultRng.getState(), optimizerGroups: [], emaUpdates: opts.ema ? 0 : null,
    };
    if (!(Number.isInteger(opts.totalSteps) && opts.totalSteps > 0)) {
      throw new RangeError(`Trainer: totalSteps must be a positive integer, got ${opts.totalSteps}`);
    }
  }

  get epochs(): number {
    return Math.ceil(this.o.totalSteps / this.o.trainLoader.numBatches);
  }

  /** Stop the worker threads of the replicas, if any (they never keep the process alive). */
  async close(): Promise<void> {
    await this.o.replicas?.close();
  }

  /** Finish the current step, write a checkpoint and return (SIGINT / SIGTERM). */
  requestStop(): void {
    this.stopRequested = true;
  }

  /** Continue from a checkpoint: weights, optimizer, schedule, EMA, RNG and position. */
  resume(ckpt: LoadedCheckpoint): void {
    const { model, optimizer, scheduler } = this.o;
    restoreCheckpoint(ckpt, { model, optimizer, scheduler, ema: this.o.ema ?? null });
    Object.assign(this.state, structuredClone(ckpt.state));
    defaultRng.setState(this.state.rng);
    this.lastCheckpoint = ckpt.file;
    this.o.run?.truncateMetrics(this.state.epoch);
    if (this.o.run) {
      this.records.push(...this.o.run.readMetrics());
    }
  }

  async run(): Promise<TrainOutcome> {
    const { trainLoader, totalSteps } = this.o;
    while (this.state.step < totalSteps) {
      let last = performance.now();
      // Since when the loop has waited for the next batch (the loader makes it in this thread).
      let waitingSince = last;
      for await (const batch of trainLoader.epoch(this.state.epoch, this.state.batchInEpoch)) {
        const totals = this.state.epochTotals;
        totals.dataSeconds = (totals.dataSeconds ?? 0) + (performance.now() - waitingSince) / 1000;
        await this.trainStep(batch);
        const now = performance.now();
        totals.seconds += (now - last) / 1000;
        last = now;
        this.o.listener?.onStep?.(this.progress());
        if (this.stepCheckpointDue()) this.checkpoint();
        // Batches of in-memory data resolve as microtasks, which never let the event loop
        // run; yielding once per step lets it deliver signals (Ctrl-C) and timers.
        await new Promise<void>((resolve) => setImmediate(resolve));
        waitingSince = performance.now();
        if (this.state.step >= totalSteps) break;
        if (this.stopRequested) return this.stopHere();
      }
      if (this.stopRequested && this.state.step < totalSteps) return this.stopHere();
      await this.finishEpoch();
      if (this.stopRequested && this.state.step < totalSteps) return this.outcome('stopped');
    }
    this.saveWeights('final');
    return this.outcome('finished');
  }

  private outcome(status: TrainOutcome['status']): TrainOutcome {
    return { status, state: this.state, records: this.records, lastEval: this.lastEval, checkpoint: this.lastCheckpoint };
  }

  private stopHere(): TrainOutcome {
    this.checkpoint();
    return this.outcome('stopped');
  }

  /** A checkpoint every checkpointEvery steps, except where the end of the epoch or run writes one anyway. */
  private stepCheckpointDue(): boolean {
    const every = this.o.checkpointEvery;
    if (!every) return false;
    const s = this.state;
    return s.step % every === 0 && s.step < this.o.totalSteps && s.batchInEpoch < this.o.trainLoader.numBatches;
  }

  private currentLr(): number {
    return this.o.optimizer.paramGroups[0]?.lr ?? 0;
  }

  private progress(): StepProgress {
    const t = this.state.epochTotals;
    return {
      epoch: this.state.epoch + 1, epochs: this.epochs, batch: this.state.batchInEpoch, batches: this.o.trainLoader.numBatches,
      step: this.state.step, totalSteps: this.o.totalSteps,
      loss: t.lossCount > 0 ? t.lossSum / t.lossCount : Number.NaN, top1: t.lossCount > 0 ? t.correct / t.lossCount : Number.NaN,
      lr: this.currentLr(), imagesPerSecond: t.seen / Math.max(1e-9, t.seconds), batchSize: this.o.trainLoader.batchSize,
      batchLoss: this.lastBatch.loss, batchTop1: this.lastBatch.top1, batchLr: this.lastBatch.lr,
    };
  }

  private async trainStep(batch: Batch): Promise<void> {
    const { model } = this.o;
    model.train();
    const frozen = this.o.frozen?.(this.state.epoch) ?? [];
    const frozenParams = frozen.flatMap((m) => m.parameters());
    for (const m of frozen) m.eval();
    for (const p of frozenParams) p.requiresGrad = false;
    try {
      await this.stepOn(batch);
    } finally {
      for (const p of frozenParams) p.requiresGrad = true;
    }
  }

  private async stepOn(batch: Batch): Promise<void> {
    const { model, optimizer, scheduler } = this.o;
    const onNan = this.o.onNan ?? 'stop';
    optimizer.zeroGrad();
    // BN running statistics are updated by the forward pass; a skipped step puts them back.
    const buffers = onNan === 'skip' ? model.buffers().map((b) => b.data.slice()) : null;
    const result = await this.lossAndGradients(batch);
    const n = batch.labels.length;
    const totals = this.state.epochTotals;
    if ('problem' in result) {
      if (onNan === 'stop') throw this.divergedError(result.problem);
      model.buffers().forEach((b, i) => b.assign(buffers![i]!));
      optimizer.zeroGrad();
      totals.skipped++;
      this.checkSkipped(result.problem);
      this.lastBatch = { loss: Number.NaN, top1: Number.NaN, lr: this.currentLr() };
    } else {
      const { lossValue, logits } = result;
      optimizer.step();
      this.o.ema?.update(model);
      totals.lossSum += lossValue * n;
      totals.lossCount += n;
      const classes = logits.shape[1]!;
      // With mixed images a prediction of either label counts by that label's weight.
      const mix = batch.mix;
      const w = mix ? mix.weight : 1;
      let correct = 0;
      for (let i = 0; i < n; i++) {
        const predicted = argmaxRow(logits.data, i, classes);
        if (predicted === batch.labels[i]) correct += w;
        if (mix && predicted === mix.labels[i]) correct += 1 - w;
      }
      totals.correct += correct;
      this.lastBatch = { loss: lossValue, top1: correct / n, lr: this.currentLr() };
    }
    scheduler.step();
    totals.seen += n;
    this.state.step++;
    this.state.batchInEpoch++;
  }

  /** The loss and gradients (clipped when asked) of one batch, or what is not finite. */
  private async lossAndGradients(batch: Batch): Promise<LossStep> {
    const { model, replicas } = this.o;
    // Checked first: ReLU maps NaN to 0 on both backends, so a NaN pixel need not reach
    // the loss, while it does poison the BN batch statistics.
    const bad = countNonFinite(batch.x.data);
    if (bad > 0) return { problem: `input (${bad} of ${batch.x.size} values NaN or infinite)` };
    const loss = { labelSmoothing: this.o.labelSmoothing ?? 0, mix: batch.mix };
    const result = replicas ? await replicas.lossAndGradients(batch.x, batch.labels, batch.mix)
      : lossAndBackward(model, batch.x, batch.labels, loss);
    if ('problem' in result) return result;
    const params = model.parameters();
    const norm = gradNorm(params);
    if (!Number.isFinite(norm)) return { problem: `gradient (norm ${norm})` };
    if (this.o.clipGradNorm) clipGradNorm(params, this.o.clipGradNorm, norm);
    return result;
  }

  private divergedError(problem: string): TrainingDivergedError {
    const fix = this.o.run
      ? `Continue with a guard: resnet train --resume ${this.o.run.dir} --clip-grad-norm 1 (or --on-nan skip), or start a new run with a lower --lr`
      : 'Lower the learning rate, clip the gradient norm (clipGradNorm) or skip such steps (onNan: \'skip\')';
    return new TrainingDivergedError(`non-finite ${problem} at ${this.where()}; ${this.lastGood()}. ${fix}`);
  }

  /** Where the step in progress is, for messages. */
  private where(): string {
    return `step ${this.state.step + 1} (epoch ${this.state.epoch + 1}, batch ${this.state.batchInEpoch + 1}, lr ${this.currentLr().toPrecision(4)})`;
  }

  private lastGood(): string {
    return this.lastCheckpoint ? `the last good checkpoint is ${this.lastCheckpoint}` : 'no checkpoint was written yet';
  }

  /** Steps the epoch in progress takes (the last epoch of an iteration budget may be short). */
  private stepsInEpoch(): number {
    const n = this.o.trainLoader.numBatches;
    return Math.min(n, this.o.totalSteps - this.state.epoch * n);
  }

  /** With --on-nan skip: more than maxSkipped of the epoch's steps skipped stops the run. */
  private checkSkipped(problem: string): void {
    const limit = this.o.maxSkipped ?? 0.5;
    const skipped = this.state.epochTotals.skipped;
    const steps = this.stepsInEpoch();
    if (skipped <= limit * steps) return;
    const allowed = this.o.run ? `--max-skipped ${limit}` : `maxSkipped ${limit}`;
    const fix = this.o.run
      ? `Start a new run with a lower --lr, or continue with clipping: resnet train --resume ${this.o.run.dir} --clip-grad-norm 1`
      : 'Lower the learning rate or clip the gradient norm (clipGradNorm)';
    throw new TrainingDivergedError(`non-finite ${problem} at ${this.where()}; ${skipped} of the ${steps} steps of epoch ` +
      `${this.state.epoch + 1} skipped, more than ${allowed} allows; ${this.lastGood()}. ${fix}`);
  }

  /** Whether the epoch that just ended is evaluated: every evalEvery-th one and the last. */
  private evaluationDue(): boolean {
    const every = this.o.evalEvery ?? 1;
    if (this.state.step >= this.o.totalSteps) return true;
    return every > 0 && (this.state.epoch + 1) % every === 0;
  }

  private async evaluateNow(): Promise<EvalResult | null> {
    const { evalLoader, model, ema } = this.o;
    if (!evalLoader || !this.evaluationDue()) return null;
    const run = (): Promise<EvalResult> => evaluate(model, evalLoader, this.o.numClasses, {
      onBatch: (d, t) => this.o.listener?.onEvalBatch?.(d, t), tta: this.o.tta ?? 'none',
    });
    return ema ? ema.withAveraged(model, run) : run();
  }

  private async finishEpoch(): Promise<void> {
    const result = await this.evaluateNow();
    this.lastEval = result;
    const t = this.state.epochTotals;
    const record: EpochRecord = {
      epoch: this.state.epoch + 1,
      step: this.state.step,
      lr: this.currentLr(),
      trainLoss: t.lossCount > 0 ? t.lossSum / t.lossCount : null,
      trainTop1: t.lossCount > 0 ? t.correct / t.lossCount : null,
      eval: result && {
        split: this.o.evalSplit ?? 'test', loss: result.loss, top1: result.top1, top5: result.top5, perClass: result.perClass,
      },
      ema: Boolean(this.o.ema),
      skippedSteps: t.skipped,
      epochSeconds: t.seconds,
      dataSeconds: t.dataSeconds ?? 0,
      imagesPerSecond: t.seen / Math.max(1e-9, t.seconds),
      time: new Date().toISOString(),
    };
    this.state.epoch++;
    this.state.batchInEpoch = 0;
    this.state.epochTotals = emptyTotals();
    if (result && (this.state.best === null || result.top1 > this.state.best.top1)) {
      this.state.best = { top1: result.top1, epoch: record.epoch };
      this.saveWeights('best');
    }
    this.records.push(record);
    this.o.run?.appendMetrics(record);
    this.checkpoint();
    this.o.listener?.onEpoch?.(record);
  }

  /** Write a checkpoint of the current state (with a run folder) and prune old ones. */
  private checkpoint(): void {
    const run = this.o.run;
    this.state.rng = defaultRng.getState();
    this.state.optimizerGroups = this.o.optimizer.stateDict().groups;
    this.state.emaUpdates = this.o.ema ? this.o.ema.updates : null;
    if (!run) return;
    this.o.listener?.onCheckpoint?.(this.state.step);
    const path = run.checkpointPath(this.state.step);
    saveCheckpoint(path, { model: this.o.model, optimizer: this.o.optimizer, ema: this.o.ema ?? null, state: this.state, config: this.o.config ?? null });
    this.lastCheckpoint = path;
    run.pruneCheckpoints(this.o.keepCheckpoints ?? 2);
  }

  /** best.safetensors / final.safetensors: the weights that are evaluated (the average with EMA). */
  private saveWeights(which: 'best' | 'final'): void {
    const { run, card, model, ema } = this.o;
    if (!run || !card) return;
    const path = which === 'best' ? run.bestPath : run.finalPath;
    const extra = { epoch: String(this.state.epoch), step: String(this.state.step) };
    if (!ema) {
      saveModelFile(path, model, card, extra);
      return;
    }
    ema.withAveragedSync(model, () => saveModelFile(path, model, card, extra));
  }
}
