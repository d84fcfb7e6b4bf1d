// The test-set evaluation a report shows: the run's best weights (else its final ones)
// on the test images the run evaluated on, with every prediction kept, so the report
// gets the confusion matrix and a grid of misclassified images with their labels.
import { basename } from 'node:path';
import { loadDataset } from '../data/registry.js';
import { DataLoader } from '../data/loader.js';
import { Normalize } from '../data/transforms.js';
import { randomSubset } from '../data/split.js';
import type { ImageDataset } from '../data/dataset.js';
import { argmaxRow } from '../train/metrics.js';
import { loadModelFile } from '../train/model-file.js';
import { DEFAULT_CONFIG, finishConfig, mergeConfig, type TrainConfig } from '../train/config.js';
import { inferenceOf } from '../models/inference.js';
import type { Evaluation, MisclassifiedSample } from '../report/run-data.js';
import { imageDataUri } from '../report/png.js';

export interface TestEvaluationOptions {
  /** Misclassified images kept for the grid (default 40). */
  maxMisclassified?: number;
  /** Embed the misclassified images as PNG data URIs (default true). */
  images?: boolean;
}

/** The test split the run evaluated on: the same data set, subset and seed as the recipe. */
export async function runTestSet(config: TrainConfig): Promise<ImageDataset | null> {
  const splits = await loadDataset({
    name: config.dataset, dir: config.data ?? undefined, coarse: config.coarse,
    folder: {
      size: config.imageSize ?? undefined, convert: config.convertImages,
      channels: config.channels === 1 || config.channels === 3 ? config.channels : undefined,
    },
  });
  if (splits.test === null) return null;
  return config.testSubset !== null ? randomSubset(splits.test, config.testSubset, config.seed) : splits.test;
}

/** The run's recipe from its config.json object, checked as `resnet train` checks it. */
export function runConfig(raw: Readonly<Record<string, unknown>>, source: string): TrainConfig {
  return finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, raw, source), source);
}

/**
 * Evaluate the weights in `runDir` on the run's test set. Null when the run has no test
 * split (an image folder without test/).
 */
export async function evaluateRunOnTest(runDir: string, config: TrainConfig, opts: TestEvaluationOptions = {}): Promise<Evaluation | null> {
  const { model, card, file, metadata } = loadModelFile(runDir);
  const weights = `${basename(file)}${metadata.epoch === undefined ? '' : ` (after epoch ${metadata.epoch})`}`;
  const test = await runTestSet(config);
  if (test === null) return null;
  const loader = new DataLoader(test, { batchSize: config.evalBatchSize, transform: new Normalize(card.mean, card.std) });
  const k = card.numClasses;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const misclassified: MisclassifiedSample[] = [];
  const maxWrong = opts.maxMisclassified ?? 40;
  model.eval();
  const infer = inferenceOf(model);
  for await (const batch of loader.epoch(0)) {
    const logits = infer(batch.x).data;
    for (let i = 0; i < batch.labels.length; i++) {
      const label = batch.labels[i]!;
      const predicted = argmaxRow(logits, i, k);
      confusion[label]![predicted]!++;
      if (predicted !== label && misclassified.length < maxWrong) misclassified.push({ index: batch.indices[i]!, label, predicted });
    }
  }
  if (opts.images ?? true) {
    const size = test.height * test.width * test.channels;
    const channels = test.channels === 1 ? 1 : 3;
    for (const m of misclassified) {
      const pixels = new Uint8Array(size);
      await test.readImages([m.index], pixels);
      if (test.channels === 1 || test.channels === 3) {
        m.image = await imageDataUri({ width: test.width, height: test.height, channels, pixels }, test.width <= 32 ? 3 : 1);
      }
    }
  }
  return { weights, classNames: card.classNames, confusion, misclassified };
}
