// PyTorch export: a self-contained Python module, generated from the graph traced by
// src/graph/trace.ts the way torch.fx's codegen writes one: nested nn.Modules whose
// parameters and buffers carry our state-dict names (so `state_dict()` equals ours key
// for key and shape for shape), and a straight-line `forward` over torch.nn.functional,
// one statement per traced node. Batch norm is F.batch_norm with `self.training`, so the
// module trains as well as it infers (it is what `resnet train --engine torch` trains).
// No block type is named here: whatever a forward() runs with the ops of
// src/tensor/ops.ts exports. Values are NCHW inside the module like any PyTorch
// network; the trace's NHWC shapes only decide where a reshape needs a permute.
//
// The folder holds:
//   model.py           the module (class Network, build(), load(), preprocessing)
//   weights.safetensors the state dict, read by a small reader inside model.py (Debian
//                      bookworm has no python3-safetensors; the format is simple)
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Graph, type Node, trace, TraceError } from '../graph/trace.js';
import type { Module } from '../nn/module.js';
import { zeros } from '../tensor/tensor.js';
import { writeFileAtomic } from './atomic-write.js';
import type { ExportableNetwork } from './onnx-export.js';
import { saveSafetensors } from './safetensors.js';

export const TORCH_MODULE_FILE = 'model.py';
export const TORCH_WEIGHTS_FILE = 'weights.safetensors';

export interface TorchExportOptions {
  /** Builder name, stored as MODEL_NAME (default: the network's class name). */
  modelName?: string;
  /** Widening factor, stored as WIDTH. */
  width?: number;
  /** Input normalisation, stored as MEAN and STD (default: 0 and 1 per channel). */
  normalization?: { mean: readonly number[]; std: readonly number[] };
  /** [height, width] the model was trained on, stored as INPUT_SIZE (default 32x32). */
  imageSize?: readonly [number, number];
  classNames?: readonly string[];
  /** The data set it was trained on, stored as DATASET. */
  dataset?: string;
}

/** A Python literal of a JSON-able value (lists, numbers, strings, null). */
function py(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`exportTorch: cannot write ${v} as a Python literal`);
    return Number.isInteger(v) ? String(v) : String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(py).join(', ')}]`;
  throw new Error(`exportTorch: cannot write ${typeof v} as a Python literal`);
}

/** `self.layer1._modules['0'].conv1.weight` for `layer1.0.conv1.weight`. */
function attrPath(name: string): string {
  return name.split('.').map((p) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? `.${p}` : `._modules[${JSON.stringify(p)}]`)).join('');
}

/** Rank-4 shapes whose NHWC and NCHW orders are the same bytes (1x1 spatial), and every other rank. */
function layoutFree(shape: readonly number[]): boolean {
  return shape.length !== 4 || (shape[1] === 1 && shape[2] === 1);
}

// The reader and writer of safetensors files, part of every generated module (the torch
// engine's trainer uses them too: python/resnet_torch_train.py).
const SAFETENSORS_PY = `
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


def load_safetensors(path):
    """The tensors and the metadata of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = _DTYPES[entry["dtype"]]
        raw = bytearray(data[8 + n + begin:8 + n + end])
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(entry["shape"]).clone()
    return tensors, metadata


def save_safetensors(path, tensors, metadata=None):
    """Write tensors (and string metadata) as a safetensors file, atomically."""
    names = {v: k for k, v in _DTYPES.items()}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    folder, base = os.path.split(os.path.abspath(path))
    temp = os.path.join(folder, ".%s.%d.0.tmp" % (base, os.getpid()))
    with open(temp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for raw in blobs:
            f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
`;

const PREPROCESS_PY = `

def preprocess(images):
    """uint8 images [N, H, W, C] (or [H, W, C]) -> the normalised float NCHW batch forward() takes."""
    x = torch.as_tensor(images)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    x = x.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean) / std


def build():
    """The network with fresh (zero) weights."""
    return Network()


def load(path=None):
    """The network with the weights of the folder (or of a safetensors file with our names), in eval mode."""
    net = Network()
    tensors, _ = load_safetensors(path or os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS_FILE))
    own = net.state_dict()
    net.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in tensors.items()})
    return net.eval()
`;

class Codegen {
  private readonly lines: string[] = [];
  private readonly local = new Map<number, string>();
  private readonly modules: Map<string, Module>;
  private readonly stateNames: Set<string>;

  constructor(model: Module, private readonly g: Graph) {
    this.modules = new Map(model.namedModules());
    this.stateNames = new Set(Object.keys(model.stateDict()));
    this.local.set(g.input, 'x');
  }

  private v(id: number): string {
    const known = this.local.get(id);
    if (known !== undefined) return known;
    const value = this.g.values[id]!;
    if (value.name === undefined) throw new Error(`exportTorch: value ${id} is used before it is computed`);
    return `self${attrPath(value.name)}`;
  }

  private fail(node: Node, why: string): Error {
    return new Error(`exportTorch: ${node.op} in ${node.scope || 'the model'} (${node.scopeType}) ${why}`);
  }

  forward(): string[] {
    this.g.nodes.forEach((node, i) => {
      const out = `v${i}`;
      this.lines.push(`${out} = ${this.expr(node)}  # ${node.scope || node.op} (${node.scopeType})`);
      this.local.set(node.output, out);
    });
    this.lines.push(`return ${this.v(this.g.output)}`);
    return this.lines;
  }

  private expr(node: Node): string {
    const a = node.attrs;
    const num = (k: string): number => a[k] as number;
    const ins = node.inputs.map((id) => this.v(id));
    const shape = (id: number): readonly number[] => this.g.values[id]!.shape;
    switch (node.op) {
      case 'conv2d': {
        if (node.inputs.slice(1).some((id) => this.g.values[id]!.name === undefined)) throw this.fail(node, 'computes its weights in forward()');
        return `F.conv2d(${ins[0]}, ${ins[1]}, ${ins[2] ?? 'None'}, stride=(${num('strideH')}, ${num('strideW')}), ` +
          `padding=(${num('padH')}, ${num('padW')}))`;
      }
      case 'batchNorm2d':
      case 'batchNorm2d+relu': {
        // inputs: x, weight, bias, running mean, running var.
        const owner = this.modules.get(node.scope);
        const momentum = owner && typeof (owner as unknown as { momentum?: unknown }).momentum === 'number'
          ? (owner as unknown as { momentum: number }).momentum : 0.1;
        const bn = `F.batch_norm(${ins[0]}, ${ins[3]}, ${ins[4]}, ${ins[1]}, ${ins[2]}, self.training, ${py(momentum)}, ${py(num('eps'))})`;
        const counter = `${node.scope}.num_batches_tracked`;
        if (this.stateNames.has(counter)) this.lines.push(`if self.training:\n    self${attrPath(counter)}.add_(1)`);
        return a['relu'] ? `F.relu(${bn})` : bn;
      }
      case 'relu': return `F.relu(${ins[0]})`;
      case 'add': return `${ins[0]} + ${ins[1]}`;
      case 'addRelu': return `F.relu(${ins[0]} + ${ins[1]})`;
      case 'mulScalar': return `${ins[0]} * ${py(num('scale'))}`;
      case 'padChannelsSubsample': {
        // Option A: x[:, :, ::s, ::s], then zero channels before and after.
        const s = num('stride');
        const inC = shape(node.inputs[0]!)[3]!;
        const back = num('outChannels') - inC - num('padFront');
        return `F.pad(${ins[0]}[:, :, ::${s}, ::${s}], (0, 0, 0, 0, ${num('padFront')}, ${back}))`;
      }
      case 'maxPool2d':
        return `F.max_pool2d(${ins[0]}, (${num('kernelH')}, ${num('kernelW')}), (${num('strideH')}, ${num('strideW')}), (${num('padH')}, ${num('padW')}))`;
      case 'avgPool2d':
        return `F.avg_pool2d(${ins[0]}, (${num('kernelH')}, ${num('kernelW')}), (${num('strideH')}, ${num('strideW')}), ` +
          `(${num('padH')}, ${num('padW')}), count_include_pad=True)`;
      case 'globalAvgPool': return `${ins[0]}.mean((2, 3))`;
      case 'reshape': return this.reshape(ins[0]!, shape(node.inputs[0]!), shape(node.output));
      case 'linear': return `F.linear(${ins[0]}, ${ins[1]}, ${ins[2] ?? 'None'})`;
      case 'matmul': return `torch.matmul(${ins[0]}, ${ins[1]})`;
      default: throw this.fail(node, 'has no PyTorch mapping');
    }
  }

  /** A reshape keeping the batch dimension, with the trace's NHWC order where it matters. */
  private reshape(x: string, from: readonly number[], to: readonly number[]): string {
    let y = layoutFree(from) ? x : `${x}.permute(0, 2, 3, 1)`;
    const target = to.length === 4 && layoutFree(to) ? [to[3]!, 1, 1] : to.slice(1);
    y = `${y}.reshape(${[`${x}.shape[0]`, ...target].join(', ')})`;
    return layoutFree(to) ? y : `${y}.permute(0, 3, 1, 2)`;
  }
}

/** The Python source of the module for `model` (its weights go beside it: saveTorchExport). */
export function torchModuleSource(model: ExportableNetwork, opts: TorchExportOptions = {}): string {
  const [th, tw] = opts.imageSize ?? [32, 32];
  let g: Graph;
  try {
    g = trace(model, zeros([2, th, tw, model.inChannels]));
  } catch (e) {
    if (e instanceof TraceError) throw new Error(`exportTorch: ${e.message}`);
    throw e;
  }
  const forward = new Codegen(model, g).forward();
  const params = new Set(model.namedParameters().map(([n]) => n));
  const state = Object.entries(model.stateDict());
  // Every module on the way to a parameter or buffer, made in order (parents first).
  const containers: string[] = [];
  const seen = new Set<string>();
  for (const [name] of state) {
    const parts = name.split('.');
    for (let i = 1; i < parts.length; i++) {
      const path = parts.slice(0, i).join('.');
      if (!seen.has(path)) {
        seen.add(path);
        containers.push(path);
      }
    }
  }
  const init: string[] = [];
  for (const path of containers) {
    const dot = path.lastIndexOf('.');
    const parent = dot < 0 ? '' : attrPath(path.slice(0, dot));
    init.push(`self${parent}.add_module(${JSON.stringify(path.slice(dot + 1))}, nn.Module())`);
  }
  for (const [name, t] of state) {
    const dot = name.lastIndexOf('.');
    const owner = `self${dot < 0 ? '' : attrPath(name.slice(0, dot))}`;
    const leaf = JSON.stringify(name.slice(dot + 1));
    if (params.has(name)) {
      init.push(`${owner}.register_parameter(${leaf}, nn.Parameter(torch.zeros(${py(t.shape)})))`);
    } else {
      const dtype = name.endsWith('num_batches_tracked') ? ', dtype=torch.int64' : '';
      init.push(`${owner}.register_buffer(${leaf}, torch.zeros(${py(t.shape)}${dtype}))`);
    }
  }
  const channels = model.inChannels;
  const norm = opts.normalization ?? { mean: new Array(channels).fill(0), std: new Array(channels).fill(1) };
  const indent = (lines: string[], n: number): string => lines.map((l) => l.split('\n').map((s) => ' '.repeat(n) + s).join('\n')).join('\n');
  const name = opts.modelName ?? model.constructor.name;
  return `# ${name} for PyTorch, generated by resnet-ts (\`resnet export --format pytorch\`) from the traced
# forward pass of the network. state_dict() has resnet-ts's (torchvision's) names.
#   import model; net = model.load(); logits = net(model.preprocess(images_uint8_nhwc))
# Needs torch (1.13 or newer) and numpy; nothing else.
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL_NAME = ${py(name)}
WIDTH = ${py(opts.width ?? 1)}
NUM_CLASSES = ${model.numClasses}
IN_CHANNELS = ${channels}
INPUT_SIZE = ${py([th, tw])}
MEAN = ${py([...norm.mean])}
STD = ${py([...norm.std])}
CLASS_NAMES = ${py(opts.classNames ? [...opts.classNames] : null)}
DATASET = ${py(opts.dataset ?? null)}
WEIGHTS_FILE = ${py(TORCH_WEIGHTS_FILE)}


class Network(nn.Module):
    def __init__(self):
        super().__init__()
${indent(init, 8)}

    def forward(self, x):
        """NCHW float input (normalised: preprocess()) -> logits [N, NUM_CLASSES]."""
${indent(forward, 8)}
${SAFETENSORS_PY}${PREPROCESS_PY}`;
}

/** Write model.py and weights.safetensors into `dir` (made if missing). */
export function saveTorchExport(dir: string, model: ExportableNetwork, opts: TorchExportOptions = {}): { module: string; weights: string } {
  const source = torchModuleSource(model, opts);
  mkdirSync(dir, { recursive: true });
  const module = join(dir, TORCH_MODULE_FILE);
  const weights = join(dir, TORCH_WEIGHTS_FILE);
  saveSafetensors(weights, model.stateDict(), { model: opts.modelName ?? model.constructor.name });
  writeFileAtomic(module, [new TextEncoder().encode(source)]);
  return { module, weights };
}
