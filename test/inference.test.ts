// compileInference (BN folded into the convolutions, ReLU and the residual add as
// convolution post-ops, the batch run in chunks) against the model's own eval-mode
// forward, for every builder and every block/shortcut kind, on every backend. The
// batch norms get random affine parameters and running statistics, so the folding
// has something to fold.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { ActivationLayout, Backend, ConvPostOps, Shape4 } from '../src/backend/backend.js';
import { getBackend, setBackend } from '../src/backend/index.js';
import { loadNativeBinding } from '../src/backend/native-binding.js';
import { DataLoader, InMemoryDataset } from '../src/data/index.js';
import {
  BasicBlock, Bottleneck, compileInference, compileInferenceOrForward, create, list, PlainBlock,
  PlainBottleneck, PlainNet, PreActBlock, PreActBottleneck, PreActResNet, ResNet, type ShortcutKind, type StemKind,
  UnsupportedModelError,
} from '../src/models/index.js';
import { BatchNorm2d, Conv2d, Linear, Module } from '../src/nn/index.js';
import { add, addRelu, crossEntropy, flatten, globalAvgPool, relu } from '../src/tensor/ops.js';
import { SGD } from '../src/optim/sgd.js';
import { ModelEma } from '../src/train/ema.js';
import { Rng } from '../src/tensor/random.js';
import { noGrad, Tensor } from '../src/tensor/tensor.js';
import { evaluate } from '../src/train/metrics.js';
import { backendsUnderTest } from './helpers/backends.js';

const BACKENDS = backendsUnderTest();

function images(n: number, size: number, channels: number, seed: number): Tensor {
  const rng = new Rng(seed);
  const data = new Float32Array(n * size * size * channels);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  return new Tensor(data, [n, size, size, channels]);
}

function evalForward(model: Module, x: Tensor): Float32Array {
  const wasTraining = model.training;
  model.eval();
  try {
    return noGrad(() => model.forward(x)).data;
  } finally {
    model.train(wasTraining);
  }
}

/**
 * Random batch-norm parameters at the scale of the data: each batch norm gets random
 * affine parameters and running statistics, scaled by the mean square of what reaches it
 * in an eval-mode forward of `x` (one layer after another), so that even ResNet-1202
 * stays finite. One scale per layer, not per channel: normalising each channel by its own
 * statistics of a handful of values makes a random network amplify rounding differences
 * without bound, and the comparison would measure that instead of the compilation.
 */
function calibrateBatchNorms(model: Module, x: Tensor, seed: number): void {
  const rng = new Rng(seed);
  const norms: BatchNorm2d[] = [];
  for (const [, m] of model.namedModules()) if (m instanceof BatchNorm2d) norms.push(m);
  for (const bn of norms) {
    const calibrate = (input: Tensor): void => {
      const meanSq = input.data.reduce((a, v) => a + v * v, 0) / input.size + 1e-12;
      for (let k = 0; k < bn.numFeatures; k++) {
        bn.weight.data[k] = 0.5 + rng.uniform();
        bn.bias.data[k] = 0.2 * rng.normal();
        bn.runningMean.data[k] = 0.3 * Math.sqrt(meanSq) * rng.normal();
        bn.runningVar.data[k] = meanSq * (0.5 + 1.5 * rng.uniform());
      }
      for (const t of [bn.weight, bn.bias, bn.runningMean, bn.runningVar]) t.markModified();
    };
    bn.forward = (input) => {
      calibrate(input);
      return BatchNorm2d.prototype.forward.call(bn, input);
    };
    bn.forwardRelu = (input) => {
      calibrate(input);
      return BatchNorm2d.prototype.forwardRelu.call(bn, input);
    };
  }
  setBackend(BACKENDS[BACKENDS.length - 1]!);
  evalForward(model, x);
  for (const bn of norms) {
    Reflect.deleteProperty(bn, 'forward');
    Reflect.deleteProperty(bn, 'forwardRelu');
  }
}

/** Largest difference, relative to the largest logit (at least 1): float32 rounding differs between the two paths. */
function assertClose(got: Tensor, want: Float32Array, what: string, tol = 1e-4): void {
  assert.equal(got.data.length, want.length, `${what}: ${got.data.length} logits, expected ${want.length}`);
  let scale = 1;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  let at = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got.data[i]! - want[i]!);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= tol * scale, `${what}: logit ${at} is ${got.data[at]}, expected ${want[at]} (difference ${worst}, scale ${scale})`);
}

/** The same logits on every backend, for the batch run in chunks of each size given. */
function checkModel(name: string, model: Module, x: Tensor, chunks: readonly number[]): void {
  for (const b of BACKENDS) {
    setBackend(b);
    const want = evalForward(model, x);
    for (const chunk of chunks) assertClose(compileInference(model, { chunk })(x), want, `${name} on ${b}, chunks of ${chunk}`);
  }
  setBackend('reference');
}

// Every builder as named, at 5x5 inputs (CIFAR nets: 5 -> 3 -> 2, odd sizes through the
// stride-2 stages; ImageNet nets: stem 3, max pool 2, then 1), a batch of 3 in chunks of 2.
// Building the big ImageNet nets (Kaiming init of up to 60M weights) takes most of the time.
for (const name of list()) {
  test(`${name}: compiled inference equals eval-mode forward`, () => {
    const model = create(name, { numClasses: 7, seed: 11 });
    const x = images(3, 5, 3, 13);
    calibrateBatchNorms(model, x, 12);
    checkModel(name, model, x, [2]);
  });
}

// Every block with every shortcut it takes, small enough for a batch of 19 (one full
// chunk of 16 and a partial one): option A with an odd number of new channels (5 -> 8),
// B (projection on a shape change) and C (projection everywhere), both stems.
type Variant =
  | { readonly kind: 'v1'; readonly block: typeof BasicBlock | typeof Bottleneck; readonly shortcut: ShortcutKind; readonly stem: StemKind }
  | { readonly kind: 'v2'; readonly block: typeof PreActBlock | typeof PreActBottleneck; readonly shortcut: ShortcutKind; readonly stem: StemKind }
  | { readonly kind: 'plain'; readonly block: typeof PlainBlock | typeof PlainBottleneck; readonly shortcut: 'none'; readonly stem: StemKind };

function tinyNetwork(v: Variant): Module {
  const cfg = {
    layers: [2, 1], widths: [5, 8], stem: v.stem, stemChannels: 5, numClasses: 4, inChannels: 2, zeroInitResidual: false,
    rng: new Rng(21),
  };
  switch (v.kind) {
    case 'v1': return new ResNet({ ...cfg, block: v.block, shortcut: v.shortcut });
    case 'v2': return new PreActResNet({ ...cfg, block: v.block, shortcut: v.shortcut });
    case 'plain': return new PlainNet({ ...cfg, block: v.block, shortcut: 'none' });
  }
}

const VARIANTS: Variant[] = [];
for (const stem of ['cifar', 'imagenet'] as const) {
  for (const shortcut of ['A', 'B', 'C'] as const) {
    for (const block of [BasicBlock, Bottleneck]) VARIANTS.push({ kind: 'v1', block, shortcut, stem });
    for (const block of [PreActBlock, PreActBottleneck]) VARIANTS.push({ kind: 'v2', block, shortcut, stem });
  }
  for (const block of [PlainBlock, PlainBottleneck]) VARIANTS.push({ kind: 'plain', block, shortcut: 'none', stem });
}

test('every block kind with every shortcut, both stems, batch 19', () => {
  for (const v of VARIANTS) {
    const model = tinyNetwork(v);
    const x = images(19, v.stem === 'cifar' ? 7 : 15, 2, 23);
    calibrateBatchNorms(model, x, 22);
    checkModel(`${v.block.name} shortcut ${v.shortcut} ${v.stem} stem`, model, x, [16, 4, 1]);
  }
});

test('the default chunk (set by the threads) over a batch of 130: a full chunk of 128 and a partial one', () => {
  const model = tinyNetwork({ kind: 'v1', block: BasicBlock, shortcut: 'B', stem: 'cifar' });
  const x = images(130, 7, 2, 41);
  calibrateBatchNorms(model, x, 42);
  for (const b of BACKENDS) {
    setBackend(b);
    assertClose(compileInference(model)(x), evalForward(model, x), `default chunk on ${b}`);
  }
  setBackend('reference');
});

// Chunks per stretch of layers: with room for 3,600 bytes of activation, the ImageNet
// stem (15x15x2 input, 1,800 bytes an image) runs two images a call; the 4x4x5 blocks
// after the max pool (320 bytes) ten (eleven fit, rounded down to whole chunks of two);
// the head twenty and more. A batch of 19: the blocks take 10 + 9 images, the stem
// 2 + 2 + 2 + 2 + 2 for the first ten and 2 + 2 + 2 + 2 + 1 for the other nine, the
// fully connected layer (a 1x1 convolution of one-pixel images) all 19 at once. With
// the scratch poisoned, an activation used after its chunk's frame closed reads NaN.
test('the chunk grows along the network as the activations shrink, partial chunks at every level', () => {
  const model = tinyNetwork({ kind: 'v1', block: BasicBlock, shortcut: 'B', stem: 'imagenet' });
  const x = images(19, 15, 2, 81);
  calibrateBatchNorms(model, x, 82);
  for (const b of BACKENDS) {
    const base = getBackend(b);
    const batches = new Map<number, number[]>();
    const watching: Backend = {
      ...base,
      prepareConv2d: (w, wShape, bias, attrs, scale) => {
        const run = base.prepareConv2d(w, wShape, bias, attrs, scale);
        const seen: number[] = [];
        batches.set(batches.size, seen);
        return (input, shape, post) => {
          seen.push(shape[0]);
          return run(input, shape, post);
        };
      },
    };
    setBackend(b);
    const want = evalForward(model, x);
    setBackend(watching);
    if (b === 'native') loadNativeBinding().setScratchPoison(true);
    try {
      assertClose(compileInference(model, { chunkBytes: 3600 })(x), want, `on ${b}`);
    } finally {
      if (b === 'native') loadNativeBinding().setScratchPoison(false);
    }
    const perConv = [...batches.values()];
    assert.deepEqual(perConv[0], [2, 2, 2, 2, 2, 2, 2, 2, 2, 1], `on ${b}: the stem`);
    for (const seen of perConv.slice(1, -1)) assert.deepEqual(seen, [10, 9], `on ${b}: the blocks`);
    assert.deepEqual(perConv.at(-1), [19], `on ${b}: the fully connected layer`);
  }
  setBackend('reference');
});

/**
 * `base` with each convolution asking for `layout` (PreparedConv2d.layout) where `wants`
 * says so, recording the layout of every convolution call and the channels of every
 * relayout.
 */
function askingLayouts(base: Backend, wants: (wShape: readonly number[]) => boolean,
  calls: { conv: string[]; relayout: number[] }): Backend {
  return {
    ...base,
    prepareConv2d: (w, wShape, bias, attrs, scale) => {
      const run = base.prepareConv2d(w, wShape, bias, attrs, scale);
      const f = (input: Float32Array, shape: Shape4, post?: ConvPostOps, layout?: ActivationLayout): Float32Array => {
        calls.conv.push(layout ?? 'nhwc');
        return run(input, shape, post, layout);
      };
      return Object.assign(f, { layout: wants(wShape) ? 'nchw16c' as const : 'nhwc' as const });
    },
    relayout: (x, xShape, to) => {
      calls.relayout.push(xShape[3]);
      return base.relayout(x, xShape, to);
    },
  };
}

// Convolutions that run fastest on nChw16c (the native backend's 1x1 and Winograd layers
// on AVX-512) read and write it; every other step reads NHWC, each value relaid out once
// per chunk for the readers that want the other layout. Asked of every convolution with
// channels in 16s, in bottleneck networks of 16-128 channels, v1 and v2 (batch norms
// reading nChw16c outputs), with the chunk growing along the network (values crossing
// between stretches in nChw16c), and the residual written in place over a relaid copy.
// With 16 channels the two layouts are the same bytes: never relaid out.
test('convolutions asking for nChw16c run on it, relaid out where a reader wants NHWC', () => {
  const cfg = {
    layers: [2, 1], widths: [16, 32], stem: 'imagenet', stemChannels: 16, numClasses: 4, inChannels: 3,
    zeroInitResidual: false, shortcut: 'B',
  } as const;
  for (const model of [new ResNet({ ...cfg, block: Bottleneck, rng: new Rng(61) }),
    new PreActResNet({ ...cfg, block: PreActBottleneck, rng: new Rng(61) })]) {
    const Net = model.constructor;
    const x = images(7, 15, 3, 62);
    calibrateBatchNorms(model, x, 63);
    for (const b of BACKENDS) {
      setBackend(b);
      const want = evalForward(model, x);
      const calls = { conv: [] as string[], relayout: [] as number[] };
      setBackend(askingLayouts(getBackend(b), (w) => w[0]! % 16 === 0 && w[1]! % 16 === 0, calls));
      assertClose(compileInference(model, { chunkBytes: 6000 })(x), want, `${Net.name} on ${b}`);
      assert.ok(calls.conv.filter((l) => l === 'nchw16c').length > calls.conv.length / 2, `${Net.name} on ${b}: mostly nChw16c`);
      // v2's batch norms read NHWC; in v1 every reader takes nChw16c (the global average pool either).
      assert.equal(calls.relayout.length > 0, model instanceof PreActResNet, `${Net.name} on ${b}: relaid out`);
      assert.ok(calls.relayout.every((c) => c !== 16), `${Net.name} on ${b}: 16 channels never relaid out`);
    }
  }
  setBackend('reference');
});

// Where every convolution after the stem asks for nChw16c, nothing is relaid out: the max
// pool writes its output in nChw16c for them, and the global average pool reads the last
// block's output as it is made. Where only the 1x1 ones ask (3x3 layers on NHWC, as on
// AVX-512), the last 1x1 still runs nChw16c, its input relaid out, since the pool reads
// its output either way: the last block's 128 channels are never relaid out.
test('the max pool writes nChw16c for the convolutions after it, the global average pool reads it', () => {
  const model = new ResNet({
    layers: [1, 1], widths: [16, 32], stem: 'imagenet', stemChannels: 32, numClasses: 4, inChannels: 3,
    zeroInitResidual: false, rng: new Rng(75), block: Bottleneck, shortcut: 'B',
  });
  const x = images(3, 15, 3, 76);
  calibrateBatchNorms(model, x, 77);
  const inSixteens = (w: readonly number[]): boolean => w[0]! % 16 === 0 && w[1]! % 16 === 0;
  for (const b of BACKENDS) {
    setBackend(b);
    const want = evalForward(model, x);
    const all = { conv: [] as string[], relayout: [] as number[] };
    setBackend(askingLayouts(getBackend(b), inSixteens, all));
    assertClose(compileInference(model)(x), want, `on ${b}`);
    assert.deepEqual(all.relayout, [], `on ${b}: nothing relaid out`);
    // The stem (from 3 channels) and the fully connected layer (to 4) run NHWC, the rest nChw16c.
    assert.deepEqual(all.conv, ['nhwc', ...Array(all.conv.length - 2).fill('nchw16c'), 'nhwc'], `on ${b}`);
    setBackend(b);
    const pointwise = { conv: [] as string[], relayout: [] as number[] };
    setBackend(askingLayouts(getBackend(b), (w) => inSixteens(w) && w[2] === 1, pointwise));
    assertClose(compileInference(model)(x), want, `on ${b}, 1x1 only`);
    assert.ok(pointwise.relayout.length > 0 && !pointwise.relayout.includes(128), `on ${b}, 1x1 only: ${pointwise.relayout.join(', ')}`);
    assert.equal(pointwise.conv.at(-2), 'nchw16c', `on ${b}, 1x1 only: the last 1x1`);
  }
  setBackend('reference');
});

// A 1x1 projection asking for nChw16c between NHWC 3x3 layers would need a relayout of its
// input and of its output: it runs NHWC, and nothing is relaid out.
test('a convolution asking for nChw16c between NHWC layers runs NHWC', () => {
  const model = new ResNet({
    layers: [1, 1], widths: [32, 64], stem: 'cifar', stemChannels: 32, numClasses: 4, inChannels: 3,
    zeroInitResidual: false, rng: new Rng(71), block: BasicBlock, shortcut: 'B',
  });
  const x = images(3, 6, 3, 72);
  calibrateBatchNorms(model, x, 73);
  for (const b of BACKENDS) {
    setBackend(b);
    const want = evalForward(model, x);
    const calls = { conv: [] as string[], relayout: [] as number[] };
    setBackend(askingLayouts(getBackend(b), (w) => w[2] === 1 && w[3] === 1, calls));
    assertClose(compileInference(model)(x), want, `on ${b}`);
    assert.deepEqual(calls, { conv: Array(calls.conv.length).fill('nhwc'), relayout: [] }, `on ${b}`);
    assert.equal(calls.conv.length, 7, `on ${b}: stem, four 3x3, the projection and the fully connected layer`);
  }
  setBackend('reference');
});

test('never stale: a training step, loadStateDict, a weight-average swap and a new head each recompile', () => {
  const model = tinyNetwork({ kind: 'v1', block: BasicBlock, shortcut: 'B', stem: 'cifar' });
  const x = images(4, 6, 2, 32);
  calibrateBatchNorms(model, x, 31);
  const infer = compileInference(model);
  const changed = (before: Float32Array, what: string): Float32Array => {
    const want = evalForward(model, x);
    const got = infer(x);
    assertClose(got, want, what);
    assert.ok(want.some((v, i) => Math.abs(v - before[i]!) > 1e-3), `${what} changes the logits`);
    return got.data;
  };
  let last = infer(x).data;
  assertClose(infer(x), evalForward(model, x), 'first call');

  // One SGD step in training mode: new weights and new running statistics.
  model.train();
  const opt = new SGD(model.parameters(), { lr: 0.5, momentum: 0.9 });
  const labels = Int32Array.from([0, 1, 2, 3]);
  crossEntropy(model.forward(x), labels).backward();
  opt.step();
  last = changed(last, 'after a training step');

  // A forward pass in training mode alone moves the running statistics.
  noGrad(() => model.forward(images(4, 6, 2, 33)));
  model.eval();
  last = changed(last, 'after a training-mode forward');

  const state = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, new Tensor(t.data.map((v) => v * 0.9), t.shape)]));
  model.loadStateDict(state);
  last = changed(last, 'after loadStateDict');

  const ema = new ModelEma(model, 0.5);
  opt.step();
  ema.update(model);
  last = ema.withAveragedSync(model, () => changed(last, 'with the averaged weights swapped in'));
  changed(last, 'with the weights swapped back');

  const net = model as ResNet;
  Object.defineProperty(net, 'fc', { value: new Linear(net.fc.inFeatures, 4, { rng: new Rng(34) }), enumerable: true });
  changed(last, 'after a new head');
});

test('the model may be in training mode: compiled inference uses the running statistics and leaves the mode alone', () => {
  const model = tinyNetwork({ kind: 'v2', block: PreActBlock, shortcut: 'A', stem: 'cifar' });
  const x = images(3, 6, 2, 42);
  calibrateBatchNorms(model, x, 41);
  const want = evalForward(model, x);
  model.train();
  assertClose(compileInference(model)(x), want, 'compiled in training mode');
  assert.equal(model.training, true);
});

class DoubleInput extends Module {
  forward(x: Tensor): Tensor {
    return new Tensor(x.data.map((v) => 2 * v), x.shape);
  }
}

class CustomBlock extends Module {
  static readonly expansion = 1;
  readonly conv: Conv2d;

  constructor(inChannels: number, planes: number, stride: number, _shortcut: ShortcutKind, rng: Rng) {
    super();
    this.conv = new Conv2d(inChannels, planes, 3, { stride, padding: 1, rng });
  }

  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }

  zeroInitResidual(): void {
    this.conv.weight.assign(new Float32Array(this.conv.weight.size));
  }
}

test('module trees: any block the ops trace compiles; a tensor built outside the ops is a clear error, and compileInferenceOrForward falls back', () => {
  const x = images(2, 4, 1, 52);
  assert.throws(() => compileInference(new DoubleInput())(x), (e: unknown) =>
    e instanceof UnsupportedModelError && /DoubleInput\.forward was not computed by the ops/.test(e.message) && /model\.eval\(\)\.forward/.test(e.message));
  assert.deepEqual(compileInferenceOrForward(new DoubleInput())(x).data, x.data.map((v) => 2 * v));
  const custom = new ResNet({
    block: CustomBlock, layers: [1, 1], widths: [4, 4], stem: 'cifar', stemChannels: 4, shortcut: 'B',
    numClasses: 3, inChannels: 1, zeroInitResidual: false, rng: new Rng(51),
  });
  calibrateBatchNorms(custom, x, 53);
  assertClose(compileInference(custom)(x), evalForward(custom, x), 'a block the library does not know');
});

/**
 * Residual adds whose buffer the convolution may write its output over or may not: the
 * caller's input (never), a value read again later (not yet), its last reader (yes).
 */
class SharedResidual extends Module {
  readonly conv0: Conv2d;
  readonly conv0b: Conv2d;
  readonly stem: Conv2d;
  readonly mid: Conv2d;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly fc: Linear;

  constructor(rng: Rng) {
    super();
    this.conv0 = new Conv2d(2, 2, 1, { rng });
    this.conv0b = new Conv2d(2, 2, 3, { padding: 1, rng });
    this.stem = new Conv2d(2, 4, 3, { padding: 1, rng });
    this.mid = new Conv2d(4, 4, 1, { rng });
    this.conv1 = new Conv2d(4, 4, 3, { padding: 1, rng });
    this.bn1 = new BatchNorm2d(4);
    this.conv2 = new Conv2d(4, 4, 3, { padding: 1, rng });
    this.bn2 = new BatchNorm2d(4);
    this.fc = new Linear(4, 3, { rng });
  }

  forward(x: Tensor): Tensor {
    // Each residual differs from its convolution's input, so only the rule decides.
    const a = addRelu(this.conv0b.forward(this.conv0.forward(x)), x);
    const r = relu(this.stem.forward(a));
    const y = addRelu(this.bn1.forward(this.conv1.forward(relu(this.mid.forward(r)))), r);
    const z = add(this.bn2.forward(this.conv2.forward(y)), r);
    return this.fc.forward(flatten(globalAvgPool(z)));
  }
}

test('the residual add writes over the residual only after its last reader, never over the caller\'s input', () => {
  const model = new SharedResidual(new Rng(61));
  const x = images(3, 6, 2, 62);
  calibrateBatchNorms(model, x, 63);
  for (const b of BACKENDS) {
    const base = getBackend(b);
    let inPlace = 0;
    let sums = 0;
    const counting: Backend = {
      ...base,
      prepareConv2d: (w, wShape, bias, attrs, scale) => {
        const run = base.prepareConv2d(w, wShape, bias, attrs, scale);
        return (input, shape, post) => {
          if (post?.sum) sums++;
          if (post?.inPlace) inPlace++;
          return run(input, shape, post);
        };
      },
    };
    setBackend(b);
    const want = evalForward(model, x);
    const input = x.data.slice();
    setBackend(counting);
    assertClose(compileInference(model, { chunk: 2 })(x), want, `on ${b}, chunks of 2`);
    assert.deepEqual(x.data, input, `on ${b}: the input is left untouched`);
    // Per chunk (two): three residual adds, one of them (z's) over its residual's buffer.
    assert.deepEqual([sums, inPlace], [6, 2], `on ${b}`);
  }
  setBackend('reference');
});

test('the convolutions read the model\'s own weights: a folded batch norm is a scale, not a scaled copy', () => {
  const model = tinyNetwork({ kind: 'v1', block: BasicBlock, shortcut: 'B', stem: 'cifar' });
  const x = images(3, 6, 2, 71);
  calibrateBatchNorms(model, x, 72);
  const own = new Set(model.parameters().map((p) => p.data));
  for (const b of BACKENDS) {
    const base = getBackend(b);
    const seen: { own: boolean; scale: boolean }[] = [];
    const watching: Backend = {
      ...base,
      prepareConv2d: (w, wShape, bias, attrs, scale) => {
        seen.push({ own: own.has(w), scale: scale instanceof Float32Array && scale.length === wShape[0] });
        return base.prepareConv2d(w, wShape, bias, attrs, scale);
      },
    };
    setBackend(b);
    const want = evalForward(model, x);
    setBackend(watching);
    assertClose(compileInference(model)(x), want, `on ${b}`);
    // The last is the fully connected layer (a 1x1 convolution of one-pixel images): no batch norm.
    assert.ok(seen.length > 1 && seen.slice(0, -1).every((s) => s.own && s.scale), `on ${b}: ${JSON.stringify(seen)}`);
    assert.deepEqual(seen.at(-1), { own: true, scale: false }, `on ${b}: the fully connected layer`);
  }
  setBackend('reference');
});

test('bad input: NCHW and a wrong chunk size are named', () => {
  const model = tinyNetwork({ kind: 'v1', block: BasicBlock, shortcut: 'A', stem: 'cifar' });
  const infer = compileInference(model);
  assert.throws(() => infer(new Tensor(new Float32Array(2 * 2 * 6 * 6), [2, 2, 6, 6])), /NHWC/);
  assert.throws(() => compileInference(model, { chunk: 0 }), /chunk must be a positive integer, got 0/);
  assert.throws(() => compileInference(model, { chunkBytes: -1 }), /chunkBytes must be a positive number of bytes, got -1/);
});

test('evaluate() scores the compiled logits of the weights as they are at each call', async () => {
  const model = tinyNetwork({ kind: 'v1', block: Bottleneck, shortcut: 'A', stem: 'cifar' });
  calibrateBatchNorms(model, images(4, 6, 2, 60), 61);
  const rng = new Rng(62);
  const n = 10;
  const pixels = Uint8Array.from({ length: n * 6 * 6 * 2 }, () => rng.int(256));
  const labels = Int32Array.from({ length: n }, () => rng.int(4));
  const ds = new InMemoryDataset('t', pixels, labels, 6, 6, 2, ['a', 'b', 'c', 'd']);
  const loader = new DataLoader(ds, { batchSize: 4 });
  const expectedLoss = async (): Promise<number> => {
    let sum = 0;
    for await (const batch of loader.epoch(0)) {
      const out = new Tensor(evalForward(model, batch.x), [batch.labels.length, 4]);
      sum += noGrad(() => crossEntropy(out, batch.labels).item()) * batch.labels.length;
    }
    return sum / n;
  };
  model.train();
  const first = await evaluate(model, loader, 4);
  assert.equal(model.training, true, 'evaluate restores training mode');
  assert.ok(Math.abs(first.loss - await expectedLoss()) < 1e-4, `loss ${first.loss}`);
  calibrateBatchNorms(model, images(4, 6, 2, 64), 63);
  const second = await evaluate(model, loader, 4);
  const want = await expectedLoss();
  assert.ok(Math.abs(second.loss - want) < 1e-4, `after new weights: loss ${second.loss}, expected ${want}`);
  assert.ok(Math.abs(second.loss - first.loss) > 1e-4, 'the new weights change the loss');
});
