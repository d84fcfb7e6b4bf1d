// The two convolutions residual networks are made of, as torchvision's conv3x3 and
// conv1x1: no bias, because every one of them is followed by batch normalisation
// (He et al. 2015, sec. 3.4), whose shift makes a bias redundant.
import { Conv2d } from '../nn/index.js';
import type { Rng } from '../tensor/random.js';

/** 3x3 convolution with padding 1, so a stride-1 block keeps the spatial size. */
export function conv3x3(inChannels: number, outChannels: number, stride: number, rng: Rng): Conv2d {
  return new Conv2d(inChannels, outChannels, 3, { stride, padding: 1, bias: false, rng });
}

/** 1x1 convolution: the bottleneck's reduce/restore layers and the projection shortcut. */
export function conv1x1(inChannels: number, outChannels: number, stride: number, rng: Rng): Conv2d {
  return new Conv2d(inChannels, outChannels, 1, { stride, bias: false, rng });
}
