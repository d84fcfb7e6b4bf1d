// Mixing images across a batch (src/data/mix.ts), the loss of mixed targets
// (crossEntropy's mix, against a float64 reference on both backends), the loader's mixed
// batches, and the training flags.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getBackend, setBackend, backend } from '../src/backend/index.js';
import { DataLoader, InMemoryDataset, RandomHorizontalFlip } from '../src/data/index.js';
import { BatchMix } from '../src/data/mix.js';
import { crossEntropy } from '../src/tensor/ops.js';
import { Rng } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { DEFAULT_CONFIG, finishConfig, mergeConfig } from '../src/train/config.js';
import { checkTorchRecipe } from '../src/train/torch-engine.js';

/** b images of h x w x c, image i filled with i + 1. */
function constantImages(b: number, h: number, w: number, c: number): Float32Array {
  return Float32Array.from({ length: b * h * w * c }, (_, k) => Math.floor(k / (h * w * c)) + 1);
}

function moments(draw: () => number, n: number): { mean: number; variance: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const v = draw();
    assert.ok(v >= 0 && v <= 1, `a Beta draw out of [0, 1]: ${v}`);
    s += v;
    s2 += v * v;
  }
  const mean = s / n;
  return { mean, variance: s2 / n - mean * mean };
}

describe('Rng.beta', () => {
  for (const [a, b] of [[0.2, 0.2], [1, 1], [2, 5], [0.5, 3]] as const) {
    it(`Beta(${a}, ${b}): mean and variance of 40,000 draws`, () => {
      const rng = new Rng(11);
      const n = 40_000;
      const { mean, variance } = moments(() => rng.beta(a, b), n);
      const m = a / (a + b);
      const v = (a * b) / ((a + b) ** 2 * (a + b + 1));
      // The sample mean's standard error is sqrt(v / n); 5 of them.
      assert.ok(Math.abs(mean - m) < 5 * Math.sqrt(v / n), `mean ${mean}, expected ${m}`);
      assert.ok(Math.abs(variance - v) < 0.05 * v, `variance ${variance}, expected ${v}`);
    });
  }

  it('tiny alphas give 0s and 1s, never NaN; a bad shape is refused', () => {
    const rng = new Rng(2);
    for (let i = 0; i < 1000; i++) {
      const v = rng.beta(0.001, 0.001);
      assert.ok(v >= 0 && v <= 1, String(v));
    }
    assert.throws(() => rng.gamma(0), /shape must be a positive number, got 0/);
  });
});

describe('BatchMix', () => {
  const [b, h, w, c] = [5, 6, 7, 2];
  const shape = [b, h, w, c];
  const per = h * w * c;
  const labels = Int32Array.from([0, 1, 2, 3, 4]);

  it('mixup: every pixel weight x its image + (1 - weight) x the image at the mirrored position of the batch', () => {
    const mix = new BatchMix({ mixup: 0.4 });
    const x = Float32Array.from({ length: b * per }, (_, k) => Math.sin(k));
    const before = x.slice();
    const t = mix.apply(x, shape, labels, new Rng(5))!;
    assert.ok(t.weight > 0 && t.weight < 1);
    assert.deepEqual([...t.labels], [4, 3, 2, 1, 0]);
    for (let i = 0; i < b; i++) {
      for (let k = 0; k < per; k++) {
        const want = t.weight * before[i * per + k]! + (1 - t.weight) * before[(b - 1 - i) * per + k]!;
        assert.ok(Math.abs(x[i * per + k]! - want) < 1e-6, `image ${i} value ${k}`);
      }
    }
  });

  it('CutMix: one box pasted from the partner in every image, and the weight is the share left', () => {
    const mix = new BatchMix({ cutmix: 1 });
    let boxes = 0;
    for (let seed = 0; seed < 50; seed++) {
      const x = constantImages(b, h, w, c);
      const t = mix.apply(x, shape, labels, new Rng(seed))!;
      let pasted = -1;
      for (let i = 0; i < b; i++) {
        if (i === (b - 1) / 2) continue;  // the middle image's partner is itself
        const img = x.subarray(i * per, (i + 1) * per);
        // Every pixel is the image's own value or its partner's, and the partner's form one box.
        const rows = new Set<number>();
        const cols = new Set<number>();
        let fromPartner = 0;
        for (let y = 0; y < h; y++) {
          for (let xx = 0; xx < w; xx++) {
            for (let k = 0; k < c; k++) {
              const v = img[(y * w + xx) * c + k]!;
              assert.ok(v === i + 1 || v === b - i, `image ${i}: a pixel of neither image (${v})`);
              if (v === b - i) {
                fromPartner++;
                rows.add(y);
                cols.add(xx);
              }
            }
          }
        }
        assert.equal(fromPartner, rows.size * cols.size * c, `image ${i}: the pasted pixels fill a box`);
        if (pasted === -1) pasted = rows.size * cols.size;
        assert.equal(rows.size * cols.size, pasted, 'the same box in every image');
      }
      assert.ok(Math.abs(t.weight - (1 - pasted / (h * w))) < 1e-12, `weight ${t.weight}, pasted ${pasted} of ${h * w}`);
      if (pasted > 0) boxes++;
    }
    assert.ok(boxes > 25, `only ${boxes} of 50 batches got a box`);
  });

  it('mixes a batch with probability prob, and takes mixup or CutMix at random when both are on', () => {
    const none = new BatchMix({ cutmix: 1, prob: 0 });
    assert.equal(none.apply(constantImages(b, h, w, c), shape, labels, new Rng(1)), null);
    const half = new BatchMix({ mixup: 1, cutmix: 1, prob: 0.5 });
    let mixed = 0;
    let blended = 0;
    const rng = new Rng(3);
    for (let i = 0; i < 2000; i++) {
      const x = constantImages(b, h, w, c);
      const t = half.apply(x, shape, labels, rng);
      if (!t) continue;
      mixed++;
      // mixup blends every pixel of image 0 (1) with image 4's (5): no pixel stays 1 unless the weight is 1.
      if (t.weight < 1 && x[0] !== 1 && x[per - 1] !== 1) blended++;
    }
    assert.ok(mixed > 900 && mixed < 1100, `${mixed} of 2000 batches mixed`);
    assert.ok(blended > 350 && blended < 650, `${blended} of ${mixed} mixed batches blended everywhere`);
    assert.throws(() => new BatchMix({}), /give mixup or cutmix an alpha above 0/);
    assert.throws(() => new BatchMix({ mixup: -1 }), /mixup alpha must be a number >= 0/);
    assert.throws(() => new BatchMix({ cutmix: 1, prob: 2 }), /prob must be in \[0, 1\]/);
  });
});

/** Mean over rows of sum_j -target_j log softmax_j, and its gradient, in float64. */
function mixedReference(logits: Float32Array, n: number, c: number, a: Int32Array, bl: Int32Array, w: number, s: number) {
  let loss = 0;
  const grad = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const row = Array.from(logits.subarray(i * c, (i + 1) * c), Number);
    const max = Math.max(...row);
    const z = row.reduce((t, v) => t + Math.exp(v - max), 0);
    for (let j = 0; j < c; j++) {
      const target = w * ((j === a[i] ? 1 - s : 0) + s / c) + (1 - w) * ((j === bl[i] ? 1 - s : 0) + s / c);
      const logp = row[j]! - max - Math.log(z);
      loss -= target * logp;
      grad[i * c + j] = (Math.exp(logp) - target) / n;
    }
  }
  return { loss: loss / n, grad };
}

describe('crossEntropy with mixed targets', () => {
  for (const name of ['reference', 'native'] as const) {
    it(`${name} backend: the loss and gradient of the mixed, smoothed targets (float64 reference)`, () => {
      const before = backend();
      setBackend(getBackend(name));
      try {
        const [n, c] = [6, 10];
        const rng = new Rng(8);
        const data = Float32Array.from({ length: n * c }, () => 3 * rng.normal());
        const a = Int32Array.from([0, 3, 9, 2, 2, 7]);
        const bl = Int32Array.from([7, 3, 1, 5, 8, 0]);
        for (const [w, s] of [[0.3, 0.1], [1, 0], [0, 0.2], [0.77, 0]] as const) {
          const logits = new Tensor(data.slice(), [n, c], true);
          const loss = crossEntropy(logits, a, { labelSmoothing: s, mix: { labels: bl, weight: w } });
          loss.backward();
          const ref = mixedReference(data, n, c, a, bl, w, s);
          assert.ok(Math.abs(loss.item() - ref.loss) < 1e-5 * ref.loss, `weight ${w}: loss ${loss.item()} vs ${ref.loss}`);
          for (let k = 0; k < n * c; k++) {
            assert.ok(Math.abs(logits.grad!.data[k]! - ref.grad[k]!) < 1e-6, `weight ${w}: gradient ${k} ${logits.grad!.data[k]} vs ${ref.grad[k]}`);
          }
        }
        const logits = new Tensor(data.slice(), [n, c]);
        assert.throws(() => crossEntropy(logits, a, { mix: { labels: bl.subarray(0, 5), weight: 0.5 } }), /mix labels \[5\] has 5/);
        assert.throws(() => crossEntropy(logits, a, { mix: { labels: Int32Array.from([0, 0, 0, 0, 0, 10]), weight: 0.5 } }), /mix label 10 at position 5/);
        assert.throws(() => crossEntropy(logits, a, { mix: { labels: bl, weight: 1.5 } }), /mix weight must be in \[0, 1\], got 1.5/);
      } finally {
        setBackend(before);
      }
    });
  }
});

describe('the loader with mixing', () => {
  const n = 12;
  const size = 4 * 4;
  const ds = new InMemoryDataset('d', Uint8Array.from({ length: n * size }, (_, k) => (k * 37) % 251), Int32Array.from({ length: n }, (_, i) => i % 3), 4, 4, 1, ['a', 'b', 'c']);

  it('mixes the augmented batch the loader without mixing makes, the same every time it is made', async () => {
    const mix = new BatchMix({ mixup: 0.5, cutmix: 1 });
    const plain = new DataLoader(ds, { batchSize: 5, shuffle: true, transform: new RandomHorizontalFlip(), seed: 4 });
    const mixed = new DataLoader(ds, { batchSize: 5, shuffle: true, transform: new RandomHorizontalFlip(), mix, seed: 4 });
    for (const index of [0, 1, 2]) {
      const p = await plain.batch(1, index);
      const m = await mixed.batch(1, index);
      const again = await mixed.batch(1, index);
      assert.equal(p.mix, null);
      assert.deepEqual([...m.labels], [...p.labels]);
      assert.deepEqual(m.x.data, again.x.data);
      assert.deepEqual(m.mix, again.mix);
      // Each value of a mixed image is its own, its partner's, or the blend of the two by the weight.
      const rows = p.labels.length;
      if (rows < 2) continue;
      assert.ok(m.mix, `batch ${index} is mixed (prob 1)`);
      assert.deepEqual([...m.mix.labels], [...p.labels].reverse());
      const per = 16;
      let changed = 0;
      for (let i = 0; i < rows; i++) {
        for (let k = 0; k < per; k++) {
          const own = p.x.data[i * per + k]!;
          const other = p.x.data[(rows - 1 - i) * per + k]!;
          const v = m.x.data[i * per + k]!;
          const blend = m.mix.weight * own + (1 - m.mix.weight) * other;
          assert.ok(v === own || v === other || Math.abs(v - blend) < 1e-6, `batch ${index} image ${i} value ${k}: ${v}`);
          if (v !== own) changed++;
        }
      }
      assert.ok(changed > 0 || m.mix.weight === 1, `batch ${index}: images mixed`);
    }
  });
});

describe('the training flags', () => {
  const parse = (patch: Record<string, unknown>) => finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, patch, 'the command line', (k) => `--${k}`), 'the command line', (k) => `--${k}`);

  it('take mixup, cutmix and mixProb; mixProb alone is refused in one line', () => {
    const c = parse({ mixup: 0.2, cutmix: 1, mixProb: 0.5 });
    assert.deepEqual([c.mixup, c.cutmix, c.mixProb], [0.2, 1, 0.5]);
    assert.throws(() => parse({ mixProb: 0.5 }), /--mixProb is for --mixup or --cutmix; give one of them an alpha above 0, or leave it out/);
    assert.throws(() => parse({ cutmix: -0.5 }), /cutmix must be a number >= 0/);
  });

  it('the torch engine refuses them by name rather than ignoring them', () => {
    assert.throws(() => checkTorchRecipe(parse({ cutmix: 1 })), /--cutmix/);
    assert.throws(() => checkTorchRecipe(parse({ mixup: 0.2 })), /--mixup/);
  });
});
