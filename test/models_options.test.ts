// How the builders and blocks behave: structure per the papers, options, and errors.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setBackend } from '../src/backend/index.js';
import { BatchNorm2d, Identity, Sequential } from '../src/nn/index.js';
import * as models from '../src/models/index.js';
import * as F from '../src/tensor/ops.js';
import { noGrad, randn, Tensor } from '../src/tensor/tensor.js';

setBackend('reference');

describe('registry', () => {
  test('list() names every family the papers define', () => {
    const names = models.list();
    for (const d of [20, 32, 44, 56, 110, 1202]) assert.ok(names.includes(`resnet${d}`));
    for (const d of [20, 32, 44, 56, 110]) assert.ok(names.includes(`plain${d}`) && names.includes(`preact_resnet${d}`));
    for (const d of [18, 34, 50, 101, 152]) assert.ok(names.includes(`resnet${d}`) && names.includes(`preact_resnet${d}`));
    for (const n of ['plain18', 'plain34', 'preact_resnet164', 'preact_resnet1001', 'wide_resnet28_10']) assert.ok(names.includes(n), n);
    assert.equal(new Set(names).size, names.length);
  });

  test('create() builds the right class with the asked head and input channels', () => {
    const m = models.create('resnet20', { numClasses: 7, inChannels: 1, seed: 3 });
    assert.ok(m instanceof models.ResNet && !(m instanceof models.PlainNet));
    assert.deepEqual([...m.fc.weight.shape], [7, 64]);
    assert.deepEqual([...m.conv1.weight.shape], [16, 1, 3, 3]);
    assert.ok(models.create('plain20') instanceof models.PlainNet);
    assert.ok(models.create('resnet20', { shortcut: 'none' }) instanceof models.PlainNet);
    assert.ok(models.create('preact_resnet20') instanceof models.PreActResNet);
    const y = noGrad(() => m.eval().forward(randn([3, 28, 28, 1], { seed: 1 })));
    assert.deepEqual([...y.shape], [3, 7]);
  });

  test('width widens every stage; a named wide model counts from its own width', () => {
    const wide = models.create('resnet20', { width: 4 });
    assert.deepEqual(wide.stages.map((s) => (s[0] as models.BasicBlock).conv2.outChannels), [64, 128, 256]);
    assert.equal(wide.conv1.outChannels, 16, 'the stem keeps 16 channels (WRN, Table 1)');
    const wrn = models.create('wide_resnet16_8', { width: 1 });
    assert.deepEqual(wrn.stages.map((s) => (s[0] as models.PreActBlock).conv2.outChannels), [128, 256, 512]);
  });

  test('the same seed gives the same weights, another seed others', () => {
    const a = models.create('resnet20', { seed: 5 }).conv1.weight.data;
    const b = models.create('resnet20', { seed: 5 }).conv1.weight.data;
    const c = models.create('resnet20', { seed: 6 }).conv1.weight.data;
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test('bad names and options are errors that say what to do', () => {
    assert.throws(() => models.create('resnet19'), (e: Error) =>
      e instanceof models.ModelConfigError && /unknown model 'resnet19'/.test(e.message) && /Did you mean .*resnet18/.test(e.message));
    assert.throws(() => models.create('resnet20', { numClasses: 0 }), /numClasses must be a positive integer, got 0/);
    assert.throws(() => models.create('resnet20', { width: 1.5 }), /width must be a positive integer/);
    assert.throws(() => models.create('plain20', { shortcut: 'B' }), /plain20 has no shortcuts/);
    assert.throws(() => models.create('preact_resnet20', { shortcut: 'none' }), /no plain twin/);
    assert.throws(() => models.create('wide_resnet16_8', { width: 0 }), /width must be a positive integer, got 0/);
    assert.throws(() => models.create('plain20', { zeroInitResidual: true }), /no residual branch/);
    const bogus: Record<string, unknown> = { numClases: 10 };
    assert.throws(() => models.create('resnet20', bogus), /unknown model option 'numClases'/);
  });

  test('NCHW input gets a message that says models take NHWC', () => {
    const m = models.create('resnet20');
    assert.throws(() => m.forward(randn([2, 3, 32, 32])), /looks like NCHW: models take NHWC/);
    assert.throws(() => m.forward(randn([2, 32, 32])), /must be an NHWC batch/);
  });
});

describe('blocks follow the papers', () => {
  test('ResNet-20 option A: 3 stages of 3 blocks, zero-pad shortcuts at the stage changes', () => {
    const m = models.create('resnet20');
    assert.equal(m.stages.length, 3);
    assert.deepEqual(m.stages.map((s) => s.length), [3, 3, 3]);
    const kinds = m.blocks.map((b) => (b as models.BasicBlock).downsample.constructor.name);
    assert.deepEqual(kinds, ['Identity', 'Identity', 'Identity', 'ZeroPadShortcut', 'Identity', 'Identity',
      'ZeroPadShortcut', 'Identity', 'Identity']);
    const pad = (m.blocks[3] as models.BasicBlock).downsample as models.ZeroPadShortcut;
    assert.equal(pad.padFront, 8); // 16 -> 32 channels: 8 zero channels before, 8 after
  });

  test('option A shortcut: x[:, ::2, ::2] with half the new channels before and half after', () => {
    const s = new models.ZeroPadShortcut(2, 6, 2);
    const x = new Tensor(Float32Array.from({ length: 1 * 3 * 3 * 2 }, (_, i) => i + 1), [1, 3, 3, 2]);
    const y = s.forward(x);
    assert.deepEqual([...y.shape], [1, 2, 2, 6]);
    // Pixel (0,0) holds channels 1,2; (0,2) holds 5,6; (2,0) 13,14; (2,2) 17,18.
    assert.deepEqual([...y.data], [0, 0, 1, 2, 0, 0, 0, 0, 5, 6, 0, 0, 0, 0, 13, 14, 0, 0, 0, 0, 17, 18, 0, 0]);
  });

  test('v1 BasicBlock: y = relu(F(x) + x), and relu(F(x) + W_s x) with a projection', () => {
    const block = new models.BasicBlock(4, 4, 1, 'B');
    block.eval();
    const x = randn([2, 5, 5, 4], { seed: 2 });
    noGrad(() => {
      const residual = block.bn2.forward(block.conv2.forward(F.relu(block.bn1.forward(block.conv1.forward(x)))));
      assert.deepEqual(block.forward(x).data, F.relu(F.add(residual, x)).data);
    });
    assert.ok(block.downsample instanceof Identity);
    const down = new models.BasicBlock(4, 8, 2, 'B');
    down.eval();
    assert.ok(down.downsample instanceof Sequential && down.downsample.length === 2);
    noGrad(() => {
      const residual = down.bn2.forward(down.conv2.forward(F.relu(down.bn1.forward(down.conv1.forward(x)))));
      // The projection reads the block input x, not the residual branch's output.
      const shortcut = down.downsample.forward(x);
      assert.deepEqual(down.forward(x).data, F.relu(F.add(residual, shortcut)).data);
    });
  });

  test('v2 PreActBlock: no ReLU after the add; identity carries x, a projection reads BN-ReLU(x)', () => {
    const x = randn([2, 5, 5, 4], { seed: 4 });
    const same = new models.PreActBlock(4, 4, 1, 'B');
    same.eval();
    noGrad(() => {
      const residual = same.conv2.forward(same.bn2.forwardRelu(same.conv1.forward(same.bn1.forwardRelu(x))));
      const y = same.forward(x);
      assert.deepEqual(y.data, F.add(residual, x).data);
      assert.ok(y.data.some((v) => v < 0), 'the output keeps negative values: no ReLU after the add');
    });
    const down = new models.PreActBottleneck(4, 2, 2, 'B');
    down.eval();
    assert.equal(down.downsample instanceof Sequential && down.downsample.length, 1);
    noGrad(() => {
      const pre = down.bn1.forwardRelu(x);
      let r = down.conv1.forward(pre);
      r = down.conv2.forward(down.bn2.forwardRelu(r));
      r = down.conv3.forward(down.bn3.forwardRelu(r));
      assert.deepEqual(down.forward(x).data, F.add(r, down.downsample.forward(pre)).data);
    });
  });

  test('pre-activation networks end with BN-ReLU; the stem is a bare convolution', () => {
    const m = models.create('preact_resnet20');
    assert.ok(m instanceof models.PreActResNet);
    assert.ok(m.bn instanceof BatchNorm2d && m.bn.numFeatures === 64);
    assert.ok(!Object.keys(m.stateDict()).some((k) => k.startsWith('bn1.')));
    assert.ok(Object.keys(m.stateDict()).includes('layer2.0.downsample.0.weight'));
  });

  test('zeroInitResidual zeroes the last BN scale (v1) or the last conv (v2), so blocks start as identities', () => {
    const v1 = models.create('resnet20', { zeroInitResidual: true, seed: 1 });
    for (const b of v1.blocks) assert.ok((b as models.BasicBlock).bn2.weight.data.every((v) => v === 0));
    const bottlenecks = models.imagenetResNet(models.Bottleneck, [1, 2, 1, 1], { zeroInitResidual: true, seed: 1 });
    assert.equal(bottlenecks.blocks.length, 5);
    for (const b of bottlenecks.blocks) assert.ok((b as models.Bottleneck).bn3.weight.data.every((v) => v === 0));
    const v2 = models.create('preact_resnet20', { zeroInitResidual: true, seed: 1 });
    // A zero residual branch makes each identity block pass its input through unchanged.
    const block = v2.blocks[1]! as models.PreActBlock;
    block.eval();
    const x = randn([1, 4, 4, 16], { seed: 3 });
    assert.deepEqual(noGrad(() => block.forward(x)).data, x.data);
    const plain = models.create('resnet20', { seed: 1 });
    assert.ok((plain.blocks[0] as models.BasicBlock).bn2.weight.data.every((v) => v === 1));
  });

  test('bottleneck v1.5: stride on the 3x3, expansion 4, projection downsample.0/1 as torchvision', () => {
    const m = models.create('resnet50');
    const b = m.blocks[3] as models.Bottleneck; // layer2.0
    assert.equal(b.conv1.stride, 1);
    assert.equal(b.conv2.stride, 2);
    assert.deepEqual([...b.conv3.weight.shape], [512, 128, 1, 1]);
    const keys = Object.keys(m.stateDict());
    assert.ok(keys.includes('layer2.0.downsample.0.weight') && keys.includes('layer2.0.downsample.1.running_var'));
  });
});
