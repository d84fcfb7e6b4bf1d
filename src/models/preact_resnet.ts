// The pre-activation residual network (He et al. 2016): every block begins with
// BN-ReLU, so the stem is a bare convolution and the network ends with BN-ReLU
// before the pooling (the paper's appendix; timm resnetv2.py). Attribute names:
//   conv1, (maxpool), layer1 ... layerK, bn, avgpool, fc.
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, Module, type Sequential } from '../nn/index.js';
import * as F from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { attachStages, checkConfig, checkImageBatch, makeStages, stemConv, stemPool, type NetworkConfig } from './network.js';
import type { PreActBlock, PreActBottleneck } from './preact_blocks.js';
import type { Block } from './stage.js';

export interface PreActResNetConfig extends NetworkConfig {
  readonly block: typeof PreActBlock | typeof PreActBottleneck;
}

export class PreActResNet extends Module {
  // Declared, not initialised, so attribute order follows the assignments below.
  declare readonly conv1: Conv2d;
  declare readonly maxpool: MaxPool2d | Identity;
  declare readonly stages: readonly Sequential[];
  declare readonly blocks: readonly Block[];
  declare readonly bn: BatchNorm2d;
  declare readonly avgpool: AdaptiveAvgPool2d;
  declare readonly fc: Linear;
  declare readonly inChannels: number;
  declare readonly numClasses: number;

  constructor(cfg: PreActResNetConfig) {
    super();
    checkConfig(cfg);
    this.inChannels = cfg.inChannels;
    this.numClasses = cfg.numClasses;
    this.conv1 = stemConv(cfg);
    this.maxpool = stemPool(cfg);
    const stages = makeStages(cfg);
    this.stages = stages.modules;
    this.blocks = stages.blocks;
    attachStages(this, stages.modules);
    // The last block's sum has not been normalised: BN-ReLU before pooling.
    this.bn = new BatchNorm2d(stages.outChannels);
    this.avgpool = new AdaptiveAvgPool2d(1);
    this.fc = new Linear(stages.outChannels, cfg.numClasses, { rng: cfg.rng });
    if (cfg.zeroInitResidual) for (const block of this.blocks) block.zeroInitResidual();
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.forwardFeatures(x));
  }

  /** The pooled features the classifier reads: [N, channels of the last stage], after the final BN-ReLU. */
  forwardFeatures(x: Tensor): Tensor {
    checkImageBatch('PreActResNet', x, this.inChannels);
    let y = this.maxpool.forward(this.conv1.forward(x));
    for (const stage of this.stages) y = stage.forward(y);
    y = this.bn.forwardRelu(y);
    return F.flatten(this.avgpool.forward(y));
  }
}
