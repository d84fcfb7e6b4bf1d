// Graph passes for inference: pattern matches over the traced graph, not over block
// classes. With fixed running statistics:
// - a batch norm reading a convolution that nothing else reads folds into it
//   (src/nn/fold.ts), He et al.'s conv-BN pairs become one convolution;
// - with post-ops, a ReLU and a residual add after such a convolution become its
//   post-ops (Backend.conv2d `post`): `relu(bn(conv(x)) + h)` is one kernel call;
// - a batch norm that stays (it reads an addition, as the pre-activation v2 blocks do)
//   takes the ReLU after it.
// A fused step runs where its last node ran, when all its inputs exist.
import type { BatchNormStatistics, ConvWeights } from '../nn/fold.js';
import type { Tensor } from '../tensor/tensor.js';
import { type Graph, type Node, readers } from './trace.js';

/** One convolution with what was fused into it. */
export interface ConvStep {
  readonly kind: 'conv';
  readonly conv: Node;
  /** The batch norm folded into it, if any. */
  readonly bn: Node | null;
  /** The value added to its output (a residual add), if fused. */
  readonly sum: number | null;
  readonly relu: boolean;
  /** The value the step produces: the last fused node's output. */
  readonly output: number;
}

/** A batch norm that reads something other than a single-use convolution, maybe with its ReLU. */
export interface BatchNormStep {
  readonly kind: 'batchNorm';
  readonly bn: Node;
  readonly relu: boolean;
  readonly output: number;
}

/** Any other node, as traced. */
export interface NodeStep {
  readonly kind: 'node';
  readonly node: Node;
  readonly output: number;
}

export type Step = ConvStep | BatchNormStep | NodeStep;

export interface FuseOptions {
  /** Fold batch norms into the convolutions before them (default true). */
  foldBatchNorm?: boolean;
  /** Fuse the ReLU and the residual add into convolutions and the ReLU into batch norms (default true). */
  postOps?: boolean;
}

/** The op a node runs; batch norm is one op whether or not its ReLU is fused (attrs.relu). */
export function opName(node: Node): string {
  return node.op === 'batchNorm2d+relu' ? 'batchNorm2d' : node.op;
}

/** The graph's nodes grouped into steps, in an order that runs each after its inputs. */
export function fuse(g: Graph, opts: FuseOptions = {}): Step[] {
  const fold = opts.foldBatchNorm ?? true;
  const postOps = opts.postOps ?? true;
  const read = readers(g);
  const absorbed = new Set<number>();
  /** The single node reading value v, if exactly one does and it is not the graph output. */
  const onlyReader = (v: number, op: string): [Node, number] | null => {
    const r = read[v]!;
    if (r.length !== 1 || r[0]! < 0 || absorbed.has(r[0]!)) return null;
    const node = g.nodes[r[0]!]!;
    return opName(node) === op ? [node, r[0]!] : null;
  };
  const reluAfter = (v: number): [Node, number] | null => (postOps ? onlyReader(v, 'relu') : null);
  const placed: (Step | undefined)[] = [];

  g.nodes.forEach((node, i) => {
    if (absorbed.has(i)) return;
    if (opName(node) === 'conv2d') {
      let out = node.output;
      let last = i;
      let bn: Node | null = null;
      let relu = false;
      let sum: number | null = null;
      const take = ([n, at]: [Node, number]): void => {
        absorbed.add(at);
        out = n.output;
        last = at;
      };
      const bnNext = fold ? onlyReader(out, 'batchNorm2d') : null;
      if (bnNext && bnNext[0].inputs[0] === out && bnNext[0].attrs['training'] === false) {
        bn = bnNext[0];
        relu = bn.attrs['relu'] === true;
        take(bnNext);
      }
      if (postOps && !relu) {
        const add = onlyReader(out, 'add') ?? onlyReader(out, 'addRelu');
        const [a, b] = add ? add[0].inputs : [];
        if (add && a !== b) {
          sum = a === out ? b! : a!;
          relu = add[0].op === 'addRelu';
          take(add);
        }
      }
      const r = relu ? null : reluAfter(out);
      if (r) {
        relu = true;
        take(r);
      }
      placed[last] = { kind: 'conv', conv: node, bn, sum, relu, output: out };
      return;
    }
    if (opName(node) === 'batchNorm2d' && node.attrs['training'] === false) {
      let relu = node.attrs['relu'] === true;
      let out = node.output;
      let last = i;
      const r = relu ? null : reluAfter(out);
      if (r) {
        relu = true;
        absorbed.add(r[1]);
        out = r[0].output;
        last = r[1];
      }
      placed[last] = { kind: 'batchNorm', bn: node, relu, output: out };
      return;
    }
    placed[i] = { kind: 'node', node, output: node.output };
  });
  return placed.filter((s): s is Step => s !== undefined);
}

/** The model's tensor behind value `id` when it is a parameter or buffer, else null (computed in forward). */
export function stateTensor(g: Graph, id: number | undefined): Tensor | null {
  return id === undefined ? null : g.values[id]!.tensor ?? null;
}

/** A conv2d node's weight and bias, when both are the model's own tensors. */
export function convWeights(g: Graph, conv: Node): ConvWeights | null {
  const weight = stateTensor(g, conv.inputs[1]);
  const bias = conv.inputs.length > 2 ? stateTensor(g, conv.inputs[2]) : null;
  return weight && (bias || conv.inputs.length === 2) ? { weight, bias } : null;
}

/** A batchNorm2d node's parameters and running statistics, when all are the model's own tensors. */
export function batchNormStatistics(g: Graph, bn: Node): BatchNormStatistics | null {
  const [weight, bias, runningMean, runningVar] = bn.inputs.slice(1).map((id) => stateTensor(g, id));
  if (!weight || !bias || !runningMean || !runningVar) return null;
  return { weight, bias, runningMean, runningVar, eps: bn.attrs['eps'] as number };
}
