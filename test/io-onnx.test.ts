// ONNX export options and the graph itself: NCHW and NHWC inputs, BatchNorm folded or
// kept, a symbolic batch size, the opset, metadata, and the nodes each block maps to.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { io, models, nn, randn } from '../src/index.js';
import { assertClose, assertShape } from './helpers/fixtures.js';
import { tempDir } from './helpers/io-fixtures.js';
import { forwardEval, randomiseForExport, runOnnx } from './helpers/onnx-run.js';

const { onnx } = onnxProto;
const TOL = { rtol: 1e-4, atolScale: 1e-5 };

function decode(bytes: Uint8Array): InstanceType<typeof onnx.ModelProto> {
  return onnx.ModelProto.decode(bytes);
}

function opCounts(model: InstanceType<typeof onnx.ModelProto>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const node of model.graph?.node ?? []) {
    const op = node.opType ?? '';
    counts[op] = (counts[op] ?? 0) + 1;
  }
  return counts;
}

function dims(model: InstanceType<typeof onnx.ModelProto>, which: 'input' | 'output'): (number | string)[] {
  const info = model.graph?.[which]?.[0];
  return (info?.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
}

function countModules<T extends nn.Module>(root: nn.Module, type: abstract new (...args: never[]) => T): number {
  return root.namedModules().filter(([, m]) => m instanceof type).length;
}

describe('ONNX export options', () => {
  const cases = [
    { name: 'resnet20', opts: {}, size: 8 }, // option A shortcuts: Slice + Pad
    { name: 'resnet20', opts: { shortcut: 'C' as const }, size: 8 }, // a projection in every block
    { name: 'preact_resnet20', opts: {}, size: 8 },
    { name: 'preact_resnet164', opts: {}, size: 8 }, // pre-activation bottlenecks
    { name: 'plain20', opts: {}, size: 8 },
    { name: 'resnet18', opts: { inChannels: 1, numClasses: 7 }, size: 32 },
  ];
  for (const [i, c] of cases.entries()) {
    const label = `${c.name} ${JSON.stringify(c.opts)}`;
    it(`${label}: NCHW/NHWC x folded/kept BatchNorm all match our forward`, async () => {
      const model = models.create(c.name, { seed: i, ...c.opts });
      randomiseForExport(model, 50 + i);
      const x = randn([2, c.size, c.size, model.inChannels], { seed: 70 + i });
      const expected = forwardEval(model, x);
      for (const layout of ['NCHW', 'NHWC'] as const) {
        for (const foldBatchNorm of [true, false]) {
          const got = await runOnnx(io.exportOnnx(model, { layout, foldBatchNorm }), x, layout);
          assertShape(got.dims, expected.shape, label);
          assertClose(got.data, expected.data, `${label} ${layout} fold=${foldBatchNorm}`, expected.shape, TOL);
        }
      }
    });
  }

  it('folds every BatchNorm that follows a convolution and keeps the pre-activation ones', () => {
    const v1 = models.create('resnet18', { seed: 1 });
    const folded = opCounts(decode(io.exportOnnx(v1)));
    assert.equal(folded['BatchNormalization'], undefined);
    assert.equal(folded['Conv'], countModules(v1, nn.Conv2d));
    const kept = opCounts(decode(io.exportOnnx(v1, { foldBatchNorm: false })));
    assert.equal(kept['BatchNormalization'], countModules(v1, nn.BatchNorm2d));

    const v2 = models.create('preact_resnet20', { seed: 1 });
    const preFolded = opCounts(decode(io.exportOnnx(v2)));
    // Each block's bn1 and the final bn follow an addition (or the stem), so they stay.
    assert.equal(preFolded['BatchNormalization'], v2.blocks.length + 1);
    assert.equal(preFolded['Add'], v2.blocks.length);
  });

  it('maps option A shortcuts to Slice with steps and Pad on the channel axis', () => {
    const model = models.create('resnet20', { seed: 1 });
    const graph = decode(io.exportOnnx(model)).graph!;
    const counts = opCounts(decode(io.exportOnnx(model)));
    assert.equal(counts['Slice'], 2, 'two stages change shape');
    assert.equal(counts['Pad'], 2);
    const pads = (graph.initializer ?? []).find((t) => t.name === 'layer2.0.downsample.pads');
    const padValues = new BigInt64Array(Uint8Array.from(pads?.rawData ?? []).buffer);
    assert.deepEqual(Array.from(padValues, Number), [0, 8, 0, 0, 0, 8, 0, 0]);
  });

  it('has a symbolic batch, opset 17 and the metadata', async () => {
    const model = models.create('resnet20', { seed: 3, numClasses: 3 });
    randomiseForExport(model, 3);
    const bytes = io.exportOnnx(model, {
      modelName: 'resnet20', classNames: ['cat', 'dog', 'bird'],
      normalization: { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] }, metadata: { dataset: 'cifar10' },
    });
    const m = decode(bytes);
    assert.deepEqual(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 17]]);
    assert.equal(Number(m.irVersion), 8);
    assert.deepEqual(dims(m, 'input'), ['batch', 3, 'height', 'width']);
    assert.deepEqual(dims(m, 'output'), ['batch', 3]);
    const meta = Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]));
    assert.equal(meta['model_name'], 'resnet20');
    assert.deepEqual(JSON.parse(meta['class_names']!), ['cat', 'dog', 'bird']);
    assert.deepEqual(JSON.parse(meta['normalization']!), { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] });
    assert.equal(meta['input_layout'], 'NCHW');
    assert.equal(meta['dataset'], 'cifar10');
    for (const batch of [1, 3]) {
      const x = randn([batch, 8, 8, 3], { seed: batch });
      const got = await runOnnx(bytes, x, 'NCHW');
      const expected = forwardEval(model, x);
      assertShape(got.dims, [batch, 3], `batch ${batch}`);
      assertClose(got.data, expected.data, `batch ${batch}`, expected.shape, TOL);
    }
    const fixed = decode(io.exportOnnx(model, { layout: 'NHWC', imageSize: [32, 32] }));
    assert.deepEqual(dims(fixed, 'input'), ['batch', 32, 32, 3]);
  });

  it('saves atomically and rejects inconsistent options with a clear message', () => {
    const model = models.create('resnet20', { seed: 4 });
    const path = join(tempDir('onnx'), 'm.onnx');
    io.saveOnnx(path, model);
    assert.ok(readFileSync(path).equals(io.exportOnnx(model)), 'the saved file holds the export');
    assert.throws(() => io.exportOnnx(model, { classNames: ['a'] }), /1 class names for a model with 10 outputs/);
    assert.throws(() => io.exportOnnx(model, { normalization: { mean: [0], std: [1] } }), /needs 3 mean and std values/);
  });
});
