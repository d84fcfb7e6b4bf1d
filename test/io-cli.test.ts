// `resnet convert` and `resnet export` as a user runs them: real files in, real files
// out, exit status 2 with one line for files we refuse.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { io, models, noGrad, randn, Tensor } from '../src/index.js';
import { saveModelFile } from '../src/train/model-file.js';
import { assertClose, FLOAT32_TOL } from './helpers/fixtures.js';
import { assertSameBits, ioFixturePath, loadIoFixture, logitsInputNchw, nchwToNhwc, tempDir, unpackedFixture } from './helpers/io-fixtures.js';
import { randomiseForExport, runOnnx } from './helpers/onnx-run.js';

const { onnx } = onnxProto;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function resnet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function opTypes(path: string): Set<string> {
  const m = onnx.ModelProto.decode(readFileSync(path));
  return new Set((m.graph?.node ?? []).map((n) => n.opType ?? ''));
}

describe('resnet convert', () => {
  it('turns a torch.save .pth into safetensors with the same tensors', () => {
    const out = join(tempDir('cli-convert'), 'small.safetensors');
    const r = resnet('convert', ioFixturePath('small.pth'), out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /converted 13 tensors/);
    const before = io.loadPth(ioFixturePath('small.pth'));
    const after = io.readSafetensors(out);
    assert.equal(after.metadata['source'], 'small.pth');
    for (const [k, t] of Object.entries(before)) assertSameBits(after.tensors[k]!.data, t.data, k);
  });

  it('checks the weights against --model and names the mismatch', () => {
    const dir = tempDir('cli-convert-model');
    const pth = unpackedFixture('resnet18.pth');
    const ok = resnet('convert', pth, join(dir, 'r18.safetensors'), '--model', 'resnet18');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /checked against resnet18/);
    const bad = resnet('convert', pth, join(dir, 'r50.safetensors'), '--model', 'resnet50');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^resnet: .*resnet18\.pth: the weights do not fit resnet50: .*missing keys: .*conv3/);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    assert.equal(existsSync(join(dir, 'r50.safetensors')), false);
  });

  it('refuses a pickle that runs a command, in one line, and runs nothing', () => {
    rmSync('/tmp/resnet-ts-evil-pickle-ran', { force: true });
    const r = resnet('convert', ioFixturePath('evil_os_system.pth'), join(tempDir('cli-evil'), 'x.safetensors'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^resnet: .*evil_os_system\.pth: refused: the pickle asks for the Python global "posix\.system"/);
    assert.equal(existsSync('/tmp/resnet-ts-evil-pickle-ran'), false);
  });
});

describe('resnet export', () => {
  it('exports torchvision resnet18 weights whose ONNX logits are torchvision\'s', async () => {
    const out = join(tempDir('cli-export'), 'resnet18.onnx');
    const r = resnet('export', unpackedFixture('resnet18.safetensors'), '--model', 'resnet18', '--format', 'onnx', '-o', out,
      '--mean', '0.485,0.456,0.406', '--std', '0.229,0.224,0.225');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote .*resnet18\.onnx: resnet18, ONNX opset 17, NCHW input \[batch, 3, height, width\], 1000 outputs, BatchNorm folded/);
    assert.ok(!opTypes(out).has('BatchNormalization'));
    const x = nchwToNhwc(logitsInputNchw(2, 3, 64, 64), 2, 3, 64, 64);
    const got = await runOnnx(readFileSync(out), new Tensor(x, [2, 64, 64, 3]), 'NCHW');
    const expected = loadIoFixture('resnet_logits');
    assertClose(got.data, expected.array('resnet18'), 'onnxruntime on the exported torchvision weights', [2, 1000], FLOAT32_TOL);
  });

  it('honours --nhwc and --no-fold-bn', () => {
    const out = join(tempDir('cli-export-nhwc'), 'r18.onnx');
    const r = resnet('export', unpackedFixture('resnet18.pth'), '--model', 'resnet18', '--nhwc', '--no-fold-bn', '-o', out, '--image-size', '64');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /NHWC input \[batch, 64, 64, 3\].*BatchNorm kept/);
    const ops = opTypes(out);
    assert.ok(ops.has('BatchNormalization') && ops.has('Transpose'));
  });

  it('takes model, classes and normalisation from a `resnet train` model file', async () => {
    const dir = tempDir('cli-export-card');
    const model = models.create('resnet20', { numClasses: 3, inChannels: 1, seed: 5 });
    randomiseForExport(model, 5);
    const file = join(dir, 'best.safetensors');
    saveModelFile(file, model, {
      model: 'resnet20', width: 1, numClasses: 3, inChannels: 1, imageSize: [8, 8], mean: [0.5], std: [0.25],
      classNames: ['shirt', 'shoe', 'bag'], dataset: 'fashion-mnist',
    });
    const out = join(dir, 'best.onnx');
    const r = resnet('export', file, '-o', out);
    assert.equal(r.status, 0, r.stderr);
    const m = onnx.ModelProto.decode(readFileSync(out));
    const meta = Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]));
    assert.equal(meta['model_name'], 'resnet20');
    assert.deepEqual(JSON.parse(meta['class_names']!), ['shirt', 'shoe', 'bag']);
    assert.deepEqual(JSON.parse(meta['normalization']!), { mean: [0.5], std: [0.25] });
    const x = randn([2, 8, 8, 1], { seed: 9 });
    const got = await runOnnx(readFileSync(out), x, 'NCHW');
    assertClose(got.data, noGrad(() => model.forward(x)).data, 'exported model file', [2, 3], FLOAT32_TOL);
  });

  it('asks for --model when the weights do not name one, and rejects unknown formats', () => {
    const dir = tempDir('cli-export-errors');
    const weights = join(dir, 'w.safetensors');
    writeFileSync(weights, io.serializeSafetensors(models.create('resnet20', { seed: 1 }).stateDict()));
    const noModel = resnet('export', weights);
    assert.equal(noModel.status, 2);
    assert.match(noModel.stderr, /does not say which model it holds; pass --model/);
    const badFormat = resnet('export', weights, '--model', 'resnet20', '--format', 'tflite');
    assert.equal(badFormat.status, 2);
    assert.match(badFormat.stderr, /^resnet: --format tflite: expected onnx or pytorch\n$/);
  });
});
