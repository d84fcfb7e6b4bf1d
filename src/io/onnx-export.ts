// ONNX export of the inference graph of any builder's network (opset 17). The exporter
// walks the module tree and maps each module to ONNX nodes, mirroring the forward()
// of the model classes: Conv (+ BatchNormalization, or folded into the Conv), Relu,
// Add, option A as Slice (steps = stride) + Pad on channels, MaxPool,
// GlobalAveragePool, Flatten, Gemm. The graph takes NCHW input like torchvision's
// exports (or NHWC, through one Transpose) with a symbolic batch dimension.
//
// BatchNorm folding: BN(conv(x)) = gamma (W*x + b - mean) / sqrt(var + eps) + beta is a
// convolution with W' = W gamma / sqrt(var + eps) and b' = beta + (b - mean) gamma /
// sqrt(var + eps), computed in float64. The BNs that open a pre-activation block follow
// an addition, not a convolution, and stay BatchNormalization nodes.
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear, MaxPool2d, type Module, ReLU, Sequential,
} from '../nn/index.js';
import { foldBatchNorm } from '../nn/fold.js';
import { BasicBlock, Bottleneck } from '../models/blocks.js';
import { PlainBlock, PlainBottleneck } from '../models/plain_blocks.js';
import { PreActBlock, PreActBottleneck } from '../models/preact_blocks.js';
import { PreActResNet } from '../models/preact_resnet.js';
import { ResNet } from '../models/resnet.js';
import { ZeroPadShortcut } from '../models/shortcuts.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { type Dim, OnnxGraph } from './onnx-graph.js';

export interface OnnxExportOptions {
  /** Layout of the graph's input: 'NCHW' (default, as torchvision exports) or 'NHWC'. */
  layout?: 'NCHW' | 'NHWC';
  /** Fold each BatchNorm that follows a convolution into it (default true). */
  foldBatchNorm?: boolean;
  /** Fixed input [height, width]; by default both are symbolic like the batch size. */
  imageSize?: readonly [number, number];
  /** Stored in the metadata as `model_name` (default: the network's class name). */
  modelName?: string;
  /** Stored in the metadata as `class_names`, a JSON array; one per output. */
  classNames?: readonly string[];
  /** Per-channel input normalisation the model expects, stored as JSON in `normalization`. */
  normalization?: { mean: readonly number[]; std: readonly number[] };
  /** Further metadata_props entries. */
  metadata?: Record<string, string>;
}

export type ExportableNetwork = ResNet | PreActResNet;

/** The network's inference graph (running BN statistics) as ONNX model bytes. */
export function exportOnnx(model: ExportableNetwork, opts: OnnxExportOptions = {}): Uint8Array {
  if (!(model instanceof ResNet) && !(model instanceof PreActResNet)) {
    throw new Error('exportOnnx: expected a network from models.create() (ResNet, PlainNet or PreActResNet)');
  }
  const layout = opts.layout ?? 'NCHW';
  if (layout !== 'NCHW' && layout !== 'NHWC') throw new Error(`exportOnnx: layout must be 'NCHW' or 'NHWC', got '${String(layout)}'`);
  if (opts.classNames && opts.classNames.length !== model.numClasses) {
    throw new Error(`exportOnnx: ${opts.classNames.length} class names for a model with ${model.numClasses} outputs`);
  }
  const norm = opts.normalization;
  if (norm && (norm.mean.length !== model.inChannels || norm.std.length !== model.inChannels)) {
    throw new Error(`exportOnnx: normalization needs ${model.inChannels} mean and std values (one per input channel)`);
  }
  const graph = new OnnxGraph();
  const emitter = new Emitter(graph, opts.foldBatchNorm ?? true, model);
  const input = graph.fresh('input');
  const nchw = layout === 'NHWC' ? graph.node('Transpose', [input], 'input_nchw', { perm: [0, 3, 1, 2] }) : input;
  const logits = emitter.network(model, nchw);
  const [h, w]: [Dim, Dim] = opts.imageSize ? [opts.imageSize[0], opts.imageSize[1]] : ['height', 'width'];
  const inputDims: Dim[] = layout === 'NCHW' ? ['batch', model.inChannels, h, w] : ['batch', h, w, model.inChannels];

  const metadata: Record<string, string> = {
    model_name: opts.modelName ?? model.constructor.name,
    input_layout: layout,
    batch_norm: (opts.foldBatchNorm ?? true) ? 'folded into convolutions where one precedes it' : 'BatchNormalization nodes',
  };
  if (opts.classNames) metadata['class_names'] = JSON.stringify(opts.classNames);
  if (norm) metadata['normalization'] = JSON.stringify({ mean: norm.mean, std: norm.std });
  Object.assign(metadata, opts.metadata ?? {});
  return graph.encode(metadata['model_name']!, { name: input, dims: inputDims }, { name: logits, dims: ['batch', model.numClasses] }, metadata);
}

/** Export and write atomically to `path`. */
export function saveOnnx(path: string, model: ExportableNetwork, opts: OnnxExportOptions = {}): void {
  writeFileAtomic(path, [exportOnnx(model, opts)]);
}

class Emitter {
  private readonly paths: Map<Module, string>;

  constructor(private readonly g: OnnxGraph, private readonly fold: boolean, root: Module) {
    this.paths = new Map(root.namedModules().map(([path, m]) => [m, path]));
  }

  private path(m: Module): string {
    return this.paths.get(m) || m.constructor.name;
  }

  network(m: ExportableNetwork, x: string): string {
    let y: string;
    if (m instanceof ResNet) {
      y = this.module(m.maxpool, this.convBn(m.conv1, m.bn1, x, true));
    } else {
      y = this.module(m.maxpool, this.convBn(m.conv1, null, x, false));
    }
    for (const stage of m.stages) y = this.module(stage, y);
    if (m instanceof PreActResNet) y = this.relu(this.batchNorm(m.bn, y), m.bn);
    y = this.module(m.avgpool, y);
    y = this.g.node('Flatten', [y], 'flatten', { axis: 1 });
    return this.module(m.fc, y);
  }

  /** One module applied to value x; returns the output value. */
  module(m: Module, x: string): string {
    if (m instanceof BasicBlock) {
      const out = this.convBn(m.conv2, m.bn2, this.convBn(m.conv1, m.bn1, x, true), false);
      return this.addRelu(out, this.module(m.downsample, x), m);
    }
    if (m instanceof Bottleneck) {
      let out = this.convBn(m.conv1, m.bn1, x, true);
      out = this.convBn(m.conv2, m.bn2, out, true);
      out = this.convBn(m.conv3, m.bn3, out, false);
      return this.addRelu(out, this.module(m.downsample, x), m);
    }
    if (m instanceof PlainBlock) return this.convBn(m.conv2, m.bn2, this.convBn(m.conv1, m.bn1, x, true), true);
    if (m instanceof PlainBottleneck) {
      return this.convBn(m.conv3, m.bn3, this.convBn(m.conv2, m.bn2, this.convBn(m.conv1, m.bn1, x, true), true), true);
    }
    if (m instanceof PreActBlock) {
      // He et al. 2016: a shape-changing shortcut reads the pre-activated input.
      const preact = this.relu(this.batchNorm(m.bn1, x), m.bn1);
      const shortcut = this.module(m.downsample, m.downsample instanceof Identity ? x : preact);
      const out = this.convBn(m.conv2, null, this.convBn(m.conv1, m.bn2, preact, true), false);
      return this.g.node('Add', [out, shortcut], `${this.path(m)}.add`);
    }
    if (m instanceof PreActBottleneck) {
      const preact = this.relu(this.batchNorm(m.bn1, x), m.bn1);
      const shortcut = this.module(m.downsample, m.downsample instanceof Identity ? x : preact);
      let out = this.convBn(m.conv1, m.bn2, preact, true);
      out = this.convBn(m.conv2, m.bn3, out, true);
      out = this.convBn(m.conv3, null, out, false);
      return this.g.node('Add', [out, shortcut], `${this.path(m)}.add`);
    }
    if (m instanceof ZeroPadShortcut) return this.zeroPadShortcut(m, x);
    if (m instanceof Sequential) return this.sequential(m, x);
    if (m instanceof Conv2d) return this.convBn(m, null, x, false);
    if (m instanceof BatchNorm2d) return this.batchNorm(m, x);
    if (m instanceof ReLU) return this.g.node('Relu', [x], `${this.path(m)}`);
    if (m instanceof Identity) return x;
    if (m instanceof MaxPool2d || m instanceof AvgPool2d) return this.pool(m, x);
    if (m instanceof AdaptiveAvgPool2d) return this.g.node('GlobalAveragePool', [x], this.path(m));
    if (m instanceof Flatten) return this.g.node('Flatten', [x], this.path(m), { axis: 1 });
    if (m instanceof Linear) return this.linear(m, x);
    throw new Error(`exportOnnx: no ONNX mapping for module ${m.constructor.name} at '${this.path(m)}'`);
  }

  /** Children in order; a Conv2d directly followed by a BatchNorm2d is one (foldable) pair. */
  private sequential(m: Sequential, x: string): string {
    let y = x;
    for (let i = 0; i < m.length; i++) {
      const child = m[i]!;
      const next = i + 1 < m.length ? m[i + 1] : undefined;
      if (child instanceof Conv2d && next instanceof BatchNorm2d) {
        y = this.convBn(child, next, y, false);
        i++;
      } else {
        y = this.module(child, y);
      }
    }
    return y;
  }

  /** conv, then (folded or not) BN, then optionally ReLU. */
  private convBn(conv: Conv2d, bn: BatchNorm2d | null, x: string, relu: boolean): string {
    const name = this.path(conv);
    const k = conv.kernelSize;
    const attrs = { kernel_shape: [k, k], strides: [conv.stride, conv.stride], pads: [conv.padding, conv.padding, conv.padding, conv.padding] };
    let y: string;
    if (bn && this.fold) {
      const { weight, bias } = foldBatchNorm(conv, bn);
      const w = this.g.floatInitializer(`${name}.weight`, conv.weight.shape, weight);
      const b = this.g.floatInitializer(`${name}.bias`, [conv.outChannels], bias);
      y = this.g.node('Conv', [x, w, b], name, attrs);
    } else {
      const inputs = [x, this.g.floatInitializer(`${name}.weight`, conv.weight.shape, conv.weight.data)];
      if (conv.bias) inputs.push(this.g.floatInitializer(`${name}.bias`, conv.bias.shape, conv.bias.data));
      y = this.g.node('Conv', inputs, name, attrs);
      if (bn) y = this.batchNorm(bn, y);
    }
    return relu ? this.relu(y, bn ?? conv) : y;
  }

  private batchNorm(bn: BatchNorm2d, x: string): string {
    const name = this.path(bn);
    const c = [bn.numFeatures];
    const inputs = [
      x,
      this.g.floatInitializer(`${name}.weight`, c, bn.weight.data),
      this.g.floatInitializer(`${name}.bias`, c, bn.bias.data),
      this.g.floatInitializer(`${name}.running_mean`, c, bn.runningMean.data),
      this.g.floatInitializer(`${name}.running_var`, c, bn.runningVar.data),
    ];
    return this.g.node('BatchNormalization', inputs, name, { epsilon: { float: bn.eps } });
  }

  private relu(x: string, after: Module): string {
    return this.g.node('Relu', [x], `${this.path(after)}.relu`);
  }

  private addRelu(a: string, b: string, block: Module): string {
    const sum = this.g.node('Add', [a, b], `${this.path(block)}.add`);
    return this.g.node('Relu', [sum], `${this.path(block)}.relu`);
  }

  /** Option A: x[:, :, ::s, ::s] (Slice with steps), then zero channels around it (Pad on axis 1). */
  private zeroPadShortcut(m: ZeroPadShortcut, x: string): string {
    const name = this.path(m);
    const s = m.stride;
    const sliced = this.g.node('Slice', [
      x,
      this.g.int64Initializer(`${name}.starts`, [0, 0]),
      this.g.int64Initializer(`${name}.ends`, [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]),
      this.g.int64Initializer(`${name}.axes`, [2, 3]),
      this.g.int64Initializer(`${name}.steps`, [s, s]),
    ], `${name}.subsample`);
    const back = m.outChannels - m.inChannels - m.padFront;
    // Pad's `pads` lists the begin amounts of every axis, then the end amounts.
    const pads = this.g.int64Initializer(`${name}.pads`, [0, m.padFront, 0, 0, 0, back, 0, 0]);
    return this.g.node('Pad', [sliced, pads], `${name}.pad`, { mode: 'constant' });
  }

  private pool(m: MaxPool2d | AvgPool2d, x: string): string {
    const k = m.kernelSize;
    const s = m.opts.stride ?? k;
    const p = m.opts.padding ?? 0;
    const attrs = { kernel_shape: [k, k], strides: [s, s], pads: [p, p, p, p] };
    if (m instanceof MaxPool2d) return this.g.node('MaxPool', [x], this.path(m), attrs);
    // PyTorch's default count_include_pad=True, as F.avgPool2d.
    return this.g.node('AveragePool', [x], this.path(m), { ...attrs, count_include_pad: 1 });
  }

  private linear(m: Linear, x: string): string {
    const name = this.path(m);
    const inputs = [x, this.g.floatInitializer(`${name}.weight`, m.weight.shape, m.weight.data)];
    if (m.bias) inputs.push(this.g.floatInitializer(`${name}.bias`, m.bias.shape, m.bias.data));
    // y = x W^T + b: Gemm with transB.
    return this.g.node('Gemm', inputs, name, { transB: 1 });
  }
}
