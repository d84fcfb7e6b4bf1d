// A per-layer table of a model: output shape, parameters and multiply-accumulates
// (MACs) of every layer, as torchinfo / ptflops print for PyTorch. MACs count the
// convolutions and the fully connected layer (the usual convention: torchvision's
// 4.09 GFLOPS for ResNet-50 are these MACs); BN, ReLU, pooling and adds are left out.
import type { Backend } from '../backend/backend.js';
import { backend, setBackend } from '../backend/index.js';
import { referenceBackend } from '../backend/reference.js';
import { conv2dOutShape, numel } from '../backend/shapes.js';
import { BatchNorm2d, Conv2d, Identity, Linear, type Module, Sequential } from '../nn/index.js';
import { noGrad, type Tensor, zeros } from '../tensor/tensor.js';

export interface LayerSummary {
  /** State-dict path of the layer, e.g. `layer2.0.downsample.0`. */
  readonly name: string;
  /** Its class, e.g. `Conv2d`. */
  readonly type: string;
  /** NHWC output shape for a batch of one. */
  readonly outputShape: readonly number[];
  readonly params: number;
  readonly macs: number;
}

export interface ModelSummary {
  /** [height, width, channels] of one input image. */
  readonly inputShape: readonly [number, number, number];
  /** Layers in the order the forward pass runs them. */
  readonly layers: readonly LayerSummary[];
  readonly totalParams: number;
  readonly totalMacs: number;
}

/**
 * The reference backend with its two costly kernels (convolution, matrix product)
 * returning zeros of the right size: a summary needs shapes, not values, and a
 * 224x224 ResNet-50 forward pass on the reference backend takes many seconds.
 */
const shapeOnlyBackend: Backend = {
  ...referenceBackend,
  conv2d: (_x, xShape, _w, wShape, _bias, attrs) => new Float32Array(numel(conv2dOutShape(xShape, wShape, attrs))),
  matmul: (_a, _b, m, n) => new Float32Array(m * n),
};

function macsOf(layer: Module, output: Tensor): number {
  if (layer instanceof Conv2d) {
    // Each output value sums inChannels x kernel x kernel products.
    return output.size * layer.inChannels * layer.kernelSize * layer.kernelSize;
  }
  if (layer instanceof Linear) return output.size * layer.inFeatures;
  return 0;
}

/** Layers are the modules without children; the identity shortcut is not one. */
function isLayer(m: Module): boolean {
  return m.namedChildren().length === 0 && !(m instanceof Identity) && !(m instanceof Sequential);
}

/**
 * Run one zero image of [height, width, channels] through `model` (in eval mode, no
 * gradients, convolutions skipped) and record every layer's output.
 */
export function summarize(model: Module, inputShape: readonly [number, number, number]): ModelSummary {
  const [h, w, c] = inputShape;
  if (![h, w, c].every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`summarize: input shape must be three positive integers [height, width, channels], got [${inputShape.join(', ')}]`);
  }
  const layers: LayerSummary[] = [];
  const restore: (() => void)[] = [];
  const record = (name: string, m: Module, y: Tensor): Tensor => {
    layers.push({ name, type: m.constructor.name, outputShape: y.shape, params: m.numParameters(), macs: macsOf(m, y) });
    return y;
  };
  for (const [name, m] of model.namedModules()) {
    if (!isLayer(m)) continue;
    const forward = m.forward;
    m.forward = (x: Tensor): Tensor => record(name, m, forward.call(m, x));
    restore.push(() => Reflect.deleteProperty(m, 'forward'));
    if (m instanceof BatchNorm2d) {
      // Blocks call BN through its fused BN-ReLU entry point.
      const forwardRelu = m.forwardRelu;
      m.forwardRelu = (x: Tensor): Tensor => record(name, m, forwardRelu.call(m, x));
      restore.push(() => Reflect.deleteProperty(m, 'forwardRelu'));
    }
  }
  const wasTraining = model.training;
  const previousBackend = backend();
  model.eval();
  setBackend(shapeOnlyBackend);
  try {
    noGrad(() => model.forward(zeros([1, h, w, c])));
  } finally {
    setBackend(previousBackend);
    model.train(wasTraining);
    for (const undo of restore) undo();
  }
  return {
    inputShape: [h, w, c],
    layers,
    totalParams: model.numParameters(),
    totalMacs: layers.reduce((s, l) => s + l.macs, 0),
  };
}

/** 25557032 -> "25,557,032". */
export function withThousands(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 4089184256 -> "4.09 G". */
export function withUnit(n: number): string {
  for (const [unit, size] of [['G', 1e9], ['M', 1e6], ['K', 1e3]] as const) {
    if (n >= size) return `${(n / size).toFixed(2)} ${unit}`;
  }
  return String(n);
}

/** The summary as a fixed-width text table with totals. */
export function formatSummary(s: ModelSummary, title = 'model'): string {
  const header = ['Layer', 'Type', 'Output (NHWC)', 'Params', 'MACs'];
  const rows = s.layers.map((l) => [l.name, l.type, `[${l.outputShape.join(', ')}]`, withThousands(l.params), withThousands(l.macs)]);
  const widths = header.map((hd, i) => Math.max(hd.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i >= 3 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  const [h, w, c] = s.inputShape;
  return [
    title,
    `input ${c}x${h}x${w} (NHWC [1, ${h}, ${w}, ${c}])`,
    rule, line(header), rule, ...rows.map(line), rule,
    `Total parameters: ${withThousands(s.totalParams)}`,
    `Total MACs: ${withThousands(s.totalMacs)} (${withUnit(s.totalMacs)}MACs)`,
    '',
  ].join('\n');
}
