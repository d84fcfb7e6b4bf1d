// The learning-rate schedule of a recipe, stepped once per iteration. Milestones and
// warmup are given in the budget's unit (epochs or iterations) and turned into steps.
import { CosineAnnealingLR, LinearWarmup, type LRScheduler, MultiStepLR, OneCycleLR, SequentialLR, warmupCosine } from '../optim/schedules.js';
import type { SGD } from '../optim/sgd.js';
import type { TrainConfig } from './config.js';

export interface Budget {
  /** Iterations in all. */
  totalSteps: number;
  /** Iterations per unit of the config's milestones and warmup (steps per epoch, or 1). */
  stepsPerUnit: number;
}

export function budget(c: Pick<TrainConfig, 'epochs' | 'iterations'>, stepsPerEpoch: number): Budget {
  if (c.iterations !== null) return { totalSteps: c.iterations, stepsPerUnit: 1 };
  return { totalSteps: (c.epochs ?? 1) * stepsPerEpoch, stepsPerUnit: stepsPerEpoch };
}

/**
 * The recipe's schedule over the budget; with --fine-tune-epochs, run afresh in each of
 * the two phases (the head alone, then everything), as fastai's fine_tune runs a
 * one-cycle schedule per phase: the backbone starts training at the peak lr, not where
 * the head's phase left it.
 */
export function buildScheduler(optimizer: SGD, c: TrainConfig, b: Budget): LRScheduler {
  if (c.fineTuneEpochs === null || c.iterations !== null) return phaseScheduler(optimizer, c, b);
  const head = c.fineTuneEpochs * b.stepsPerUnit;
  return new SequentialLR(optimizer, phaseScheduler(optimizer, c, { ...b, totalSteps: head }),
    phaseScheduler(optimizer, c, { ...b, totalSteps: b.totalSteps - head }), head);
}

function phaseScheduler(optimizer: SGD, c: TrainConfig, b: Budget): LRScheduler {
  const total = b.totalSteps;
  // At most a fifth of the run warms up, so a short run still spends most of its steps annealing.
  const warmup = Math.min(Math.round(c.warmup * b.stepsPerUnit), Math.floor(total / 5));
  switch (c.schedule) {
    case 'constant':
      return new LinearWarmup(optimizer, warmup);
    case 'cosine':
      return warmup > 0 ? warmupCosine(optimizer, warmup, total) : new CosineAnnealingLR(optimizer, total);
    case 'step': {
      // The paper's CIFAR schedule divides by 10 at 32k and 48k of 64k iterations (sec. 4.2): 50% and 75%.
      const milestones = (c.milestones ?? [0.5 * total / b.stepsPerUnit, 0.75 * total / b.stepsPerUnit])
        .map((m) => Math.round(m * b.stepsPerUnit));
      if (warmup === 0) return new MultiStepLR(optimizer, milestones, c.gamma);
      // LinearWarmup counts `t` from the end of the warmup; milestones count from step 0.
      const stepped = (t: number, base: number): number => base * c.gamma ** milestones.filter((m) => m <= t + warmup).length;
      return new LinearWarmup(optimizer, warmup, 1 / 3, stepped);
    }
    case 'onecycle':
      return new OneCycleLR(optimizer, { maxLr: c.lr, totalSteps: total, pctStart: warmup > 0 ? warmup / total : 0.3 });
  }
}
