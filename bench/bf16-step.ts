// npm run bench:bf16: the ResNet-20 training step (3x32x32, batch 128, as `npm run bench`)
// in fp32 and bf16, in 4-step rounds alternating in one process (the ratio per round and
// its median), where each precision's step goes by kernel, and the batch-norm kernels
// alone per layer shape. Needs a CPU with native bf16.
//
//   node dist/bench/bf16-step.js [--rounds 8]
import { execSync } from 'node:child_process';

import { bf16Unavailable, getBackend, setBackend, setPrecision, withScratch } from '../src/backend/index.js';
import type { Shape4 } from '../src/backend/backend.js';
import { Rng } from '../src/tensor/random.js';
import { formatProfile, profile } from './profile.js';
import { buildResNet20, median, trainStepFn } from './resnet20.js';

const i = process.argv.indexOf('--rounds');
const rounds = i >= 0 ? Number(process.argv[i + 1]) : 8;
const batch = 128;
const perRound = 4;

const cpu = execSync("lscpu | grep -E 'Model name|^CPU\\(s\\)' | tr -s ' '", { encoding: 'utf8' }).trim();
console.log(cpu.replace(/\n/g, '; '));
setBackend('native');
const why = bf16Unavailable();
if (why !== null) {
  console.error(`bench:bf16: ${why}`);
  process.exit(2);
}

// 1. The step, rounds alternating.
setPrecision('fp32');
const fp32 = trainStepFn(buildResNet20(), batch);
setPrecision('bf16');
const bf16 = trainStepFn(buildResNet20(), batch);
const round = (p: 'fp32' | 'bf16', step: () => number): number => {
  setPrecision(p);
  step();
  const t0 = performance.now();
  for (let k = 0; k < perRound; k++) step();
  return (performance.now() - t0) / perRound;
};
const ratios: number[] = [];
for (let r = 0; r < rounds; r++) {
  const a = round('fp32', fp32);
  const b = round('bf16', bf16);
  ratios.push(a / b);
  console.log(`round ${r + 1}: fp32 ${a.toFixed(1)} ms, bf16 ${b.toFixed(1)} ms a step: ${(a / b).toFixed(3)}x`);
}
console.log(`bf16 step against fp32, median of ${rounds} rounds: ${median(ratios).toFixed(3)}x ` +
  `(${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`);

// 2. Where each step goes.
const profiled = profile(getBackend('native'));
setBackend(profiled.backend);
for (const p of ['fp32', 'bf16'] as const) {
  setPrecision(p);
  const step = trainStepFn(buildResNet20(), batch);
  for (let k = 0; k < 3; k++) step();
  profiled.reset();
  const steps = 8;
  const t0 = performance.now();
  for (let k = 0; k < steps; k++) step();
  const ms = (performance.now() - t0) / steps;
  console.log(`\n${p}: ${ms.toFixed(1)} ms a step, by kernel:`);
  console.log(formatProfile(profiled.stats, steps, ms));
}

// 3. Batch norm alone, per ResNet-20 stage, in the scratch as in a step.
setBackend('native');
const be = getBackend('native');
const rng = new Rng(3);
const timed = (fn: () => unknown): number => {
  for (let k = 0; k < 3; k++) withScratch(fn);
  const t0 = performance.now();
  for (let k = 0; k < 20; k++) withScratch(fn);
  return (performance.now() - t0) / 20;
};
console.log('\nbatch norm alone (ReLU fused), ms a call: forward fp32 / bf16, backward fp32 / bf16');
for (const s of [[batch, 32, 32, 16], [batch, 16, 16, 32], [batch, 8, 8, 64]] as Shape4[]) {
  const n = s[0] * s[1] * s[2] * s[3];
  const c = s[3];
  const x = Float32Array.from({ length: n }, () => rng.normal());
  const dy = Float32Array.from({ length: n }, () => rng.normal());
  const gamma = new Float32Array(c).fill(1);
  const beta = new Float32Array(c);
  const x16 = be.toBf16(x);
  const dy16 = be.toBf16(dy);
  const r = be.batchNormTraining(x, s, gamma, beta, 1e-5, true);
  const r16 = be.batchNormTrainingBf16(x16, s, gamma, beta, 1e-5, true);
  const cells = [
    timed(() => be.batchNormTraining(x, s, gamma, beta, 1e-5, true)),
    timed(() => be.batchNormTrainingBf16(x16, s, gamma, beta, 1e-5, true)),
    timed(() => be.batchNormBackward(dy, x, s, gamma, r.mean, r.variance, 1e-5, r.y)),
    timed(() => be.batchNormBackwardBf16(dy16, x16, s, gamma, r16.mean, r16.variance, 1e-5, r16.y)),
  ];
  console.log(`  x [${s.join(',')}]: ${cells[0]!.toFixed(3)} / ${cells[1]!.toFixed(3)}, ${cells[2]!.toFixed(3)} / ${cells[3]!.toFixed(3)}`);
}
