// Fine-tuning from weights (head replacement, freezing, discriminative learning rates,
// --fine-tune-epochs) on a small synthetic Fashion-MNIST, and embeddings written as .npy
// and read back by numpy.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { serializeNpy } from '../src/io/npy.js';
import * as models from '../src/models/index.js';
import type { Module } from '../src/nn/module.js';
import { DEFAULT_CONFIG, finishConfig, mergeConfig, type TrainConfig } from '../src/train/config.js';
import { frozenParts } from '../src/train/fine-tune.js';
import { saveModelFile } from '../src/train/model-file.js';
import { trainerForRun } from '../src/train/run-training.js';
import { prepareRun } from '../src/train/setup.js';
import { assertUsageError, runCli } from './helpers/cli.js';
import { solid, tempDir, writeIdxFolder, writeImage } from './helpers/data-files.js';

const root = tempDir('fine-tune');
const data = join(root, 'data');
writeIdxFolder(data, 60, 20, 8, 8);

function recipe(patch: Partial<TrainConfig>): TrainConfig {
  return finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, {
    model: 'resnet20', dataset: 'fashion-mnist', data, epochs: 2, batchSize: 10, evalBatchSize: 20, lr: 0.05, warmup: 0, seed: 3, ...patch,
  }, 'test'), 'test');
}

/** A resnet20 of 10 classes trained one epoch on the synthetic data, saved as a model file. */
async function pretrainedFile(): Promise<string> {
  const prepared = await prepareRun(recipe({ epochs: 1 }));
  await trainerForRun(prepared, null).run();
  const file = join(root, 'pretrained.safetensors');
  saveModelFile(file, prepared.model, prepared.card);
  return file;
}

function copyOf(model: Module, parts: readonly Module[]): Map<string, Float32Array> {
  const inParts = new Set(parts.flatMap((p) => [...p.parameters(), ...p.buffers()]));
  const out = new Map<string, Float32Array>();
  for (const [k, t] of Object.entries(model.stateDict())) if (inParts.has(t)) out.set(k, t.data.slice());
  return out;
}

describe('fine-tuning from weights', async () => {
  const weights = await pretrainedFile();

  it('replaces the head when the class count differs, and says so in one line', async () => {
    const prepared = await prepareRun(recipe({ weights, classes: [5, 6, 7] }));
    assert.equal(prepared.card.numClasses, 3);
    assert.deepEqual(prepared.notes, ['replaced the 10-class head of resnet20 with a new 3-class one']);
    // The backbone is the pretrained one, the head is new.
    // A model file's weights fit resnet20 and plain20 alike (option A shortcuts have no weights): named.
    const source = models.load(weights, { model: 'resnet20' });
    const fresh = prepared.model.stateDict();
    for (const [k, t] of Object.entries(source.model.stateDict())) {
      if (k.startsWith('fc.')) assert.notDeepEqual(fresh[k]!.shape, t.shape, k);
      else assert.deepEqual(fresh[k]!.data, t.data, k);
    }
    const same = await prepareRun(recipe({ weights }));
    assert.deepEqual(same.notes, []);
    assert.deepEqual(same.model.stateDict()['fc.weight']!.data, source.model.stateDict()['fc.weight']!.data);
  });

  it('--freeze backbone: frozen parameters and BN running statistics unchanged after training; the head trained', async () => {
    const prepared = await prepareRun(recipe({ weights, classes: [5, 6, 7], freeze: 'backbone' }));
    const frozen = frozenParts(prepared.model, 'backbone');
    const before = copyOf(prepared.model, frozen);
    assert.ok([...before.keys()].some((k) => k.endsWith('running_mean')) && before.size > 50);
    const head = prepared.model.stateDict()['fc.weight']!.data.slice();
    await trainerForRun(prepared, null).run();
    const after = prepared.model.stateDict();
    for (const [k, v] of before) assert.deepEqual(after[k]!.data, v, `${k} changed`);
    assert.notDeepEqual(after['fc.weight']!.data, head);
    assert.ok(prepared.model.parameters().every((p) => p.requiresGrad), 'parameters left without gradients after training');
  });

  it('--freeze layer1 trains layer2 on; --fine-tune-epochs freezes the backbone for the first epochs only', async () => {
    const partial = await prepareRun(recipe({ weights, freeze: 'layer1' }));
    const stem = copyOf(partial.model, frozenParts(partial.model, 'layer1'));
    const layer2 = partial.model.stateDict()['layer2.0.conv1.weight']!.data.slice();
    await trainerForRun(partial, null).run();
    for (const [k, v] of stem) assert.deepEqual(partial.model.stateDict()[k]!.data, v, `${k} changed`);
    assert.notDeepEqual(partial.model.stateDict()['layer2.0.conv1.weight']!.data, layer2);

    const phased = await prepareRun(recipe({ weights, fineTuneEpochs: 1, epochs: 2 }));
    const backbone = copyOf(phased.model, frozenParts(phased.model, 'backbone'));
    const seen: boolean[] = [];
    const trainer = trainerForRun(phased, null, {
      onEpoch: () => seen.push([...backbone].every(([k, v]) => phased.model.stateDict()[k]!.data.every((x, i) => x === v[i]))),
    });
    await trainer.run();
    assert.deepEqual(seen, [true, false], 'backbone unchanged after epoch 1, trained in epoch 2');
  });

  it('discriminative learning rates: the backbone groups step at lr x backboneLrScale', async () => {
    const prepared = await prepareRun(recipe({ weights, backboneLrScale: 0.1 }));
    const head = new Set(prepared.model.namedChildren().find(([n]) => n === 'fc')![1].parameters());
    for (const g of prepared.optimizer.paramGroups) {
      assert.equal(g.lrScale, g.params.every((p) => head.has(p)) ? 1 : 0.1);
    }
  });

  it('refuses what cannot work in one line', async () => {
    assertUsageError(runCli(['train', '--data', data, '--weights', weights, '--model', 'resnet32', '--epochs', '1', '--out', root]),
      /pretrained\.safetensors: the weights do not fit resnet32: resnet32 has layer1\.3\.conv1\.weight \[16, 16, 3, 3\], the file has no such key; they fit resnet20 and plain20: use --model resnet20$/);
    assertUsageError(runCli(['train', '--data', data, '--fine-tune-epochs', '1', '--epochs', '2', '--out', root]),
      /--fine-tune-epochs trains a pretrained model's head first; give --weights too/);
    assertUsageError(runCli(['train', '--data', data, '--weights', weights, '--freeze', 'layer4', '--epochs', '1', '--out', root]),
      /--freeze layer4: resnet20 has the stages layer1, layer2, layer3/);
  });

  it('resnet train --weights: the head line, then a normal run folder', () => {
    const r = runCli(['train', '--data', data, '--weights', weights, '--classes', '0,1,2', '--fine-tune-epochs', '1', '--epochs', '2',
      '--batch-size', '10', '--out', root, '--name', 'tuned', '--no-progress']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^resnet: replaced the 10-class head of resnet20 with a new 3-class one$/m);
    assert.match(r.stdout, /training resnet20 from .*pretrained\.safetensors \(the head alone for 1 epochs\)/);
    const summary = JSON.parse(readFileSync(join(root, 'tuned', 'summary.json'), 'utf8')) as { status: string; epochs: number };
    assert.deepEqual([summary.status, summary.epochs], ['finished', 2]);
  });
});

describe('embeddings', () => {
  it('.npy bytes numpy reads back exactly, for 1-D and 2-D shapes', () => {
    const values = Float32Array.from({ length: 12 }, (_, i) => (i - 5) / 3);
    for (const shape of [[12], [3, 4]]) {
      const file = join(root, `a${shape.length}.npy`);
      const bytes = serializeNpy(values, shape);
      assert.equal((10 + new DataView(bytes.buffer).getUint16(8, true)) % 64, 0, 'header padded to 64 bytes');
      writeFileSync(file, bytes);
      const py = spawnSync('/usr/bin/python3', ['-c',
        'import sys, json, numpy as np; a = np.load(sys.argv[1]); print(json.dumps([a.dtype.str, list(a.shape), a.ravel().tolist()]))', file],
      { encoding: 'utf8' });
      assert.equal(py.status, 0, py.stderr);
      const [dtype, got, flat] = JSON.parse(py.stdout) as [string, number[], number[]];
      assert.equal(dtype, '<f4');
      assert.deepEqual(got, shape);
      assert.deepEqual(Float32Array.from(flat), values);
    }
  });

  it('resnet embed writes forwardFeatures of every image and the file order', async () => {
    const file = join(root, 'embed-model.safetensors');
    const prepared = await prepareRun(recipe({ epochs: 1 }));
    saveModelFile(file, prepared.model, prepared.card);
    const images = join(root, 'images');
    mkdirSync(images);
    for (let i = 0; i < 3; i++) await writeImage(join(images, `${i}.png`), solid(8, 8, 1, [40 + 80 * i]), 8, 8, 1);
    const out = join(root, 'features.npy');
    const r = runCli(['embed', file, images, '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const order = readFileSync(join(root, 'features.files.txt'), 'utf8').trim().split('\n');
    assert.deepEqual(order.map((p) => p.slice(images.length + 1)), ['0.png', '1.png', '2.png']);
    const py = spawnSync('/usr/bin/python3', ['-c', 'import sys, json, numpy as np; a = np.load(sys.argv[1]); print(json.dumps(a.tolist()))', out],
      { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const rows = JSON.parse(py.stdout) as number[][];
    assert.equal(rows.length, 3);
    assert.equal(rows[0]!.length, 64, 'resnet20 features: the 64 channels of its last stage');
    // The same features as forwardFeatures of the same inputs.
    const { ImageClassifier } = await import('../src/train/classify.js');
    const { loadModelFile } = await import('../src/train/model-file.js');
    const { noGrad, Tensor } = await import('../src/tensor/tensor.js');
    const loaded = loadModelFile(file);
    const c = new ImageClassifier(loaded);
    const x = await c.input(join(images, '1.png'));
    const f = noGrad(() => (loaded.model as models.ResidualNetwork).forwardFeatures(new Tensor(x, [1, 8, 8, 1]))).data;
    const row = rows[1]!;
    for (let i = 0; i < f.length; i++) assert.ok(Math.abs(row[i]! - f[i]!) <= 1e-5 * (1 + Math.abs(f[i]!)), `feature ${i}`);
  });
});
