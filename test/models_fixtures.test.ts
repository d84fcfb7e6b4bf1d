// Same weights, same outputs as PyTorch: torchvision's resnet18 / resnet50 and the
// script's resnet20 (option A), preact_resnet18 and preact_resnet164, filled from the
// shared hash (scripts/make_model_fixtures.py computes the references in float64).
// Checked on every backend that runs here: eval logits, train-mode logits and loss,
// BN running statistics after the train-mode pass, and the gradients of one step.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { availableBackends, type BackendName, setBackend } from '../src/backend/index.js';
import * as models from '../src/models/index.js';
import * as F from '../src/tensor/ops.js';
import { noGrad } from '../src/tensor/tensor.js';
import { type ModelFixture, readModelFixture } from './models_fixture_io.js';
import { applyBiasAdjustments, hashedInput, hashedTensorValues, loadHashedWeights, sharedModel } from './models_hashed_weights.js';

// Tolerances, relative to the largest reference value of each quantity. The measured
// worst errors (native backend, which accumulates in float32, is the looser one) are
// about 10x below these: eval logits 1.3e-6, train logits 9e-5 (train-mode BN over 8
// values per channel in the last stage amplifies rounding), loss 8e-6, running
// statistics 1.1e-4, gradient norms 2e-4, sampled gradient entries 2.2e-3 of the
// gradient's RMS.
const TOL = {
  evalLogits: 2e-5,
  trainLogits: 1e-3,
  loss: 1e-4,
  runningStats: 1e-3,
  gradNorm: 2e-3,
  gradSampleOfRms: 2e-2,
};

function assertClose(what: string, actual: ArrayLike<number>, expected: readonly number[], relToMax: number): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  let scale = 0;
  for (const e of expected) scale = Math.max(scale, Math.abs(e));
  let worst = 0;
  let at = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= relToMax * scale,
    `${what}: |difference| ${worst.toExponential(3)} at ${at} (got ${actual[at]}, PyTorch ${expected[at]}) ` +
    `exceeds ${relToMax} x max|reference| = ${(relToMax * scale).toExponential(3)}`);
}

const NAMES = ['resnet20', 'resnet18', 'preact_resnet18', 'preact_resnet164', 'resnet50'];
const fixtures = NAMES.map(readModelFixture);

function fixtureModel(fx: ModelFixture): models.ResidualNetwork {
  const model = sharedModel(fx.model, fx.num_classes);
  loadHashedWeights(model);
  applyBiasAdjustments(model, fx.bias_adjustments);
  model.zeroGrad();
  return model;
}

// Everything on the default backend (native where it loads); where that is native,
// the two smallest fixtures on the reference backend too (the op suite compares the
// backends kernel by kernel).
const primary = availableBackends().includes('native') ? 'native' : 'reference';
const runs: [BackendName, ModelFixture[]][] = [[primary, fixtures]];
if (primary === 'native') runs.push(['reference', fixtures.filter((f) => ['resnet20', 'preact_resnet164'].includes(f.model))]);

describe('state dicts match the PyTorch definitions key for key', () => {
  for (const fx of fixtures) {
    test(`${fx.model}: same keys, order and shapes${fx.model.startsWith('resnet') && fx.model !== 'resnet20' ? ' as torchvision' : ''}`, () => {
      const model = sharedModel(fx.model, fx.num_classes);
      const ours = Object.entries(model.stateDict()).map(([k, t]) => [k, [...t.shape]]);
      assert.deepEqual(ours, fx.state_dict.map(([k, s]) => [k, [...s]]));
      assert.equal(model.numParameters(), fx.num_parameters);
    });
  }

  test('the weight hash gives the values the script wrote', () => {
    for (const fx of fixtures) {
      const shape = fx.state_dict.find(([k]) => k === fx.hash_check.key)![1];
      const ours = hashedTensorValues(fx.hash_check.key, shape).subarray(0, fx.hash_check.values.length);
      assert.deepEqual([...ours], fx.hash_check.values.map(Math.fround), fx.model);
    }
  });
});

for (const [backendName, selected] of runs) {
  describe(`same outputs and gradients as PyTorch (${backendName} backend)`, () => {
    for (const fx of selected) {
      test(fx.model, () => {
        setBackend(backendName);
        const model = fixtureModel(fx);
        const x = hashedInput(fx.input_shape);

        model.eval();
        const evalLogits = noGrad(() => model.forward(x));
        assert.deepEqual(evalLogits.shape, [fx.input_shape[0], fx.num_classes]);
        assertClose('eval logits', evalLogits.data, fx.eval_logits, TOL.evalLogits);

        model.train();
        const logits = model.forward(x);
        assertClose('train-mode logits', logits.data, fx.train_logits, TOL.trainLogits);
        const loss = F.crossEntropy(logits, Int32Array.from(fx.labels));
        assert.ok(Math.abs(loss.item() - fx.loss) <= TOL.loss * Math.abs(fx.loss),
          `loss ${loss.item()} vs PyTorch ${fx.loss}`);

        const state = model.stateDict();
        for (const [key, expected] of Object.entries(fx.running_stats_after_train_forward)) {
          assertClose(key, state[key]!.data, expected, TOL.runningStats);
        }

        loss.backward();
        const params = model.namedParameters();
        assert.deepEqual(params.map(([k]) => k).sort(), Object.keys(fx.grads).sort());
        for (const [key, p] of params) {
          const ref = fx.grads[key]!;
          assert.ok(p.grad, `${key} has no gradient`);
          let sq = 0;
          for (const g of p.grad.data) sq += g * g;
          const norm = Math.sqrt(sq);
          assert.ok(Math.abs(norm - ref.norm) <= TOL.gradNorm * ref.norm,
            `${key}: gradient norm ${norm} vs PyTorch ${ref.norm}`);
          const rms = ref.norm / Math.sqrt(p.size);
          ref.index.forEach((i, j) => {
            const d = Math.abs(p.grad!.data[i]! - ref.value[j]!);
            assert.ok(d <= TOL.gradSampleOfRms * rms,
              `${key}[${i}]: gradient ${p.grad!.data[i]} vs PyTorch ${ref.value[j]} (rms ${rms.toExponential(3)})`);
          });
        }
      });
    }
  });
}
