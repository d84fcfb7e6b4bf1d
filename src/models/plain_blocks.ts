// The plain twins of the v1 blocks: the same layers without the shortcut, the
// "plain networks" of He et al. 2015, sec. 3.3 / Fig. 3 (middle) that show the
// degradation problem (Fig. 1, Fig. 6).
import { BatchNorm2d, type Conv2d, Module } from '../nn/index.js';
import { defaultRng, type Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { conv1x1, conv3x3 } from './convs.js';
import { ModelConfigError } from './errors.js';
import type { ShortcutKind } from './shortcuts.js';
import type { Block } from './stage.js';

function requireNoShortcut(block: string, shortcut: ShortcutKind): void {
  if (shortcut !== 'none') {
    throw new ModelConfigError(`${block} has no shortcut, got shortcut '${shortcut}'; use the residual block for shortcuts`);
  }
}

function noResidual(block: string): never {
  throw new ModelConfigError(`zeroInitResidual: ${block} has no residual branch to start at zero (the network would output a constant)`);
}

/** conv3x3-BN-ReLU-conv3x3-BN-ReLU. */
export class PlainBlock extends Module implements Block {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;

  constructor(inChannels: number, planes: number, stride = 1, shortcut: ShortcutKind = 'none', rng: Rng = defaultRng) {
    super();
    requireNoShortcut('PlainBlock', shortcut);
    this.conv1 = conv3x3(inChannels, planes, stride, rng);
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes, 1, rng);
    this.bn2 = new BatchNorm2d(planes);
  }

  forward(x: Tensor): Tensor {
    return this.bn2.forwardRelu(this.conv2.forward(this.bn1.forwardRelu(this.conv1.forward(x))));
  }

  zeroInitResidual(): void {
    noResidual('PlainBlock');
  }
}

/** conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1-BN-ReLU, widths as the Bottleneck. */
export class PlainBottleneck extends Module implements Block {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;

  constructor(inChannels: number, planes: number, stride = 1, shortcut: ShortcutKind = 'none', rng: Rng = defaultRng) {
    super();
    requireNoShortcut('PlainBottleneck', shortcut);
    const outChannels = planes * PlainBottleneck.expansion;
    this.conv1 = conv1x1(inChannels, planes, 1, rng);
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes, stride, rng);
    this.bn2 = new BatchNorm2d(planes);
    this.conv3 = conv1x1(planes, outChannels, 1, rng);
    this.bn3 = new BatchNorm2d(outChannels);
  }

  forward(x: Tensor): Tensor {
    let out = this.bn1.forwardRelu(this.conv1.forward(x));
    out = this.bn2.forwardRelu(this.conv2.forward(out));
    return this.bn3.forwardRelu(this.conv3.forward(out));
  }

  zeroInitResidual(): void {
    noResidual('PlainBottleneck');
  }
}
