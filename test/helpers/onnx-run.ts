// Running exported ONNX models with onnxruntime-node, and preparing networks so that an
// export is a real test: BatchNorm statistics and affine parameters away from their
// identity initialisation (so folding them changes the convolutions), and residual
// branches scaled down so that 1000-layer networks keep finite activations.
import * as ort from 'onnxruntime-node';
import { models, nn, noGrad, Rng, Tensor } from '../../src/index.js';

type Network = ReturnType<typeof models.create>;

export function randomiseForExport(model: Network, seed: number): void {
  const rng = new Rng(seed);
  const fill = (t: Tensor, f: () => number): void => {
    for (let i = 0; i < t.size; i++) t.data[i] = f();
    t.markModified();
  };
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof nn.BatchNorm2d)) continue;
    fill(m.weight, () => 0.5 + rng.uniform());
    fill(m.bias, () => (rng.uniform() - 0.5) * 0.2);
    fill(m.runningMean, () => (rng.uniform() - 0.5) * 0.2);
    fill(m.runningVar, () => 0.5 + rng.uniform());
  }
  const scale = (t: Tensor, s: number): void => {
    for (let i = 0; i < t.size; i++) t.data[i]! *= s;
    t.markModified();
  };
  for (const block of model.blocks) {
    if (block instanceof models.BasicBlock) scale(block.bn2.weight, 0.1);
    else if (block instanceof models.Bottleneck) scale(block.bn3.weight, 0.1);
    else if (block instanceof models.PreActBlock) scale(block.conv2.weight, 0.1);
    else if (block instanceof models.PreActBottleneck) scale(block.conv3.weight, 0.1);
  }
  model.eval();
}

export function nhwcToNchw(x: Tensor): { data: Float32Array; dims: number[] } {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const data = new Float32Array(x.size);
  for (let a = 0; a < n; a++) for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) for (let b = 0; b < c; b++) {
    data[((a * c + b) * h + y) * w + z] = x.data[((a * h + y) * w + z) * c + b]!;
  }
  return { data, dims: [n, c, h, w] };
}

/** Run an exported model on an NHWC batch, laid out as the export expects. */
export async function runOnnx(bytes: Uint8Array, x: Tensor, layout: 'NCHW' | 'NHWC'): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const input = layout === 'NHWC' ? { data: x.data, dims: [...x.shape] } : nhwcToNchw(x);
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input.data, input.dims) });
    const y = out[session.outputNames[0]!]!;
    if (!(y.data instanceof Float32Array)) throw new Error(`onnxruntime returned ${y.type}, expected float32`);
    return { data: y.data, dims: y.dims };
  } finally {
    await session.release();
  }
}

export function forwardEval(model: Network, x: Tensor): Tensor {
  return noGrad(() => model.forward(x));
}
