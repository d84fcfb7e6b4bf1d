// Every builder: the size PyTorch gives for the same architecture, and one training
// step of cross-entropy gives every parameter a finite, non-zero gradient (timm's
// test_model_backward). Deep models run at tiny inputs; ResNet-1001 and ResNet-1202
// (over 3000 ops from input to loss) also show that forward and backward do not
// recurse per layer. The models too big to build twice have their paper sizes
// checked here rather than in models_params.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { availableBackends, setBackend } from '../src/backend/index.js';
import * as models from '../src/models/index.js';
import * as F from '../src/tensor/ops.js';
import { randn } from '../src/tensor/tensor.js';
import { readCounts } from './models_fixture_io.js';

const backendName = availableBackends().includes('native') ? 'native' : 'reference';

// Small enough to be quick, large enough that train-mode BN sees more than two values
// per channel in the last stage (a 1x1 map over a batch of 2 normalises every value
// to +-1 and passes almost no gradient back): the last stage runs at 1x1 over a
// batch of 4 (CIFAR 4x4 input: 4, 2, 1; ImageNet 16x16: stem 4, then 4, 2, 1, 1).
const INPUT = {
  cifar: [4, 4, 4, 3],
  imagenet: [4, 16, 16, 3],
} as const;

// "Non-zero" with room for rounding: the smallest gradient norm measured over all
// builders at these inputs is about 1e-2.
const MIN_GRAD_NORM = 1e-6;

// Sizes from scripts/make_model_fixtures.py: torchvision and the PyTorch definitions there.
const torchCounts = readCounts().params;

/** Convolution and fully connected parameters, without BN: how He et al. 2016 count. */
function convAndFcParams(model: models.ResidualNetwork): number {
  let n = 0;
  for (const [key, p] of model.namedParameters()) if (p.ndim === 4 || key.startsWith('fc.')) n += p.size;
  return n;
}

const millions = (n: number, digits: number): string => (n / 1e6).toFixed(digits);

/** What the papers print for the big ones. */
const PAPER_SIZES: Readonly<Record<string, (m: models.ResidualNetwork) => void>> = {
  // He et al. 2015, Table 6: 19.4M; exactly 97216n - 21926 with n = 200 (see models_params.test.ts).
  resnet1202: (m) => assert.equal(m.numParameters(), 19_421_274),
  // He et al. 2016, Table 2 / Fig. 1 count convolutions and fc only (BN adds 0.03M / 0.15M).
  preact_resnet164: (m) => assert.equal(millions(convAndFcParams(m), 1), '1.7'),
  preact_resnet1001: (m) => assert.equal(millions(convAndFcParams(m), 1), '10.2'),
  // Zagoruyko & Komodakis 2016, Tables 1 and 4.
  wide_resnet16_8: (m) => assert.equal(millions(m.numParameters(), 1), '11.0'),
  wide_resnet28_10: (m) => assert.equal(millions(m.numParameters(), 1), '36.5'),
  wide_resnet40_4: (m) => assert.equal(millions(m.numParameters(), 1), '8.9'),
};

describe(`every builder has PyTorch's size and trains: finite, non-zero gradients (${backendName} backend)`, () => {
  test('every builder has a PyTorch count', () => {
    assert.deepEqual(models.list().filter((n) => torchCounts[n] === undefined), []);
  });

  for (const name of models.list()) {
    test(name, () => {
      setBackend(backendName);
      const model = models.create(name, { seed: 7 });
      assert.equal(model.numParameters(), torchCounts[name], 'parameters');
      PAPER_SIZES[name]?.(model);

      model.train();
      const shape = INPUT[models.info(name).family];
      const x = randn(shape, { seed: 11 });
      const labels = Int32Array.from({ length: shape[0] }, (_, i) => (i * 3) % model.numClasses);
      const loss = F.crossEntropy(model.forward(x), labels);
      assert.ok(Number.isFinite(loss.item()), `loss ${loss.item()}`);
      loss.backward();
      const failures: string[] = [];
      for (const [key, p] of model.namedParameters()) {
        if (!p.grad) {
          failures.push(`${key} has no gradient`);
          continue;
        }
        let sq = 0;
        let finite = true;
        for (const g of p.grad.data) {
          if (!Number.isFinite(g)) finite = false;
          sq += g * g;
        }
        if (!finite) failures.push(`${key} has a non-finite gradient`);
        else if (!(Math.sqrt(sq) > MIN_GRAD_NORM)) failures.push(`${key} has gradient norm ${Math.sqrt(sq)}`);
      }
      assert.deepEqual(failures, []);
    });
  }
});
