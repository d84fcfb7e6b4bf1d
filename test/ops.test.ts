// Every differentiable op, forward and gradient, against PyTorch (fixtures written by
// scripts/make_fixtures.py), on every backend that loads here. Each case feeds the
// fixture's inputs, compares the output, back-propagates the fixture's upstream
// gradient g (loss = sum(out * g)) and compares the gradient of every input.
import { before, describe, it } from 'node:test';
import { F, setBackend, type Tensor } from '../src/index.js';
import { backendsUnderTest } from './helpers/backends.js';
import { assertTensorMatches, type Fixture, loadFixture } from './helpers/fixtures.js';

type Inputs = Record<string, Tensor>;

/** Run `forward` on the fixture's inputs and check output and input gradients. */
function checkOp(fx: Fixture, inputNames: readonly string[], forward: (inputs: Inputs) => Tensor): Inputs {
  const inputs: Inputs = {};
  for (const k of inputNames) inputs[k] = fx.tensor(k, true);
  const out = forward(inputs);
  assertTensorMatches(out, fx, 'out', 'output');
  out.backward(fx.tensor('g'));
  for (const k of inputNames) assertTensorMatches(inputs[k]!.grad, fx, `grad_${k}`, `gradient of ${k}`);
  return inputs;
}

function pairAttr(fx: Fixture, key: string): [number, number] {
  const v = fx.nums(key);
  return [v[0]!, v[1]!];
}

const convCases = [
  'conv2d_3x3_s1_p1_bias', 'conv2d_3x3_s2_p1', 'conv2d_3x3_s2_p0_even', 'conv2d_1x1_s1', 'conv2d_1x1_s2',
  'conv2d_7x7_s2_p3', 'conv2d_odd_3x2_s21_p10_bias',
];

function batchNormOptions(fx: Fixture): F.BatchNormOptions {
  return { training: fx.bool('training'), momentum: fx.num('momentum'), eps: fx.num('eps'), relu: fx.bool('relu') };
}

function poolOptions(fx: Fixture): F.Pool2dOptions {
  return { kernelSize: fx.num('kernelSize'), stride: fx.num('stride'), padding: fx.num('padding') };
}

for (const backendName of backendsUnderTest()) {
  describe(`ops on the ${backendName} backend`, () => {
    before(() => setBackend(backendName));

    for (const name of convCases) {
      it(name, () => {
        const fx = loadFixture('ops', name);
        const withBias = fx.has('bias');
        checkOp(fx, withBias ? ['x', 'weight', 'bias'] : ['x', 'weight'], (t) =>
          F.conv2d(t['x']!, t['weight']!, t['bias'] ?? null, { stride: pairAttr(fx, 'stride'), padding: pairAttr(fx, 'padding') }));
      });
    }

    for (const name of ['batch_norm2d_train', 'batch_norm2d_train_relu', 'batch_norm2d_eval', 'batch_norm2d_eval_relu']) {
      it(`${name}: output, gradients and running statistics`, () => {
        const fx = loadFixture('ops', name);
        const runningMean = fx.tensor('running_mean');
        const runningVar = fx.tensor('running_var');
        checkOp(fx, ['x', 'weight', 'bias'], (t) =>
          F.batchNorm2d(t['x']!, runningMean, runningVar, t['weight']!, t['bias']!, batchNormOptions(fx)));
        // Training mode moves the statistics (unbiased variance); eval mode leaves them alone.
        assertTensorMatches(runningMean, fx, 'running_mean_after', 'running_mean after the step');
        assertTensorMatches(runningVar, fx, 'running_var_after', 'running_var after the step');
      });
    }

    it('batch_norm2d_train_two_steps: running statistics after each of two steps', () => {
      const fx = loadFixture('ops', 'batch_norm2d_train_two_steps');
      const runningMean = fx.tensor('running_mean');
      const runningVar = fx.tensor('running_var');
      checkOp(fx, ['x', 'weight', 'bias'], (t) => {
        F.batchNorm2d(fx.tensor('x1'), runningMean, runningVar, t['weight']!, t['bias']!, batchNormOptions(fx));
        assertTensorMatches(runningMean, fx, 'running_mean_step1', 'running_mean after step 1');
        assertTensorMatches(runningVar, fx, 'running_var_step1', 'running_var after step 1');
        return F.batchNorm2d(t['x']!, runningMean, runningVar, t['weight']!, t['bias']!, batchNormOptions(fx));
      });
      assertTensorMatches(runningMean, fx, 'running_mean_after', 'running_mean after step 2');
      assertTensorMatches(runningVar, fx, 'running_var_after', 'running_var after step 2');
    });

    it('relu', () => {
      checkOp(loadFixture('ops', 'relu'), ['x'], (t) => F.relu(t['x']!));
    });

    it('add', () => {
      checkOp(loadFixture('ops', 'add'), ['a', 'b'], (t) => F.add(t['a']!, t['b']!));
    });

    it('addRelu (relu(a + b))', () => {
      checkOp(loadFixture('ops', 'add_relu'), ['a', 'b'], (t) => F.addRelu(t['a']!, t['b']!));
    });

    it('mulScalar', () => {
      const fx = loadFixture('ops', 'mul_scalar');
      checkOp(fx, ['x'], (t) => F.mulScalar(t['x']!, fx.num('scale')));
    });

    for (const name of ['pad_channels_subsample_s2', 'pad_channels_subsample_s2_odd', 'pad_channels_subsample_s1']) {
      it(`${name} (option-A shortcut)`, () => {
        const fx = loadFixture('ops', name);
        checkOp(fx, ['x'], (t) => F.padChannelsSubsample(t['x']!, fx.num('stride'), fx.num('outChannels'), fx.num('padFront')));
      });
    }

    for (const name of ['max_pool2d_3x3_s2_p1', 'max_pool2d_3x3_s2_p1_even', 'max_pool2d_2x2_s2']) {
      it(name, () => {
        const fx = loadFixture('ops', name);
        checkOp(fx, ['x'], (t) => F.maxPool2d(t['x']!, poolOptions(fx)));
      });
    }

    for (const name of ['avg_pool2d_2x2_s2', 'avg_pool2d_3x3_s2_p1', 'avg_pool2d_3x3_s1_p1']) {
      it(name, () => {
        const fx = loadFixture('ops', name);
        checkOp(fx, ['x'], (t) => F.avgPool2d(t['x']!, poolOptions(fx)));
      });
    }

    it('globalAvgPool', () => {
      checkOp(loadFixture('ops', 'global_avg_pool'), ['x'], (t) => F.globalAvgPool(t['x']!));
    });

    it('flatten', () => {
      checkOp(loadFixture('ops', 'flatten'), ['x'], (t) => F.flatten(t['x']!));
    });

    it('reshape with an inferred dimension', () => {
      const fx = loadFixture('ops', 'reshape');
      checkOp(fx, ['x'], (t) => F.reshape(t['x']!, fx.nums('shape')));
    });

    it('linear with bias', () => {
      checkOp(loadFixture('ops', 'linear_bias'), ['x', 'weight', 'bias'], (t) => F.linear(t['x']!, t['weight']!, t['bias']!));
    });

    it('linear without bias', () => {
      checkOp(loadFixture('ops', 'linear'), ['x', 'weight'], (t) => F.linear(t['x']!, t['weight']!));
    });

    it('matmul', () => {
      checkOp(loadFixture('ops', 'matmul'), ['a', 'b'], (t) => F.matmul(t['a']!, t['b']!));
    });

    it('logSoftmax', () => {
      checkOp(loadFixture('ops', 'log_softmax'), ['x'], (t) => F.logSoftmax(t['x']!));
    });

    for (const name of ['cross_entropy', 'cross_entropy_smoothing']) {
      it(`${name} (mean over the batch)`, () => {
        const fx = loadFixture('ops', name);
        const labels = Int32Array.from(fx.nums('labels'));
        checkOp(fx, ['logits'], (t) => F.crossEntropy(t['logits']!, labels, { labelSmoothing: fx.num('labelSmoothing') }));
      });
    }

    it('sum', () => {
      checkOp(loadFixture('ops', 'sum'), ['x'], (t) => F.sum(t['x']!));
    });

    it('mean', () => {
      checkOp(loadFixture('ops', 'mean'), ['x'], (t) => F.mean(t['x']!));
    });
  });
}
