// A stage: blocks of one width at one resolution. Its first block takes the stride and
// the change of width ("when the feature map size is halved, the number of filters is
// doubled", He et al. 2015, sec. 3.3); the others keep the shape. Residual and plain
// networks, v1 and v2, all build their stages here.
import { Module, Sequential } from '../nn/index.js';
import type { Rng } from '../tensor/random.js';
import type { ShortcutKind } from './shortcuts.js';

/** What every block offers beyond forward(). */
export interface Block extends Module {
  /**
   * Start the block as the identity map: zero the last layer of its residual branch
   * (Goyal et al. 2017, arXiv:1706.02677, sec. 5.1; torchvision's zero_init_residual).
   */
  zeroInitResidual(): void;
}

/** A block class: torchvision's contract, with the shortcut chosen by kind. */
export interface BlockType {
  /** Output channels per `planes`: 1 for two-layer blocks, 4 for bottlenecks. */
  readonly expansion: number;
  new (inChannels: number, planes: number, stride: number, shortcut: ShortcutKind, rng: Rng): Block;
}

export interface Stage {
  /** The blocks as one module (`layerK` in the state dict). */
  readonly blocks: Sequential;
  readonly list: readonly Block[];
  readonly outChannels: number;
}

export function makeStage(block: BlockType, inChannels: number, planes: number, numBlocks: number, stride: number,
  shortcut: ShortcutKind, rng: Rng): Stage {
  const outChannels = planes * block.expansion;
  const blocks: Block[] = [new block(inChannels, planes, stride, shortcut, rng)];
  for (let i = 1; i < numBlocks; i++) blocks.push(new block(outChannels, planes, 1, shortcut, rng));
  return { blocks: new Sequential(...blocks), list: blocks, outChannels };
}
