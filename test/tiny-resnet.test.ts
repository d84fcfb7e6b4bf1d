// End to end: a tiny residual network built from the nn modules (stem conv-BN-ReLU,
// two basic blocks with identity shortcuts, global average pool, linear head) must
// memorise 64 random images with random labels: 100% training accuracy within a
// bounded number of full-batch SGD steps. Random labels leave nothing to generalise,
// so only a correct forward pass, backward pass and optimizer get there.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { F, nn, optim, randn, Rng, setBackend, type Tensor } from '../src/index.js';
import { backendsUnderTest } from './helpers/backends.js';

const N = 64;
const SIZE = 8;
const CLASSES = 4;
const WIDTH = 16;
const MAX_STEPS = 150;

/** He et al. 2015, Fig. 2: relu(bn2(conv2(relu(bn1(conv1(x))))) + x). */
class BasicBlock extends nn.Module {
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly conv2: nn.Conv2d;
  readonly bn2: nn.BatchNorm2d;

  constructor(channels: number, rng: Rng) {
    super();
    this.conv1 = new nn.Conv2d(channels, channels, 3, { padding: 1, rng });
    this.bn1 = new nn.BatchNorm2d(channels);
    this.conv2 = new nn.Conv2d(channels, channels, 3, { padding: 1, rng });
    this.bn2 = new nn.BatchNorm2d(channels);
  }

  forward(x: Tensor): Tensor {
    // residual branch
    const out = this.bn2.forward(this.conv2.forward(F.relu(this.bn1.forward(this.conv1.forward(x)))));
    // identity shortcut
    return F.relu(F.add(out, x));
  }
}

class TinyResNet extends nn.Module {
  readonly stem: nn.Sequential;
  readonly layer1: nn.Sequential;
  readonly pool: nn.AdaptiveAvgPool2d;
  readonly flatten: nn.Flatten;
  readonly fc: nn.Linear;

  constructor(rng: Rng) {
    super();
    this.stem = new nn.Sequential(new nn.Conv2d(3, WIDTH, 3, { padding: 1, rng }), new nn.BatchNorm2d(WIDTH), new nn.ReLU());
    this.layer1 = new nn.Sequential(new BasicBlock(WIDTH, rng), new BasicBlock(WIDTH, rng));
    this.pool = new nn.AdaptiveAvgPool2d(1);
    this.flatten = new nn.Flatten();
    this.fc = new nn.Linear(WIDTH, CLASSES, { rng });
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.flatten.forward(this.pool.forward(this.layer1.forward(this.stem.forward(x)))));
  }
}

function accuracy(logits: Tensor, labels: Int32Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < CLASSES; j++) if (logits.data[i * CLASSES + j]! > logits.data[i * CLASSES + best]!) best = j;
    if (best === labels[i]) correct++;
  }
  return correct / labels.length;
}

for (const backendName of backendsUnderTest()) {
  describe(`tiny ResNet on the ${backendName} backend`, () => {
    before(() => setBackend(backendName));

    it(`memorises ${N} random ${SIZE}x${SIZE}x3 images with random labels within ${MAX_STEPS} SGD steps`, () => {
      const rng = new Rng(42);
      const images = randn([N, SIZE, SIZE, 3], { rng });
      const labels = Int32Array.from({ length: N }, (_, i) => i % CLASSES);
      const perm = rng.permutation(N);
      const shuffled = Int32Array.from(perm, (p) => labels[p]!);
      const model = new TinyResNet(rng);
      assert.equal(model.namedParameters().filter(([k]) => k.startsWith('layer1.1.')).length, 6);
      const opt = new optim.SGD(optim.paramGroupsNoDecay(model, 1e-4), { lr: 0.1, momentum: 0.9 });

      let steps = 0;
      let trainAcc = 0;
      let firstLoss = NaN;
      let loss = NaN;
      for (; steps < MAX_STEPS; steps++) {
        const logits = model.forward(images);
        trainAcc = accuracy(logits, shuffled);
        const l = F.crossEntropy(logits, shuffled);
        loss = l.item();
        if (steps === 0) firstLoss = loss;
        if (trainAcc === 1) break;
        opt.zeroGrad();
        l.backward();
        for (const [name, p] of model.namedParameters()) assert.ok(p.grad, `no gradient reached ${name}`);
        opt.step();
      }
      assert.equal(trainAcc, 1, `training accuracy ${trainAcc} after ${steps} steps (loss ${firstLoss} -> ${loss})`);
      assert.ok(loss < firstLoss, `loss went from ${firstLoss} to ${loss}`);
    });
  });
}
