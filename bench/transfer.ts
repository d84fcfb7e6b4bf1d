// npm run bench:transfer: does starting from pretrained weights help? Fashion-MNIST,
// ResNet-20: pretrain on classes 0-4, then learn classes 5-9 from 50 training images per
// class, once from the pretrained weights (head replaced, fine-tuned with --fine-tune-epochs)
// and once from scratch with the same budget; test accuracy on all 5,000 test images of
// classes 5-9, for 3 seeds. The recipes are `resnet train` settings (src/train/config.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, finishConfig, mergeConfig, type TrainConfig } from '../src/train/config.js';
import { evaluate } from '../src/train/metrics.js';
import { saveModelFile } from '../src/train/model-file.js';
import { trainerForRun } from '../src/train/run-training.js';
import { prepareRun } from '../src/train/setup.js';

const SEEDS = [0, 1, 2];
const PRETRAIN: Partial<TrainConfig> = { classes: [0, 1, 2, 3, 4], subset: 6000, epochs: 2, batchSize: 64, lr: 0.1, warmup: 0, evalEvery: 0, testSubset: 1000 };
const TASK: Partial<TrainConfig> = { classes: [5, 6, 7, 8, 9], perClass: 50, epochs: 15, batchSize: 25, lr: 0.05, warmup: 0, evalEvery: 0 };
const FINE_TUNE: Partial<TrainConfig> = { fineTuneEpochs: 3, backboneLrScale: 0.3 };

function recipe(patch: Partial<TrainConfig>): TrainConfig {
  return finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, { model: 'resnet20', ...patch }, 'transfer recipe'), 'transfer recipe');
}

async function trainAndTest(config: TrainConfig, save?: string): Promise<{ top1: number; seconds: number }> {
  const started = performance.now();
  const prepared = await prepareRun(config);
  for (const note of prepared.notes) process.stdout.write(`  ${note}\n`);
  await trainerForRun(prepared, null).run();
  if (save) saveModelFile(save, prepared.model, prepared.card);
  const result = await evaluate(prepared.model, prepared.testLoader!, prepared.card.numClasses);
  return { top1: result.top1, seconds: (performance.now() - started) / 1000 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-transfer-'));
  const rows: { seed: number; pretrained: number; scratch: number; source: number }[] = [];
  try {
    for (const seed of SEEDS) {
      const weights = join(dir, `pretrained-${seed}.safetensors`);
      const source = await trainAndTest(recipe({ ...PRETRAIN, seed }), weights);
      process.stdout.write(`seed ${seed}: pretrained on classes 0-4 (${source.seconds.toFixed(0)} s): ${(100 * source.top1).toFixed(2)}% on 1000 of their test images\n`);
      const fromWeights = await trainAndTest(recipe({ ...TASK, ...FINE_TUNE, weights: weights, seed }));
      const scratch = await trainAndTest(recipe({ ...TASK, seed }));
      process.stdout.write(`seed ${seed}: classes 5-9 from 50 images each: from pretrained ${(100 * fromWeights.top1).toFixed(2)}% ` +
        `(${fromWeights.seconds.toFixed(0)} s), from scratch ${(100 * scratch.top1).toFixed(2)}% (${scratch.seconds.toFixed(0)} s)\n`);
      rows.push({ seed, pretrained: fromWeights.top1, scratch: scratch.top1, source: source.top1 });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  process.stdout.write('\n| seed | from pretrained (classes 0-4) | from scratch | difference |\n|---:|---:|---:|---:|\n');
  for (const r of rows) process.stdout.write(`| ${r.seed} | ${pct(r.pretrained)} | ${pct(r.scratch)} | ${((r.pretrained - r.scratch) * 100).toFixed(2)} pts |\n`);
  const p = mean(rows.map((r) => r.pretrained));
  const s = mean(rows.map((r) => r.scratch));
  process.stdout.write(`| mean | ${pct(p)} | ${pct(s)} | ${((p - s) * 100).toFixed(2)} pts |\n`);
}

await main();
