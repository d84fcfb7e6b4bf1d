// What a report shows about one training run, independent of how the run folder stores it.

/** One optimizer step: the loss and error of that training batch. */
export interface StepRecord {
  iteration: number;
  epoch: number;
  loss: number;
  /** Fraction of the batch misclassified (1 - top-1 accuracy). */
  error: number;
  lr: number;
}

/** The end of one epoch: averages over its training batches and a test-set evaluation. */
export interface EpochRecord {
  epoch: number;
  /** Optimizer steps taken by the end of this epoch. */
  iteration: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  lr: number;
  /** Training throughput over the epoch, images per second. */
  imagesPerSecond: number;
  /** Seconds the epoch's training steps took. */
  seconds: number;
}

export interface MisclassifiedSample {
  /** Index in the test set. */
  index: number;
  label: number;
  predicted: number;
  /** A PNG data URI of the image, when the data set was at hand. */
  image?: string;
}

/** A test-set evaluation of the final (or best) weights. */
export interface Evaluation {
  /** Which weights were evaluated, e.g. "best.safetensors (after epoch 12)". */
  weights?: string;
  classNames: readonly string[];
  /** confusion[true][predicted] counts. */
  confusion: readonly (readonly number[])[];
  misclassified: readonly MisclassifiedSample[];
}

export interface RunData {
  /** The run folder's name. */
  name: string;
  config: Readonly<Record<string, unknown>>;
  steps: readonly StepRecord[];
  epochs: readonly EpochRecord[];
  evaluation?: Evaluation;
  /** Why there is no evaluation (no weights, data set not found), shown instead. */
  evaluationNote?: string;
}

/** Accuracy of each class: the diagonal of the confusion matrix over its row sums. */
export function perClassAccuracy(confusion: readonly (readonly number[])[]): number[] {
  return confusion.map((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total > 0 ? (row[t] ?? 0) / total : Number.NaN;
  });
}

/** Overall accuracy from a confusion matrix. */
export function confusionAccuracy(confusion: readonly (readonly number[])[]): number {
  let right = 0;
  let total = 0;
  confusion.forEach((row, t) => {
    for (const c of row) total += c;
    right += row[t] ?? 0;
  });
  return total > 0 ? right / total : Number.NaN;
}

export function bestEpoch(epochs: readonly EpochRecord[]): EpochRecord | undefined {
  let best: EpochRecord | undefined;
  for (const e of epochs) if (Number.isFinite(e.testAccuracy) && (best === undefined || e.testAccuracy > best.testAccuracy)) best = e;
  return best;
}
