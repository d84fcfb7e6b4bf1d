// Module naming, state dicts, train/eval behaviour and initialisation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { F, nn, noGrad, randn, Rng, Tensor, tensor, zeros } from '../src/index.js';
import { assertClose } from './helpers/fixtures.js';

/** A post-activation basic block with torchvision's attribute names. */
class Block extends nn.Module {
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly conv2: nn.Conv2d;
  readonly bn2: nn.BatchNorm2d;
  readonly downsample: nn.Module;

  constructor(inC: number, outC: number, rng: Rng) {
    super();
    this.conv1 = new nn.Conv2d(inC, outC, 3, { padding: 1, rng });
    this.bn1 = new nn.BatchNorm2d(outC);
    this.conv2 = new nn.Conv2d(outC, outC, 3, { padding: 1, rng });
    this.bn2 = new nn.BatchNorm2d(outC);
    this.downsample = inC === outC ? new nn.Identity() : new nn.Sequential(new nn.Conv2d(inC, outC, 1, { rng }), new nn.BatchNorm2d(outC));
  }

  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(this.bn1.forwardRelu(this.conv1.forward(x))));
    return F.addRelu(out, this.downsample.forward(x));
  }
}

class Net extends nn.Module {
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly layer1: nn.Sequential;
  readonly fc: nn.Linear;

  constructor(seed: number) {
    super();
    const rng = new Rng(seed);
    this.conv1 = new nn.Conv2d(3, 4, 3, { padding: 1, rng });
    this.bn1 = new nn.BatchNorm2d(4);
    this.layer1 = new nn.Sequential(new Block(4, 4, rng), new Block(4, 6, rng));
    this.fc = new nn.Linear(6, 3, { rng });
  }

  forward(x: Tensor): Tensor {
    const y = this.layer1.forward(this.bn1.forwardRelu(this.conv1.forward(x)));
    return this.fc.forward(F.globalAvgPool(y));
  }
}

/** Vary every parameter and buffer so that a copy is distinguishable from a fresh model. */
function perturb(m: nn.Module, seed: number): void {
  const rng = new Rng(seed);
  for (const t of Object.values(m.stateDict())) for (let i = 0; i < t.size; i++) t.data[i] += 0.1 * rng.normal();
  for (const [, b] of m.namedBuffers()) if (b.size === 1) b.data[0] = 3;
  for (const [k, v] of Object.entries(m.stateDict())) if (k.endsWith('running_var')) for (let i = 0; i < v.size; i++) v.data[i] = 1 + Math.abs(v.data[i]!);
}

const BLOCK_KEYS = (p: string, downsample: boolean): string[] => [
  `${p}.conv1.weight`, `${p}.bn1.weight`, `${p}.bn1.bias`, `${p}.bn1.running_mean`, `${p}.bn1.running_var`, `${p}.bn1.num_batches_tracked`,
  `${p}.conv2.weight`, `${p}.bn2.weight`, `${p}.bn2.bias`, `${p}.bn2.running_mean`, `${p}.bn2.running_var`, `${p}.bn2.num_batches_tracked`,
  ...(downsample ? [`${p}.downsample.0.weight`, `${p}.downsample.1.weight`, `${p}.downsample.1.bias`,
    `${p}.downsample.1.running_mean`, `${p}.downsample.1.running_var`, `${p}.downsample.1.num_batches_tracked`] : []),
];

describe('module naming', () => {
  it('names state-dict entries by attribute path in PyTorch order (Sequential children 0, 1, ...)', () => {
    const keys = Object.keys(new Net(1).stateDict());
    assert.deepEqual(keys, [
      'conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked',
      ...BLOCK_KEYS('layer1.0', false), ...BLOCK_KEYS('layer1.1', true),
      'fc.weight', 'fc.bias',
    ]);
  });

  it('namedParameters lists the trained tensors only, with dotted paths and matching shapes', () => {
    const net = new Net(1);
    const named = net.namedParameters();
    const expected = Object.keys(net.stateDict()).filter((k) => !/running_|num_batches/.test(k));
    assert.deepEqual(named.map(([k]) => k), expected);
    for (const [k, p] of named) {
      assert.ok(p instanceof nn.Parameter, k);
      assert.equal(p.requiresGrad, true, k);
    }
    assert.deepEqual(named.find(([k]) => k === 'layer1.1.downsample.0.weight')?.[1].shape, [6, 4, 1, 1]);
    assert.equal(net.parameters().length, named.length);
    assert.equal(net.buffers().length, 3 * 6);
  });
});

describe('state dicts', () => {
  it('round-trips: a second model loaded from the first computes the same outputs', () => {
    const a = new Net(1);
    perturb(a, 7);
    const b = new Net(2);
    b.loadStateDict(a.stateDict());
    const sa = a.stateDict();
    for (const [k, v] of Object.entries(b.stateDict())) assertClose(v.data, sa[k]!.data, k, v.shape, { rtol: 0, atolScale: 0 });
    a.eval();
    b.eval();
    const x = randn([2, 5, 5, 3], { seed: 3 });
    const ya = noGrad(() => a.forward(x));
    const yb = noGrad(() => b.forward(x));
    assertClose(yb.data, ya.data, 'outputs after loading', ya.shape, { rtol: 0, atolScale: 0 });
    // The values were copied, not shared.
    a.fc.weight.data[0] += 1;
    assert.notEqual(b.fc.weight.data[0], a.fc.weight.data[0]);
  });

  it('rejects a missing key, naming it', () => {
    const net = new Net(1);
    const state = { ...net.stateDict() };
    delete state['layer1.0.bn2.running_var'];
    assert.throws(() => net.loadStateDict(state), (e: unknown) =>
      e instanceof Error && e.message.includes('missing') && e.message.includes('layer1.0.bn2.running_var'));
  });

  it('rejects an unexpected key, naming it, unless strict is off', () => {
    const net = new Net(1);
    const state = { ...net.stateDict(), 'fc.extra': zeros([3]) };
    assert.throws(() => net.loadStateDict(state), (e: unknown) =>
      e instanceof Error && e.message.includes('unexpected') && e.message.includes('fc.extra'));
    const r = net.loadStateDict(state, { strict: false });
    assert.deepEqual(r.unexpectedKeys, ['fc.extra']);
    assert.deepEqual(r.missingKeys, []);
  });

  it('rejects a wrong shape, naming the key and both shapes, and changes nothing', () => {
    const net = new Net(1);
    const before = net.conv1.weight.data.slice();
    const state = { ...net.stateDict(), 'layer1.1.conv1.weight': zeros([6, 4, 1, 1]), 'conv1.weight': zeros([4, 3, 3, 3]) };
    assert.throws(() => net.loadStateDict(state), (e: unknown) =>
      e instanceof Error && e.message.includes('layer1.1.conv1.weight') &&
      e.message.includes('[6, 4, 1, 1]') && e.message.includes('[6, 4, 3, 3]'));
    assert.deepEqual(net.conv1.weight.data, before);
  });

  it('accepts num_batches_tracked stored as [] or [1], as PyTorch checkpoints have it', () => {
    const bn = new nn.BatchNorm2d(2);
    bn.loadStateDict({ weight: tensor([1, 2]), bias: tensor([0, 1]), running_mean: tensor([0, 0]), running_var: tensor([1, 1]),
      num_batches_tracked: tensor([5], [1]) });
    assert.equal(bn.numBatchesTracked.item(), 5);
  });
});

describe('train and eval', () => {
  it('BN uses batch statistics and updates running ones in training mode, running ones in eval mode', () => {
    const bn = new nn.BatchNorm2d(3);
    const x = randn([4, 2, 2, 3], { seed: 5 });
    for (let i = 0; i < x.size; i++) x.data[i] = x.data[i]! * 2 + 1;
    const y = bn.train().forward(x);
    // Training: every channel of the output has mean 0 and (biased) variance ~1.
    for (let k = 0; k < 3; k++) {
      let s = 0;
      let s2 = 0;
      for (let i = k; i < y.size; i += 3) {
        s += y.data[i]!;
        s2 += y.data[i]! ** 2;
      }
      assert.ok(Math.abs(s / 16) < 1e-5, `channel ${k} mean ${s / 16}`);
      assert.ok(Math.abs(s2 / 16 - 1) < 1e-3, `channel ${k} variance ${s2 / 16}`);
    }
    assert.equal(bn.numBatchesTracked.item(), 1);
    const rm = bn.runningMean.data.slice();
    const rv = bn.runningVar.data.slice();
    assert.ok(rm.some((v) => v !== 0), 'running_mean moved');

    bn.eval();
    assert.equal(bn.training, false);
    const ye = bn.forward(x);
    const expected = Array.from(x.data, (v, i) => (v - rm[i % 3]!) / Math.sqrt(rv[i % 3]! + 1e-5));
    assertClose(ye.data, expected, 'eval-mode output from running statistics', ye.shape);
    assert.deepEqual(bn.runningMean.data, rm, 'eval mode leaves running_mean alone');
    assert.equal(bn.numBatchesTracked.item(), 1);
  });

  it('train() and eval() reach every module in the tree', () => {
    const net = new Net(1);
    net.eval();
    assert.ok(net.namedModules().every(([, m]) => !m.training));
    net.train();
    assert.ok(net.namedModules().every(([, m]) => m.training));
  });
});

describe('initialisation', () => {
  function stats(t: Tensor): { mean: number; std: number } {
    let s = 0;
    for (const v of t.data) s += v;
    const mean = s / t.size;
    let s2 = 0;
    for (const v of t.data) s2 += (v - mean) ** 2;
    return { mean, std: Math.sqrt(s2 / t.size) };
  }

  it('Conv2d: Kaiming normal with fan_out (std sqrt(2 / (out * k * k))), as torchvision', () => {
    const conv = new nn.Conv2d(32, 64, 3, { rng: new Rng(3) });
    const { mean, std } = stats(conv.weight);
    const expected = Math.sqrt(2 / (64 * 9));
    assert.ok(Math.abs(std / expected - 1) < 0.03, `std ${std}, expected ${expected}`);
    assert.ok(Math.abs(mean) < 0.05 * expected, `mean ${mean}`);
    // fan_in would give sqrt(2 / (32 * 9)): 41% larger, far outside the band above.
  });

  it('BatchNorm2d: weight 1, bias 0, running statistics 0 and 1', () => {
    const bn = new nn.BatchNorm2d(4);
    assert.deepEqual(Array.from(bn.weight.data), [1, 1, 1, 1]);
    assert.deepEqual(Array.from(bn.bias.data), [0, 0, 0, 0]);
    assert.deepEqual(Array.from(bn.runningMean.data), [0, 0, 0, 0]);
    assert.deepEqual(Array.from(bn.runningVar.data), [1, 1, 1, 1]);
    assert.equal(bn.numBatchesTracked.item(), 0);
  });

  it('Linear: uniform in +-1/sqrt(fan_in), as PyTorch', () => {
    const fc = new nn.Linear(100, 50, { rng: new Rng(4) });
    const bound = 1 / Math.sqrt(100);
    const w = fc.weight.data;
    assert.ok(w.every((v) => Math.abs(v) <= bound));
    const { std } = stats(fc.weight);
    assert.ok(Math.abs(std / (bound / Math.sqrt(3)) - 1) < 0.05, `std ${std}`);
  });
});
