// Eval-mode inference compiled from the traced graph (trace.ts) by the passes of
// passes.ts: batch norms folded into the convolutions before them, the ReLU and the
// residual add run as convolution post-ops, the remaining batch norms with their ReLU
// in one kernel. Nothing couples the images of a batch, so the batch goes through the
// network a chunk of images at a time, each stretch of layers with a chunk of its own,
// sized by the threads: each thread's share of the stretch's largest activation stays
// within 4 MB (64 small images a thread, at most 128 in a chunk). In ResNet-50 at
// 224x224 on two threads that is two images in the first stages and sixteen in the
// last, whose activations are 8x smaller and whose weights 8x larger: each weight is
// read once per chunk, so the deep layers read theirs once per sixteen images, not once
// per two, while the shallow layers' activations stay within the caches. Each chunk of a
// stretch runs the stretches before it over its own images, in their smaller chunks,
// and only what crosses between stretches is held for the larger chunk. Each kernel
// call still brings each thread enough work to pay for waking it (threads wait
// passively between calls). A chunk's activations are carved from the kernel scratch
// (withScratch, withScratchFrame) and reused by the next chunk and the next call: no
// garbage for V8 to collect, no memory mapped fresh from the system (page faults) on
// every call. The weights are the model's own arrays, a folded batch norm a
// per-channel scale the backend applies as it packs them (Backend.prepareConv2d): no
// scaled copy is kept.
// Each convolution reads and writes the activation layout the backend runs it fastest on
// (PreparedConv2d.layout: nChw16c for oneDNN's 1x1 and Winograd layers on AVX-512),
// every other step NHWC; a value made in one layout and read in the other is relaid out
// once per chunk, by its first such reader (layouts()).
// Each activation is dropped after its last reader, and a convolution whose residual
// add reads a buffer nothing reads after it writes its output over that buffer
// (`post.inPlace`) instead of copying the residual into a new one.
//
// A compiled network is never stale: it remembers the version (Tensor.version) of every
// parameter and buffer it read and the module tree it traced, checks them on each call
// (a few hundred integer comparisons) and lowers again, or traces again, when they
// changed: after an optimizer step, loadStateDict, a weight-average swap, a training
// forward pass (running statistics) or a new head.
import type { ActivationLayout, Backend, Conv2dAttrs, ConvPostOps, Pool2dAttrs, PreparedConv2d, Shape4 } from '../backend/backend.js';
import { backend, scratchFloat32, withScratch, withScratchFrame } from '../backend/index.js';
import { batchNormFold } from '../nn/fold.js';
import type { Module } from '../nn/module.js';
import { noGrad, Tensor, zeros } from '../tensor/tensor.js';
import { batchNormStatistics, convWeights, fuse, type Step, stateTensor } from './passes.js';
import { type Graph, type Node, trace, TraceError } from './trace.js';

/** The model's eval-mode output for a batch (logits [N, classes] for the classifiers). */
export type InferenceFn = (x: Tensor) => Tensor;

export interface InferenceOptions {
  /**
   * Images per pass through the network, the same for every layer; the last chunk may
   * be smaller. Default: per stretch of layers, as many as keep the stretch's largest
   * activation within `chunkBytes`, from 1 to MAX_CHUNK, growing along the network as
   * the activations shrink.
   */
  chunk?: number;
  /**
   * Bytes a chunk's largest activation may take, per stretch of layers, where `chunk` is
   * not given: more memory for larger chunks. Default CHUNK_BYTES_PER_THREAD times the
   * backend's threads.
   */
  chunkBytes?: number;
}

/** The default chunk keeps each thread's share of its largest activation within this. */
const CHUNK_BYTES_PER_THREAD = 4 << 20;
const MAX_CHUNK = 128;

/** The default chunk for a stretch whose largest activation has `largest` bytes per image. */
function defaultChunk(largest: number, budget: number): number {
  return Math.max(1, Math.min(MAX_CHUNK, Math.floor(budget / largest)));
}

/** The network's forward pass does something compiled inference has no kernel for. */
export class UnsupportedModelError extends Error {
  override readonly name = 'UnsupportedModelError';
}

/** Images in the traced example: two, so that the batch dimension stands out from the others. */
const TRACE_BATCH = 2;

/**
 * Activations during one chunk: by value id in the layout the value is made in
 * (layouts()), and at id + the graph's value count its copy in the other layout, made by
 * the first step that reads it so.
 */
type Env = (Float32Array | undefined)[];
type Kernel = (be: Backend, env: Env, n: number) => void;

/**
 * A convolution as the compiled path holds it: the model's own weights (never copied:
 * a call that finds them changed lowers again) and, with a batch norm folded in, the
 * per-channel scale they are packed with and the folded bias.
 */
export interface PreparedConv {
  readonly weight: Float32Array;
  readonly wShape: Shape4;
  readonly bias: Float32Array | null;
  readonly scale: Float32Array | null;
  readonly attrs: Conv2dAttrs;
  /** The convolution prepared (weights packed once, Backend.prepareConv2d) on each backend it has run on. */
  readonly prepared: Map<Backend, PreparedConv2d>;
}

/** The convolution prepared on a backend, once. */
function preparedOn(be: Backend, conv: PreparedConv): PreparedConv2d {
  let run = conv.prepared.get(be);
  if (!run) {
    run = be.prepareConv2d(conv.weight, conv.wShape, conv.bias, conv.attrs, conv.scale);
    conv.prepared.set(be, run);
  }
  return run;
}

/** Every convolution of compiled inference runs here, prepared once per backend; x, post.sum and the output in `layout`. */
export function runConv(be: Backend, x: Float32Array, xShape: Shape4, conv: PreparedConv, post: ConvPostOps,
  layout: ActivationLayout = 'nhwc'): Float32Array {
  return preparedOn(be, conv)(x, xShape, post, layout);
}

function shape4(s: readonly number[]): Shape4 {
  return [s[0]!, s[1]!, s[2]!, s[3]!];
}

function unsupported(node: Node, why: string): UnsupportedModelError {
  return new UnsupportedModelError(`compileInference: ${node.op} in ${node.scope || 'the model'} (${node.scopeType}) ${why}; ` +
    'run noGrad(() => model.eval().forward(x)) instead');
}

/** The traced structure for one image shape: steps, and the state tensors they read. */
interface Program {
  readonly graph: Graph;
  readonly steps: readonly Step[];
  /** Per step, the values no later step reads (dropped after it). */
  readonly dead: readonly number[][];
  /** Per step, whether a convolution may write its output over its residual (`sum`), which nothing reads after it. */
  readonly inPlace: readonly boolean[];
  readonly state: readonly Tensor[];
  /** The network cut where a single activation is live: run in chunks of their own (segments()). */
  readonly stretches: readonly Stretch[];
}

/**
 * Steps [from, to), which read nothing from the steps before them but `input` (the
 * graph's input for the first) and leave the steps after them nothing but `output`.
 */
interface Stretch {
  readonly from: number;
  readonly to: number;
  readonly input: number;
  readonly output: number;
  /** Bytes per image of the largest activation the stretch reads or makes. */
  readonly largest: number;
}

/** Stretches run with one chunk: each chunk of a segment runs the segment before it over its images. */
interface Segment extends Omit<Stretch, 'largest'> {
  readonly chunk: number;
}

function program(model: Module, imageShape: readonly number[]): Program {
  let graph: Graph;
  try {
    graph = trace(model, zeros([TRACE_BATCH, ...imageShape]));
  } catch (e) {
    if (e instanceof TraceError) {
      throw new UnsupportedModelError(`compileInference: ${e.message}; run noGrad(() => model.eval().forward(x)) instead`);
    }
    throw e;
  }
  for (const node of graph.nodes) {
    const out = graph.values[node.output]!;
    if (out.shape[0] !== TRACE_BATCH) throw unsupported(node, 'does not keep the images of the batch apart');
  }
  const steps = fuse(graph);
  const lastUse = new Map<number, number>();
  steps.forEach((s, i) => {
    for (const v of stepInputs(s)) lastUse.set(v, i);
  });
  lastUse.delete(graph.output);
  const dead = steps.map((): number[] => []);
  for (const [v, i] of lastUse) if (graph.values[v]!.kind !== 'input') dead[i]!.push(v);
  const state = graph.values.flatMap((v) => (v.tensor ? [v.tensor] : []));
  return { graph, steps, dead, inPlace: inPlaceSums(graph, steps), state, stretches: stretches(graph, steps) };
}

/** Elements per image of value v (its shape past the batch dimension). */
function perImage(graph: Graph, v: number): number {
  return graph.values[v]!.shape.slice(1).reduce((p, d) => p * d, 1);
}

/** The steps cut after each step that leaves a single activation live. */
function stretches(graph: Graph, steps: readonly Step[]): Stretch[] {
  const activation = (v: number): boolean => graph.values[v]!.kind === 'input' || graph.values[v]!.kind === 'node';
  const bytes = (v: number): number => perImage(graph, v) * Float32Array.BYTES_PER_ELEMENT;
  const lastRead = new Map<number, number>();
  steps.forEach((s, i) => {
    for (const v of stepInputs(s)) if (activation(v)) lastRead.set(v, i);
  });
  lastRead.set(graph.output, steps.length);
  const live = new Set<number>(lastRead.has(graph.input) ? [graph.input] : []);
  const out: Stretch[] = [];
  let from = 0, input = graph.input, largest = bytes(graph.input);
  steps.forEach((s, i) => {
    for (const v of stepInputs(s)) {
      if (!activation(v)) continue;
      largest = Math.max(largest, bytes(v));
      if (lastRead.get(v) === i) live.delete(v);
    }
    largest = Math.max(largest, bytes(s.output));
    if ((lastRead.get(s.output) ?? -1) > i) live.add(s.output);
    if (live.size === 1 && i + 1 < steps.length) {
      const output = live.values().next().value!;
      out.push({ from, to: i + 1, input, output, largest });
      [from, input, largest] = [i + 1, output, bytes(output)];
    }
  });
  out.push({ from, to: steps.length, input, output: graph.output, largest });
  return out;
}

/**
 * The stretches joined into segments, each with its chunk: `fixed` images throughout,
 * or per stretch the default chunk, rounded down to a multiple of the chunk before it
 * (so that a segment's chunk runs the one before it in whole chunks) and joined to the
 * segment before it where that leaves it no larger.
 */
function segments(stretches: readonly Stretch[], budget: number, fixed?: number): Segment[] {
  const first = stretches[0]!, last = stretches[stretches.length - 1]!;
  if (fixed !== undefined) {
    return [{ from: 0, to: last.to, input: first.input, output: last.output, chunk: fixed }];
  }
  const out: Segment[] = [];
  for (const { from, to, input, output, largest } of stretches) {
    let seg: Segment = { from, to, input, output, chunk: defaultChunk(largest, budget) };
    for (let prev = out.at(-1); prev; prev = out.at(-1)) {
      const chunk = Math.floor(seg.chunk / prev.chunk) * prev.chunk;
      if (chunk > prev.chunk) {
        seg = { ...seg, chunk };
        break;
      }
      out.pop();
      seg = { ...seg, from: prev.from, input: prev.input, chunk: Math.min(prev.chunk, seg.chunk) };
    }
    out.push(seg);
  }
  return out;
}

/**
 * Per step, whether it is a convolution whose residual buffer it may overwrite: a
 * buffer a node made (never the caller's input), read by no later step under any name
 * (a reshape shares its input's buffer), not the network's output, and not the buffer
 * the convolution reads.
 */
function inPlaceSums(graph: Graph, steps: readonly Step[]): boolean[] {
  const root: number[] = graph.values.map((_, v) => v);
  for (const s of steps) if (s.kind === 'node' && s.node.op === 'reshape') root[s.node.output] = root[s.node.inputs[0]!]!;
  const lastRead = new Map<number, number>();
  steps.forEach((s, i) => {
    for (const v of stepInputs(s)) lastRead.set(root[v]!, i);
  });
  lastRead.set(root[graph.output]!, steps.length);
  return steps.map((s, i) => {
    if (s.kind !== 'conv' || s.sum === null) return false;
    const r = root[s.sum]!;
    return graph.values[r]!.kind === 'node' && lastRead.get(r) === i && r !== root[s.conv.inputs[0]!];
  });
}

function stepInputs(s: Step): number[] {
  switch (s.kind) {
    case 'conv': return s.sum === null ? [s.conv.inputs[0]!] : [s.conv.inputs[0]!, s.sum];
    case 'batchNorm': return [s.bn.inputs[0]!];
    case 'node': return [...s.node.inputs];
  }
}

/** Whether value v is the same bytes in both layouts: 16 channels (its last dimension). */
function layoutFree(graph: Graph, v: number): boolean {
  return graph.values[v]!.shape.at(-1) === 16;
}

/** Steps that read their input in whichever layout it is made in: global average pooling. */
function readsEitherLayout(s: Step): boolean {
  return s.kind === 'node' && s.node.op === 'globalAvgPool';
}

/**
 * The layout each value is made in: a convolution's output in the layout the backend
 * runs the convolution fastest on (PreparedConv2d.layout), everything else NHWC, but for
 * the max pool's output, made in the layout a reader runs fastest on. A convolution whose
 * input would need a relayout for it and whose output would need one for every reader
 * runs NHWC instead, as does one making the network's output. Global average pooling
 * reads either layout. With 16 channels the two layouts are the same bytes: no relayout.
 */
function layouts(graph: Graph, steps: readonly Step[], preferred: readonly ActivationLayout[]): ActivationLayout[] {
  const home = graph.values.map((): ActivationLayout => 'nhwc');
  const readers = new Map<number, number[]>();
  steps.forEach((s, i) => {
    for (const v of stepInputs(s)) {
      const r = readers.get(v);
      if (r) r.push(i);
      else readers.set(v, [i]);
    }
  });
  const wanted = (v: number, l: ActivationLayout): boolean =>
    (readers.get(v) ?? []).some((r) => preferred[r] === l || readsEitherLayout(steps[r]!));
  steps.forEach((s, i) => {
    if (s.kind === 'node' && s.node.op === 'maxPool2d') {
      const blocked = !layoutFree(graph, s.output) && graph.values[s.output]!.shape.at(-1)! % 16 === 0 &&
        s.output !== graph.output && (readers.get(s.output) ?? []).some((r) => preferred[r] === 'nchw16c');
      if (blocked) home[s.output] = 'nchw16c';
    }
    if (s.kind !== 'conv') return;
    let l = preferred[i]!;
    if (l !== 'nhwc') {
      const x = s.conv.inputs[0]!;
      const inCost = home[x] !== l && !layoutFree(graph, x);
      const outCost = !layoutFree(graph, s.output) && !wanted(s.output, l);
      if (s.output === graph.output || (inCost && outCost)) l = 'nhwc';
    }
    home[s.output] = l;
  });
  return home;
}

/** Reads value v of a chunk of n images in a layout (Env). */
type Read = (env: Env, v: number, n: number, layout?: ActivationLayout) => Float32Array;

/** Kernels reading the weights as they are now, for backend be. */
function lower(p: Program, be: Backend): Kernel[] {
  const g = p.graph;
  const shapeOf = (v: number, n: number): number[] => [n, ...g.values[v]!.shape.slice(1)];
  const convs = p.steps.map((s): PreparedConv | null => {
    if (s.kind !== 'conv') return null;
    const w = convWeights(g, s.conv);
    if (!w) throw unsupported(s.conv, 'computes its weights in forward()');
    const stats = s.bn ? batchNormStatistics(g, s.bn) : null;
    if (s.bn && !stats) throw unsupported(s.bn, 'computes its statistics in forward()');
    const folded = stats ? batchNormFold(w, stats) : { scale: null, bias: w.bias?.data ?? null };
    const a = s.conv.attrs;
    return {
      weight: w.weight.data, wShape: shape4(w.weight.shape), bias: folded.bias, scale: folded.scale,
      attrs: { strideH: a['strideH'] as number, strideW: a['strideW'] as number, padH: a['padH'] as number, padW: a['padW'] as number },
      prepared: new Map(),
    };
  });
  const home = layouts(g, p.steps, convs.map((c) => (c ? preparedOn(be, c).layout ?? 'nhwc' : 'nhwc')));
  const other = g.values.length;
  const read: Read = (env, v, n, layout = 'nhwc') => {
    if (layout === home[v] || layoutFree(g, v)) return env[v]!;
    return (env[v + other] ??= be.relayout(env[v]!, shape4(shapeOf(v, n)), layout));
  };
  return p.steps.map((s, i): Kernel => {
    if (s.kind === 'conv') {
      const conv = convs[i]!;
      const x = s.conv.inputs[0]!;
      const { sum, relu, output } = s;
      const inPlace = p.inPlace[i]!;
      const layout = home[output]!;
      return (be, env, n) => {
        const post = sum === null ? { relu } : { sum: read(env, sum, n, layout), relu, inPlace };
        env[output] = runConv(be, read(env, x, n, layout), shape4(shapeOf(x, n)), conv, post, layout);
      };
    }
    if (s.kind === 'batchNorm') {
      const stats = batchNormStatistics(g, s.bn);
      if (!stats) throw unsupported(s.bn, 'computes its statistics in forward()');
      const [gamma, beta, mean, variance] = [stats.weight.data, stats.bias.data, stats.runningMean.data, stats.runningVar.data];
      const x = s.bn.inputs[0]!;
      const { relu, output } = s;
      return (be, env, n) => {
        env[output] = be.batchNormInference(read(env, x, n), shape4(shapeOf(x, n)), gamma, beta, mean, variance, stats.eps, relu);
      };
    }
    return nodeKernel(g, s.node, shapeOf, read, home);
  });
}

function nodeKernel(g: Graph, node: Node, shapeOf: (v: number, n: number) => number[], read: Read,
  home: readonly ActivationLayout[]): Kernel {
  const [x = -1, y = -1] = node.inputs;
  const out = node.output;
  const a = node.attrs;
  const pool = (): Pool2dAttrs => ({
    kernelH: a['kernelH'] as number, kernelW: a['kernelW'] as number, strideH: a['strideH'] as number,
    strideW: a['strideW'] as number, padH: a['padH'] as number, padW: a['padW'] as number,
  });
  switch (node.op) {
    case 'relu': return (be, env, n) => { env[out] = be.relu(read(env, x, n)); };
    case 'add': return (be, env, n) => { env[out] = be.add(read(env, x, n), read(env, y, n)); };
    case 'addRelu': return (be, env, n) => { env[out] = be.addRelu(read(env, x, n), read(env, y, n)); };
    case 'mulScalar': return (be, env, n) => { env[out] = be.scale(read(env, x, n), a['scale'] as number); };
    case 'reshape': return (_be, env, n) => { env[out] = read(env, x, n); };
    case 'globalAvgPool': {
      const layout = home[x]!;
      return (be, env, n) => { env[out] = be.globalAvgPool(read(env, x, n, layout), shape4(shapeOf(x, n)), layout); };
    }
    case 'maxPool2d': {
      const attrs = pool();
      const to = home[out]!;
      return (be, env, n) => { env[out] = be.maxPool2d(read(env, x, n), shape4(shapeOf(x, n)), attrs, false, to).y; };
    }
    case 'avgPool2d': {
      const attrs = pool();
      return (be, env, n) => { env[out] = be.avgPool2d(read(env, x, n), shape4(shapeOf(x, n)), attrs); };
    }
    case 'padChannelsSubsample': {
      const [stride, outChannels, padFront] = [a['stride'], a['outChannels'], a['padFront']] as number[];
      return (be, env, n) => { env[out] = be.padChannelsSubsample(read(env, x, n), shape4(shapeOf(x, n)), stride!, outChannels!, padFront!); };
    }
    case 'linear': {
      const weight = stateTensor(g, node.inputs[1]);
      const bias = node.inputs.length > 2 ? stateTensor(g, node.inputs[2]) : null;
      if (!weight || (node.inputs.length > 2 && !bias)) throw unsupported(node, 'computes its weights in forward()');
      const [outF, inF] = [weight.shape[0]!, weight.shape[1]!];
      // y = x W^T + b (torch.nn.Linear): a 1x1 convolution of one-pixel images, prepared
      // once like every other (weights packed once, not on each call as matmul would).
      const conv: PreparedConv = {
        weight: weight.data, wShape: [outF, inF, 1, 1], bias: bias?.data ?? null, scale: null,
        attrs: { strideH: 1, strideW: 1, padH: 0, padW: 0 }, prepared: new Map(),
      };
      return (be, env, n) => { env[out] = runConv(be, read(env, x, n), [n, 1, 1, inF], conv, {}); };
    }
    case 'matmul': {
      const weight = stateTensor(g, y);
      if (!weight) throw unsupported(node, 'multiplies two activations');
      const w = weight.data;
      const [k, cols] = [weight.shape[0]!, weight.shape[1]!];
      return (be, env, n) => { env[out] = be.matmul(read(env, x, n), w, n, cols, k, false, false, null); };
    }
    default:
      throw unsupported(node, 'has no compiled kernel');
  }
}

/** Compiled for one image shape: the structure, and kernels for the weights at `versions` on `backend`. */
interface Compiled {
  readonly program: Program;
  kernels: Kernel[];
  versions: number[];
  backend: Backend;
}

function versionsOf(state: readonly Tensor[]): number[] {
  return state.map((t) => t.version);
}

function current(c: Compiled): boolean {
  const { state } = c.program;
  for (let i = 0; i < state.length; i++) if (state[i]!.version !== c.versions[i]) return false;
  return true;
}

/** The modules and state tensors of the tree: when they change, the graph is traced again. */
function structureOf(model: Module): unknown[] {
  return [...model.namedModules().map(([, m]) => m), ...model.parameters(), ...model.buffers()];
}

function sameStructure(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * A function computing `noGrad(() => model.eval().forward(x))` (equal within float32
 * rounding) through the compiled graph, for any module tree whose forward() runs the
 * ops of src/tensor/ops.ts. It traces once per image shape, folds and fuses the
 * weights as they are at each call (recompiling after they change), runs on the backend
 * selected when it is called and does not change the model's train/eval mode.
 */
export function compileInference(model: Module, opts: InferenceOptions = {}): InferenceFn {
  if (opts.chunk !== undefined && (!Number.isInteger(opts.chunk) || opts.chunk < 1)) {
    throw new Error(`compileInference: chunk must be a positive integer, got ${opts.chunk}`);
  }
  if (opts.chunkBytes !== undefined && !(Number.isFinite(opts.chunkBytes) && opts.chunkBytes > 0)) {
    throw new Error(`compileInference: chunkBytes must be a positive number of bytes, got ${opts.chunkBytes}`);
  }
  const byShape = new Map<string, Compiled>();
  let structure = structureOf(model);

  const compiled = (imageShape: readonly number[], be: Backend): Compiled => {
    const now = structureOf(model);
    if (!sameStructure(now, structure)) {
      byShape.clear();
      structure = now;
    }
    const key = imageShape.join('x');
    let c = byShape.get(key);
    if (!c) {
      const p = program(model, imageShape);
      c = { program: p, kernels: lower(p, be), versions: versionsOf(p.state), backend: be };
      byShape.set(key, c);
    } else if (!current(c) || c.backend !== be) {
      c.versions = versionsOf(c.program.state);
      c.kernels = lower(c.program, be);
      c.backend = be;
    }
    return c;
  };

  return (x) => {
    if (x.ndim < 1) throw new Error(`compileInference: input must be a batch [N, ...], got a scalar`);
    const [n = 0, ...image] = x.shape;
    const be = backend();
    const c = compiled(image, be);
    const { graph, dead } = c.program;
    const other = graph.values.length;
    const segs = segments(c.program.stretches, opts.chunkBytes ?? CHUNK_BYTES_PER_THREAD * be.threads(), opts.chunk);
    const { kernels } = c;
    // Segment j's output for images [start, start + m).
    const run = (j: number, start: number, m: number): Float32Array => {
      const seg = segs[j]!;
      const env: Env = [];
      if (j === 0) {
        const per = perImage(graph, seg.input);
        env[seg.input] = x.data.subarray(start * per, (start + m) * per);
      } else if (segs[j - 1]!.chunk >= m) {
        env[seg.input] = run(j - 1, start, m);
      } else {
        const per = perImage(graph, seg.input), sub = segs[j - 1]!.chunk;
        const input = scratchFloat32(m * per);
        for (let s = 0; s < m; s += sub) {
          withScratchFrame(() => input.set(run(j - 1, start + s, Math.min(sub, m - s)), s * per));
        }
        env[seg.input] = input;
      }
      for (let i = seg.from; i < seg.to; i++) {
        kernels[i]!(be, env, m);
        for (const v of dead[i]!) env[v] = env[v + other] = undefined;
      }
      return env[seg.output]!;
    };
    const outShape = graph.values[graph.output]!.shape.slice(1);
    const outPer = perImage(graph, graph.output);
    const result = new Float32Array(n * outPer);
    const top = segs.length - 1, chunk = segs[top]!.chunk;
    for (let start = 0; start < n; start += chunk) {
      withScratch(() => result.set(run(top, start, Math.min(chunk, n - start)), start * outPer));
    }
    return new Tensor(result, [n, ...outShape]);
  };
}

/**
 * compileInference(model) where the graph compiles; where it cannot (an op without a
 * compiled kernel, a tensor built outside the ops), the model's own forward without
 * autograd, in whatever mode the model is in.
 */
export function compileInferenceOrForward(model: Module, opts: InferenceOptions = {}): InferenceFn {
  const compiled = compileInference(model, opts);
  const eager = new Set<string>();
  return (x) => {
    const key = x.shape.slice(1).join('x');
    if (!eager.has(key)) {
      try {
        return compiled(x);
      } catch (e) {
        if (!(e instanceof UnsupportedModelError)) throw e;
        eager.add(key);
      }
    }
    return noGrad(() => model.forward(x));
  };
}

const owned = new WeakMap<Module, InferenceFn>();

/**
 * The model's own compiled inference, shared by every caller (predict, eval, the test
 * passes of training): compiled on first use, recompiled whenever its weights or its
 * module tree change, falling back to forward() where the graph does not compile.
 */
export function inferenceOf(model: Module): InferenceFn {
  let fn = owned.get(model);
  if (!fn) {
    fn = compileInferenceOrForward(model);
    owned.set(model, fn);
  }
  return fn;
}
