// From a recipe to the parts of a run: data sets and loaders (with the data set's
// usual augmentation), the model (and a check that its batches fit in memory), SGD with
// its parameter groups, the schedule, the weight average, and the model card written
// with the weights.
import { loadDataset, type DatasetName } from '../data/registry.js';
import type { ImageDataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import { perClassSubset, randomSubset, selectClasses, trainValSplit } from '../data/split.js';
import { channelStats } from '../data/stats.js';
import { BatchMix } from '../data/mix.js';
import { Compose, Normalize, RandomCrop, RandomErasing, RandomHorizontalFlip, type Transform } from '../data/transforms.js';
import { create } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import type { LRScheduler } from '../optim/schedules.js';
import { paramGroupsNoDecay, SGD } from '../optim/sgd.js';
import { manualSeed } from '../tensor/random.js';
import { DataError } from '../data/errors.js';
import { ConfigError, DEFAULT_CONFIG, type TrainConfig } from './config.js';
import { fineTuneGroups, freezeSchedule } from './fine-tune.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/imagenet.js';
import { loadWeights } from '../io/weights.js';
import { fromStateDict, headReplacedText, type PretrainedModel } from '../models/pretrained.js';
import { info } from '../models/registry.js';
import { MODEL_CARD_KEY, modelFromFile } from './model-file.js';
import { ModelEma } from './ema.js';
import { checkBatchesFit } from './memory.js';
import type { ModelCard } from './model-file.js';
import { type Budget, budget, buildScheduler } from './schedule.js';

/** The augmentation each data set is usually trained with. */
const AUGMENT_DEFAULTS: Record<DatasetName, { cropPadding: number; flip: boolean }> = {
  'fashion-mnist': { cropPadding: 2, flip: true },
  // Mirrored digits are other digits (or none).
  mnist: { cropPadding: 2, flip: false },
  // He et al. 2015 sec. 4.2: 4 pixels padded on each side, random 32x32 crop, flip.
  cifar10: { cropPadding: 4, flip: true },
  cifar100: { cropPadding: 4, flip: true },
  folder: { cropPadding: 0, flip: true },
};

export interface PreparedRun {
  config: TrainConfig;
  train: ImageDataset;
  /** Evaluated after every epoch: the validation split, else the test split, else none. */
  evalSet: ImageDataset | null;
  evalSplit: 'test' | 'val';
  test: ImageDataset | null;
  trainLoader: DataLoader;
  evalLoader: DataLoader | null;
  testLoader: DataLoader | null;
  model: Module;
  optimizer: SGD;
  scheduler: LRScheduler;
  ema: ModelEma | null;
  card: ModelCard;
  totalSteps: number;
  stepsPerEpoch: number;
  trainTransform: Transform;
  /** The parts of the model frozen in each epoch (fine-tuning); null: none. */
  frozen: ((epoch: number) => readonly Module[]) | null;
  /** What the preparation decided that the user should hear, one line each (a replaced classifier head). */
  notes: string[];
}

export interface PrepareOptions {
  /**
   * How the user gave a setting, for the checks against the data set (`--subset`, a
   * config file's `.subset`); null: the user did not give it (a default, a preset, a
   * saved config), so a subset larger than the data set takes all of it and a warmup
   * longer than a fifth of the run is cut to a fifth. Default: the settings that differ
   * from DEFAULT_CONFIG, named `.field`.
   */
  given?: (key: keyof TrainConfig) => string | null;
}

function differsFromDefault(config: TrainConfig): (key: keyof TrainConfig) => string | null {
  return (key) => (JSON.stringify(config[key]) === JSON.stringify(DEFAULT_CONFIG[key]) ? null : `.${key}`);
}

/** Whole numbers as they are, others to 4 decimals rounded down (a limit must not be rounded over). */
function limitText(x: number): string {
  return String(Math.floor(x * 1e4 + 1e-9) / 1e4);
}

/** A subset of `count` from `ds` ('training' or 'test' images); more than it holds is an error when the user asked for it. */
function subsetOf(ds: ImageDataset, count: number | null, seed: number, name: string | null, what: 'training' | 'test'): ImageDataset {
  if (count === null) return ds;
  if (name !== null && count > ds.length) {
    throw new ConfigError(`${name} ${count} is more than the ${ds.length} ${what} images of ${ds.name}; give at most ${ds.length}, ` +
      `or leave it out to ${what === 'training' ? 'train' : 'evaluate'} on all`);
  }
  return randomSubset(ds, count, seed);
}

/** A warmup the user gave must fit in a fifth of the run (a default one is cut to fit, in buildScheduler). */
function checkWarmup(config: TrainConfig, b: Budget, name: string | null): void {
  const fifth = b.totalSteps / 5 / b.stepsPerUnit;
  if (name === null || config.warmup <= fifth * (1 + 1e-12)) return;
  const run = config.iterations !== null ? `${b.totalSteps} iterations` : `${config.epochs} epochs of ${b.stepsPerUnit} steps`;
  throw new ConfigError(`${name} ${config.warmup} is longer than a fifth of the run (${run}); give at most ${limitText(fifth)}, or 0 for none`);
}

interface StartingWeights {
  model: PretrainedModel;
  /** The normalisation the weights were trained with, when known (a model file's card, ImageNet for ImageNet-style RGB weights). */
  normalization: { mean: number[]; std: number[] } | null;
  note: string | null;
}

/**
 * The model built from --weights for a task of `numClasses` classes and `channels`
 * channels: the model named (or, when not given, the model file's or the one the weights
 * fit), its head replaced when the class count differs.
 */
function startingWeights(config: TrainConfig, numClasses: number, channels: number, data: string,
  given: (key: keyof TrainConfig) => string | null): StartingWeights {
  const file = config.weights!;
  const weights = loadWeights(file);
  const cardText = weights.metadata[MODEL_CARD_KEY];
  const card = cardText === undefined ? null : modelFromFile(file, weights.state, weights.metadata).card;
  const named = given('model') !== null ? config.model : card?.model;
  const own = weights.state['conv1.weight'];
  if (own && own.ndim === 4 && own.shape[1] !== channels) {
    throw new ConfigError(`${given('weights') ?? '.weights'} ${file}: the weights take ${own.shape[1]}-channel images, ` +
      `${data} has ${channels}; use weights made for ${channels}-channel images (or image folders with --channels ${own.shape[1]})`);
  }
  const model = fromStateDict(weights.state, file, { model: named, numClasses, width: card?.width ?? config.width, seed: config.seed }, weights.naming);
  const imagenet = card === null && channels === 3 && info(model.name).family === 'imagenet';
  const normalization = card ? { mean: card.mean, std: card.std } : imagenet ? { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] } : null;
  return { model, normalization, note: headReplacedText(model) };
}

export async function prepareRun(config: TrainConfig, opts: PrepareOptions = {}): Promise<PreparedRun> {
  const given = opts.given ?? differsFromDefault(config);
  manualSeed(config.seed);
  const splits = await loadDataset({
    name: config.dataset, dir: config.data ?? undefined, coarse: config.coarse,
    folder: {
      size: config.imageSize ?? undefined, convert: config.convertImages,
      channels: config.channels === 1 || config.channels === 3 ? config.channels : undefined,
    },
  });
  let train: ImageDataset = splits.train;
  let testSplit = splits.test;
  if (config.classes !== null) {
    const classes = config.classes;
    const pick = (ds: ImageDataset): ImageDataset => {
      try {
        return selectClasses(ds, classes);
      } catch (e) {
        throw new ConfigError(`${given('classes') ?? '.classes'} ${classes.join(',')}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    train = pick(train);
    testSplit = testSplit && pick(testSplit);
  }
  if (train.classNames.length < 2) {
    throw new DataError(splits.trainDir, `has one class folder (${train.classNames.join('')}); a classifier needs at least two: ` +
      'add a subfolder for each class');
  }
  let val: ImageDataset | null = null;
  if (config.valSplit > 0) {
    if (config.valSplit >= train.length) {
      throw new ConfigError(`${given('valSplit') ?? '--val-split'} ${config.valSplit} leaves no training images (${train.name} has ${train.length})`);
    }
    ({ train, val } = trainValSplit(train, config.valSplit, config.seed));
  }
  train = subsetOf(train, config.subset, config.seed, given('subset'), 'training');
  if (config.perClass !== null) train = perClassSubset(train, config.perClass, config.seed);
  const testName = given('testSubset');
  if (testSplit === null && testName !== null) {
    throw new ConfigError(`${testName}: ${splits.dir} has no test/ (or val/) folder to take test images from; leave it out`);
  }
  const test = testSplit && subsetOf(testSplit, config.testSubset, config.seed, testName, 'test');
  const evalSet = val ?? test;

  const channels = train.channels;
  const numClasses = train.classNames.length;
  const pretrained = config.weights === null ? null : startingWeights(config, numClasses, channels, train.name, given);
  let mean = config.mean;
  let std = config.std;
  // A pretrained backbone sees its inputs normalised as in its own training.
  if ((mean === null || std === null) && pretrained?.normalization) ({ mean, std } = pretrained.normalization);
  if (mean === null || std === null) ({ mean, std } = await channelStats(train));
  if (mean.length !== channels || std.length !== channels) {
    throw new ConfigError(`--mean/--std give ${mean.length} values but ${train.name} has ${channels} channel${channels > 1 ? 's' : ''}`);
  }
  const resolved: TrainConfig = { ...config, mean, std, model: pretrained?.model.name ?? config.model };

  const defaults = AUGMENT_DEFAULTS[config.dataset];
  const padding = config.cropPadding ?? defaults.cropPadding;
  const steps: Transform[] = [];
  if (padding > 0) steps.push(new RandomCrop(padding));
  if (config.flip ?? defaults.flip) steps.push(new RandomHorizontalFlip());
  steps.push(new Normalize(mean, std));
  if (config.randomErasing > 0) steps.push(new RandomErasing({ p: config.randomErasing }));
  const trainTransform = new Compose(steps);
  const evalTransform = new Normalize(mean, std);

  const mix = config.mixup > 0 || config.cutmix > 0 ? new BatchMix({ mixup: config.mixup, cutmix: config.cutmix, prob: config.mixProb }) : null;
  const trainLoader = new DataLoader(train, { batchSize: config.batchSize, shuffle: true, dropLast: false, transform: trainTransform, mix, seed: config.seed });
  const b = budget(config, trainLoader.numBatches);
  checkWarmup(config, b, given('warmup'));
  const evalLoaderOf = (ds: ImageDataset | null): DataLoader | null =>
    ds ? new DataLoader(ds, { batchSize: config.evalBatchSize, transform: evalTransform }) : null;

  const model = pretrained?.model.model ?? create(config.model, { numClasses, inChannels: channels, width: config.width, zeroInitResidual: config.zeroInitResidual, seed: config.seed });
  if (pretrained) model.train();
  checkBatchesFit({
    model, modelName: resolved.model, inputShape: [trainLoader.outHeight, trainLoader.outWidth, channels],
    batches: [
      { flag: '--batch-size', batch: Math.min(config.batchSize, train.length), mode: 'training' },
      { flag: '--eval-batch-size', batch: Math.min(config.evalBatchSize, Math.max(evalSet?.length ?? 0, test?.length ?? 0)), mode: 'inference' },
    ],
  });
  const fineTuning = pretrained !== null || config.freeze !== 'none' || config.backboneLrScale !== 1;
  const groups = fineTuning ? fineTuneGroups(model, config) : config.decayAll ? model.parameters() : paramGroupsNoDecay(model, config.weightDecay);
  const optimizer = new SGD(groups, {
    lr: config.lr, momentum: config.momentum, nesterov: config.nesterov && config.momentum > 0, weightDecay: config.weightDecay,
  });
  const scheduler = buildScheduler(optimizer, config, b);
  const ema = config.ema !== null ? new ModelEma(model, config.ema) : null;
  const card: ModelCard = {
    model: resolved.model, width: config.width, numClasses, inChannels: channels,
    imageSize: [trainLoader.outHeight, trainLoader.outWidth], mean, std, classNames: [...train.classNames], dataset: config.dataset,
  };
  return {
    config: resolved, train, evalSet, evalSplit: val ? 'val' : 'test', test,
    trainLoader, evalLoader: evalLoaderOf(evalSet), testLoader: evalLoaderOf(test),
    model, optimizer, scheduler, ema, card, totalSteps: b.totalSteps, stepsPerEpoch: trainLoader.numBatches, trainTransform,
    frozen: freezeSchedule(model, config, resolved.model), notes: pretrained?.note ? [pretrained.note] : [],
  };
}
