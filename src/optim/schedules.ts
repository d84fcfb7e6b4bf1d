// Learning-rate schedules, each a closed-form function of the step count with the same
// values as the PyTorch scheduler named in its comment. `step()` advances one step (an
// epoch or an iteration, as the caller uses it) and writes the lr into the optimizer.
import type { SGD } from './sgd.js';

export abstract class LRScheduler {
  /** Steps taken so far; the current lr is factorAt(lastStep). */
  lastStep = 0;

  // Subclasses end their constructor with `this.apply()` (PyTorch sets the step-0 lr at
  // construction): their own fields do not exist yet while this constructor runs.
  constructor(readonly optimizer: SGD) {}

  /** The lr of a group with base lr `base` after `t` steps. */
  abstract lrAt(t: number, base: number): number;

  /** Momentum to set at step t, for schedules that cycle it (one-cycle); null otherwise. */
  momentumAt(_t: number): number | null {
    return null;
  }

  step(): void {
    this.lastStep++;
    this.apply();
  }

  currentLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): { lastStep: number } {
    return { lastStep: this.lastStep };
  }

  loadStateDict(s: { lastStep: number }): void {
    this.lastStep = s.lastStep;
    this.apply();
  }

  protected apply(): void {
    const m = this.momentumAt(this.lastStep);
    for (const g of this.optimizer.paramGroups) {
      g.lr = this.lrAt(this.lastStep, g.initialLr);
      if (m !== null) g.momentum = m;
    }
  }
}

/** torch.optim.lr_scheduler.MultiStepLR: lr * gamma^(number of milestones passed). */
export class MultiStepLR extends LRScheduler {
  constructor(optimizer: SGD, readonly milestones: readonly number[], readonly gamma = 0.1) {
    super(optimizer);
    this.apply();
  }

  lrAt(t: number, base: number): number {
    const passed = this.milestones.filter((m) => m <= t).length;
    return base * this.gamma ** passed;
  }
}

/** torch.optim.lr_scheduler.CosineAnnealingLR (one half-period, T_max steps). */
export class CosineAnnealingLR extends LRScheduler {
  constructor(optimizer: SGD, readonly tMax: number, readonly etaMin = 0) {
    super(optimizer);
    this.apply();
  }

  lrAt(t: number, base: number): number {
    const tc = Math.min(t, this.tMax);
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * tc) / this.tMax))) / 2;
  }
}

/**
 * Linear warmup from startFactor * lr to lr over `warmupSteps` (torch LinearLR), then
 * `after` counted from the end of the warmup (torch SequentialLR with one milestone).
 */
export class LinearWarmup extends LRScheduler {
  constructor(optimizer: SGD, readonly warmupSteps: number, readonly startFactor = 1 / 3,
    readonly after: ((t: number, base: number) => number) | null = null) {
    super(optimizer);
    this.apply();
  }

  lrAt(t: number, base: number): number {
    if (t < this.warmupSteps) return base * (this.startFactor + ((1 - this.startFactor) * t) / this.warmupSteps);
    return this.after ? this.after(t - this.warmupSteps, base) : base;
  }
}

/**
 * torch.optim.lr_scheduler.SequentialLR with one milestone: `first` for the steps before
 * `milestone`, then `second` counted from the milestone (its own step 0).
 */
export class SequentialLR extends LRScheduler {
  constructor(optimizer: SGD, readonly first: LRScheduler, readonly second: LRScheduler, readonly milestone: number) {
    super(optimizer);
    this.apply();
  }

  lrAt(t: number, base: number): number {
    return t < this.milestone ? this.first.lrAt(t, base) : this.second.lrAt(t - this.milestone, base);
  }

  override momentumAt(t: number): number | null {
    return t < this.milestone ? this.first.momentumAt(t) : this.second.momentumAt(t - this.milestone);
  }
}

/** Cosine annealing after a linear warmup: the usual modern recipe. */
export function warmupCosine(optimizer: SGD, warmupSteps: number, totalSteps: number, startFactor = 1 / 3,
  etaMin = 0): LinearWarmup {
  const tMax = totalSteps - warmupSteps;
  const cosine = (t: number, base: number): number =>
    etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * Math.min(t, tMax)) / tMax))) / 2;
  return new LinearWarmup(optimizer, warmupSteps, startFactor, cosine);
}

export interface OneCycleOptions {
  maxLr: number;
  totalSteps: number;
  pctStart?: number;
  divFactor?: number;
  finalDivFactor?: number;
  /** Cycle momentum inversely to the lr between these (PyTorch's defaults 0.85, 0.95). */
  baseMomentum?: number;
  maxMomentum?: number;
  cycleMomentum?: boolean;
}

/** torch.optim.lr_scheduler.OneCycleLR, two phases, cosine annealing (Smith 2018). */
export class OneCycleLR extends LRScheduler {
  readonly o: Required<OneCycleOptions>;

  constructor(optimizer: SGD, opts: OneCycleOptions) {
    const o: Required<OneCycleOptions> = {
      pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4, baseMomentum: 0.85, maxMomentum: 0.95, cycleMomentum: true,
      ...opts,
    };
    // The base used by apply() is fixed by the options, not the optimizer's lr.
    for (const g of optimizer.paramGroups) g.initialLr = o.maxLr / o.divFactor;
    super(optimizer);
    this.o = o;
    this.apply();
  }

  private phases(): { end: number; from: 'initial' | 'max' | 'min'; to: 'initial' | 'max' | 'min' }[] {
    const up = this.o.pctStart * this.o.totalSteps - 1;
    return [
      { end: up, from: 'initial', to: 'max' },
      { end: this.o.totalSteps - 1, from: 'max', to: 'min' },
    ];
  }

  private values(): { lr: Record<'initial' | 'max' | 'min', number>; mom: Record<'initial' | 'max' | 'min', number> } {
    const initial = this.o.maxLr / this.o.divFactor;
    return {
      lr: { initial, max: this.o.maxLr, min: initial / this.o.finalDivFactor },
      mom: { initial: this.o.maxMomentum, max: this.o.baseMomentum, min: this.o.maxMomentum },
    };
  }

  private interpolate(t: number, table: Record<'initial' | 'max' | 'min', number>): number {
    let start = 0;
    const phases = this.phases();
    for (let i = 0; i < phases.length; i++) {
      const p = phases[i]!;
      if (t <= p.end || i === phases.length - 1) {
        const pct = (t - start) / (p.end - start);
        const a = table[p.from];
        const b = table[p.to];
        return b + ((a - b) / 2) * (Math.cos(Math.PI * pct) + 1);
      }
      start = p.end;
    }
    return table.min;
  }

  lrAt(t: number): number {
    return this.interpolate(t, this.values().lr);
  }

  override momentumAt(t: number): number | null {
    if (!this.o.cycleMomentum) return null;
    return this.interpolate(t, this.values().mom);
  }
}
