// One-line builders for every standard depth, as torchvision's
// `resnet18 = _resnet(BasicBlock, [2, 2, 2, 2])`.
import { BasicBlock, Bottleneck } from './blocks.js';
import { ModelConfigError } from './errors.js';
import type { NetworkConfig } from './network.js';
import { type ModelFamily, type ModelOptions, resolveOptions, type ResolvedOptions } from './options.js';
import { PlainBlock, PlainBottleneck } from './plain_blocks.js';
import { PreActBlock, PreActBottleneck } from './preact_blocks.js';
import { PreActResNet } from './preact_resnet.js';
import { PlainNet, ResNet } from './resnet.js';
import type { ShortcutKind } from './shortcuts.js';

/** Every builder returns one of these; PlainNet is a ResNet. */
export type ResidualNetwork = ResNet | PreActResNet;

/** Stage widths (`planes`) before the widening factor. */
const CIFAR_WIDTHS = [16, 32, 64] as const;
const IMAGENET_WIDTHS = [64, 128, 256, 512] as const;

function networkConfig(family: ModelFamily, block: NetworkConfig['block'], layers: readonly number[],
  o: ResolvedOptions, shortcut: ShortcutKind): NetworkConfig {
  const widths = family === 'cifar' ? CIFAR_WIDTHS : IMAGENET_WIDTHS;
  return {
    block, layers, shortcut,
    widths: widths.map((w) => w * o.width),
    stem: family,
    stemChannels: widths[0],
    numClasses: o.numClasses,
    inChannels: o.inChannels,
    zeroInitResidual: o.zeroInitResidual,
    rng: o.rng,
  };
}

/** A v1 network, or its plain twin when the shortcut is 'none'. */
function v1Network(family: ModelFamily, block: typeof BasicBlock | typeof Bottleneck, layers: readonly number[],
  opts: ModelOptions, defaultShortcut: ShortcutKind): ResNet {
  const o = resolveOptions(opts, family, defaultShortcut);
  if (o.shortcut === 'none') {
    const twin = block === BasicBlock ? PlainBlock : PlainBottleneck;
    return new PlainNet({ ...networkConfig(family, twin, layers, o, 'none'), block: twin, shortcut: 'none' });
  }
  return new ResNet(networkConfig(family, block, layers, o, o.shortcut));
}

function preActNetwork(family: ModelFamily, block: typeof PreActBlock | typeof PreActBottleneck,
  layers: readonly number[], opts: ModelOptions): PreActResNet {
  const o = resolveOptions(opts, family, 'B');
  if (o.shortcut === 'none') {
    throw new ModelConfigError("pre-activation networks have no plain twin; shortcut 'none' is for v1 models (resnet*, plain*)");
  }
  return new PreActResNet({ ...networkConfig(family, block, layers, o, o.shortcut), block });
}

/** Blocks per stage of a CIFAR net of `depth` layers with `perBlock` layers per block: (depth - 2) / (3 perBlock). */
function cifarBlocksPerStage(name: string, depth: number, perBlock: number, extra = 2): number {
  const n = (depth - extra) / (3 * perBlock);
  if (!Number.isInteger(n) || n < 1) {
    throw new ModelConfigError(`${name}: depth ${depth} is not ${3 * perBlock}n+${extra} for a whole n >= 1`);
  }
  return n;
}

/** CIFAR ResNet of 6n+2 layers (He et al. 2015, sec. 4.2): 16/32/64 planes, option A. */
export function cifarResNet(depth: number, opts: ModelOptions = {}): ResNet {
  const n = cifarBlocksPerStage('cifarResNet', depth, 2);
  return v1Network('cifar', BasicBlock, [n, n, n], opts, 'A');
}

/** The plain 6n+2-layer CIFAR net of sec. 4.2 (plain-20 ... plain-110). */
export function cifarPlainNet(depth: number, opts: ModelOptions = {}): ResNet {
  return cifarResNet(depth, plainOptions(`plain${depth}`, opts));
}

/** A plain builder's options: shortcut 'none', whatever else was asked. */
function plainOptions(name: string, opts: ModelOptions = {}): ModelOptions {
  if (opts.shortcut !== undefined && opts.shortcut !== 'none') {
    throw new ModelConfigError(`${name} has no shortcuts; for shortcut '${opts.shortcut}' build the residual network`);
  }
  return { ...opts, shortcut: 'none' };
}

/** Pre-activation CIFAR ResNet: 6n+2 layers of PreActBlock (He et al. 2016, Table 2). */
export function cifarPreActResNet(depth: number, opts: ModelOptions = {}): PreActResNet {
  const n = cifarBlocksPerStage('cifarPreActResNet', depth, 2);
  return preActNetwork('cifar', PreActBlock, [n, n, n], opts);
}

/** Pre-activation CIFAR ResNet of 9n+2 layers of PreActBottleneck: ResNet-164, ResNet-1001 (Table 2). */
export function cifarPreActBottleneckResNet(depth: number, opts: ModelOptions = {}): PreActResNet {
  const n = cifarBlocksPerStage('cifarPreActBottleneckResNet', depth, 3);
  return preActNetwork('cifar', PreActBottleneck, [n, n, n], opts);
}

/**
 * Wide ResNet WRN-depth-k (Zagoruyko & Komodakis 2016, arXiv:1605.07146, Table 1):
 * pre-activation basic blocks, (depth - 4) / 6 per stage, 16k/32k/64k channels.
 * Without the paper's optional dropout. A `width` option widens it further
 * (k x width), as it widens every other named model.
 */
export function wideResNet(depth: number, k: number, opts: ModelOptions = {}): PreActResNet {
  const n = cifarBlocksPerStage(`WRN-${depth}-${k}`, depth, 2, 4);
  const extra = opts.width ?? 1;
  if (!Number.isInteger(extra) || extra <= 0) throw new ModelConfigError(`width must be a positive integer, got ${String(opts.width)}`);
  return preActNetwork('cifar', PreActBlock, [n, n, n], { ...opts, width: k * extra });
}

/** ImageNet ResNet (He et al. 2015, Table 1) with torchvision's layout, option B. */
export function imagenetResNet(block: typeof BasicBlock | typeof Bottleneck, layers: readonly number[],
  opts: ModelOptions = {}): ResNet {
  return v1Network('imagenet', block, layers, opts, 'B');
}

/** ImageNet pre-activation ResNet (He et al. 2016, Table 5 / timm resnetv2 preact). */
export function imagenetPreActResNet(block: typeof PreActBlock | typeof PreActBottleneck, layers: readonly number[],
  opts: ModelOptions = {}): PreActResNet {
  return preActNetwork('imagenet', block, layers, opts);
}

export const resnet8 = (o?: ModelOptions): ResNet => cifarResNet(8, o);
export const resnet14 = (o?: ModelOptions): ResNet => cifarResNet(14, o);
export const resnet20 = (o?: ModelOptions): ResNet => cifarResNet(20, o);
export const resnet32 = (o?: ModelOptions): ResNet => cifarResNet(32, o);
export const resnet44 = (o?: ModelOptions): ResNet => cifarResNet(44, o);
export const resnet56 = (o?: ModelOptions): ResNet => cifarResNet(56, o);
export const resnet110 = (o?: ModelOptions): ResNet => cifarResNet(110, o);
export const resnet1202 = (o?: ModelOptions): ResNet => cifarResNet(1202, o);

export const plain20 = (o?: ModelOptions): ResNet => cifarPlainNet(20, o);
export const plain32 = (o?: ModelOptions): ResNet => cifarPlainNet(32, o);
export const plain44 = (o?: ModelOptions): ResNet => cifarPlainNet(44, o);
export const plain56 = (o?: ModelOptions): ResNet => cifarPlainNet(56, o);
export const plain110 = (o?: ModelOptions): ResNet => cifarPlainNet(110, o);

export const preact_resnet20 = (o?: ModelOptions): PreActResNet => cifarPreActResNet(20, o);
export const preact_resnet32 = (o?: ModelOptions): PreActResNet => cifarPreActResNet(32, o);
export const preact_resnet44 = (o?: ModelOptions): PreActResNet => cifarPreActResNet(44, o);
export const preact_resnet56 = (o?: ModelOptions): PreActResNet => cifarPreActResNet(56, o);
export const preact_resnet110 = (o?: ModelOptions): PreActResNet => cifarPreActResNet(110, o);
export const preact_resnet164 = (o?: ModelOptions): PreActResNet => cifarPreActBottleneckResNet(164, o);
export const preact_resnet1001 = (o?: ModelOptions): PreActResNet => cifarPreActBottleneckResNet(1001, o);

export const wide_resnet16_8 = (o?: ModelOptions): PreActResNet => wideResNet(16, 8, o);
export const wide_resnet28_10 = (o?: ModelOptions): PreActResNet => wideResNet(28, 10, o);
export const wide_resnet40_4 = (o?: ModelOptions): PreActResNet => wideResNet(40, 4, o);

export const resnet18 = (o?: ModelOptions): ResNet => imagenetResNet(BasicBlock, [2, 2, 2, 2], o);
export const resnet34 = (o?: ModelOptions): ResNet => imagenetResNet(BasicBlock, [3, 4, 6, 3], o);
export const resnet50 = (o?: ModelOptions): ResNet => imagenetResNet(Bottleneck, [3, 4, 6, 3], o);
export const resnet101 = (o?: ModelOptions): ResNet => imagenetResNet(Bottleneck, [3, 4, 23, 3], o);
export const resnet152 = (o?: ModelOptions): ResNet => imagenetResNet(Bottleneck, [3, 8, 36, 3], o);

export const plain18 = (o?: ModelOptions): ResNet => imagenetResNet(BasicBlock, [2, 2, 2, 2], plainOptions('plain18', o));
export const plain34 = (o?: ModelOptions): ResNet => imagenetResNet(BasicBlock, [3, 4, 6, 3], plainOptions('plain34', o));

export const preact_resnet18 = (o?: ModelOptions): PreActResNet => imagenetPreActResNet(PreActBlock, [2, 2, 2, 2], o);
export const preact_resnet34 = (o?: ModelOptions): PreActResNet => imagenetPreActResNet(PreActBlock, [3, 4, 6, 3], o);
export const preact_resnet50 = (o?: ModelOptions): PreActResNet => imagenetPreActResNet(PreActBottleneck, [3, 4, 6, 3], o);
export const preact_resnet101 = (o?: ModelOptions): PreActResNet => imagenetPreActResNet(PreActBottleneck, [3, 4, 23, 3], o);
export const preact_resnet152 = (o?: ModelOptions): PreActResNet => imagenetPreActResNet(PreActBottleneck, [3, 8, 36, 3], o);
