// The torch engine (`resnet train --engine torch`): the same recipe trained by PyTorch's
// DistributedDataParallel under torchrun, for runs beyond one machine. resnet-ts stays the
// front end: it resolves the recipe (data, subsets, normalisation, initial weights, the
// learning rate of every step) with prepareRun, writes the network as a generated
// torch.nn.Module (src/io/torch-export.ts), launches python/resnet_torch_train.py on
// every process and turns the JSON lines rank 0 prints into its own run folder files.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, rmSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageDataset } from '../data/dataset.js';
import { Compose, RandomCrop, RandomHorizontalFlip } from '../data/transforms.js';
import { saveTorchExport, TORCH_WEIGHTS_FILE } from '../io/torch-export.js';
import { readSafetensors } from '../io/safetensors.js';
import { ConfigError, DEFAULT_CONFIG, flagName, type TrainConfig } from './config.js';
import { saveModelFile } from './model-file.js';
import type { RunFolder } from './run-folder.js';
import type { PreparedRun } from './setup.js';
import type { EpochRecord, StepProgress } from './trainer.js';

/** The oldest PyTorch the engine is tested with (Debian bookworm's python3-torch). */
export const MIN_TORCH = [1, 13] as const;
export const TORCH_SCRIPT = fileURLToPath(new URL('../../../python/resnet_torch_train.py', import.meta.url));
/** torchrun, mended where torch 1.13 meets Python 3.11. */
const TORCHRUN = fileURLToPath(new URL('../../../python/resnet_torchrun.py', import.meta.url));

/** The Python that runs torch: $RESNET_PYTHON, else python3 on the PATH. */
export function pythonCommand(): string {
  return process.env['RESNET_PYTHON'] || 'python3';
}

/** Python or torch is missing or too old: one line naming what to install. */
export class TorchEngineError extends Error {
  override readonly name = 'TorchEngineError';
}

const INSTALL = 'install PyTorch >= 1.13 for it (Debian/Ubuntu: apt-get install python3-torch; elsewhere: pip install torch), ' +
  'or point RESNET_PYTHON at a Python that has it';

/** The torch version `python` has; a TorchEngineError when there is none or it is too old. */
export function checkTorch(python = pythonCommand()): string {
  const r = spawnSync(python, ['-c', 'import torch, torch.distributed as d, sys; sys.stdout.write(torch.__version__ + " " + str(d.is_available()))'],
    { encoding: 'utf8', timeout: 120_000 });
  if (r.error && 'code' in r.error && r.error.code === 'ENOENT') {
    throw new TorchEngineError(`--engine torch: ${python} was not found; install Python 3 and ${INSTALL}`);
  }
  if (r.status !== 0) {
    throw new TorchEngineError(`--engine torch: ${python} cannot import torch; ${INSTALL}`);
  }
  const [version = '', distributed] = r.stdout.trim().split(' ');
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m || Number(m[1]) < MIN_TORCH[0] || (Number(m[1]) === MIN_TORCH[0] && Number(m[2]) < MIN_TORCH[1])) {
    throw new TorchEngineError(`--engine torch: ${python} has torch ${version || '(unknown version)'}, older than ${MIN_TORCH.join('.')}; ${INSTALL}`);
  }
  if (distributed !== 'True') throw new TorchEngineError(`--engine torch: the torch of ${python} was built without torch.distributed; ${INSTALL}`);
  return version;
}

/** Recipe fields the torch engine does not implement, with the value it accepts. */
const NOT_IMPLEMENTED: { key: keyof TrainConfig; ok: (c: TrainConfig) => boolean }[] = [
  { key: 'tta', ok: (c) => c.tta === 'none' },
  { key: 'onNan', ok: (c) => c.onNan === 'stop' },
  { key: 'randomErasing', ok: (c) => c.randomErasing === 0 },
  { key: 'mixup', ok: (c) => c.mixup === 0 },
  { key: 'cutmix', ok: (c) => c.cutmix === 0 },
  { key: 'precision', ok: (c) => c.precision === 'fp32' },
  { key: 'freeze', ok: (c) => c.freeze === 'none' },
  { key: 'backboneLrScale', ok: (c) => c.backboneLrScale === 1 },
  { key: 'fineTuneEpochs', ok: (c) => c.fineTuneEpochs === null },
  { key: 'replicas', ok: (c) => c.replicas === 1 },
];

/** Refuse, by name, a setting the torch engine would silently ignore. */
export function checkTorchRecipe(c: TrainConfig, label: (k: keyof TrainConfig) => string = (k) => `--${flagName(k)}`): void {
  for (const { key, ok } of NOT_IMPLEMENTED) {
    if (!ok(c)) {
      throw new ConfigError(`${label(key)} ${JSON.stringify(c[key])}: the torch engine does not implement it; leave it at ` +
        `${JSON.stringify(DEFAULT_CONFIG[key])} or train with --engine resnet`);
    }
  }
}

export interface LaunchOptions {
  /** Processes on this machine (torchrun --nproc_per_node); default 1. */
  nproc: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  /** CPU threads of each process (default: the cores / nproc). */
  threads?: number;
}

/** The events python/resnet_torch_train.py prints, one JSON object a line. */
export type TorchEvent =
  | { event: 'start'; world: number; device: string; backend: string }
  | { event: 'resumed'; path: string | null; step: number; epoch: number; batchInEpoch: number }
  | ({ event: 'step' } & StepProgress)
  | { event: 'eval'; done: number; total: number }
  /** `pending`: the written checkpoint, under a temporary name until resnet renames it to `path`. */
  | { event: 'checkpoint'; step: number; path: string; pending: string }
  | { event: 'epoch'; record: EpochRecord }
  | { event: 'weights'; which: 'best' | 'final'; path: string; epoch: number; step: number }
  | { event: 'note' | 'diverged'; text: string }
  | { event: 'done'; status: 'finished' | 'stopped'; state: TorchState; test: TorchEval | null };

export interface TorchEval { loss: number; top1: number; top5: number; count: number; correct: number; perClass: (number | null)[] }
export interface TorchState { epoch: number; batchInEpoch: number; step: number; best: { top1: number; epoch: number } | null }

async function writeSplit(folder: string, name: string, ds: ImageDataset): Promise<object> {
  const images = join(folder, `${name}-images.u8`);
  const labels = join(folder, `${name}-labels.i32`);
  const per = ds.height * ds.width * ds.channels;
  const chunk = Math.max(1, Math.floor((64 << 20) / per));
  const fd = openSync(images, 'w');
  try {
    for (let start = 0; start < ds.length; start += chunk) {
      const count = Math.min(chunk, ds.length - start);
      const out = new Uint8Array(count * per);
      await ds.readImages(Array.from({ length: count }, (_, i) => start + i), out);
      writeSync(fd, out);
    }
  } finally {
    closeSync(fd);
  }
  const fdl = openSync(labels, 'w');
  try {
    writeSync(fdl, new Uint8Array(ds.labels.buffer, ds.labels.byteOffset, ds.labels.byteLength));
  } finally {
    closeSync(fdl);
  }
  return { images, labels, count: ds.length, height: ds.height, width: ds.width, channels: ds.channels };
}

/** The learning rate of every step, as the schedule of the recipe gives it (the schedule is used up). */
function learningRates(p: PreparedRun): number[] {
  const lrs: number[] = [];
  for (let s = 0; s < p.totalSteps; s++) {
    lrs.push(p.optimizer.paramGroups[0]!.lr);
    p.scheduler.step();
  }
  return lrs;
}

/** The folder of a run the torch engine keeps its job, module and data in. */
export function torchFolder(run: RunFolder): string {
  return join(run.dir, 'torch');
}

/** Write the job: the module with the initial weights, the data and the recipe. Returns the job file. */
export async function writeTorchJob(p: PreparedRun, run: RunFolder, resume: boolean, launch: LaunchOptions): Promise<{ job: string; stopFile: string }> {
  const folder = resolve(torchFolder(run));
  mkdirSync(folder, { recursive: true });
  const card = p.card;
  const exported = saveTorchExport(folder, p.model as Parameters<typeof saveTorchExport>[1], {
    modelName: card.model, width: card.width, normalization: { mean: card.mean, std: card.std }, imageSize: card.imageSize,
    classNames: card.classNames, dataset: card.dataset,
  });
  const c = p.config;
  const data = {
    train: await writeSplit(folder, 'train', p.train),
    eval: p.evalSet ? await writeSplit(folder, p.evalSplit, p.evalSet) : null,
    test: p.test && p.evalSplit === 'val' ? await writeSplit(folder, 'test', p.test) : null,
    evalSplit: p.evalSplit,
  };
  const stopFile = join(folder, 'stop');
  rmSync(stopFile, { force: true });
  // The augmentation prepareRun chose for the data set (its defaults resolved).
  const steps = p.trainTransform instanceof Compose ? p.trainTransform.transforms : [p.trainTransform];
  const crop = steps.find((t): t is RandomCrop => t instanceof RandomCrop);
  const job = {
    module: exported.module, init: join(folder, TORCH_WEIGHTS_FILE), runDir: resolve(run.dir), data, stopFile, resume,
    config: c, numClasses: card.numClasses, totalSteps: p.totalSteps, stepsPerEpoch: p.stepsPerEpoch,
    cropPadding: crop?.padding ?? 0, flip: steps.some((t) => t instanceof RandomHorizontalFlip),
    lrs: learningRates(p), threads: launch.threads ?? null,
  };
  const path = join(folder, 'job.json');
  run.writeJson(path, job);
  return { job: path, stopFile };
}

/** Turn a best/final weights file of the torch run into our model file (card and checksum). */
export function adoptWeights(p: PreparedRun, run: RunFolder, e: Extract<TorchEvent, { event: 'weights' }>): void {
  const { tensors } = readSafetensors(e.path);
  p.model.loadStateDict(tensors);
  saveModelFile(e.which === 'best' ? run.bestPath : run.finalPath, p.model, p.card, { epoch: String(e.epoch), step: String(e.step), engine: 'torch' });
  rmSync(e.path, { force: true });
}

/**
 * Launch torchrun; `onEvent` sees every event of rank 0. Resolves with the exit code; rejects with what
 * `onEvent` threw. While `stopping()` is true (the run was asked to stop by a signal, which torchrun gets
 * too when it came from the terminal) torchrun's own error lines are not shown.
 */
export function launchTorch(jobFile: string, launch: LaunchOptions, onEvent: (e: TorchEvent) => void,
  onChild: (child: ChildProcess) => void = () => {}, stopping: () => boolean = () => false): Promise<number> {
  const args = [TORCHRUN, `--nproc_per_node=${launch.nproc}`, `--nnodes=${launch.nnodes}`,
    `--node_rank=${launch.nodeRank}`, `--master_addr=${launch.masterAddr}`, `--master_port=${launch.masterPort}`,
    TORCH_SCRIPT, jobFile];
  const threads = launch.threads ?? 1;
  const child = spawn(pythonCommand(), args, {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: String(threads), PYTHONUNBUFFERED: '1' },
  });
  onChild(child);
  // An event resnet cannot carry out (a run folder file it cannot write) ends the run with that error.
  let failure: unknown = null;
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    if (failure !== null) return;
    let e: TorchEvent | null = null;
    if (line.startsWith('{')) {
      try {
        e = JSON.parse(line) as TorchEvent;
      } catch {
        e = null;
      }
    }
    if (!e || typeof e.event !== 'string') {
      process.stderr.write(`${line}\n`);
      return;
    }
    try {
      onEvent(e);
    } catch (err) {
      failure = err;
      child.kill('SIGTERM');
    }
  });
  const errors: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    errors.push(line);
    if (errors.length > 200) errors.shift();
    if (process.env['RESNET_TORCH_VERBOSE']) process.stderr.write(`${line}\n`);
  });
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (code) => {
      lines.close();
      if (failure === null && !stopping() && code !== 0 && code !== null) {
        // The Python error, not torchrun's wrapping of it.
        const shown = errors.filter((l) => /Error|error:|Traceback/.test(l)).slice(-3);
        if (shown.length && !process.env['RESNET_TORCH_VERBOSE']) process.stderr.write(`${shown.join('\n')}\n`);
      }
      if (failure !== null) fail(failure);
      else done(code ?? 1);
    });
  });
}

export function removeTorchData(run: RunFolder): void {
  const folder = torchFolder(run);
  if (!existsSync(folder)) return;
  for (const name of ['train', 'val', 'test']) {
    rmSync(join(folder, `${name}-images.u8`), { force: true });
    rmSync(join(folder, `${name}-labels.i32`), { force: true });
  }
}

