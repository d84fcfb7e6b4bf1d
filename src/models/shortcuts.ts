// Shortcut connections h(x) of a residual block (He et al. 2015, sec. 3.3, and the
// comparison of options A/B/C in sec. 4.1, Table 3):
//   A: identity; where the shape changes, subsample by the stride and zero-pad the new
//      channels (no parameters);
//   B: identity; a 1x1 projection only where the shape changes;
//   C: a 1x1 projection in every block.
// 'none' means no shortcut at all: the plain twin of a residual network.
// The identity is the `Identity` module, so a block always runs `downsample.forward`.
import { BatchNorm2d, Identity, Module, Sequential } from '../nn/index.js';
import * as F from '../tensor/ops.js';
import type { Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { conv1x1 } from './convs.js';
import { ModelConfigError } from './errors.js';

export type ShortcutKind = 'A' | 'B' | 'C' | 'none';

export const SHORTCUT_KINDS: readonly ShortcutKind[] = ['A', 'B', 'C', 'none'];

/**
 * Option A on a shape change: x[:, ::s, ::s] with zero channels around it. Half of the
 * new channels go before the input's and half after, as the common CIFAR code does
 * (`F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))`); with an odd
 * difference the extra channel goes after.
 */
export class ZeroPadShortcut extends Module {
  readonly padFront: number;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly stride: number) {
    super();
    this.padFront = Math.floor((outChannels - inChannels) / 2);
  }

  forward(x: Tensor): Tensor {
    return F.padChannelsSubsample(x, this.stride, this.outChannels, this.padFront);
  }
}

/** Makes the 1x1 projection W_s of eq. (2); v1 and v2 differ in what follows the conv. */
type ProjectionFactory = (inChannels: number, outChannels: number, stride: number, rng: Rng) => Module;

function makeShortcut(kind: ShortcutKind, inChannels: number, outChannels: number, stride: number, rng: Rng,
  projection: ProjectionFactory): Module {
  const reshapes = stride !== 1 || inChannels !== outChannels;
  switch (kind) {
    case 'A':
      if (!reshapes) return new Identity();
      if (outChannels < inChannels) {
        throw new ModelConfigError(`shortcut 'A' cannot zero-pad ${inChannels} channels down to ${outChannels}; use shortcut 'B'`);
      }
      return new ZeroPadShortcut(inChannels, outChannels, stride);
    case 'B':
      return reshapes ? projection(inChannels, outChannels, stride, rng) : new Identity();
    case 'C':
      return projection(inChannels, outChannels, stride, rng);
    case 'none':
      throw new ModelConfigError("a residual block needs a shortcut ('A', 'B' or 'C'); shortcut 'none' builds the plain twin");
  }
}

/**
 * Shortcut of a post-activation (v1) block. The projection is conv1x1 + BN, named
 * `downsample.0` / `downsample.1` as in torchvision.
 */
export function postActivationShortcut(kind: ShortcutKind, inChannels: number, outChannels: number, stride: number,
  rng: Rng): Module {
  return makeShortcut(kind, inChannels, outChannels, stride, rng,
    (i, o, s, r) => new Sequential(conv1x1(i, o, s, r), new BatchNorm2d(o)));
}

/**
 * Shortcut of a pre-activation (v2) block. The projection is a bare conv1x1
 * (`downsample.0`): it reads the already normalised input, and the next block's BN
 * normalises the sum (He et al. 2016; timm resnetv2 DownsampleConv with preact=True).
 */
export function preActivationShortcut(kind: ShortcutKind, inChannels: number, outChannels: number, stride: number,
  rng: Rng): Module {
  return makeShortcut(kind, inChannels, outChannels, stride, rng,
    (i, o, s, r) => new Sequential(conv1x1(i, o, s, r)));
}
