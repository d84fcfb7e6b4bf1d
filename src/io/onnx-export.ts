// ONNX export (opset 17) of a network's inference graph, read from the graph traced
// by src/graph/trace.ts: each recorded op maps to ONNX nodes (conv2d -> Conv, batch
// norm -> BatchNormalization or folded into the Conv before it, relu / add / addRelu ->
// Relu / Add, the option-A shortcut -> Slice (steps = stride) + Pad on channels, pools
// -> MaxPool / AveragePool / GlobalAveragePool, reshape -> Reshape, linear -> Gemm).
// No block type is named here: a block defined anywhere exports if its forward() runs
// those ops. The graph takes NCHW input like torchvision's exports (or NHWC, through one
// Transpose) with a symbolic batch dimension; values of rank 4 are NCHW inside it.
//
// BatchNorm folding: BN(conv(x)) = gamma (W*x + b - mean) / sqrt(var + eps) + beta is a
// convolution with W' = W gamma / sqrt(var + eps) and b' = beta + (b - mean) gamma /
// sqrt(var + eps), computed in float64 (src/nn/fold.ts). The BNs that open a
// pre-activation block follow an addition, not a convolution, and stay BatchNormalization nodes.
import { batchNormStatistics, convWeights, fuse, type Step } from '../graph/passes.js';
import { type Graph, type Node, trace, TraceError } from '../graph/trace.js';
import { foldBatchNorm } from '../nn/fold.js';
import type { Module } from '../nn/module.js';
import { zeros } from '../tensor/tensor.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { type Dim, OnnxGraph } from './onnx-graph.js';

export interface OnnxExportOptions {
  /** Layout of the graph's input: 'NCHW' (default, as torchvision exports) or 'NHWC'. */
  layout?: 'NCHW' | 'NHWC';
  /** Fold each BatchNorm that follows a convolution into it (default true). */
  foldBatchNorm?: boolean;
  /**
   * Fixed input [height, width]; by default both are symbolic like the batch size. The
   * graph is traced at this size (default 32x32).
   */
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

/** A network of images: every builder's, or any module tree with these two fields. */
export type ExportableNetwork = Module & { readonly inChannels: number; readonly numClasses: number };

/** The network's inference graph (running BN statistics) as ONNX model bytes. */
export function exportOnnx(model: ExportableNetwork, opts: OnnxExportOptions = {}): Uint8Array {
  if (!Number.isInteger(model.inChannels) || !Number.isInteger(model.numClasses)) {
    throw new Error('exportOnnx: expected an image network with inChannels and numClasses (as models.create() builds)');
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
  const [th, tw] = opts.imageSize ?? [32, 32];
  let traced: Graph;
  try {
    traced = trace(model, zeros([2, th, tw, model.inChannels]));
  } catch (e) {
    if (e instanceof TraceError) throw new Error(`exportOnnx: ${e.message}`);
    throw e;
  }
  const graph = new OnnxGraph();
  const input = graph.fresh('input');
  const nchw = layout === 'NHWC' ? graph.node('Transpose', [input], 'input_nchw', { perm: [0, 3, 1, 2] }) : input;
  const logits = new Emitter(graph, traced, nchw).run(fuse(traced, { foldBatchNorm: opts.foldBatchNorm ?? true, postOps: false }));
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

/** Rank-4 shapes whose NHWC and NCHW orders are the same bytes (1x1 spatial), and every other rank. */
function layoutFree(shape: readonly number[]): boolean {
  return shape.length !== 4 || (shape[1] === 1 && shape[2] === 1);
}

class Emitter {
  /** ONNX value name of each traced value. */
  private readonly names = new Map<number, string>();

  constructor(private readonly g: OnnxGraph, private readonly traced: Graph, input: string) {
    this.names.set(traced.input, input);
  }

  run(steps: readonly Step[]): string {
    for (const s of steps) {
      const out = s.kind === 'conv' ? this.conv(s.conv, s.bn, s.relu) : s.kind === 'batchNorm' ? this.batchNorm(s.bn, s.relu) : this.node(s.node);
      this.names.set(s.output, out);
    }
    return this.value(this.traced.output);
  }

  /** The ONNX name of a traced value: a node's output, or an initializer for a parameter or buffer. */
  private value(id: number): string {
    const known = this.names.get(id);
    if (known !== undefined) return known;
    const v = this.traced.values[id]!;
    if (!v.tensor) throw new Error(`exportOnnx: value ${id} is used before it is computed`);
    const name = this.g.floatInitializer(v.name!, v.shape, v.tensor.data);
    this.names.set(id, name);
    return name;
  }

  private fail(node: Node, why: string): Error {
    return new Error(`exportOnnx: ${node.op} in ${node.scope || 'the model'} (${node.scopeType}) ${why}`);
  }

  /** conv, then the batch norm folded in (or kept as a node), then optionally ReLU. */
  private conv(conv: Node, bn: Node | null, relu: boolean): string {
    const w = convWeights(this.traced, conv);
    if (!w) throw this.fail(conv, 'computes its weights in forward(), which the export cannot store');
    const name = conv.scope;
    const a = conv.attrs;
    const attrs = {
      kernel_shape: [w.weight.shape[2]!, w.weight.shape[3]!], strides: [a['strideH'] as number, a['strideW'] as number],
      pads: [a['padH'] as number, a['padW'] as number, a['padH'] as number, a['padW'] as number],
    };
    const x = this.value(conv.inputs[0]!);
    let y: string;
    const stats = bn ? batchNormStatistics(this.traced, bn) : null;
    if (bn && !stats) throw this.fail(bn, 'computes its statistics in forward(), which the export cannot store');
    if (stats) {
      const folded = foldBatchNorm(w, stats);
      const weight = this.g.floatInitializer(`${name}.weight`, w.weight.shape, folded.weight);
      const bias = this.g.floatInitializer(`${name}.bias`, [w.weight.shape[0]!], folded.bias);
      y = this.g.node('Conv', [x, weight, bias], name, attrs);
    } else {
      y = this.g.node('Conv', [x, ...conv.inputs.slice(1).map((id) => this.value(id))], name, attrs);
    }
    return relu ? this.g.node('Relu', [y], `${bn?.scope ?? name}.relu`) : y;
  }

  private batchNorm(bn: Node, relu: boolean): string {
    const y = this.g.node('BatchNormalization', bn.inputs.map((id) => this.value(id)), bn.scope, { epsilon: { float: bn.attrs['eps'] as number } });
    return relu ? this.g.node('Relu', [y], `${bn.scope}.relu`) : y;
  }

  private node(node: Node): string {
    const name = node.scope || node.op;
    const inputs = node.inputs.map((id) => this.value(id));
    const a = node.attrs;
    const num = (k: string): number => a[k] as number;
    switch (node.op) {
      case 'relu': return this.g.node('Relu', inputs, `${name}.relu`);
      case 'add': return this.g.node('Add', inputs, `${name}.add`);
      case 'addRelu': return this.g.node('Relu', [this.g.node('Add', inputs, `${name}.add`)], `${name}.relu`);
      case 'mulScalar': {
        const s = this.g.floatInitializer(`${name}.scale`, [], Float32Array.of(num('scale')));
        return this.g.node('Mul', [inputs[0]!, s], `${name}.mul`);
      }
      case 'padChannelsSubsample': return this.zeroPadShortcut(name, inputs[0]!, this.traced.values[node.inputs[0]!]!.shape[3]!,
        num('stride'), num('outChannels'), num('padFront'));
      case 'maxPool2d':
      case 'avgPool2d': {
        const attrs = {
          kernel_shape: [num('kernelH'), num('kernelW')], strides: [num('strideH'), num('strideW')],
          pads: [num('padH'), num('padW'), num('padH'), num('padW')],
        };
        if (node.op === 'maxPool2d') return this.g.node('MaxPool', inputs, name, attrs);
        // PyTorch's default count_include_pad=True, as F.avgPool2d.
        return this.g.node('AveragePool', inputs, name, { ...attrs, count_include_pad: 1 });
      }
      case 'globalAvgPool':
        // [N, C, 1, 1] in ONNX, [N, C] here.
        return this.g.node('Flatten', [this.g.node('GlobalAveragePool', inputs, name)], `${name}.flatten`, { axis: 1 });
      case 'reshape': return this.reshape(name, inputs[0]!, this.traced.values[node.inputs[0]!]!.shape, this.traced.values[node.output]!.shape);
      case 'linear':
        // y = x W^T + b: Gemm with transB.
        return this.g.node('Gemm', inputs, name, { transB: 1 });
      case 'matmul': return this.g.node('MatMul', inputs, name);
      default: throw this.fail(node, 'has no ONNX mapping');
    }
  }

  /**
   * A reshape that keeps the batch dimension, with the NHWC shapes of the trace: rank-4
   * values go through NHWC order around the Reshape unless their spatial size is 1x1.
   */
  private reshape(name: string, x: string, from: readonly number[], to: readonly number[]): string {
    let y = layoutFree(from) ? x : this.g.node('Transpose', [x], `${name}.to_nhwc`, { perm: [0, 2, 3, 1] });
    const target = to.length === 2 ? [0, -1] : to.length === 4 && layoutFree(to) ? [0, to[3]!, 1, 1] : [0, ...to.slice(1)];
    y = this.g.node('Reshape', [y, this.g.int64Initializer(`${name}.shape`, target)], `${name}.reshape`);
    return layoutFree(to) ? y : this.g.node('Transpose', [y], `${name}.to_nchw`, { perm: [0, 3, 1, 2] });
  }

  /** Option A: x[:, :, ::s, ::s] (Slice with steps), then zero channels around it (Pad on axis 1). */
  private zeroPadShortcut(name: string, x: string, inChannels: number, s: number, outChannels: number, padFront: number): string {
    const sliced = this.g.node('Slice', [
      x,
      this.g.int64Initializer(`${name}.starts`, [0, 0]),
      this.g.int64Initializer(`${name}.ends`, [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]),
      this.g.int64Initializer(`${name}.axes`, [2, 3]),
      this.g.int64Initializer(`${name}.steps`, [s, s]),
    ], `${name}.subsample`);
    const back = outChannels - inChannels - padFront;
    // Pad's `pads` lists the begin amounts of every axis, then the end amounts.
    const pads = this.g.int64Initializer(`${name}.pads`, [0, padFront, 0, 0, 0, back, 0, 0]);
    return this.g.node('Pad', [sliced, pads], `${name}.pad`, { mode: 'constant' });
  }
}
