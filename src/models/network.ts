// What v1, v2 and plain networks share: their configuration, the stem choices, the
// stage layout and the input check.
import { Conv2d, Identity, MaxPool2d, Module, Sequential } from '../nn/index.js';
import { conv3x3 } from './convs.js';
import type { Rng } from '../tensor/random.js';
import { formatShape, type Tensor } from '../tensor/tensor.js';
import { ModelConfigError } from './errors.js';
import type { ShortcutKind } from './shortcuts.js';
import { type Block, type BlockType, makeStage } from './stage.js';

/**
 * 'imagenet': 7x7 stride-2 convolution and 3x3 stride-2 max pool (He et al. 2015,
 * Table 1); 'cifar': one 3x3 convolution at full resolution (sec. 4.2).
 */
export type StemKind = 'imagenet' | 'cifar';

export interface NetworkConfig {
  readonly block: BlockType;
  /** Blocks per stage, e.g. [2, 2, 2, 2] for ResNet-18. */
  readonly layers: readonly number[];
  /** `planes` of each stage; its output has planes x block.expansion channels. */
  readonly widths: readonly number[];
  readonly stem: StemKind;
  /** Output channels of the stem convolution (64 ImageNet, 16 CIFAR). */
  readonly stemChannels: number;
  readonly shortcut: ShortcutKind;
  readonly numClasses: number;
  /** Channels of the input images: 3 for RGB, 1 for grey scale. */
  readonly inChannels: number;
  readonly zeroInitResidual: boolean;
  readonly rng: Rng;
}

export function checkConfig(cfg: NetworkConfig): void {
  const positiveInt = (v: number): boolean => Number.isInteger(v) && v > 0;
  if (cfg.layers.length === 0 || cfg.layers.length !== cfg.widths.length) {
    throw new ModelConfigError(`layers [${cfg.layers.join(', ')}] and widths [${cfg.widths.join(', ')}] must be non-empty and of the same length`);
  }
  for (const [what, values] of [['layers', cfg.layers], ['widths', cfg.widths]] as const) {
    if (!values.every(positiveInt)) throw new ModelConfigError(`${what} must be positive integers, got [${values.join(', ')}]`);
  }
  for (const [what, v] of [['numClasses', cfg.numClasses], ['inChannels', cfg.inChannels], ['stemChannels', cfg.stemChannels]] as const) {
    if (!positiveInt(v)) throw new ModelConfigError(`${what} must be a positive integer, got ${v}`);
  }
}

export interface Stages {
  readonly modules: readonly Sequential[];
  readonly blocks: readonly Block[];
  readonly outChannels: number;
}

/** The stages after the stem: the first at stride 1, each later one halves the resolution. */
/** The stem convolution: 7x7 stride 2 for ImageNet (sec. 3.4), 3x3 for CIFAR (sec. 4.2). */
export function stemConv(cfg: NetworkConfig): Conv2d {
  return cfg.stem === 'imagenet'
    ? new Conv2d(cfg.inChannels, cfg.stemChannels, 7, { stride: 2, padding: 3, bias: false, rng: cfg.rng })
    : conv3x3(cfg.inChannels, cfg.stemChannels, 1, cfg.rng);
}

/** The stem's 3x3 stride-2 max pool (ImageNet), or nothing (CIFAR). */
export function stemPool(cfg: NetworkConfig): MaxPool2d | Identity {
  return cfg.stem === 'imagenet' ? new MaxPool2d(3, { stride: 2, padding: 1 }) : new Identity();
}

export function makeStages(cfg: NetworkConfig): Stages {
  const modules: Sequential[] = [];
  const blocks: Block[] = [];
  let channels = cfg.stemChannels;
  cfg.layers.forEach((numBlocks, i) => {
    const stage = makeStage(cfg.block, channels, cfg.widths[i]!, numBlocks, i === 0 ? 1 : 2, cfg.shortcut, cfg.rng);
    modules.push(stage.blocks);
    blocks.push(...stage.list);
    channels = stage.outChannels;
  });
  return { modules, blocks, outChannels: channels };
}

/**
 * Attach the stages as `layer1`, `layer2`, ... (torchvision's attribute names, which
 * become the state-dict prefixes). They are defined one by one, in order, so that the
 * module tree lists them between the stem and the classifier.
 */
export function attachStages(network: Module, stages: readonly Sequential[]): void {
  stages.forEach((stage, i) => {
    Object.defineProperty(network, `layer${i + 1}`, { value: stage, enumerable: true });
  });
}

/** Models take NHWC batches; say so when given something else (often NCHW). */
export function checkImageBatch(model: string, x: Tensor, inChannels: number): void {
  if (x.ndim !== 4) {
    throw new Error(`${model}: input must be an NHWC batch [N, H, W, ${inChannels}], got shape ${formatShape(x.shape)}`);
  }
  if (x.shape[3] !== inChannels) {
    const nchw = x.shape[1] === inChannels ? ' It looks like NCHW: models take NHWC, so permute it to [N, H, W, C].' : '';
    throw new Error(`${model}: input ${formatShape(x.shape)} has ${x.shape[3]} channels in its last (C) dimension, ` +
      `the model expects ${inChannels} (NHWC [N, H, W, C]).${nchw}`);
  }
}
