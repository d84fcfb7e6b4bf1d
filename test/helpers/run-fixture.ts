// A synthetic training run with known numbers, for report tests.
import type { EpochRecord, RunData, StepRecord } from '../../src/report/run-data.js';

export const CLASS_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** 3 epochs of 40 iterations; test accuracy 0.71, 0.83, 0.805 (best at epoch 2). */
export function syntheticRun(withImages: string | null): RunData {
  const steps: StepRecord[] = [];
  for (let it = 1; it <= 120; it++) {
    steps.push({ iteration: it, epoch: Math.ceil(it / 40), loss: 2 / (1 + it / 20), error: 0.8 / (1 + it / 20), lr: it <= 80 ? 0.1 : 0.01 });
  }
  const testAcc = [0.71, 0.83, 0.805];
  const epochs: EpochRecord[] = testAcc.map((a, i) => ({
    epoch: i + 1, iteration: (i + 1) * 40, trainLoss: 1.2 - 0.3 * i, trainAccuracy: 0.6 + 0.1 * i,
    testLoss: 1.1 - 0.25 * i, testAccuracy: a, lr: i < 2 ? 0.1 : 0.01, imagesPerSecond: 250 + 10 * i, seconds: 30 + i,
  }));
  // Class t: 100 - 5t right, the rest predicted as class (t + 1) % 10.
  const confusion = CLASS_NAMES.map((_, t) => CLASS_NAMES.map((__, p) => (p === t ? 100 - 5 * t : p === (t + 1) % 10 ? 5 * t : 0)));
  const misclassified = [3, 17, 42].map((index, k) => ({
    index, label: k + 1, predicted: (k + 2) % 10, ...(withImages === null ? {} : { image: withImages }),
  }));
  return {
    name: 'run-7',
    config: { model: 'resnet20', dataset: 'fashion-mnist', epochs: 3, batchSize: 128, lr: 0.1, milestones: [2] },
    steps, epochs,
    evaluation: { classNames: CLASS_NAMES, confusion, misclassified },
  };
}
