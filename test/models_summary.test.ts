// `resnet summary`: per-layer output shapes, parameters and MACs, and the totals
// torchvision's model card gives (ResNet-50: 25,557,032 parameters, 4.09 GMACs).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { backend } from '../src/backend/index.js';
import * as models from '../src/models/index.js';
import { readCounts } from './models_fixture_io.js';

const counts = readCounts();
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

test('ResNet-50 at 224x224: 25,557,032 parameters and 4,089,184,256 MACs, as counted on torchvision', () => {
  const model = models.create('resnet50');
  const before = backend();
  const s = models.summarize(model, [224, 224, 3]);
  assert.equal(backend(), before, 'the backend is restored');
  assert.equal(model.training, true, 'the training mode is restored');
  assert.equal(Object.hasOwn(model.conv1, 'forward'), false, 'no layer stays instrumented');
  assert.equal(s.totalParams, 25_557_032);
  assert.equal(s.totalMacs, counts.macs['resnet50@224']);
  assert.equal(s.totalMacs, 4_089_184_256);
  // Every parameter sits in exactly one listed layer.
  assert.equal(s.layers.reduce((n, l) => n + l.params, 0), s.totalParams);
  const names = s.layers.map((l) => l.name);
  assert.equal(names[0], 'conv1');
  assert.equal(names.at(-1), 'fc');
  assert.equal(new Set(names).size, names.length);
  // The stem, 16 bottlenecks x 3 and 4 projections: 53 convolutions, each with its BN.
  assert.equal(s.layers.filter((l) => l.type === 'Conv2d').length, 53);
  assert.equal(s.layers.filter((l) => l.type === 'BatchNorm2d').length, 53);
  const at = (name: string): models.LayerSummary => s.layers.find((l) => l.name === name)!;
  assert.deepEqual(at('conv1').outputShape, [1, 112, 112, 64]);
  assert.equal(at('conv1').macs, 112 * 112 * 64 * 3 * 7 * 7);
  assert.deepEqual(at('maxpool').outputShape, [1, 56, 56, 64]);
  assert.deepEqual(at('layer2.0.downsample.0').outputShape, [1, 28, 28, 512]);
  assert.deepEqual(at('layer4.2.bn3').outputShape, [1, 7, 7, 2048]);
  assert.equal(at('fc').macs, 2048 * 1000);
});

test('ResNet-18 MACs and the option-A shortcut row of ResNet-20', () => {
  assert.equal(models.summarize(models.create('resnet18'), [224, 224, 3]).totalMacs, counts.macs['resnet18@224']);
  const s = models.summarize(models.create('resnet20'), [32, 32, 3]);
  const pad = s.layers.find((l) => l.name === 'layer2.0.downsample')!;
  assert.equal(pad.type, 'ZeroPadShortcut');
  assert.deepEqual(pad.outputShape, [1, 16, 16, 32]);
  assert.equal(pad.params, 0);
  // ResNet-20 at 32x32: stem 32*32*16*27 = 442,368; 18 3x3 convs of 2,359,296 MACs
  // each (32*32*16*16*9 = 16*16*32*32*9 = 8*8*64*64*9), except that the two stride-2
  // ones see half the input channels (-1,179,648 each); fc 64*10. The ~41M of CIFAR tables.
  assert.equal(s.totalMacs, 442_368 + 18 * 2_359_296 - 2 * 1_179_648 + 640);
  assert.equal(s.totalMacs, 40_551_040);
});

test('`resnet summary resnet50` prints the table with 25,557,032 parameters and 4.09 GMACs', () => {
  const out = execFileSync(process.execPath, [CLI, 'summary', 'resnet50'], { encoding: 'utf8' });
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0]!, /^resnet50: ResNet-50/);
  assert.match(out, /^layer2\.0\.downsample\.0\s+Conv2d\s+\[1, 28, 28, 512\]\s+131,072\s+102,760,448$/m);
  assert.equal(lines.at(-2), 'Total parameters: 25,557,032');
  assert.equal(lines.at(-1), 'Total MACs: 4,089,184,256 (4.09 GMACs)');
});

test('`resnet summary` with --input and --num-classes; bad arguments exit 2 with one line', () => {
  const out = execFileSync(process.execPath, [CLI, 'summary', 'resnet20', '--input', '1x28x28', '--num-classes', '7'], { encoding: 'utf8' });
  assert.match(out, /input 1x28x28 \(NHWC \[1, 28, 28, 1\]\)/);
  assert.match(out, /^conv1\s+Conv2d\s+\[1, 28, 28, 16\]\s+144\s/m);
  assert.match(out, /^fc\s+Linear\s+\[1, 7\]\s+455\s/m);
  for (const [args, message] of [
    [['summary', 'resnet19'], /^resnet: unknown model 'resnet19'\. Did you mean resnet14 or resnet18\?/],
    [['summary', 'resnet20', '--input', '3x32'], /^resnet: --input must be CxHxW/],
    [['summary', 'resnet20', '--shortcut', 'D'], /^resnet: --shortcut must be one of A, B, C, none/],
  ] as const) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trimEnd().split('\n').filter((l) => l.startsWith('resnet:')).length, 1);
  }
});
