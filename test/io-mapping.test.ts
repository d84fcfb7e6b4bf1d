// Foreign names: timm resnetv2_* state dicts load into preact_resnet* through the
// mapping table, timm resnet* and torchvision load as they are, and the variants whose
// architecture differs are refused with the reason.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { io, models, noGrad, randn, Tensor } from '../src/index.js';
import { assertSameBits, tempDir, unpackedFixture } from './helpers/io-fixtures.js';
import { randomiseForExport } from './helpers/onnx-run.js';

type StateDict = Record<string, Tensor>;

/** Our preact names -> timm resnetv2 names, written out independently of the library's table. */
function asTimmResNetV2(state: StateDict): StateDict {
  const out: StateDict = {};
  for (const [key, t] of Object.entries(state)) {
    let name: string;
    let tensor = t;
    const block = key.match(/^layer(\d+)\.(\d+)\.(.+)$/);
    if (key === 'conv1.weight') name = 'stem.conv.weight';
    else if (block) {
      const rest = block[3]!.replace(/^bn(\d)/, 'norm$1').replace(/^downsample\.0\./, 'downsample.conv.');
      name = `stages.${Number(block[1]) - 1}.blocks.${block[2]}.${rest}`;
    } else if (key.startsWith('bn.')) name = `norm.${key.slice(3)}`;
    else if (key === 'fc.weight') {
      name = 'head.fc.weight';
      tensor = new Tensor(t.data, [t.shape[0]!, t.shape[1]!, 1, 1]);
    } else if (key === 'fc.bias') name = 'head.fc.bias';
    else throw new Error(`no timm name for ${key}`);
    out[name] = tensor;
  }
  return out;
}

describe('state-dict name mapping', () => {
  // preact_resnet18 has timm's PreActBasic blocks (resnetv2_18); preact_resnet164 has its
  // PreActBottleneck blocks (resnetv2_50 ...) at a CIFAR size that builds quickly.
  for (const [name, size] of [['preact_resnet18', 32], ['preact_resnet164', 8]] as const) {
    it(`timm resnetv2 names load into ${name} and give the same logits`, () => {
      const source = models.create(name, { seed: 3, numClasses: 5 });
      randomiseForExport(source, 3);
      const timm = asTimmResNetV2(source.stateDict());
      assert.ok('stages.1.blocks.0.downsample.conv.weight' in timm && 'head.fc.weight' in timm);
      const path = join(tempDir('timm'), 'resnetv2.safetensors');
      writeFileSync(path, io.serializeSafetensors(timm));
      const loaded = io.loadWeights(path);
      assert.equal(loaded.naming, 'timm-resnetv2');
      const target = models.create(name, { seed: 99, numClasses: 5 });
      target.loadStateDict(loaded.state);
      target.eval();
      const x = randn([1, size, size, 3], { seed: 4 });
      assertSameBits(noGrad(() => target.forward(x)).data, noGrad(() => source.forward(x)).data, `${name} logits`);
    });
  }

  it('loads torchvision and timm resnet* names as they are', () => {
    const path = unpackedFixture('resnet18.safetensors');
    const auto = io.loadWeights(path);
    assert.equal(auto.naming, 'torchvision');
    const timm = io.loadWeights(path, { naming: 'timm' });
    assert.deepEqual(Object.keys(timm.state), Object.keys(auto.state));
    models.create('resnet18').loadStateDict(timm.state);
  });

  it('refuses timm BiT (GroupNorm) resnetv2 weights and Keras ResNet v2 weights, saying why', () => {
    const timm = asTimmResNetV2(models.create('preact_resnet18', { seed: 1 }).stateDict());
    const groupNorm = Object.fromEntries(Object.entries(timm).filter(([k]) => !/running_|num_batches/.test(k)));
    assert.throws(() => io.toOurNames(groupNorm, 'auto', 'bit.safetensors'),
      /bit\.safetensors: is a timm resnetv2 with GroupNorm .* only the BatchNorm variants/);
    const keras = { 'conv1_conv/kernel': new Tensor(new Float32Array(7 * 7 * 3 * 64), [7, 7, 3, 64]), 'post_bn/gamma': new Tensor(new Float32Array(2048), [2048]) };
    assert.equal(io.detectNaming(keras), 'keras-resnet-v2');
    assert.throws(() => io.toOurNames(keras, 'auto', 'keras.safetensors'),
      /keras\.safetensors: holds Keras ResNet v2 weights, which do not fit these models: .*stride on its last block/);
  });

  it('lists missing and unexpected keys where names do not match (timm deep-stem resnetv2_50d), or reports them with strict: false', () => {
    const timm = asTimmResNetV2(models.create('preact_resnet20', { seed: 1 }).stateDict());
    delete timm['stem.conv.weight'];
    timm['stem.conv1.weight'] = new Tensor(new Float32Array(32 * 3 * 9), [32, 3, 3, 3]);
    const mapped = io.toOurNames(timm).state;
    const model = models.create('preact_resnet20');
    assert.throws(() => model.loadStateDict(mapped), /missing keys: conv1\.weight; unexpected keys: stem\.conv1\.weight/);
    assert.deepEqual(model.loadStateDict(mapped, { strict: false }), { missingKeys: ['conv1.weight'], unexpectedKeys: ['stem.conv1.weight'] });
  });

  it('tells safetensors from .pth by content, even when the header length starts with 0x80', () => {
    const dir = tempDir('format');
    const state = { w: new Tensor(new Float32Array(1), [1]) };
    let bytes = io.serializeSafetensors(state, { pad: '' });
    for (let n = 0; bytes[0] !== 0x80; n++) bytes = io.serializeSafetensors(state, { pad: 'x'.repeat(n) });
    const path = join(dir, 'w.bin');
    writeFileSync(path, bytes);
    assert.equal(io.detectFormat(path), 'safetensors');
    assert.deepEqual(Object.keys(io.loadWeights(path).state), ['w']);
  });
});
