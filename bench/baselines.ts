// The reference points of the bench: PyTorch (through bench/torch_resnet20.py, when
// /usr/bin/python3 has torch) and onnxruntime-node (on an ONNX export of the same
// network made by that script).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { median, now, type Timing, type Workload } from './resnet20.js';

/** The package root: the nearest folder above this file with a package.json (works from bench/ and dist/bench/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('bench: cannot find the package root');
    dir = up;
  }
  return dir;
}

export const PYTHON = process.env['RESNET_BENCH_PYTHON'] ?? '/usr/bin/python3';

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

interface TorchLine {
  readonly kind: string;
  readonly layout?: string;
  readonly torch?: string;
  readonly ms_per_step?: number;
  readonly img_per_s?: number;
}

function isTorchLine(v: unknown): v is TorchLine {
  return typeof v === 'object' && v !== null && typeof Reflect.get(v, 'kind') === 'string';
}

/** A bench child's last line of output as JSON, or why there is none (its last line of error output, or its exit status). */
export function lastJsonLine(r: SpawnSyncReturns<string>): Outcome<unknown> {
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || last === '') {
    return { ok: false, reason: (r.stderr || r.stdout).trim().split('\n').pop() || `exit status ${String(r.status)}` };
  }
  return { ok: true, value: JSON.parse(last) as unknown };
}

function runTorchScript(args: string[]): Outcome<TorchLine[]> {
  if (!existsSync(PYTHON)) return { ok: false, reason: `${PYTHON} not found` };
  const script = join(packageRoot(), 'bench', 'torch_resnet20.py');
  // The same OpenMP wait policy as the native backend (which chooses passive unless the
  // user set one), so that both sides share the cores the same way.
  const env = { ...process.env, OMP_WAIT_POLICY: process.env['OMP_WAIT_POLICY'] ?? 'PASSIVE' };
  const r = spawnSync(PYTHON, [script, ...args], { encoding: 'utf8', maxBuffer: 16 << 20, env });
  if (r.error) return { ok: false, reason: r.error.message };
  if (r.status !== 0) {
    const last = (r.stderr || r.stdout).trim().split('\n').pop() ?? `exit status ${String(r.status)}`;
    return { ok: false, reason: last.includes('No module named') ? `${PYTHON} has no torch (${last})` : last };
  }
  const lines: TorchLine[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line.trim() === '') continue;
    const v: unknown = JSON.parse(line);
    if (isTorchLine(v)) lines.push(v);
  }
  return { ok: true, value: lines };
}

export interface TorchResult {
  readonly version: string;
  readonly layout: 'nchw' | 'channels_last';
  /** 'bf16': under torch.autocast('cpu', dtype=torch.bfloat16). */
  readonly autocast: 'none' | 'bf16';
  readonly train: Timing;
  readonly inference: Timing;
}

function timing(l: TorchLine | undefined): Timing | null {
  if (!l || l.ms_per_step === undefined || l.img_per_s === undefined) return null;
  return { msPerStep: l.ms_per_step, imgPerS: l.img_per_s };
}

/** PyTorch eager in one layout (optionally under CPU autocast to bf16), with the same threads, batch and step counts. */
export function measureTorch(layout: 'nchw' | 'channels_last', w: Workload, threads: number,
  trainSteps = w.trainSteps, autocast: 'none' | 'bf16' = 'none'): Outcome<TorchResult> {
  const r = runTorchScript(['--threads', String(threads), '--batch', String(w.batch), '--warmup', String(w.warmup),
    '--train-steps', String(trainSteps), '--infer-steps', String(w.inferSteps), '--layouts', layout, '--clock', w.clock,
    '--autocast', autocast]);
  if (!r.ok) return r;
  const info = r.value.find((l) => l.kind === 'info');
  const train = timing(r.value.find((l) => l.kind === 'train'));
  const inference = timing(r.value.find((l) => l.kind === 'inference'));
  if (!train || !inference) return { ok: false, reason: 'the PyTorch script printed no timings' };
  return { ok: true, value: { version: info?.torch ?? '?', layout, autocast, train, inference } };
}

/** Writes the network as ONNX (eval mode, NCHW input) through PyTorch's exporter. */
export function exportOnnx(path: string, batch: number): Outcome<string> {
  const r = runTorchScript(['--export-onnx', path, '--batch', String(batch)]);
  if (!r.ok) return r;
  return existsSync(path) ? { ok: true, value: path } : { ok: false, reason: 'the ONNX export wrote no file' };
}

export interface OrtResult {
  readonly version: string;
  readonly inference: Timing;
  /** `alongside`'s batches, timed in rounds alternated with onnxruntime-node's. */
  readonly alongside: Timing | null;
  /** Per round, onnxruntime-node's ms per batch over `alongside`'s (above 1: ours faster). */
  readonly ratios: readonly number[];
}

const ORT_ROUNDS = 5;

/**
 * onnxruntime-node inference of an ONNX file (NCHW input of `imageSize` images), with all
 * graph optimisations (BN folding, fusions): the median of `rounds` rounds. Where
 * `alongside` is given (one batch of ours), its rounds alternate with onnxruntime-node's,
 * so that the machine's drift over the run reaches both and their ratio holds.
 */
export async function measureOnnxRuntime(path: string, w: Workload, threads: number,
  alongside?: () => void, imageSize: readonly [number, number] = [32, 32], rounds = ORT_ROUNDS): Promise<Outcome<OrtResult>> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (e) {
    return { ok: false, reason: `onnxruntime-node not installed (${e instanceof Error ? e.message.split('\n')[0] : String(e)})` };
  }
  // Its threads wait passively, as ours (OMP_WAIT_POLICY=PASSIVE) and in the ResNet-50 rows.
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'],
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const [h, wd] = imageSize;
  const data = new Float32Array(w.batch * 3 * h * wd);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i);
  const input = new ort.Tensor('float32', data, [w.batch, 3, h, wd]);
  const feeds = { [session.inputNames[0] ?? 'input']: input };
  for (let i = 0; i < w.warmup; i++) {
    await session.run(feeds);
    alongside?.();
  }
  const perRound = Math.max(1, Math.round(w.inferSteps / rounds));
  const theirs: number[] = [];
  const ours: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t0 = now(w.clock);
    for (let i = 0; i < perRound; i++) await session.run(feeds);
    theirs.push((now(w.clock) - t0) / perRound);
    if (!alongside) continue;
    t0 = now(w.clock);
    for (let i = 0; i < perRound; i++) alongside();
    ours.push((now(w.clock) - t0) / perRound);
  }
  await session.release();
  const timing = (ms: number): Timing => ({ msPerStep: ms, imgPerS: (w.batch * 1000) / ms });
  return {
    ok: true,
    value: {
      version: ort.env.versions.node ?? ort.env.versions.common ?? '?',
      inference: timing(median(theirs)),
      alongside: alongside ? timing(median(ours)) : null,
      ratios: ours.map((ms, i) => theirs[i]! / ms),
    },
  };
}
