// A training run's recipe: one flat record, every field checked against one table that
// also gives each command-line flag its name and help, so `resnet train --help`, a
// `--config` JSON file and the saved `config.json` all speak the same language.
import { PRECISIONS, type PrecisionChoice } from '../backend/index.js';
import { DATASET_NAMES, type DatasetName } from '../data/registry.js';
import { closestNames } from '../util/closest-names.js';
import { list as modelNames } from '../models/registry.js';
import { MAX_IMAGE_SIDE } from './model-file.js';
import { TTA_MODES, TTA_VIEWS_HELP, type TtaMode } from './tta.js';

export const SCHEDULES = ['step', 'cosine', 'onecycle', 'constant'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];
export const ON_NAN = ['stop', 'skip'] as const;
/** Who trains: resnet-ts itself, or PyTorch DistributedDataParallel under torchrun (docs/scale.md). */
export const ENGINES = ['resnet', 'torch'] as const;

export interface TrainConfig {
  model: string;
  /** Widening factor of the model's stages (1 = the paper's widths). */
  width: number;
  /** Start every residual branch at zero (torchvision's zero_init_residual); residual models only. */
  zeroInitResidual: boolean;
  dataset: DatasetName;
  /** Folder of the data set; null: the data set's default location. */
  data: string | null;
  /** Train on this many images drawn at random from the training split; null: all. */
  subset: number | null;
  /** Evaluate on this many test images drawn at random; null: all. */
  testSubset: number | null;
  /** Hold this many training images out for validation each epoch; 0: evaluate on the test split. */
  valSplit: number;
  /** Evaluate after every this many epochs and after the last one; 0: after the last one only. */
  evalEvery: number;
  /** Test-time augmentation of every evaluation: views whose logits are averaged. */
  tta: TtaMode;
  /** Training length in epochs, or... */
  epochs: number | null;
  /** ...in iterations (optimizer steps). Exactly one of the two is set. */
  iterations: number | null;
  batchSize: number;
  evalBatchSize: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** Apply weight decay to BN parameters and biases too (off: Goyal et al. 2017 sec. 5.1). */
  decayAll: boolean;
  schedule: ScheduleName;
  /** Step schedule: where the lr is multiplied by gamma, in epochs or iterations as the budget is given. */
  milestones: number[] | null;
  gamma: number;
  /** Linear warmup length, in epochs or iterations as the budget is given. */
  warmup: number;
  labelSmoothing: number;
  /** Decay of an exponential moving average of the weights, evaluated instead of the raw weights; null: off. */
  ema: number | null;
  /** Zero-padding before the random crop, pixels; null: the data set's default, 0: no crop. */
  cropPadding: number | null;
  /** Random horizontal flips; null: the data set's default (off for digits). */
  flip: boolean | null;
  /** Probability of random erasing (Zhong et al. 2017); 0: off. */
  randomErasing: number;
  /** Beta(alpha, alpha) of mixup's blending weight (Zhang et al. 2017); 0: off. */
  mixup: number;
  /** Beta(alpha, alpha) of CutMix's box area (Yun et al. 2019); 0: off. */
  cutmix: number;
  /** With mixup or CutMix: the probability that a batch is mixed. */
  mixProb: number;
  /** Per-channel normalisation; null: computed on the training images. */
  mean: number[] | null;
  std: number[] | null;
  seed: number;
  /** Folder the run folder is made in. */
  out: string;
  /** Run folder name; null: time stamp, model and data set. */
  name: string | null;
  /** Checkpoints kept in the run folder (the newest ones). */
  keepCheckpoints: number;
  /** Also write a checkpoint every this many steps within an epoch; null: at the end of each epoch only. */
  checkpointEvery: number | null;
  onNan: (typeof ON_NAN)[number];
  /** With onNan 'skip': stop the run when more than this fraction of an epoch's steps is skipped; 1: never. */
  maxSkipped: number;
  /** Clip the global gradient norm to this value; null: no clipping. */
  clipGradNorm: number | null;
  /** Image folders: side the images are resized to; null: the first image's height. */
  imageSize: number | null;
  /** Image folders: 1 or 3; null: the first image's. */
  channels: number | null;
  /** Image folders: convert images of another channel count instead of rejecting them. */
  convertImages: boolean;
  /** CIFAR-100: train on the 20 superclasses. */
  coarse: boolean;
  /** Compute precision: fp32, bf16 (mixed precision) or auto (bf16 where the CPU has it natively). */
  precision: PrecisionChoice;
  /** Train and evaluate on these classes only (relabelled 0, 1, ... in this order); null: all. */
  classes: number[] | null;
  /** Train on this many images of each class drawn at random; null: all. */
  perClass: number | null;
  /** Start from these weights (.pth or .safetensors, torchvision/timm names, or a model file); null: from scratch. */
  weights: string | null;
  /** Parameters not trained (BN of frozen parts kept in inference mode): none, the backbone, or the stem up to a stage. */
  freeze: FreezeLevel;
  /** The backbone's learning rate as a fraction of the head's (discriminative learning rates). */
  backboneLrScale: number;
  /** Train the head alone for this many epochs (the backbone frozen), then everything (fastai's fine_tune); null: off. */
  fineTuneEpochs: number | null;
  /** The training engine: resnet-ts, or PyTorch DDP launched by torchrun. */
  engine: (typeof ENGINES)[number];
  /** Model replicas training side by side in worker threads, each on its share of every batch (1: one model). */
  replicas: number;
}

export const FREEZE_LEVELS = ['none', 'backbone', 'stem', 'layer1', 'layer2', 'layer3', 'layer4'] as const;
export type FreezeLevel = (typeof FREEZE_LEVELS)[number];

export const DEFAULT_CONFIG: Readonly<TrainConfig> = Object.freeze({
  model: 'resnet20', width: 1, zeroInitResidual: false, dataset: 'fashion-mnist', data: null, subset: null, testSubset: null, valSplit: 0, evalEvery: 1, tta: 'none',
  epochs: 30, iterations: null, batchSize: 128, evalBatchSize: 500,
  lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4, decayAll: false,
  schedule: 'cosine', milestones: null, gamma: 0.1, warmup: 1, labelSmoothing: 0.1, ema: null,
  cropPadding: null, flip: null, randomErasing: 0, mixup: 0, cutmix: 0, mixProb: 1, mean: null, std: null,
  seed: 0, out: 'runs', name: null, keepCheckpoints: 2, checkpointEvery: null, onNan: 'stop', maxSkipped: 0.5, clipGradNorm: null,
  imageSize: null, channels: null, convertImages: false, coarse: false, precision: 'fp32',
  classes: null, perClass: null, weights: null, freeze: 'none', backboneLrScale: 1, fineTuneEpochs: null, engine: 'resnet',
  replicas: 1,
});

type Kind = 'int' | 'number' | 'bool' | 'string' | 'numbers';

/** A budget beyond these is a slip of the keyboard (ResNet-152 on ImageNet: 90 epochs, 600k iterations). */
export const MAX_EPOCHS = 100_000;
export const MAX_ITERATIONS = 100_000_000;
/** Seeds are 32-bit (src/tensor/random.ts): a larger one would alias a smaller one. */
export const MAX_SEED = 2 ** 32 - 1;
/** Ceilings of sizes no run needs, so a typo fails in one line rather than in a huge allocation. */
export const MAX_WIDTH = 64;
export const MAX_BATCH = 65_536;

/** One setting: what it holds, its help line, and the check of a value from a file or a flag. */
export interface FieldSpec<T> {
  readonly kind: Kind;
  readonly help: string;
  /** Placeholder of the flag's argument (none for a switch). */
  readonly arg?: string;
  readonly choices?: readonly string[];
  readonly nullable: boolean;
  /** The value if it is valid; otherwise a ConfigError naming `where`. */
  check(v: unknown, where: string): T;
}

/** A setting that is not what its table entry says. The message names the file or flag. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

interface Range {
  min?: number;
  /** min excluded: a value must be greater. */
  above?: boolean;
  max?: number;
}

function rangeText(base: string, r: Range): string {
  const parts: string[] = [];
  if (r.min !== undefined) parts.push(`${r.above ? '>' : '>='} ${r.min}`);
  if (r.max !== undefined) parts.push(`<= ${r.max}`);
  return parts.length ? `${base} ${parts.join(' and ')}` : base;
}

function fits(v: unknown, integer: boolean, r: Range): v is number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  if (integer && !Number.isInteger(v)) return false;
  if (r.min !== undefined && (r.above ? v <= r.min : v < r.min)) return false;
  return r.max === undefined || v <= r.max;
}

/** A value as JSON for a message, cut short: a file may hold a megabyte where a number belongs. */
export function shownValue(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function fail(where: string, expected: string, v: unknown): ConfigError {
  // JSON.parse reads 1e400 as Infinity, which JSON.stringify would show as null.
  const got = typeof v === 'number' && !Number.isFinite(v) ? `${v}, which is not a finite number` : shownValue(v);
  return new ConfigError(`${where} must be ${expected}, got ${got}`);
}

function isOneOf<T extends string>(list: readonly T[], v: unknown): v is T {
  return typeof v === 'string' && (list as readonly string[]).includes(v);
}

function numberField(kind: 'int' | 'number', arg: string, help: string, r: Range = {}): FieldSpec<number> {
  const expected = rangeText(kind === 'int' ? 'an integer' : 'a number', r);
  return {
    kind, arg, help, nullable: false,
    check: (v, where) => {
      if (!fits(v, kind === 'int', r)) throw fail(where, expected, v);
      return v;
    },
  };
}

function optional<T>(f: FieldSpec<T>): FieldSpec<T | null> {
  return { ...f, nullable: true, check: (v, where) => (v === null ? null : f.check(v, where)) };
}

function boolField(help: string): FieldSpec<boolean> {
  return {
    kind: 'bool', help, nullable: false,
    check: (v, where) => {
      if (typeof v !== 'boolean') throw fail(where, 'true or false', v);
      return v;
    },
  };
}

function stringField(arg: string, help: string): FieldSpec<string> {
  return {
    kind: 'string', arg, help, nullable: false,
    check: (v, where) => {
      if (typeof v !== 'string' || v.length === 0) throw fail(where, 'a non-empty string', v);
      return v;
    },
  };
}

function choiceField<T extends string>(arg: string, choices: readonly T[], help: string): FieldSpec<T> {
  return {
    kind: 'string', arg, help, choices, nullable: false,
    check: (v, where) => {
      if (!isOneOf(choices, v)) throw fail(where, `one of ${choices.join(', ')}`, v);
      return v;
    },
  };
}

/**
 * A folder name made inside another folder: no path separators, not `.` or `..`, so
 * `--name ../../x` cannot put a run anywhere but in `--out`.
 */
export function isFolderName(v: string): boolean {
  return v.length > 0 && !/[/\\\0]/.test(v) && v !== '.' && v !== '..';
}

function folderNameField(arg: string, help: string): FieldSpec<string> {
  return {
    kind: 'string', arg, help, nullable: false,
    check: (v, where) => {
      if (typeof v !== 'string' || !isFolderName(v)) {
        throw fail(where, 'a folder name without /, \\ or .. (the run folder is made in --out)', v);
      }
      return v;
    },
  };
}

/** A builder name; an unknown one is caught here, before any data is read, with the nearest names. */
function modelField(arg: string, help: string): FieldSpec<string> {
  return {
    kind: 'string', arg, help, nullable: false,
    check: (v, where) => {
      if (typeof v !== 'string' || v.length === 0) throw fail(where, 'a model name such as resnet20', v);
      const known = modelNames();
      if (known.includes(v)) return v;
      const near = closestNames(v, known);
      const shown = JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
      throw new ConfigError(`${where}: unknown model ${shown}. ` +
        (near.length ? `Did you mean ${near.join(' or ')}?` : `Known models: ${known.join(', ')}`));
    },
  };
}

function numbersField(arg: string, help: string, r: Range = {}): FieldSpec<number[]> {
  const expected = rangeText('a non-empty list of numbers', r);
  return {
    kind: 'numbers', arg, help, nullable: false,
    check: (v, where) => {
      if (!Array.isArray(v) || v.length === 0) throw fail(where, expected, v);
      return v.map((x: unknown, i) => {
        if (!fits(x, false, r)) throw fail(`${where}[${i}]`, rangeText('a number', r), x);
        return x;
      });
    },
  };
}

/** Every setting, in the order `--help` lists them. */
export const FIELDS: { readonly [K in keyof TrainConfig]: FieldSpec<TrainConfig[K]> } = {
  model: modelField('name', 'model to train, e.g. resnet20, resnet56, preact_resnet110, wide_resnet16_8 (an unknown name lists all)'),
  width: numberField('int', 'k', 'widening factor of the stages (1: the paper\'s widths)', { min: 1, max: MAX_WIDTH }),
  zeroInitResidual: boolField('start each residual branch at zero: the last batch norm of every block gets scale 0, so ' +
    'each block begins as its shortcut (Goyal et al. 2017; torchvision\'s zero_init_residual); not for plain nets'),
  dataset: choiceField('name', DATASET_NAMES, 'data set'),
  data: optional(stringField('dir', 'folder holding the data set (default: /usr/share/datasets/<name>)')),
  subset: optional(numberField('int', 'n', 'train on n training images drawn at random', { min: 1 })),
  testSubset: optional(numberField('int', 'n', 'evaluate on n test images drawn at random', { min: 1 })),
  valSplit: numberField('int', 'n', 'hold n training images out and evaluate on them after each epoch; the test split ' +
    '(or --test-subset of it) is then evaluated once, at the end (0: evaluate on the test split after each epoch)', { min: 0 }),
  evalEvery: numberField('int', 'n', 'evaluate after every n epochs and after the last one (0: after the last one only, ' +
    'which saves the evaluation time of a short run)', { min: 0 }),
  tta: choiceField('views', TTA_MODES, `test-time augmentation of every evaluation: ${TTA_VIEWS_HELP}`),
  epochs: optional(numberField('int', 'n', 'training length in epochs', { min: 1, max: MAX_EPOCHS })),
  iterations: optional(numberField('int', 'n', 'training length in iterations, instead of --epochs', { min: 1, max: MAX_ITERATIONS })),
  batchSize: numberField('int', 'n', 'training batch size', { min: 1, max: MAX_BATCH }),
  evalBatchSize: numberField('int', 'n', 'evaluation batch size', { min: 1, max: MAX_BATCH }),
  lr: numberField('number', 'x', 'peak learning rate', { min: 0, above: true }),
  momentum: numberField('number', 'x', 'SGD momentum', { min: 0, max: 1 }),
  nesterov: boolField('Nesterov momentum'),
  weightDecay: numberField('number', 'x', 'L2 weight decay', { min: 0 }),
  decayAll: boolField('decay BN parameters and biases too (default: weights only)'),
  schedule: choiceField('name', SCHEDULES, 'learning-rate schedule'),
  milestones: optional(numbersField('list', 'step schedule: comma-separated epochs (or iterations) where the lr drops (default: 50%,75% of the run)', { min: 0 })),
  gamma: numberField('number', 'x', 'step schedule: lr factor at each milestone', { min: 0, above: true, max: 1 }),
  warmup: numberField('number', 'n', 'linear warmup length in epochs (or iterations), at most a fifth of the run ' +
    '(the default is cut to a fifth of a shorter run)', { min: 0 }),
  labelSmoothing: numberField('number', 'x', 'label smoothing of the cross-entropy', { min: 0, max: 1 }),
  ema: optional(numberField('number', 'decay', 'evaluate an exponential moving average of the weights with this decay (e.g. 0.999)', { min: 0, above: true, max: 1 })),
  cropPadding: optional(numberField('int', 'px', 'zero-pad then random-crop back (0: off; default 2 for 28px sets, 4 for CIFAR, 0 for folders)', { min: 0, max: MAX_IMAGE_SIDE })),
  flip: optional(boolField('random horizontal flips (default: on, off for MNIST digits)')),
  randomErasing: numberField('number', 'p', 'probability of random erasing (0: off)', { min: 0, max: 1 }),
  mixup: numberField('number', 'alpha', 'mixup: blend each training image with another of its batch, and their targets, ' +
    'by one weight a batch drawn from Beta(alpha, alpha) (e.g. 0.2; 0: off)', { min: 0, max: 100 }),
  cutmix: numberField('number', 'alpha', 'CutMix: paste a box from another image of the batch, its area drawn from ' +
    'Beta(alpha, alpha), and mix the targets by area (e.g. 1; 0: off)', { min: 0, max: 100 }),
  mixProb: numberField('number', 'p', 'with --mixup or --cutmix: probability that a batch is mixed (both given: each ' +
    'mixed batch takes one of the two at random)', { min: 0, max: 1 }),
  mean: optional(numbersField('list', 'per-channel mean for normalising (default: computed on the training images)')),
  std: optional(numbersField('list', 'per-channel std for normalising (default: computed)', { min: 0, above: true })),
  seed: numberField('int', 'n', 'seed of the initialisation, the order and the augmentation', { min: 0, max: MAX_SEED }),
  out: stringField('dir', 'folder the run folder is made in'),
  name: optional(folderNameField('name', 'run folder name, made in --out (default: time stamp, model, data set)')),
  keepCheckpoints: numberField('int', 'n', 'checkpoints kept in the run folder (the newest)', { min: 1, max: 10_000 }),
  checkpointEvery: optional(numberField('int', 'n', 'also write a checkpoint every n steps, not only after each epoch', { min: 1, max: MAX_ITERATIONS })),
  onNan: choiceField('what', ON_NAN, 'on a non-finite loss or gradient: stop the run, or skip that step'),
  maxSkipped: numberField('number', 'fraction', '--on-nan skip: stop the run when more than this fraction of an epoch\'s steps ' +
    'is skipped (1: never)', { min: 0, max: 1 }),
  clipGradNorm: optional(numberField('number', 'x', 'clip the global gradient norm to x', { min: 0, above: true })),
  imageSize: optional(numberField('int', 'px', 'image folders: resize to px x px (default: the first image\'s height)', { min: 1, max: MAX_IMAGE_SIDE })),
  channels: optional(numberField('int', 'n', 'image folders: 1 (greyscale) or 3 (RGB) (default: the first image\'s)', { min: 1, max: 3 })),
  convertImages: boolField('image folders: convert images of another channel count instead of rejecting them'),
  coarse: boolField('CIFAR-100: train on the 20 superclasses'),
  precision: choiceField('p', PRECISIONS, 'compute precision: fp32, bf16 (bfloat16 convolutions with float32 ' +
    'accumulation and bfloat16 activations between them; weights, batch-norm statistics, loss and optimizer stay float32; ' +
    'needs a CPU with avx512_bf16 or amx_bf16) or auto (bf16 where the CPU has it)'),
  classes: optional(numbersField('list', 'train and evaluate on these classes only, e.g. 5,6,7,8,9 (relabelled 0, 1, ... in this order)', { min: 0 })),
  perClass: optional(numberField('int', 'n', 'train on n images of each class drawn at random', { min: 1 })),
  weights: optional(stringField('file', 'start from these weights: .pth or .safetensors (torchvision or timm names) or a model file; ' +
    'the classifier head is replaced when the class count differs')),
  freeze: choiceField('part', FREEZE_LEVELS, 'do not train the backbone (all but the classifier), or the stem and the stages up to ' +
    'the one named; frozen BN layers keep their running statistics'),
  backboneLrScale: numberField('number', 'x', 'learning rate of the backbone as a fraction of the head\'s (discriminative ' +
    'learning rates, e.g. 0.1 when fine-tuning)', { min: 0, max: 1 }),
  fineTuneEpochs: optional(numberField('int', 'n', 'train the head alone for n epochs, then everything, the lr schedule ' +
    'run afresh in each phase (fastai\'s fine_tune; needs --weights)', { min: 1, max: MAX_EPOCHS })),
  engine: choiceField('name', ENGINES, 'who trains: resnet (this process) or torch (PyTorch DistributedDataParallel under torchrun, ' +
    'for many processes, GPUs and machines: see --nproc, --nnodes; needs python3 with torch >= 1.13)'),
  replicas: numberField('int', 'n', 'train n copies of the model side by side in worker threads, each on its share of every ' +
    'batch with its share of the cores, their gradients averaged (batch norm statistics per share, as under DDP); ' +
    'a step of a small net is many short kernels, so replicas use several cores better than one model (1: one model ' +
    'on every core)', { min: 1, max: 256 }),
};

/** The command-line flag of a setting, without its dashes: batchSize -> batch-size. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function isFieldKey(k: string): k is keyof TrainConfig {
  return Object.prototype.hasOwnProperty.call(FIELDS, k);
}

export const FIELD_KEYS: readonly (keyof TrainConfig)[] = Object.keys(FIELDS).filter(isFieldKey);

/** Check `v` against field `k` and store it in `c`. */
export function setField<K extends keyof TrainConfig>(c: TrainConfig, k: K, v: unknown, where: string): void {
  c[k] = FIELDS[k].check(v, where);
}

/**
 * Layer `patch` (a parsed JSON object) over `base`. An unknown field or a bad value is an
 * error naming `source` and the field (`label` says how: a file's field or a flag).
 * Giving the budget one way (epochs or iterations) clears the other.
 */
export function mergeConfig(base: TrainConfig, patch: unknown, source: string,
  label: (key: string) => string = (k) => `${source}: .${k}`): TrainConfig {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    const got = Array.isArray(patch) ? 'an array' : patch === null ? 'null' : typeof patch;
    throw new ConfigError(`${source}: expected a JSON object of training settings, got ${got}`);
  }
  const out: TrainConfig = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (!isFieldKey(k)) {
      const plain = k.toLowerCase().replace(/[-_]/g, '');
      const near = FIELD_KEYS.find((x) => x.toLowerCase() === plain) ?? closestNames(k, FIELD_KEYS)[0];
      throw new ConfigError(`${source}: unknown field ${shownValue(k)}` +
        (near ? `; did you mean "${near}"?` : ` (the fields are the flags of \`resnet train --help\` in camelCase, e.g. batchSize)`));
    }
    setField(out, k, v, label(k));
  }
  const given = (k: keyof TrainConfig): boolean => Object.prototype.hasOwnProperty.call(patch, k);
  if (given('iterations') && out.iterations !== null && !given('epochs')) out.epochs = null;
  if (given('epochs') && out.epochs !== null && !given('iterations')) out.iterations = null;
  return out;
}

/** Settings that only image folders have. */
const FOLDER_ONLY = ['imageSize', 'channels', 'convertImages'] as const;

/**
 * Checks that involve several fields; the budget defaults to epochs when neither is set.
 * `label` names a field as the user gave it (`.epochs` in a file, `--epochs` on the command line).
 */
export function finishConfig(c: TrainConfig, source: string, label: (key: keyof TrainConfig) => string = (k) => `.${k}`): TrainConfig {
  const [epochs, iterations, mean, std] = [label('epochs'), label('iterations'), label('mean'), label('std')];
  if (c.epochs !== null && c.iterations !== null) {
    throw new ConfigError(`${source}: give either ${epochs} or ${iterations}, not both (epochs ${c.epochs}, iterations ${c.iterations})`);
  }
  if (c.epochs === null && c.iterations === null) throw new ConfigError(`${source}: give ${epochs} or ${iterations}`);
  if ((c.mean === null) !== (c.std === null)) throw new ConfigError(`${source}: give ${mean} and ${std} together, or neither`);
  if (c.mean && c.std && c.mean.length !== c.std.length) {
    throw new ConfigError(`${source}: ${mean} has ${c.mean.length} values but ${std} ${c.std.length}; give one per channel`);
  }
  if (c.channels !== null && c.channels !== 1 && c.channels !== 3) throw new ConfigError(`${source}: ${label('channels')} must be 1 or 3, got ${c.channels}`);
  if (c.milestones && c.milestones.some((m, i) => i > 0 && m <= c.milestones![i - 1]!)) {
    throw new ConfigError(`${source}: ${label('milestones')} must increase, got ${c.milestones.join(',')}`);
  }
  if (c.dataset !== 'folder') {
    const given = FOLDER_ONLY.find((k) => c[k] !== DEFAULT_CONFIG[k]);
    if (given !== undefined) {
      throw new ConfigError(`${source}: ${label(given)} is for image folders (${label('dataset')} folder); ` +
        `${c.dataset} images keep their size: leave it out`);
    }
  }
  if (c.fineTuneEpochs !== null) {
    if (c.weights === null) throw new ConfigError(`${source}: ${label('fineTuneEpochs')} trains a pretrained model's head first; give ${label('weights')} too`);
    if (c.epochs === null) throw new ConfigError(`${source}: ${label('fineTuneEpochs')} counts epochs; give the budget as ${epochs}`);
    if (c.fineTuneEpochs >= c.epochs) {
      throw new ConfigError(`${source}: ${label('fineTuneEpochs')} ${c.fineTuneEpochs} leaves no epochs to train everything (${epochs} ${c.epochs}); ` +
        `give fewer than ${c.epochs}`);
    }
  }
  if (c.classes !== null && (c.classes.length < 2 || c.classes.some((k) => !Number.isInteger(k)))) {
    throw new ConfigError(`${source}: ${label('classes')} must list at least two class numbers, got ${c.classes.join(',')}`);
  }
  if (c.mixProb !== DEFAULT_CONFIG.mixProb && c.mixup === 0 && c.cutmix === 0) {
    throw new ConfigError(`${source}: ${label('mixProb')} is for ${label('mixup')} or ${label('cutmix')}; give one of them an alpha above 0, or leave it out`);
  }
  if (c.coarse && c.dataset !== 'cifar100') {
    throw new ConfigError(`${source}: ${label('coarse')} is for ${label('dataset')} cifar100 (its 20 superclasses); leave it out`);
  }
  return c;
}
