// npm run bench:transfer: does starting from pretrained weights help? Fashion-MNIST,
// ResNet-20: pretrain on classes 0-4 (all 30,000 of their training images, 2 epochs), then
// learn classes 5-9 from 50 training images per class, from those weights and from
// scratch with the same budget (a short one and a longer one), and from the weights with
// fastai-style fine-tuning (the head alone for an epoch, then everything, the schedule
// run afresh in each phase);
// test accuracy on all 5,000 test images of classes 5-9, for 3 seeds. The recipes are
// `resnet train` settings (src/train/config.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, finishConfig, mergeConfig, type TrainConfig } from '../src/train/config.js';
import { evaluate } from '../src/train/metrics.js';
import { saveModelFile } from '../src/train/model-file.js';
import { trainerForRun } from '../src/train/run-training.js';
import { prepareRun } from '../src/train/setup.js';

const SEEDS = [0, 1, 2];
const PRETRAIN: Partial<TrainConfig> = { classes: [0, 1, 2, 3, 4], epochs: 2, batchSize: 64, lr: 0.1, warmup: 0, evalEvery: 0, testSubset: 1000 };
const TASK: Partial<TrainConfig> = { classes: [5, 6, 7, 8, 9], perClass: 50, batchSize: 25, lr: 0.05, warmup: 0, evalEvery: 0 };
/** Task budgets in epochs of the 250 task images (10 steps each). */
const BUDGETS = [5, 15];
/** fastai's fine_tune: the head alone for the first epoch, then everything. */
const FASTAI: Partial<TrainConfig> = { fineTuneEpochs: 1 };

type Arm = 'scratch' | 'pretrained' | 'fastai';
const ARMS: { arm: Arm; title: string }[] = [
  { arm: 'scratch', title: 'from scratch' },
  { arm: 'pretrained', title: 'from pretrained, all layers' },
  { arm: 'fastai', title: 'from pretrained, head first (1 epoch)' },
];

function recipe(patch: Partial<TrainConfig>): TrainConfig {
  return finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, { model: 'resnet20', ...patch }, 'transfer recipe'), 'transfer recipe');
}

async function trainAndTest(config: TrainConfig, save?: string): Promise<{ top1: number; seconds: number }> {
  const started = performance.now();
  const prepared = await prepareRun(config);
  await trainerForRun(prepared, null).run();
  if (save) saveModelFile(save, prepared.model, prepared.card);
  const result = await evaluate(prepared.model, prepared.testLoader!, prepared.card.numClasses);
  return { top1: result.top1, seconds: (performance.now() - started) / 1000 };
}

function taskRecipe(arm: Arm, epochs: number, weights: string, seed: number): TrainConfig {
  if (arm === 'scratch') return recipe({ ...TASK, epochs, seed });
  return recipe({ ...TASK, ...(arm === 'fastai' ? FASTAI : {}), epochs, weights, seed });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-transfer-'));
  // top1[budget][arm][seed]
  const top1 = new Map<number, Map<Arm, number[]>>(BUDGETS.map((b) => [b, new Map(ARMS.map(({ arm }) => [arm, []]))]));
  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  try {
    for (const seed of SEEDS) {
      const weights = join(dir, `pretrained-${seed}.safetensors`);
      const source = await trainAndTest(recipe({ ...PRETRAIN, seed }), weights);
      process.stdout.write(`seed ${seed}: pretrained on classes 0-4 (${source.seconds.toFixed(0)} s): ${pct(source.top1)} on 1000 of their test images\n`);
      for (const epochs of BUDGETS) {
        const line: string[] = [];
        for (const { arm, title } of ARMS) {
          const r = await trainAndTest(taskRecipe(arm, epochs, weights, seed));
          top1.get(epochs)!.get(arm)!.push(r.top1);
          line.push(`${title} ${pct(r.top1)} (${r.seconds.toFixed(0)} s)`);
        }
        process.stdout.write(`seed ${seed}, classes 5-9 from 50 images each, ${epochs} epochs: ${line.join(', ')}\n`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  process.stdout.write(`\n| task epochs | seed | ${ARMS.map((a) => a.title).join(' | ')} | pretrained - scratch |\n|---:|---:|${ARMS.map(() => '---:|').join('')}---:|\n`);
  for (const epochs of BUDGETS) {
    const byArm = top1.get(epochs)!;
    const row = (label: string, pick: (xs: number[]) => number): void => {
      const cells = ARMS.map(({ arm }) => pct(pick(byArm.get(arm)!)));
      const gain = (pick(byArm.get('pretrained')!) - pick(byArm.get('scratch')!)) * 100;
      process.stdout.write(`| ${epochs} | ${label} | ${cells.join(' | ')} | ${gain >= 0 ? '+' : ''}${gain.toFixed(2)} pts |\n`);
    };
    SEEDS.forEach((seed, i) => row(String(seed), (xs) => xs[i]!));
    row('mean', mean);
  }
}

await main();
