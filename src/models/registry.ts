// Every builder by name: models.create(name, options) and models.list().
import * as b from './builders.js';
import type { ResidualNetwork } from './builders.js';
import { ModelConfigError } from './errors.js';
import type { ModelFamily, ModelOptions } from './options.js';
import { closestNames } from '../util/closest-names.js';
import { load } from './pretrained.js';

export interface ModelInfo {
  readonly name: string;
  /** 'cifar': 32x32 inputs, 3x3 stem; 'imagenet': 224x224 inputs, 7x7 stem + max pool. */
  readonly family: ModelFamily;
  readonly description: string;
  /** The input size the model was designed for, [height, width]. */
  readonly imageSize: readonly [number, number];
  readonly defaultNumClasses: number;
}

interface Entry extends ModelInfo {
  readonly build: (opts: ModelOptions) => ResidualNetwork;
}

function entry(name: string, family: ModelFamily, description: string,
  build: (opts: ModelOptions) => ResidualNetwork): Entry {
  const cifar = family === 'cifar';
  return { name, family, description, build, imageSize: cifar ? [32, 32] : [224, 224], defaultNumClasses: cifar ? 10 : 1000 };
}

const ENTRIES: readonly Entry[] = [
  entry('resnet8', 'cifar', 'ResNet-8, CIFAR, option A: one block per stage, for fast runs', b.resnet8),
  entry('resnet14', 'cifar', 'ResNet-14, CIFAR, option A: two blocks per stage, for fast runs', b.resnet14),
  entry('resnet20', 'cifar', 'ResNet-20, CIFAR, option A (He et al. 2015, sec. 4.2)', b.resnet20),
  entry('resnet32', 'cifar', 'ResNet-32, CIFAR, option A', b.resnet32),
  entry('resnet44', 'cifar', 'ResNet-44, CIFAR, option A', b.resnet44),
  entry('resnet56', 'cifar', 'ResNet-56, CIFAR, option A', b.resnet56),
  entry('resnet110', 'cifar', 'ResNet-110, CIFAR, option A', b.resnet110),
  entry('resnet1202', 'cifar', 'ResNet-1202, CIFAR, option A', b.resnet1202),
  entry('plain20', 'cifar', 'plain 20-layer CIFAR net (no shortcuts)', b.plain20),
  entry('plain32', 'cifar', 'plain 32-layer CIFAR net', b.plain32),
  entry('plain44', 'cifar', 'plain 44-layer CIFAR net', b.plain44),
  entry('plain56', 'cifar', 'plain 56-layer CIFAR net', b.plain56),
  entry('plain110', 'cifar', 'plain 110-layer CIFAR net', b.plain110),
  entry('preact_resnet20', 'cifar', 'pre-activation ResNet-20, CIFAR (He et al. 2016)', b.preact_resnet20),
  entry('preact_resnet32', 'cifar', 'pre-activation ResNet-32, CIFAR', b.preact_resnet32),
  entry('preact_resnet44', 'cifar', 'pre-activation ResNet-44, CIFAR', b.preact_resnet44),
  entry('preact_resnet56', 'cifar', 'pre-activation ResNet-56, CIFAR', b.preact_resnet56),
  entry('preact_resnet110', 'cifar', 'pre-activation ResNet-110, CIFAR', b.preact_resnet110),
  entry('preact_resnet164', 'cifar', 'pre-activation bottleneck ResNet-164, CIFAR', b.preact_resnet164),
  entry('preact_resnet1001', 'cifar', 'pre-activation bottleneck ResNet-1001, CIFAR', b.preact_resnet1001),
  entry('wide_resnet16_8', 'cifar', 'WRN-16-8 (Zagoruyko & Komodakis 2016)', b.wide_resnet16_8),
  entry('wide_resnet28_10', 'cifar', 'WRN-28-10', b.wide_resnet28_10),
  entry('wide_resnet40_4', 'cifar', 'WRN-40-4', b.wide_resnet40_4),
  entry('resnet18', 'imagenet', "ResNet-18 in torchvision's layout", b.resnet18),
  entry('resnet34', 'imagenet', "ResNet-34 in torchvision's layout", b.resnet34),
  entry('resnet50', 'imagenet', "ResNet-50 v1.5 in torchvision's layout", b.resnet50),
  entry('resnet101', 'imagenet', "ResNet-101 v1.5 in torchvision's layout", b.resnet101),
  entry('resnet152', 'imagenet', "ResNet-152 v1.5 in torchvision's layout", b.resnet152),
  entry('plain18', 'imagenet', 'plain 18-layer ImageNet net', b.plain18),
  entry('plain34', 'imagenet', 'plain 34-layer ImageNet net (He et al. 2015, Fig. 3 middle)', b.plain34),
  entry('preact_resnet18', 'imagenet', 'pre-activation ResNet-18, ImageNet stem', b.preact_resnet18),
  entry('preact_resnet34', 'imagenet', 'pre-activation ResNet-34, ImageNet stem', b.preact_resnet34),
  entry('preact_resnet50', 'imagenet', 'pre-activation ResNet-50, ImageNet stem', b.preact_resnet50),
  entry('preact_resnet101', 'imagenet', 'pre-activation ResNet-101, ImageNet stem', b.preact_resnet101),
  entry('preact_resnet152', 'imagenet', 'pre-activation ResNet-152, ImageNet stem', b.preact_resnet152),
];

const BY_NAME = new Map(ENTRIES.map((e) => [e.name, e]));

/** Names of every builder. */
export function list(): string[] {
  return ENTRIES.map((e) => e.name);
}

function lookup(name: string): Entry {
  const e = BY_NAME.get(name);
  if (e) return e;
  const near = closestNames(name, list());
  const hint = near.length > 0 ? ` Did you mean ${near.join(' or ')}?` : '';
  throw new ModelConfigError(`unknown model '${name}'.${hint} Known models: ${list().join(', ')}`);
}

/** What a builder makes, without building it. */
export function info(name: string): ModelInfo {
  const { build: _build, ...rest } = lookup(name);
  return rest;
}

export interface CreateOptions extends ModelOptions {
  /**
   * A `.pth` or `.safetensors` file of weights for this model (torchvision or timm names);
   * with a numClasses other than theirs, the classifier head is new (see pretrained.ts).
   */
  weights?: string;
}

/**
 * Build a model by name, e.g. create('resnet50', { numClasses: 10, inChannels: 1 }), or
 * create('resnet50', { weights: 'resnet50.pth' }) with weights (in inference mode).
 */
export function create(name: string, opts: CreateOptions = {}): ResidualNetwork {
  const { weights, ...modelOpts } = opts;
  if (weights === undefined) return lookup(name).build(modelOpts);
  lookup(name);
  const { numClasses, width, seed, ...rest } = modelOpts;
  const other = Object.keys(rest).filter((k) => rest[k as keyof typeof rest] !== undefined);
  if (other.length > 0) throw new ModelConfigError(`with weights, the options are numClasses, width and seed; leave out ${other.join(', ')}`);
  return load(weights, { model: name, numClasses, width, seed }).model;
}
