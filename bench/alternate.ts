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
// and the median round of each. `npm run bench` runs it for its ResNet-50 rows
// (measureAlternated, in a process of its own).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { setBackend } from '../src/backend/index.js';
import { setNativeThreads } from '../src/backend/native.js';
import { saveOnnx } from '../src/io/onnx-export.js';
import { compileInference, create, info } from '../src/models/index.js';
import { SHORTCUT_KINDS, type ShortcutKind } from '../src/models/shortcuts.js';
import { Tensor } from '../src/tensor/tensor.js';
import { lastJsonLine, measureOnnxRuntime } from './baselines.js';

export interface Alternated {
  readonly model: string;
  readonly batch: number;
  readonly threads: number;
  readonly rounds: number;
  readonly batchesPerRound: number;
  /** The median round's ms per batch. */
  readonly oursMs: number;
  readonly onnxruntimeMs: number;
  /** Per round, onnxruntime-node's ms over ours. */
  readonly ratioPerRound: readonly number[];
}

/** This script in a process of its own: its result, or why there is none. */
export function measureAlternated(model: string, batch: number, rounds: number, threads: number): Alternated | { reason: string } {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), model, String(batch), String(rounds)],
    { encoding: 'utf8', env: { ...process.env, RESNET_THREADS: String(threads) } });
  const out = lastJsonLine(r);
  return out.ok ? (out.value as Alternated) : { reason: out.reason };
}

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

async function main(name: string, batch: number, rounds: number, shortcut: ShortcutKind | undefined, threads: number): Promise<Alternated> {
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
    return {
      model: name, batch, threads, rounds, batchesPerRound: perRound,
      oursMs: +r.value.alongside!.msPerStep.toFixed(2), onnxruntimeMs: +r.value.inference.msPerStep.toFixed(2),
      ratioPerRound: r.value.ratios.map((v) => +v.toFixed(3)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [name, batchText, roundsText, shortcutText] = process.argv.slice(2);
  if (name === undefined) usage('name a model (resnet50, resnet20, ...)');
  const shortcut = SHORTCUT_KINDS.find((k) => k === shortcutText);
  if (shortcutText !== undefined && shortcut === undefined) usage(`unknown shortcut '${shortcutText}'`);
  main(name, positive(batchText, 'batch'), positive(roundsText, 'rounds', 5), shortcut,
    positive(process.env['RESNET_THREADS'], 'RESNET_THREADS', 2)).then(
    (r) => console.log(JSON.stringify(r)),
    (e: unknown) => {
      console.error(`alternate: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    });
}
