// Pre-activation (v2) residual blocks: He et al. 2016 (arXiv:1603.05027), Fig. 1(b)
// and Fig. 4(e); timm resnetv2.py PreActBasic / PreActBottleneck.
//
//   x_{l+1} = x_l + F(x_l)                                   (eq. 4: no ReLU after the add)
//
// The identity shortcut carries x_l untouched, the clean path the paper's analysis
// rests on (sec. 3). A shortcut that changes the shape (projection or zero-pad) reads
// the pre-activated input BN-ReLU(x_l), as the residual branch does (the paper's
// appendix: the activation comes "before splitting into two paths"; timm's
// `self.downsample(x_preact)`).
import { BatchNorm2d, type Conv2d, Identity, Module } from '../nn/index.js';
import * as F from '../tensor/ops.js';
import { defaultRng, type Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { conv1x1, conv3x3 } from './convs.js';
import { preActivationShortcut, type ShortcutKind } from './shortcuts.js';
import type { Block } from './stage.js';

/** BN-ReLU-conv3x3-BN-ReLU-conv3x3, add the shortcut. */
export class PreActBlock extends Module implements Block {
  static readonly expansion = 1;
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly downsample: Module;
  /** True when the shortcut changes the shape and so reads the pre-activated input. */
  private readonly shortcutReadsPreact: boolean;

  constructor(inChannels: number, planes: number, stride = 1, shortcut: ShortcutKind = 'B', rng: Rng = defaultRng) {
    super();
    this.bn1 = new BatchNorm2d(inChannels);
    this.conv1 = conv3x3(inChannels, planes, stride, rng);
    this.bn2 = new BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes, 1, rng);
    this.downsample = preActivationShortcut(shortcut, inChannels, planes, stride, rng);
    this.shortcutReadsPreact = !(this.downsample instanceof Identity);
  }

  forward(x: Tensor): Tensor {
    const xPreact = this.bn1.forwardRelu(x);
    // shortcut branch
    const shortcut = this.downsample.forward(this.shortcutReadsPreact ? xPreact : x);
    // residual branch
    const out = this.conv2.forward(this.bn2.forwardRelu(this.conv1.forward(xPreact)));
    return F.add(out, shortcut);
  }

  /** Zero the last convolution (timm's zero_init_last): no BN ends a v2 residual branch. */
  zeroInitResidual(): void {
    this.conv2.weight.data.fill(0);
  }
}

/**
 * BN-ReLU-conv1x1 (reduce) - BN-ReLU-conv3x3 - BN-ReLU-conv1x1 (restore to 4 x planes),
 * add the shortcut. The stride sits on the 3x3 convolution, as in torchvision's v1.5
 * Bottleneck and timm's PreActBottleneck.
 */
export class PreActBottleneck extends Module implements Block {
  static readonly expansion = 4;
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly downsample: Module;
  private readonly shortcutReadsPreact: boolean;

  constructor(inChannels: number, planes: number, stride = 1, shortcut: ShortcutKind = 'B', rng: Rng = defaultRng) {
    super();
    const outChannels = planes * PreActBottleneck.expansion;
    this.bn1 = new BatchNorm2d(inChannels);
    this.conv1 = conv1x1(inChannels, planes, 1, rng);
    this.bn2 = new BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes, stride, rng);
    this.bn3 = new BatchNorm2d(planes);
    this.conv3 = conv1x1(planes, outChannels, 1, rng);
    this.downsample = preActivationShortcut(shortcut, inChannels, outChannels, stride, rng);
    this.shortcutReadsPreact = !(this.downsample instanceof Identity);
  }

  forward(x: Tensor): Tensor {
    const xPreact = this.bn1.forwardRelu(x);
    // shortcut branch
    const shortcut = this.downsample.forward(this.shortcutReadsPreact ? xPreact : x);
    // residual branch
    let out = this.conv1.forward(xPreact);
    out = this.conv2.forward(this.bn2.forwardRelu(out));
    out = this.conv3.forward(this.bn3.forwardRelu(out));
    return F.add(out, shortcut);
  }

  zeroInitResidual(): void {
    this.conv3.weight.data.fill(0);
  }
}
