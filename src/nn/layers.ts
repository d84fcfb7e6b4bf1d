// The layers ResNets are made of, with PyTorch's attribute names and defaults.
import * as F from '../tensor/ops.js';
import { Tensor, zeros } from '../tensor/tensor.js';
import { defaultRng, type Rng } from '../tensor/random.js';
import { defaultLinearInit, kaimingNormal } from './init.js';
import { Module, Parameter } from './module.js';

/** During a dry build (stateDictShapes): the shape each empty placeholder tensor stands for. */
let dryBuild: Map<Tensor, readonly number[]> | null = null;

function placeholder<T extends Tensor>(t: T, shape: readonly number[]): T {
  dryBuild!.set(t, [...shape]);
  return t;
}

function param(shape: readonly number[]): Parameter {
  if (dryBuild) return placeholder(new Parameter(new Float32Array(0), [0]), shape);
  let n = 1;
  for (const d of shape) n *= d;
  return new Parameter(new Float32Array(n), shape);
}

function buffer(shape: readonly number[], value: number): Tensor {
  if (dryBuild) return placeholder(new Tensor(new Float32Array(0), [0]), shape);
  const t = zeros(shape);
  if (value !== 0) t.data.fill(value);
  return t;
}

/**
 * The state-dict shapes of the module `build` makes, without allocating its tensors:
 * the layers built inside hold empty placeholders (initialised in no time), so a model
 * of any size costs only its module tree. What a file claims can be checked against a
 * model this way before the model is built.
 */
export function stateDictShapes(build: () => Module): Record<string, number[]> {
  if (dryBuild) throw new Error('stateDictShapes: a dry build is already running');
  const shapes = new Map<Tensor, readonly number[]>();
  dryBuild = shapes;
  try {
    const out: Record<string, number[]> = {};
    for (const [k, t] of Object.entries(build().stateDict())) out[k] = [...(shapes.get(t) ?? t.shape)];
    return out;
  } finally {
    dryBuild = null;
  }
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
  rng?: Rng;
}

/** 2-D convolution on NHWC input with an OIHW weight; Kaiming-normal (fan_out) init. */
export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly padding: number;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number,
    opts: Conv2dOptions = {}) {
    super();
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.weight = param([outChannels, inChannels, kernelSize, kernelSize]);
    this.bias = opts.bias ? param([outChannels]) : null;
    kaimingNormal(this.weight, 'fanOut', opts.rng ?? defaultRng);
  }

  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
}

/** Batch normalisation of the channels of an NHWC tensor (torch.nn.BatchNorm2d). */
export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  readonly eps: number;
  readonly momentum: number;

  constructor(readonly numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.weight = param([numFeatures]);
    this.weight.data.fill(1);
    this.bias = param([numFeatures]);
    this.runningMean = this.registerBuffer('running_mean', buffer([numFeatures], 0));
    this.runningVar = this.registerBuffer('running_var', buffer([numFeatures], 1));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', buffer([], 0));
  }

  forward(x: Tensor): Tensor {
    return this.run(x, false);
  }

  /** BN followed by ReLU in one kernel (same result as forward + ReLU). */
  forwardRelu(x: Tensor): Tensor {
    return this.run(x, true);
  }

  private run(x: Tensor, relu: boolean): Tensor {
    if (this.training) this.numBatchesTracked.data[0] += 1;
    return F.batchNorm2d(x, this.runningMean, this.runningVar, this.weight, this.bias, {
      training: this.training, momentum: this.momentum, eps: this.eps, relu,
    });
  }
}

/** y = x W^T + b with PyTorch's default uniform init. */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; rng?: Rng } = {}) {
    super();
    this.weight = param([outFeatures, inFeatures]);
    this.bias = (opts.bias ?? true) ? param([outFeatures]) : null;
    defaultLinearInit(this.weight, this.bias, opts.rng ?? defaultRng);
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

/** Passes its input through: the shortcut of a residual block when shapes agree. */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Children run in order; named 0, 1, 2, ... as in PyTorch. */
export class Sequential extends Module {
  [index: number]: Module;
  readonly length: number;

  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => {
      this[i] = m;
    });
    this.length = modules.length;
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (let i = 0; i < this.length; i++) y = this[i]!.forward(y);
    return y;
  }

  *[Symbol.iterator](): Iterator<Module> {
    for (let i = 0; i < this.length; i++) yield this[i]!;
  }
}

export interface PoolOptions {
  stride?: number;
  padding?: number;
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: number, readonly opts: PoolOptions = {}) {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, { kernelSize: this.kernelSize, stride: this.opts.stride ?? this.kernelSize, padding: this.opts.padding ?? 0 });
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: number, readonly opts: PoolOptions = {}) {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, { kernelSize: this.kernelSize, stride: this.opts.stride ?? this.kernelSize, padding: this.opts.padding ?? 0 });
  }
}

/** AdaptiveAvgPool2d(1) on NHWC: [N,H,W,C] -> [N,1,1,C]. */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: 1 = 1) {
    super();
  }

  forward(x: Tensor): Tensor {
    const y = F.globalAvgPool(x);
    return F.reshape(y, [y.shape[0]!, 1, 1, y.shape[1]!]);
  }
}

/** [N, ...] -> [N, features]. */
export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    return F.flatten(x);
  }
}
