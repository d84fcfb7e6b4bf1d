// Our compiled inference against onnxruntime-node on our own ONNX export of the same
// model, in rounds alternated within one process, so that the machine's drift falls on
// both alike:
//
//   node dist/bench/alternate.js <model> <batch> [rounds] [shortcut]
//   node dist/bench/alternate.js resnet50 16 5
//   node dist/bench/alternate.js resnet20 128 5 B      # the ResNet-20 of `npm run bench`
//
// Two threads each (RESNET_THREADS sets another count for both), wall clock, the model's
// own input size, random weights. Each round times onnxruntime-node and then ours over
// the same batches (about a second of ours a round, 3 to 15 batches); the line printed
// gives each round's ratio (onnxruntime-node's time over ours: above 1, ours is faster)
// and the median round of each.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { setBackend } from '../src/backend/index.js';
import { setNativeThreads } from '../src/backend/native.js';
import { saveOnnx } from '../src/io/onnx-export.js';
import { compileInference, create, info } from '../src/models/index.js';
import { SHORTCUT_KINDS } from '../src/models/shortcuts.js';
import { Tensor } from '../src/tensor/tensor.js';
import { measureOnnxRuntime } from './baselines.js';

function usage(why: string): never {
  console.error(`alternate: ${why}\nusage: node dist/bench/alternate.js <model> <batch> [rounds] [shortcut: ${SHORTCUT_KINDS.join(', ')}]`);
  process.exit(2);
}

function positive(text: string | undefined, name: string, fallback?: number): number {
  if (text === undefined && fallback !== undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) usage(`${name} must be a positive integer, got ${text ?? 'nothing'}`);
  return n;
}

const [name, batchText, roundsText, shortcutText] = process.argv.slice(2);
if (name === undefined) usage('name a model (resnet50, resnet20, ...)');
const batch = positive(batchText, 'batch');
const rounds = positive(roundsText, 'rounds', 5);
const shortcut = SHORTCUT_KINDS.find((k) => k === shortcutText);
if (shortcutText !== undefined && shortcut === undefined) usage(`unknown shortcut '${shortcutText}'`);
const threads = positive(process.env['RESNET_THREADS'], 'RESNET_THREADS', 2);

const { imageSize: [h, w], defaultNumClasses } = info(name);
setBackend('native');
setNativeThreads(threads);
const model = create(name, { numClasses: defaultNumClasses, inChannels: 3, seed: 0, shortcut });
model.eval();
// The same values as measureOnnxRuntime's input, NHWC here.
const data = new Float32Array(batch * h * w * 3);
for (let n = 0; n < batch; n++) {
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < h * w; p++) data[(n * h * w + p) * 3 + c] = Math.sin((n * 3 + c) * h * w + p);
  }
}
const x = new Tensor(data, [batch, h, w, 3]);
const run = compileInference(model);
run(x); // traced, compiled and packed on the first call
const t0 = performance.now();
run(x);
const perBatch = performance.now() - t0;
const perRound = Math.max(3, Math.min(15, Math.round(1000 / perBatch)));

const dir = mkdtempSync(join(tmpdir(), 'resnet-alternate-'));
try {
  const path = join(dir, 'model.onnx');
  saveOnnx(path, model, { imageSize: [h, w] });
  const workload = { batch, clock: 'wall' as const, warmup: 2, trainSteps: 0, inferSteps: perRound * rounds };
  const r = await measureOnnxRuntime(path, workload, threads, () => run(x), [h, w], rounds);
  if (!r.ok) usage(r.reason);
  console.log(JSON.stringify({
    model: name, batch, threads, rounds, batchesPerRound: perRound,
    oursMs: +r.value.alongside!.msPerStep.toFixed(2), onnxruntimeMs: +r.value.inference.msPerStep.toFixed(2),
    ratioPerRound: r.value.ratios.map((v) => +v.toFixed(3)),
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
