// Weight initialisation, as torch.nn.init.
import { defaultRng, type Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

/** Fan-in and fan-out of a weight: [out, in, ...kernel] (conv OIHW, linear [out, in]). */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: (shape[0] ?? 1) * receptive };
}

/**
 * He et al. 2015 (arXiv:1502.01852) normal init for ReLU nets: std = sqrt(2 / fan).
 * torchvision's ResNets use mode 'fanOut'.
 */
export function kaimingNormal(t: Tensor, mode: 'fanIn' | 'fanOut' = 'fanOut', rng: Rng = defaultRng): void {
  const f = fans(t.shape);
  const std = Math.sqrt(2 / (mode === 'fanIn' ? f.fanIn : f.fanOut));
  for (let i = 0; i < t.size; i++) t.data[i] = std * rng.normal();
}

/** Uniform in [-bound, bound]. */
export function uniform(t: Tensor, bound: number, rng: Rng = defaultRng): void {
  for (let i = 0; i < t.size; i++) t.data[i] = (rng.uniform() * 2 - 1) * bound;
}

/**
 * PyTorch's default Linear / Conv init: kaiming_uniform with a = sqrt(5), which is
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias draws from the same bound.
 */
export function defaultLinearInit(weight: Tensor, bias: Tensor | null, rng: Rng = defaultRng): void {
  const bound = 1 / Math.sqrt(fans(weight.shape).fanIn);
  uniform(weight, bound, rng);
  if (bias) uniform(bias, bound, rng);
}

export function constant(t: Tensor, value: number): void {
  t.data.fill(value);
}
