// ResNet-20 (projection shortcuts) on resnet-ts: seconds per training step (forward,
// cross-entropy, backward, SGD with momentum) and per inference batch (eval mode, no
// autograd), on whichever backend is selected.
import { noGrad, Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/tensor/random.js';
import { cifarResNet, compileInference } from '../src/models/index.js';
import { SGD } from '../src/optim/index.js';
import { lossAndBackward } from '../src/train/loss-step.js';

export interface Workload {
  readonly batch: number;
  /** 'wall': elapsed time; 'cpu': this process's CPU time, robust to other load but only meaningful with one thread. */
  readonly clock: 'wall' | 'cpu';
  readonly warmup: number;
  readonly trainSteps: number;
  readonly inferSteps: number;
}

export interface Timing {
  readonly msPerStep: number;
  readonly imgPerS: number;
}

/** The bench's network: He et al. 2015 sec. 4.2 ResNet-20 with option-B shortcuts. */
export function buildResNet20(): ReturnType<typeof cifarResNet> {
  return cifarResNet(20, { shortcut: 'B', numClasses: 10, seed: 0 });
}

export function randomBatch(batch: number, seed: number): { x: Tensor; labels: Int32Array } {
  const rng = new Rng(seed);
  const data = new Float32Array(batch * 32 * 32 * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  const labels = new Int32Array(batch);
  for (let i = 0; i < batch; i++) labels[i] = rng.int(10);
  return { x: new Tensor(data, [batch, 32, 32, 3]), labels };
}

/** Milliseconds on the given clock. */
export function now(clock: Workload['clock']): number {
  if (clock === 'wall') return performance.now();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function timed(fn: () => void, w: Workload, steps: number): number {
  for (let i = 0; i < w.warmup; i++) fn();
  const t0 = now(w.clock);
  for (let i = 0; i < steps; i++) fn();
  return (now(w.clock) - t0) / steps;
}

export function trainStepFn(model: ReturnType<typeof cifarResNet>, batch: number, seed = 1): () => number {
  const { x, labels } = randomBatch(batch, seed);
  const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
  model.train();
  // The trainer's step: forward, loss and backward with the kernel outputs in the scratch.
  return () => {
    opt.zeroGrad();
    const r = lossAndBackward(model, x, labels, {});
    if ('problem' in r) throw new Error(`training step: non-finite ${r.problem}`);
    opt.step();
    return r.lossValue;
  };
}

export function measureTraining(w: Workload): Timing {
  const step = trainStepFn(buildResNet20(), w.batch);
  const ms = timed(() => step(), w, w.trainSteps);
  return { msPerStep: ms, imgPerS: (w.batch * 1000) / ms };
}

export function measureInference(w: Workload): Timing {
  const model = buildResNet20();
  model.eval();
  const { x } = randomBatch(w.batch, 2);
  const ms = timed(() => noGrad(() => model.forward(x)), w, w.inferSteps);
  return { msPerStep: ms, imgPerS: (w.batch * 1000) / ms };
}

/** Inference through compileInference (BN folded into the conv, ReLU and the add as post-ops). */
export function measureFusedInference(w: Workload): Timing {
  const run = compileInference(buildResNet20());
  const { x } = randomBatch(w.batch, 2);
  const ms = timed(() => run(x), w, w.inferSteps);
  return { msPerStep: ms, imgPerS: (w.batch * 1000) / ms };
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Times `a` and `b` in alternating rounds (each round runs `before` then its steps) and
 * returns the median round of each: on a machine shared with other jobs the load drifts
 * over a run, and alternating exposes both to the same drift, so their ratio holds.
 */
export function timedPair(w: Workload, steps: number, rounds: number, batch: number,
  a: { before: () => void; step: () => void }, b: { before: () => void; step: () => void }): [Timing, Timing] {
  const perRound = Math.max(1, Math.round(steps / rounds));
  const times: [number[], number[]] = [[], []];
  for (const c of [a, b]) {
    c.before();
    for (let k = 0; k < w.warmup; k++) c.step();
  }
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of [a, b].entries()) {
      c.before();
      const t0 = now(w.clock);
      for (let k = 0; k < perRound; k++) c.step();
      times[i]!.push((now(w.clock) - t0) / perRound);
    }
  }
  return times.map((t) => {
    const ms = median(t);
    return { msPerStep: ms, imgPerS: (batch * 1000) / ms };
  }) as [Timing, Timing];
}
