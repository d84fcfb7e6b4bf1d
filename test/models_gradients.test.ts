// Every builder trains: one step of cross-entropy gives every parameter a finite,
// non-zero gradient (timm's test_model_backward). Deep models run at tiny inputs;
// ResNet-1001 and ResNet-1202 (over 3000 ops from input to loss) also show that
// forward and backward do not recurse per layer.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { availableBackends, setBackend } from '../src/backend/index.js';
import * as models from '../src/models/index.js';
import * as F from '../src/tensor/ops.js';
import { randn } from '../src/tensor/tensor.js';

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

describe(`every builder gives every parameter a finite, non-zero gradient (${backendName} backend)`, () => {
  for (const name of models.list()) {
    test(name, () => {
      setBackend(backendName);
      const model = models.create(name, { numClasses: 5, seed: 7 });
      model.train();
      const shape = INPUT[models.info(name).family];
      const x = randn(shape, { seed: 11 });
      const labels = Int32Array.from({ length: shape[0] }, (_, i) => i % 5);
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
