// torchvision resnet18 / resnet50 weights saved by PyTorch (torch.save .pth and
// safetensors, scripts/make_io_fixtures.py) load into our models unchanged and give
// torchvision's eval-mode logits.
import { describe, it } from 'node:test';
import { io, models, noGrad, setBackend, Tensor } from '../src/index.js';
import { backendsUnderTest } from './helpers/backends.js';
import { assertClose, assertShape, FLOAT32_TOL } from './helpers/fixtures.js';
import { loadIoFixture, logitsInputNchw, nchwToNhwc, unpackedFixture } from './helpers/io-fixtures.js';

const [N, C, H, W] = [2, 3, 64, 64];

/** Float64 PyTorch logits vs a float32 forward through 18 / 50 layers. */
const LOGITS_TOL = FLOAT32_TOL;

for (const backendName of backendsUnderTest()) {
  describe(`torchvision weights on the ${backendName} backend`, () => {
    const expected = loadIoFixture('resnet_logits');
    const x = new Tensor(nchwToNhwc(logitsInputNchw(N, C, H, W), N, C, H, W), [N, H, W, C]);

    // Both formats hold the same bits (test/io-pth.test.ts), so each model is run from one.
    for (const [name, format] of [['resnet18', 'pth'], ['resnet50', 'safetensors']] as const) {
      {
        it(`${name} from .${format} reproduces torchvision's logits`, () => {
          setBackend(backendName);
          const path = unpackedFixture(`${name}.${format}`);
          const state = format === 'pth' ? io.loadPth(path) : io.loadSafetensors(path);
          const model = models.create(name);
          model.loadStateDict(state);
          model.eval();
          const logits = noGrad(() => model.forward(x));
          assertShape(logits.shape, expected.shape(name), `${name} logits`);
          assertClose(logits.data, expected.array(name), `${name} (${format}) logits`, logits.shape, LOGITS_TOL);
        });
      }
    }
  });
}
