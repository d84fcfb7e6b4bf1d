// The network as a graph, recorded by running its forward pass once (the role torch.fx's
// symbolic trace plays for torchvision): every op of src/tensor/ops.ts that runs becomes
// a node (op, attributes, input values, output value), the parameters and buffers it
// reads are named by their state-dict keys, and each node carries the module it ran in.
// Compiled inference (compile.ts), the ONNX emitter (src/io/onnx-export.ts) and the
// summary (src/models/summary.ts) read this graph; the structure of a network is
// written only in its forward().
import type { Backend } from '../backend/backend.js';
import { backend, setBackend } from '../backend/index.js';
import { referenceBackend } from '../backend/reference.js';
import { conv2dOutShape, numel } from '../backend/shapes.js';
import { type Module, Parameter } from '../nn/module.js';
import { formatShape, noGrad, observeOps, type OpAttrs, type OpRecord, type Tensor } from '../tensor/tensor.js';

/** Where a value comes from: the graph's input, the model's state dict, or a node. */
export type ValueKind = 'input' | 'parameter' | 'buffer' | 'node';

export interface Value {
  readonly id: number;
  readonly kind: ValueKind;
  /** The shape seen while tracing; dimension 0 of input and node values is the batch. */
  readonly shape: readonly number[];
  /** Parameters and buffers: the state-dict key (`layer1.0.conv1.weight`). */
  readonly name?: string;
  /** Parameters and buffers: the model's own tensor, read when a pass needs the values. */
  readonly tensor?: Tensor;
}

export interface Node {
  /** The op's name in src/tensor/ops.ts (`conv2d`, `batchNorm2d`, `addRelu`, ...). */
  readonly op: string;
  readonly attrs: OpAttrs;
  readonly inputs: readonly number[];
  readonly output: number;
  /**
   * State-dict path of the module the node belongs to: the owner of the first parameter
   * or buffer it reads, otherwise the innermost module whose forward() ran it.
   */
  readonly scope: string;
  /** That module's class name (`Conv2d`, `ZeroPadShortcut`, ...). */
  readonly scopeType: string;
}

export interface Graph {
  /** Indexed by id. */
  readonly values: readonly Value[];
  /** In the order forward() ran them: every node after the nodes it reads. */
  readonly nodes: readonly Node[];
  readonly input: number;
  readonly output: number;
}

/** forward() did something the graph cannot record. */
export class TraceError extends Error {
  override readonly name = 'TraceError';
}

export interface TraceOptions {
  /**
   * Only shapes are wanted (a summary): convolutions and matrix products return zeros
   * of the right size instead of computing, so a 224x224 ResNet-50 traces at once.
   */
  shapesOnly?: boolean;
}

const shapeOnlyBackend: Backend = {
  ...referenceBackend,
  conv2d: (_x, xShape, _w, wShape, _bias, attrs) => new Float32Array(numel(conv2dOutShape(xShape, wShape, attrs))),
  matmul: (_a, _b, m, n) => new Float32Array(m * n),
};

/** The module owning a state-dict key: `layer1.0.conv1.weight` -> `layer1.0.conv1`. */
function ownerPath(key: string): string {
  const dot = key.lastIndexOf('.');
  return dot < 0 ? '' : key.slice(0, dot);
}

/**
 * Run `model.forward(example)` once in eval mode without autograd and record its graph.
 * The model is left as it was: modes, running statistics and methods.
 */
export function trace(model: Module, example: Tensor, opts: TraceOptions = {}): Graph {
  const modules = model.namedModules();
  const byPath = new Map(modules);
  const named = new Map<Tensor, { name: string; kind: 'parameter' | 'buffer' }>();
  for (const [name, p] of model.namedParameters()) named.set(p, { name, kind: 'parameter' });
  for (const [name, b] of model.namedBuffers()) if (!(b instanceof Parameter)) named.set(b, { name, kind: 'buffer' });

  const values: Value[] = [];
  const nodes: Node[] = [];
  // Weak: an activation the forward no longer holds is garbage while the trace runs (held
  // here, a 224x224 ResNet-50's two example images would keep 200 MB alive to the end).
  const ids = new WeakMap<Tensor, number>();
  const addValue = (v: Omit<Value, 'id'>): number => {
    values.push({ id: values.length, ...v });
    return values.length - 1;
  };
  const input = addValue({ kind: 'input', shape: example.shape });
  ids.set(example, input);

  // The innermost module whose forward() is running (torch.fx's call_module).
  const scopes: [string, Module][] = [['', model]];
  const valueOf = (t: Tensor, op: string): number => {
    const known = ids.get(t);
    if (known !== undefined) return known;
    const state = named.get(t);
    if (!state) {
      const where = scopes[scopes.length - 1]![0] || 'the model';
      throw new TraceError(`trace: ${op} in ${where} reads a ${formatShape(t.shape)} tensor that is neither the input, ` +
        'a result of the ops in src/tensor/ops.ts, nor a parameter or buffer of the model; ' +
        'compute it with those ops or register it as a buffer');
    }
    const id = addValue({ kind: state.kind, shape: t.shape, name: state.name, tensor: t });
    ids.set(t, id);
    return id;
  };
  const record = (r: OpRecord): void => {
    const inputs = r.inputs.map((t) => valueOf(t, r.op));
    const output = addValue({ kind: 'node', shape: r.output.shape });
    ids.set(r.output, output);
    const state = inputs.map((i) => values[i]!).find((v) => v.name !== undefined);
    const [callPath, callModule] = scopes[scopes.length - 1]!;
    const scope = state ? ownerPath(state.name!) : callPath;
    const owner = state ? byPath.get(scope) ?? callModule : callModule;
    nodes.push({ op: r.op, attrs: r.attrs, inputs, output, scope, scopeType: owner.constructor.name });
  };

  const undo: (() => void)[] = [];
  for (const [path, m] of modules) {
    if (path === '') continue;
    const own = Object.getOwnPropertyDescriptor(m, 'forward');
    const forward = m.forward;
    m.forward = (x: Tensor): Tensor => {
      scopes.push([path, m]);
      try {
        return forward.call(m, x);
      } finally {
        scopes.pop();
      }
    };
    undo.push(() => (own ? Object.defineProperty(m, 'forward', own) : Reflect.deleteProperty(m, 'forward')));
  }
  const modes = modules.map(([, m]) => m.training);
  const previousBackend = backend();
  let out: Tensor;
  try {
    model.eval();
    if (opts.shapesOnly) setBackend(shapeOnlyBackend);
    out = noGrad(() => observeOps(record, () => model.forward(example)));
  } finally {
    setBackend(previousBackend);
    modules.forEach(([, m], i) => {
      m.training = modes[i]!;
    });
    for (const u of undo) u();
  }
  const output = ids.get(out);
  if (output === undefined) {
    throw new TraceError(`trace: the output of ${model.constructor.name}.forward was not computed by the ops in ` +
      'src/tensor/ops.ts (a tensor built from raw values cannot be recorded)');
  }
  return { values, nodes, input, output };
}

/** For each value id, the indices of the nodes reading it (the graph output counts as a reader, index -1). */
export function readers(g: Graph): number[][] {
  const out: number[][] = g.values.map(() => []);
  g.nodes.forEach((n, i) => {
    for (const v of new Set(n.inputs)) out[v]!.push(i);
  });
  out[g.output]!.push(-1);
  return out;
}
