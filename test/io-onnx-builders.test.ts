// Every builder exports to ONNX, and onnxruntime-node running the export gives our
// eval-mode logits. Deep and wide networks run at small inputs (8x8 CIFAR, 32x32
// ImageNet: the last stage sees 2x2 / 1x1).
import { describe, it } from 'node:test';
import { io, models, randn } from '../src/index.js';
import { assertClose, assertShape } from './helpers/fixtures.js';
import { forwardEval, randomiseForExport, runOnnx } from './helpers/onnx-run.js';

/**
 * onnxruntime and our backends sum convolutions in different orders; over 1000 layers
 * the float32 rounding differences reach about 1e-5 of the largest logit.
 */
const EXPORT_TOL = { rtol: 1e-4, atolScale: 5e-5 };

describe('ONNX export of every builder, checked by onnxruntime', () => {
  for (const [i, name] of models.list().entries()) {
    it(name, async () => {
      const model = models.create(name, { seed: 100 + i, numClasses: 10 });
      randomiseForExport(model, 200 + i);
      const size = models.info(name).family === 'cifar' ? 8 : 32;
      const x = randn([2, size, size, 3], { seed: 300 + i });
      const expected = forwardEval(model, x);
      const got = await runOnnx(io.exportOnnx(model, { modelName: name }), x, 'NCHW');
      assertShape(got.dims, expected.shape, `${name} logits`);
      assertClose(got.data, expected.data, `${name}: onnxruntime vs our forward`, expected.shape, EXPORT_TOL);
    });
  }
});
