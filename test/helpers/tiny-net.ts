// A very small conv net (conv-BN-ReLU, global average pool, linear) for training-loop
// tests that must run in a second or two on either backend.
import { BatchNorm2d, Conv2d, Linear } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import * as F from '../../src/tensor/ops.js';
import { Rng } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';

export class TinyNet extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly fc: Linear;

  constructor(inChannels: number, numClasses: number, seed = 0) {
    super();
    const rng = new Rng(seed);
    this.conv = new Conv2d(inChannels, 6, 3, { padding: 1, rng });
    this.bn = new BatchNorm2d(6);
    this.fc = new Linear(6, numClasses, { rng });
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(F.globalAvgPool(this.bn.forwardRelu(this.conv.forward(x))));
  }
}
