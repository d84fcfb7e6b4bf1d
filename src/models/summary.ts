// A per-layer table of a model: output shape, parameters and multiply-accumulates
// (MACs) of every layer, as torchinfo / ptflops print for PyTorch. MACs count the
// convolutions and the fully connected layer (the usual convention: torchvision's
// 4.09 GFLOPS for ResNet-50 are these MACs); BN, ReLU, pooling and adds are left out.
// It reads the traced graph: a row per module that ran ops (a block's row is its
// residual add), so a block type the library does not know is listed too.
import { trace, type Graph, type Node } from '../graph/trace.js';
import type { Module } from '../nn/index.js';
import { zeros } from '../tensor/tensor.js';

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

/** Multiply-accumulates of one node: each output value of a convolution or product sums `inner` products. */
function macsOf(g: Graph, node: Node): number {
  const out = g.values[node.output]!.shape.reduce((p, d) => p * d, 1);
  const second = g.values[node.inputs[1]!]?.shape ?? [];
  switch (node.op) {
    case 'conv2d': return out * second[1]! * second[2]! * second[3]!; // weight [O, C, KH, KW]
    case 'linear': return out * second[1]!; // weight [out, in]
    case 'matmul': return out * second[0]!; // [k, n]
    default: return 0;
  }
}

/**
 * Trace one zero image of [height, width, channels] through `model` (src/graph/trace.ts;
 * eval mode, no gradients, convolutions skipped) and list, per module that ran ops, its
 * last output, the parameters those ops read and their MACs.
 */
export function summarize(model: Module, inputShape: readonly [number, number, number]): ModelSummary {
  const [h, w, c] = inputShape;
  if (![h, w, c].every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`summarize: input shape must be three positive integers [height, width, channels], got [${inputShape.join(', ')}]`);
  }
  const g = trace(model, zeros([1, h, w, c]), { shapesOnly: true });
  const rows = new Map<string, { type: string; outputShape: readonly number[]; params: Set<number>; macs: number }>();
  for (const node of g.nodes) {
    let row = rows.get(node.scope);
    if (!row) {
      row = { type: node.scopeType, outputShape: [], params: new Set(), macs: 0 };
      rows.set(node.scope, row);
    }
    row.outputShape = g.values[node.output]!.shape;
    row.macs += macsOf(g, node);
    for (const v of node.inputs) if (g.values[v]!.kind === 'parameter') row.params.add(v);
  }
  // What the network's own forward() runs between its modules (the flatten before the
  // classifier) is glue, not a layer, unless it computes something.
  const root = rows.get('');
  if (root && root.params.size === 0 && root.macs === 0) rows.delete('');
  const layers = [...rows].map(([name, r]) => ({
    name: name || r.type, type: r.type, outputShape: r.outputShape, macs: r.macs,
    params: [...r.params].reduce((n, v) => n + g.values[v]!.shape.reduce((p, d) => p * d, 1), 0),
  }));
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
