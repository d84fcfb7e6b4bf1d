// Post-activation (v1) residual blocks: He et al. 2015, Fig. 5; torchvision's
// BasicBlock and Bottleneck (v1.5: the stride sits on the 3x3 convolution).
import { BatchNorm2d, type Conv2d, Module } from '../nn/index.js';
import * as F from '../tensor/ops.js';
import { defaultRng, type Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { conv1x1, conv3x3 } from './convs.js';
import { postActivationShortcut, type ShortcutKind } from './shortcuts.js';
import type { Block } from './stage.js';

/** Two 3x3 convolutions: conv-BN-ReLU-conv-BN, add the shortcut, ReLU. */
export class BasicBlock extends Module implements Block {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Module;

  constructor(inChannels: number, planes: number, stride = 1, shortcut: ShortcutKind = 'B', rng: Rng = defaultRng) {
    super();
    this.conv1 = conv3x3(inChannels, planes, stride, rng);
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes, 1, rng);
    this.bn2 = new BatchNorm2d(planes);
    this.downsample = postActivationShortcut(shortcut, inChannels, planes, stride, rng);
  }

  forward(x: Tensor): Tensor {
    // residual branch F(x)
    const out = this.bn2.forward(this.conv2.forward(this.bn1.forwardRelu(this.conv1.forward(x))));
    // shortcut branch: identity, zero-pad or projection W_s x (eq. 2)
    const shortcut = this.downsample.forward(x);
    // y = ReLU(F(x) + h(x)): the second nonlinearity comes after the addition (sec. 3.2)
    return F.addRelu(out, shortcut);
  }

  zeroInitResidual(): void {
    this.bn2.weight.data.fill(0);
  }
}

/**
 * 1x1 (reduce to `planes`) - 3x3 - 1x1 (restore to 4 x `planes`), each followed by BN,
 * ReLU after all but the last; add the shortcut, ReLU (sec. 4.1, "Deeper Bottleneck
 * Architectures").
 */
export class Bottleneck extends Module implements Block {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Module;

  constructor(inChannels: number, planes: number, stride = 1, shortcut: ShortcutKind = 'B', rng: Rng = defaultRng) {
    super();
    const outChannels = planes * Bottleneck.expansion;
    this.conv1 = conv1x1(inChannels, planes, 1, rng);
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes, stride, rng);
    this.bn2 = new BatchNorm2d(planes);
    this.conv3 = conv1x1(planes, outChannels, 1, rng);
    this.bn3 = new BatchNorm2d(outChannels);
    this.downsample = postActivationShortcut(shortcut, inChannels, outChannels, stride, rng);
  }

  forward(x: Tensor): Tensor {
    // residual branch F(x)
    let out = this.bn1.forwardRelu(this.conv1.forward(x));
    out = this.bn2.forwardRelu(this.conv2.forward(out));
    out = this.bn3.forward(this.conv3.forward(out));
    // shortcut branch
    const shortcut = this.downsample.forward(x);
    return F.addRelu(out, shortcut);
  }

  zeroInitResidual(): void {
    this.bn3.weight.data.fill(0);
  }
}
