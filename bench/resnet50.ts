// ResNet-50 inference (224x224, eval mode) for `npm run bench -- --resnet50-rows`: each
// contender runs in a process of its own, so that each one's peak RSS is its own:
// resnet-ts compiled (BN folded, post-ops fused, weights packed once) and eager,
// onnxruntime-node on resnet-ts's ONNX export, PyTorch in both layouts. Run as a script
// (node dist/bench/resnet50.js <contender> <batch> <steps> <threads> [onnx path]) it
// measures one contender and prints one JSON line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { setBackend } from '../src/backend/index.js';
import { setNativeThreads } from '../src/backend/native.js';
import { saveOnnx } from '../src/io/onnx-export.js';
import { compileInference } from '../src/models/index.js';
import { ResNet } from '../src/models/resnet.js';
import { create as createModel } from '../src/models/registry.js';
import { Rng } from '../src/tensor/random.js';
import { noGrad, Tensor } from '../src/tensor/tensor.js';
import { lastJsonLine, packageRoot, PYTHON } from './baselines.js';
import { median, now, type Workload } from './resnet20.js';

type Clock = Workload['clock'];

export const RESNET50_CONTENDERS = ['ours-compiled', 'ours-eager', 'onnxruntime-node', 'torch-nchw', 'torch-channels_last'] as const;
export type ResNet50Contender = (typeof RESNET50_CONTENDERS)[number];

export interface ResNet50Result {
  readonly contender: ResNet50Contender;
  /** e.g. "onnxruntime-node 1.30.0", "PyTorch 1.13.1 channels_last". */
  readonly label: string;
  readonly batch: number;
  /** Median over the timed batches. */
  readonly msPerBatch: number;
  readonly imgPerS: number;
  /** Peak resident memory of the contender's process. */
  readonly peakRssMb: number;
}

function buildModel(): ResNet {
  const m = createModel('resnet50', { numClasses: 1000, inChannels: 3, seed: 0 });
  if (!(m instanceof ResNet)) throw new Error('bench: resnet50 is not a ResNet');
  return m.eval();
}

/** Random images, the same values whichever layout reads them. */
function input(batch: number): Float32Array {
  const rng = new Rng(3);
  return Float32Array.from({ length: batch * 224 * 224 * 3 }, () => rng.normal());
}

async function timeSteps(step: () => unknown | Promise<unknown>, warmup: number, steps: number, clock: Clock): Promise<number> {
  for (let i = 0; i < warmup; i++) await step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = now(clock);
    await step();
    times.push(now(clock) - t0);
  }
  return median(times);
}

/** Measures one contender in this process (the child side). */
async function runChild(contender: ResNet50Contender, batch: number, steps: number, threads: number, clock: Clock,
  onnxPath: string | undefined): Promise<ResNet50Result> {
  const warmup = 2;
  let label: string;
  let ms: number;
  if (contender === 'onnxruntime-node') {
    if (!onnxPath) throw new Error('bench: onnxruntime-node needs the ONNX path');
    const ort = await import('onnxruntime-node');
    // Its threads wait passively, as ours (OMP_WAIT_POLICY=PASSIVE) and PyTorch's here:
    // spinning threads on a shared machine would hold the cores the busy one needs.
    const session = await ort.InferenceSession.create(onnxPath, {
      intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'],
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const feeds = { [session.inputNames[0] ?? 'input']: new ort.Tensor('float32', input(batch), [batch, 3, 224, 224]) };
    ms = await timeSteps(() => session.run(feeds), warmup, steps, clock);
    label = `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common ?? '?'}`;
  } else {
    setBackend('native');
    setNativeThreads(threads);
    const x = new Tensor(input(batch), [batch, 224, 224, 3]);
    if (contender === 'ours-compiled') {
      const run = compileInference(buildModel());
      ms = await timeSteps(() => run(x), warmup, steps, clock);
      label = 'resnet-ts compiled';
    } else {
      const model = buildModel();
      ms = await timeSteps(() => noGrad(() => model.forward(x)), warmup, steps, clock);
      label = 'resnet-ts eager';
    }
  }
  return { contender, label, batch, msPerBatch: ms, imgPerS: (batch * 1000) / ms, peakRssMb: peakRssMb() };
}

/**
 * This process's peak RSS in MB: VmHWM, the high-water mark of its own address space.
 * Not getrusage's maxRSS: on Linux a child started by fork + exec inherits in it the
 * RSS its parent had at the fork (the bench's parent holds several hundred MB).
 */
function peakRssMb(): number {
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!hwm) throw new Error('bench: /proc/self/status has no VmHWM line (peak RSS needs Linux)');
  return Number(hwm[1]) / 1024;
}

function isResult(v: unknown): v is ResNet50Result {
  return typeof v === 'object' && v !== null && typeof Reflect.get(v, 'msPerBatch') === 'number' &&
    typeof Reflect.get(v, 'peakRssMb') === 'number';
}

function runPython(layout: 'nchw' | 'channels_last', batch: number, steps: number, threads: number, clock: Clock): ResNet50Result | string {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const env = { ...process.env, OMP_WAIT_POLICY: process.env['OMP_WAIT_POLICY'] ?? 'PASSIVE' };
  const r = spawnSync(PYTHON, [join(packageRoot(), 'bench', 'torch_resnet50.py'), '--threads', String(threads),
    '--batch', String(batch), '--layout', layout, '--steps', String(steps), '--clock', clock], { encoding: 'utf8', env });
  const out = lastJsonLine(r);
  if (!out.ok) return out.reason;
  const v = out.value;
  if (typeof v !== 'object' || v === null) return 'the PyTorch script printed no result';
  const ms = Number(Reflect.get(v, 'ms_per_step'));
  return {
    contender: layout === 'nchw' ? 'torch-nchw' : 'torch-channels_last', label: `PyTorch ${String(Reflect.get(v, 'torch'))} ${layout}`,
    batch, msPerBatch: ms, imgPerS: (batch * 1000) / ms, peakRssMb: Number(Reflect.get(v, 'peak_rss_mb')),
  };
}

/**
 * Every contender at one batch size, each in its own process, in the order given;
 * a contender that cannot run gives a reason instead of a result.
 */
export function measureResNet50(contenders: readonly ResNet50Contender[], batch: number, steps: number,
  threads: number, clock: Clock): (ResNet50Result | { contender: ResNet50Contender; reason: string })[] {
  const dir = mkdtempSync(join(tmpdir(), 'resnet50-bench-'));
  try {
    const onnxPath = join(dir, 'resnet50.onnx');
    if (contenders.includes('onnxruntime-node')) saveOnnx(onnxPath, buildModel(), { imageSize: [224, 224] });
    return contenders.map((c) => {
      if (c === 'torch-nchw' || c === 'torch-channels_last') {
        const r = runPython(c === 'torch-nchw' ? 'nchw' : 'channels_last', batch, steps, threads, clock);
        return typeof r === 'string' ? { contender: c, reason: r } : r;
      }
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), c, String(batch), String(steps), String(threads), clock, onnxPath],
        { encoding: 'utf8' });
      const out = lastJsonLine(r);
      if (!out.ok) return { contender: c, reason: out.reason };
      return isResult(out.value) ? out.value : { contender: c, reason: 'the child printed no result' };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [contender, batch, steps, threads, clock, onnxPath] = process.argv.slice(2);
  const c = RESNET50_CONTENDERS.find((k) => k === contender);
  if (!c) throw new Error(`bench/resnet50: unknown contender '${String(contender)}'`);
  if (clock !== 'wall' && clock !== 'cpu') throw new Error(`bench/resnet50: unknown clock '${String(clock)}'`);
  runChild(c, Number(batch), Number(steps), Number(threads), clock, onnxPath).then(
    (r) => console.log(JSON.stringify(r)),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : String(e));
      process.exit(1);
    });
}
