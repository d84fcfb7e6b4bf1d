// Parameter counts: the papers' tables and torchvision's numbers, exactly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as models from '../src/models/index.js';
import { stateDictShapes } from '../src/nn/layers.js';
import { readCounts } from './models_fixture_io.js';

const counts = readCounts();

/** Parameters under a `downsample` (projection shortcut) module. */
function projectionParams(model: models.ResidualNetwork): number {
  let n = 0;
  for (const [key, p] of model.namedParameters()) if (key.includes('.downsample.')) n += p.size;
  return n;
}

/** Convolution and fully connected weights and biases, without BN: how He et al. 2016 count. */
function convAndFcParams(model: models.ResidualNetwork): number {
  let n = 0;
  for (const [key, p] of model.namedParameters()) if (p.ndim === 4 || key.startsWith('fc.')) n += p.size;
  return n;
}

const millions = (n: number, digits: number): string => (n / 1e6).toFixed(digits);

// Models too big to build twice (resnet1202, resnet34/101/152, preact_resnet1001, the
// wide ones) are checked in models_gradients.test.ts, which builds every model.

test('CIFAR ResNets with option A: exact counts, 0.27M/0.46M/0.66M/0.85M/1.7M as He et al. 2015, Table 6', () => {
  // With n blocks per stage: stem 3*16*9 + 2*16 = 464; stage 1: n * (2*16*16*9 + 4*16)
  // = 4672n; stage 2: 32*16*9 + 32*32*9 + 4*32 = 13952 for its first block and 18560
  // for the others; stage 3: 55552 and 73984; fc 64*10 + 10 = 650. Total 97216n - 21926.
  const expected: [string, number, string][] = [
    ['resnet20', 269_722, '0.27'],
    ['resnet32', 464_154, '0.46'],
    ['resnet44', 658_586, '0.66'],
    ['resnet56', 853_018, '0.85'],
    ['resnet110', 1_727_962, '1.7'],
  ];
  // The two shallower members of the family, resnet8 (n = 1) and resnet14 (n = 2).
  assert.equal(models.create('resnet8').numParameters(), 97_216 * 1 - 21_926);
  assert.equal(models.create('resnet14').numParameters(), 97_216 * 2 - 21_926);
  // And resnet1202 (n = 200): 97216 * 200 - 21926 = 19,421,274, the paper's 19.4M, as
  // PyTorch counts it (our own count is in models_gradients.test.ts).
  assert.equal(counts.params['resnet1202'], 19_421_274);
  for (const [name, exact, paper] of expected) {
    const n = models.create(name).numParameters();
    assert.equal(n, exact, name);
    assert.equal(n, counts.params[name], `${name}: PyTorch's option-A definition has ${counts.params[name]}`);
    assert.equal(millions(n, paper.split('.')[1]!.length), paper, name);
  }
});

test('ImageNet ResNets: torchvision counts (resnet18 = 11,689,512, resnet50 = 25,557,032)', () => {
  // resnet34/101/152 are checked against torchvision in models_gradients.test.ts,
  // which builds every model anyway.
  assert.equal(models.create('resnet18').numParameters(), 11_689_512);
  assert.equal(models.create('resnet50').numParameters(), 25_557_032);
  assert.equal(counts.params['resnet18'], 11_689_512);
  assert.equal(counts.params['resnet50'], 25_557_032);
});

test('plain nets have exactly the parameters of their ResNet minus the projections', () => {
  for (const depth of [20, 32, 44, 56, 110]) {
    const resnet = models.create(`resnet${depth}`);
    const plain = models.create(`plain${depth}`);
    // Option A shortcuts have no parameters, so the CIFAR twins are the same size.
    assert.equal(projectionParams(resnet), 0);
    assert.equal(plain.numParameters(), resnet.numParameters(), `plain${depth}`);
  }
  const resnet18 = models.create('resnet18');
  const plain18 = models.create('plain18');
  // Option B: conv1x1 + BN projections in the first block of stages 2-4:
  // (64*128 + 2*128) + (128*256 + 2*256) + (256*512 + 2*512) = 173,824.
  assert.equal(projectionParams(resnet18), 173_824);
  assert.equal(projectionParams(plain18), 0);
  assert.equal(plain18.numParameters(), resnet18.numParameters() - 173_824);
  assert.equal(counts.params['plain18'], 11_515_688);
  // plain34 vs resnet34 (same projections) is checked through PyTorch's counts, which
  // subtract torchvision's downsample parameters.
  assert.equal(counts.params['resnet34']! - counts.params['plain34']!, 173_824);
});

test('pre-activation ResNet-164: 1.7M as He et al. 2016 count it (convolutions and fc)', () => {
  const m = models.create('preact_resnet164');
  assert.equal(millions(convAndFcParams(m), 1), '1.7');
  assert.equal(m.numParameters(), 1_703_258);
  assert.equal(m.numParameters(), counts.params['preact_resnet164']);
});

test('shortcut options: A has no projection, B projects where the shape changes, C in every block', () => {
  const a = models.create('resnet20', { shortcut: 'A' });
  const b = models.create('resnet20', { shortcut: 'B' });
  const c = models.create('resnet20', { shortcut: 'C' });
  assert.equal(projectionParams(a), 0);
  // B: 16->32 and 32->64 with stride 2: (16*32 + 2*32) + (32*64 + 2*64).
  assert.equal(projectionParams(b), 576 + 2176);
  // C: every one of the 9 blocks, including the 16->16 and 32->32 / 64->64 ones.
  const perBlock = [16 * 16 + 32, 16 * 16 + 32, 16 * 16 + 32, 16 * 32 + 64, 32 * 32 + 64, 32 * 32 + 64, 32 * 64 + 128, 64 * 64 + 128, 64 * 64 + 128];
  assert.equal(projectionParams(c), perBlock.reduce((x, y) => x + y, 0));
  assert.equal(c.numParameters() - a.numParameters(), projectionParams(c));
});

test('a dry build (stateDictShapes) gives the state-dict shapes of the model it stands for, and allocates none of it', () => {
  const cases: [string, models.ModelOptions][] = [
    ['resnet20', { numClasses: 7, inChannels: 1, width: 2 }], ['resnet56', { shortcut: 'B' }], ['resnet32', { shortcut: 'C', width: 3 }],
    ['plain20', { inChannels: 1 }], ['preact_resnet20', { width: 2 }], ['preact_resnet164', { numClasses: 100 }],
    ['wide_resnet16_8', { inChannels: 1 }], ['resnet18', { numClasses: 10 }], ['resnet50', { shortcut: 'C' }], ['plain18', {}],
    ['preact_resnet18', { inChannels: 1 }],
  ];
  for (const [name, opts] of cases) {
    const real = Object.fromEntries(Object.entries(models.create(name, opts).stateDict()).map(([k, t]) => [k, [...t.shape]]));
    assert.deepEqual(stateDictShapes(() => models.create(name, opts)), real, `${name} ${JSON.stringify(opts)}`);
  }
  // ResNet-152 at width 1000: 6e13 weights, 240 TB, described from its module tree alone.
  const before = process.memoryUsage().arrayBuffers;
  const shapes = stateDictShapes(() => models.create('resnet152', { width: 1000 }));
  assert.ok(process.memoryUsage().arrayBuffers - before < 1e6, 'the dry build allocated its tensors');
  assert.deepEqual(shapes['layer4.2.conv3.weight'], [2048000, 512000, 1, 1]);
  assert.deepEqual(shapes['fc.weight'], [1000, 2048000]);
  // Layers built afterwards are real again.
  assert.equal(models.create('resnet20', { seed: 1 }).conv1.weight.size, 16 * 3 * 9);
});
