// Pretrained ImageNet models against torchvision (scripts/make_pretrained_fixtures.py):
// the IMAGENET1K_V1 / V2 preprocessing of real photographs (Debian's python3-skimage
// sample images) and the logits of torchvision's resnet18 with hash-filled weights.
//
// Tolerances. libvips (sharp) and PIL resize differently: both use a triangle (bilinear)
// filter widened by the scale factor (antialiasing), but libvips computes in fixed point
// and rounds to 8 bits at other points. Measured on these five photographs (3 RGB PNGs, a
// greyscale PNG, a JPEG) the crops differ by a mean of 0.14 to 0.23 of one 8-bit level and
// by at most 2 levels; the bounds (mean 0.5, max 4 levels) leave room for another libvips
// build yet fail for any real difference in the pipeline (a crop shifted by one pixel,
// another resize size, no antialiasing, swapped channels all give means of several levels).
// Logits of torchvision's own crop agree to float32 rounding (measured 3e-7 of their range,
// bound 1e-5); through our crop they move by what that pixel noise does to them (measured
// 2e-4 to 6e-4 of the range, bound 2e-3), while another photograph's logits differ by > 20%.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeImage } from '../src/data/image-decode.js';
import { IMAGENET_CLASSES, IMAGENET_PRESETS, type ImagenetPresetName } from '../src/data/imagenet.js';
import { saveSafetensors } from '../src/io/safetensors.js';
import * as models from '../src/models/index.js';
import { noGrad, Tensor } from '../src/tensor/tensor.js';
import { ImageClassifier } from '../src/train/classify.js';
import { modelFromWeights } from '../src/train/model-from-weights.js';
import { assertUsageError, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/data-files.js';
import { loadHashedWeights } from './models_hashed_weights.js';

/** Debian's python3-skimage sample photographs. */
const PHOTOS = '/usr/lib/python3/dist-packages/skimage/data';
const FIXTURES = new URL('../../test/fixtures/pretrained/', import.meta.url).pathname;

interface Case { photo: string; preset: ImagenetPresetName; crop: string; logits: number[] }
interface Fixture { presets: Record<string, { resizeShorter: number; crop: number; mean: number[]; std: number[] }>; cases: Case[] }
const fixture = JSON.parse(readFileSync(join(FIXTURES, 'logits.json'), 'utf8')) as Fixture;

/** torchvision's crop of a case, 8-bit HWC RGB. */
async function torchvisionCrop(c: Case): Promise<Uint8Array> {
  const { data, info } = await sharp(join(FIXTURES, c.crop)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [224, 224, 3]);
  return new Uint8Array(data);
}

function normalised(pixels: Uint8Array, preset: ImagenetPresetName): Tensor {
  const { mean, std } = IMAGENET_PRESETS[preset];
  const x = new Float32Array(pixels.length);
  for (let i = 0; i < x.length; i++) x[i] = (pixels[i]! / 255 - mean[i % 3]!) / std[i % 3]!;
  return new Tensor(x, [1, 224, 224, 3]);
}

/** Largest absolute difference over the range of `expected`. */
function relativeMaxError(actual: ArrayLike<number>, expected: readonly number[]): number {
  const range = Math.max(...expected) - Math.min(...expected);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  return worst / range;
}

// resnet18 with the hash-filled weights, saved under torchvision's names as a user's file would be.
const dir = tempDir('pretrained');
const weightsFile = join(dir, 'resnet18.safetensors');
{
  const m = models.create('resnet18', { seed: 1 });
  loadHashedWeights(m);
  saveSafetensors(weightsFile, m.stateDict());
}

describe('ImageNet presets and class names', () => {
  it('are torchvision\'s', () => {
    for (const [name, p] of Object.entries(fixture.presets)) {
      const ours = IMAGENET_PRESETS[name as ImagenetPresetName];
      assert.deepEqual({ resizeShorter: ours.resizeShorter, crop: ours.crop, mean: [...ours.mean], std: [...ours.std] },
        { resizeShorter: p.resizeShorter, crop: p.crop, mean: p.mean, std: p.std }, name);
    }
    assert.equal(IMAGENET_CLASSES.length, 1000);
    assert.deepEqual([IMAGENET_CLASSES[0], IMAGENET_CLASSES[281], IMAGENET_CLASSES[999]], ['tench', 'tabby', 'toilet tissue']);
  });
});

describe('ImageNet preprocessing of real photographs vs torchvision', () => {
  for (const c of fixture.cases) {
    it(`${c.photo} ${c.preset}`, async () => {
      const expected = await torchvisionCrop(c);
      const p = IMAGENET_PRESETS[c.preset];
      const ours = await decodeImage(join(PHOTOS, c.photo), { height: 224, width: 224, channels: 3, convert: true, resizeShorter: p.resizeShorter });
      let sum = 0;
      let max = 0;
      for (let i = 0; i < ours.length; i++) {
        const d = Math.abs(ours[i]! - expected[i]!);
        sum += d;
        max = Math.max(max, d);
      }
      const mean = sum / ours.length;
      process.stdout.write(`# ${c.photo} ${c.preset}: mean |diff| ${mean.toFixed(3)}/255, max ${max}/255\n`);
      assert.ok(mean < 0.5, `mean difference ${mean.toFixed(3)}/255`);
      assert.ok(max <= 4, `largest difference ${max}/255`);
    });
  }
});

describe('logits of torchvision weights on real photographs', () => {
  const loaded = models.load(weightsFile);
  it('finds the architecture from the keys', () => {
    assert.equal(loaded.name, 'resnet18');
    assert.equal(loaded.model.numClasses, 1000);
    assert.equal(loaded.headReplaced, null);
  });

  for (const c of fixture.cases) {
    it(`${c.photo} ${c.preset}: torchvision's crop exactly, ours within the resize noise`, async () => {
      const crop = normalised(await torchvisionCrop(c), c.preset);
      const exact = noGrad(() => loaded.model.forward(crop)).data;
      const exactError = relativeMaxError(exact, c.logits);
      const classifier = new ImageClassifier(modelFromWeights(weightsFile, { preset: c.preset }));
      const x = await classifier.input(join(PHOTOS, c.photo), { convert: true });
      const ours = noGrad(() => loaded.model.forward(new Tensor(x, [1, 224, 224, 3]))).data;
      const oursError = relativeMaxError(ours, c.logits);
      process.stdout.write(`# ${c.photo} ${c.preset}: logits error ${exactError.toExponential(2)} (torchvision crop), ${oursError.toExponential(2)} (ours)\n`);
      assert.ok(exactError < 1e-5, `logits of torchvision's crop: ${exactError}`);
      assert.ok(oursError < 2e-3, `logits of our crop: ${oursError}`);
    });
  }

  it('tells photographs apart: another photo\'s logits are far off', async () => {
    const [a, b] = [fixture.cases[0]!, fixture.cases[2]!];
    assert.notEqual(a.photo, b.photo);
    assert.ok(relativeMaxError(b.logits, a.logits) > 0.2);
  });
});

describe('resnet predict with torchvision weights', () => {
  const cat = join(PHOTOS, 'chelsea.png');
  it('prints the top-5 ImageNet classes with probabilities, as text, JSON and CSV', () => {
    const text = runCli(['predict', '--weights', weightsFile, '--model', 'resnet18', cat]);
    assert.equal(text.status, 0, text.stderr);
    const line = text.stdout.trim();
    assert.match(line, new RegExp(`^${cat}: ([^,]+ \\d+\\.\\d%, ){4}[^,]+ \\d+\\.\\d%$`));
    const json = runCli(['predict', '--weights', weightsFile, cat, join(PHOTOS, 'coffee.png'), '--json']);
    assert.equal(json.status, 0, json.stderr);
    const results = JSON.parse(json.stdout) as { file: string; top: { class: string; index: number; probability: number }[] }[];
    assert.equal(results.length, 2);
    for (const r of results) {
      assert.equal(r.top.length, 5);
      for (const t of r.top) assert.equal(t.class, IMAGENET_CLASSES[t.index]);
    }
    // The same top class as torchvision's logits of the same photo.
    const expected = fixture.cases.find((c) => c.photo === 'chelsea.png' && c.preset === 'IMAGENET1K_V1')!.logits;
    assert.equal(results[0]!.top[0]!.index, expected.indexOf(Math.max(...expected)));
    const csv = runCli(['predict', '--weights', weightsFile, cat, '--csv', '--top-k', '2']);
    assert.equal(csv.status, 0, csv.stderr);
    const rows = csv.stdout.trim().split('\n');
    assert.equal(rows[0], 'file,rank,index,class,probability');
    assert.equal(rows.length, 3);
    assert.match(rows[1]!, new RegExp(`^${cat},1,\\d+,[^,]+|"[^"]+",0\\.\\d{6}$`));
  });

  it('refuses weights of another architecture in one line: the key, both shapes, the right --model', () => {
    assertUsageError(runCli(['predict', '--weights', weightsFile, '--model', 'resnet50', cat]),
      /resnet18\.safetensors: the weights do not fit resnet50: layer1\.0\.conv1\.weight is \[64, 64, 3, 3\] in the file, \[64, 64, 1, 1\] in resnet50; they fit resnet18: use --model resnet18$/);
    assertUsageError(runCli(['predict', '--weights', weightsFile, '--model', 'preact_resnet18', cat]),
      /the weights do not fit preact_resnet18: .*; they fit resnet18: use --model resnet18$/);
  });
});
