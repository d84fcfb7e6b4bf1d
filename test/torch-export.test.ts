// `resnet export --format pytorch`: the generated module, loaded by PyTorch
// (/usr/bin/python3 with torch, which CI installs as Debian's python3-torch), has our
// state dict key for key and shape for shape and reproduces our logits, in eval mode and
// in training mode (batch statistics), for every family of builders.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { io, models, noGrad, randn } from '../src/index.js';
import { assertClose } from './helpers/fixtures.js';
import { randomiseForExport } from './helpers/onnx-run.js';

const PYTHON = '/usr/bin/python3';
const TOL = { rtol: 1e-4, atolScale: 5e-5 };
/**
 * Training mode normalises with the batch's statistics; where the last stage is 1x1 a
 * channel's variance is over 4 values, which magnifies the float32 rounding differences.
 */
const TRAIN_TOL = { rtol: 1e-3, atolScale: 2e-4 };

/** Every family: v1 with option A, B and C shortcuts, plain, pre-activation (basic and bottleneck), wide, ImageNet v1 (basic and bottleneck). */
const CASES: { name: string; shortcut?: 'A' | 'B' | 'C'; size: number }[] = [
  { name: 'resnet20', shortcut: 'A', size: 8 },
  { name: 'resnet20', shortcut: 'B', size: 8 },
  { name: 'resnet20', shortcut: 'C', size: 8 },
  { name: 'plain20', size: 8 },
  { name: 'preact_resnet20', size: 8 },
  { name: 'preact_resnet164', size: 8 },
  { name: 'wide_resnet16_8', size: 8 },
  { name: 'resnet18', size: 32 },
  { name: 'resnet50', size: 32 },
  { name: 'preact_resnet18', size: 32 },
];

// For each case folder: the state dict's names and shapes, eval logits and training-mode
// logits of x.bin (NHWC float32, turned to NCHW), as JSON on stdout.
const CHECK_PY = `
import json, sys, importlib.util, torch
out = {}
for folder, n, h, w, c in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location("m", folder + "/model.py")
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    net = m.load()
    raw = open(folder + "/x.bin", "rb").read()
    x = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(n, h, w, c).permute(0, 3, 1, 2)
    with torch.no_grad():
        ev = net(x)
        net.train()
        tr = net(x)
    out[folder] = {"keys": {k: list(v.shape) for k, v in net.state_dict().items()},
                   "eval": ev.flatten().tolist(), "train": tr.flatten().tolist(),
                   "counters": sorted({int(v) for k, v in net.named_buffers() if k.endswith("num_batches_tracked")})}
print(json.dumps(out))
`;

describe('PyTorch export: the generated module reproduces our logits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'torch-export-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('every builder family, eval and training mode, state dict key for key', () => {
    const expected = CASES.map((c, i) => {
      const model = models.create(c.name, { seed: 10 + i, numClasses: 10, ...(c.shortcut ? { shortcut: c.shortcut } : {}) });
      randomiseForExport(model, 20 + i);
      const x = randn([4, c.size, c.size, 3], { seed: 30 + i });
      const folder = join(dir, `${c.name}-${c.shortcut ?? ''}`);
      io.saveTorchExport(folder, model, { modelName: c.name, imageSize: [c.size, c.size] });
      writeFileSync(join(folder, 'x.bin'), new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength));
      const evalLogits = noGrad(() => model.forward(x));
      model.train();
      const trainLogits = noGrad(() => model.forward(x));
      const keys = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, [...t.shape]]));
      return { c, folder, x, evalLogits, trainLogits, keys };
    });
    const stdout = execFileSync(PYTHON, ['-c', CHECK_PY, JSON.stringify(expected.map((e) => [e.folder, ...e.x.shape]))],
      { encoding: 'utf8', maxBuffer: 64 << 20 });
    const got = JSON.parse(stdout) as Record<string, { keys: Record<string, number[]>; eval: number[]; train: number[]; counters: number[] }>;
    for (const e of expected) {
      const what = `${e.c.name}${e.c.shortcut ? ` (option ${e.c.shortcut})` : ''}`;
      const g = got[e.folder]!;
      assert.deepEqual(Object.keys(g.keys).sort(), Object.keys(e.keys).sort(), `${what}: state-dict keys`);
      for (const [k, shape] of Object.entries(e.keys)) assert.deepEqual(g.keys[k], shape, `${what}: shape of ${k}`);
      assertClose(g.eval, e.evalLogits.data, `${what}: eval logits, PyTorch vs ours`, e.evalLogits.shape, TOL);
      assertClose(g.train, e.trainLogits.data, `${what}: training-mode logits, PyTorch vs ours`, e.trainLogits.shape, TRAIN_TOL);
      // One training-mode forward pass counts one batch, as torch.nn.BatchNorm2d does.
      assert.deepEqual(g.counters, [1], `${what}: num_batches_tracked of every BN after one training forward`);
    }
  });
});
