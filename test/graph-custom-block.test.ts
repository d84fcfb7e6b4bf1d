// A block type that exists only in this file, built into a network by the library's own
// stage builder: compiled inference, the ONNX export (run by onnxruntime-node) and the
// summary all handle it through the traced graph, with no change in src/. It uses ops no
// library block combines this way: an unfused BN -> relu, a scaled residual branch
// (mulScalar), an average-pool projection shortcut (ResNet-D, Bag of Tricks sec. 4.1) and
// add followed by a separate relu.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { F, graph, io, models, nn, noGrad, randn, Rng, setBackend, type Tensor } from '../src/index.js';
import { backendsUnderTest } from './helpers/backends.js';
import { assertClose } from './helpers/fixtures.js';
import { runOnnx } from './helpers/onnx-run.js';

class ScaledAvgDownBlock extends nn.Module {
  static readonly expansion = 1;
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly conv2: nn.Conv2d;
  readonly bn2: nn.BatchNorm2d;
  readonly downsample: nn.Module;

  constructor(inChannels: number, planes: number, stride: number, _shortcut: models.ShortcutKind, rng: Rng) {
    super();
    this.conv1 = new nn.Conv2d(inChannels, planes, 3, { stride, padding: 1, bias: false, rng });
    this.bn1 = new nn.BatchNorm2d(planes);
    this.conv2 = new nn.Conv2d(planes, planes, 3, { padding: 1, bias: true, rng });
    this.bn2 = new nn.BatchNorm2d(planes);
    this.downsample = stride === 1 && inChannels === planes
      ? new nn.Identity()
      : new nn.Sequential(new nn.AvgPool2d(stride, { stride }), new nn.Conv2d(inChannels, planes, 1, { bias: false, rng }), new nn.BatchNorm2d(planes));
  }

  forward(x: Tensor): Tensor {
    const out = F.mulScalar(this.bn2.forward(this.conv2.forward(F.relu(this.bn1.forward(this.conv1.forward(x))))), 0.5);
    return F.relu(F.add(out, this.downsample.forward(x)));
  }

  zeroInitResidual(): void {
    this.bn2.weight.assign(new Float32Array(this.bn2.numFeatures));
  }
}

function network(): models.ResNet {
  const model = new models.ResNet({
    block: ScaledAvgDownBlock, layers: [1, 2], widths: [4, 6], stem: 'cifar', stemChannels: 4, shortcut: 'B',
    numClasses: 5, inChannels: 3, zeroInitResidual: false, rng: new Rng(3),
  });
  // Batch norms away from their identity initialisation, so folding them changes something.
  const rng = new Rng(4);
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof nn.BatchNorm2d)) continue;
    const c = m.numFeatures;
    m.weight.assign(Float32Array.from({ length: c }, () => 0.5 + rng.uniform()));
    m.bias.assign(Float32Array.from({ length: c }, () => 0.2 * rng.normal()));
    m.runningMean.assign(Float32Array.from({ length: c }, () => 0.2 * rng.normal()));
    m.runningVar.assign(Float32Array.from({ length: c }, () => 0.5 + rng.uniform()));
  }
  return model;
}

function eager(model: nn.Module, x: Tensor): Float32Array {
  const was = model.training;
  model.eval();
  try {
    return noGrad(() => model.forward(x)).data;
  } finally {
    model.train(was);
  }
}

test('a block defined outside src/ compiles: compiled == eval-mode forward within 1e-4, on every backend', () => {
  const model = network();
  const x = randn([5, 8, 8, 3], { seed: 5 });
  for (const b of backendsUnderTest()) {
    setBackend(b);
    const want = eager(model, x);
    for (const chunk of [16, 2]) {
      assertClose(graph.compileInference(model, { chunk })(x).data, want, `${b}, chunks of ${chunk}`, [5, 5], { rtol: 1e-4, atolScale: 1e-5 });
    }
  }
  setBackend('reference');
  // The passes found the block's pattern without knowing the class: every batch norm folded
  // into its convolution, the unfused relus and the add taken in as post-ops.
  const g = graph.trace(model, randn([2, 6, 6, 3], { seed: 6 }));
  const steps = graph.fuse(g);
  const convs = steps.filter((s) => s.kind === 'conv');
  assert.equal(convs.length, g.nodes.filter((n) => n.op === 'conv2d').length);
  assert.ok(convs.every((s) => s.kind === 'conv' && s.bn !== null), 'every BN folded');
  assert.equal(steps.filter((s) => s.kind === 'batchNorm').length, 0);
  // The projection block: its shortcut convolution takes the scaled branch as the sum and
  // the relu after the add. The identity blocks add two non-convolutions: add, relu stay.
  const withSum = convs.filter((s) => s.kind === 'conv' && s.sum !== null);
  assert.deepEqual(withSum.map((s) => s.kind === 'conv' && [s.conv.scope, s.relu]), [['layer2.0.downsample.1', true]]);
  const left = steps.flatMap((s) => (s.kind === 'node' ? [`${s.node.scope}:${s.node.op}`] : []));
  assert.deepEqual(left.filter((op) => /:(relu|add)$/.test(op)), ['layer1.0:add', 'layer1.0:relu', 'layer2.1:add', 'layer2.1:relu']);
  assert.equal(g.nodes.filter((n) => n.op === 'relu').length, 6, 'three relus after a BN (fused) and three after an add');
  assert.equal(g.nodes.find((n) => n.op === 'mulScalar')?.scope, 'layer1.0');
  assert.equal(g.values.filter((v) => v.kind === 'parameter').length, model.parameters().length);
});

test('a block defined outside src/ exports to ONNX: onnxruntime-node gives the eval-mode logits', async () => {
  const model = network();
  const x = randn([3, 10, 10, 3], { seed: 7 });
  const want = eager(model, x);
  for (const foldBatchNorm of [true, false]) {
    for (const layout of ['NCHW', 'NHWC'] as const) {
      const got = await runOnnx(io.exportOnnx(model, { foldBatchNorm, layout }), x, layout);
      assert.deepEqual(got.dims, [3, 5]);
      assertClose(got.data, want, `onnxruntime, fold=${foldBatchNorm}, ${layout}`, [3, 5], { rtol: 1e-4, atolScale: 1e-5 });
    }
  }
});

test('a block defined outside src/ is summarised: its rows, parameters and MACs', () => {
  const model = network();
  const s = models.summarize(model, [8, 8, 3]);
  assert.equal(s.totalParams, model.numParameters());
  assert.equal(s.layers.reduce((n, l) => n + l.params, 0), s.totalParams);
  const at = (name: string): models.LayerSummary => {
    const row = s.layers.find((l) => l.name === name);
    assert.ok(row, `a row for ${name}: ${s.layers.map((l) => l.name).join(', ')}`);
    return row;
  };
  // The block's own row is what its forward() runs itself: the scale, the add, the relu.
  assert.equal(at('layer2.0').type, 'ScaledAvgDownBlock');
  assert.deepEqual(at('layer2.0').outputShape, [1, 4, 4, 6]);
  assert.equal(at('layer2.0.downsample.0').type, 'AvgPool2d');
  assert.deepEqual(at('layer2.0.downsample.0').outputShape, [1, 4, 4, 4]);
  assert.equal(at('layer2.0.conv2').params, 6 * 6 * 9 + 6);
  // MACs: stem 8*8*4*27; layer1.0 two 8*8*4*36; layer2.0 conv1 4*4*6*36, conv2 4*4*6*54,
  // projection 4*4*6*4; layer2.1 two 4*4*6*54; fc 5*6.
  const macs = 8 * 8 * 4 * 27 + 2 * 8 * 8 * 4 * 36 + 4 * 4 * 6 * 36 + 4 * 4 * 6 * 54 + 4 * 4 * 6 * 4 + 2 * 4 * 4 * 6 * 54 + 5 * 6;
  assert.equal(s.totalMacs, macs);
  assert.match(models.formatSummary(s), /^layer2\.1\s+ScaledAvgDownBlock\s+\[1, 4, 4, 6\]\s+0\s+0$/m);
});
