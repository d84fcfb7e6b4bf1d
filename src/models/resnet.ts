// The post-activation residual network (He et al. 2015) and its plain twin, laid out
// as torchvision's ResNet so state dicts match it key for key:
//   conv1, bn1, (maxpool), layer1 ... layerK, avgpool, fc.
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, Module, type Sequential } from '../nn/index.js';
import * as F from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { attachStages, checkConfig, checkImageBatch, makeStages, stemConv, stemPool, type NetworkConfig } from './network.js';
import type { PlainBlock, PlainBottleneck } from './plain_blocks.js';
import type { Block } from './stage.js';

export class ResNet extends Module {
  // Declared, not initialised: attribute order (and so state-dict order) is the order
  // of assignment below, which follows the forward pass.
  declare readonly conv1: Conv2d;
  declare readonly bn1: BatchNorm2d;
  declare readonly maxpool: MaxPool2d | Identity;
  declare readonly stages: readonly Sequential[];
  declare readonly blocks: readonly Block[];
  declare readonly avgpool: AdaptiveAvgPool2d;
  declare readonly fc: Linear;
  declare readonly inChannels: number;
  declare readonly numClasses: number;

  constructor(cfg: NetworkConfig) {
    super();
    checkConfig(cfg);
    this.inChannels = cfg.inChannels;
    this.numClasses = cfg.numClasses;
    this.conv1 = stemConv(cfg);
    this.bn1 = new BatchNorm2d(cfg.stemChannels);
    this.maxpool = stemPool(cfg);
    const stages = makeStages(cfg);
    this.stages = stages.modules;
    this.blocks = stages.blocks;
    attachStages(this, stages.modules);
    this.avgpool = new AdaptiveAvgPool2d(1);
    this.fc = new Linear(stages.outChannels, cfg.numClasses, { rng: cfg.rng });
    if (cfg.zeroInitResidual) for (const block of this.blocks) block.zeroInitResidual();
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.forwardFeatures(x));
  }

  /** The pooled features the classifier reads: [N, channels of the last stage] (timm's forward_features + pooling). */
  forwardFeatures(x: Tensor): Tensor {
    checkImageBatch(this.constructor.name, x, this.inChannels);
    let y = this.maxpool.forward(this.bn1.forwardRelu(this.conv1.forward(x)));
    for (const stage of this.stages) y = stage.forward(y);
    return F.flatten(this.avgpool.forward(y));
  }
}

export interface PlainNetConfig extends NetworkConfig {
  readonly block: typeof PlainBlock | typeof PlainBottleneck;
  readonly shortcut: 'none';
}

/**
 * A ResNet without shortcuts (sec. 3.3, "Plain Network"): the same stem, stages and
 * head built from PlainBlock / PlainBottleneck.
 */
export class PlainNet extends ResNet {
  constructor(cfg: PlainNetConfig) {
    super(cfg);
  }
}
