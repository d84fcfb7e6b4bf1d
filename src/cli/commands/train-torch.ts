// `resnet train --engine torch`: the run folder, progress line and messages of `resnet
// train`, with PyTorch DistributedDataParallel under torchrun doing the steps
// (src/train/torch-engine.ts, python/resnet_torch_train.py).
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { StepLog } from '../../experiments/step-log.js';
import type { TrainConfig } from '../../train/config.js';
import { formatDuration, ProgressLine, progressListener } from '../../train/progress.js';
import { checkOutFolder, RunFolder } from '../../train/run-folder.js';
import { prepareRun } from '../../train/setup.js';
import {
  adoptWeights, checkTorch, checkTorchRecipe, launchTorch, type LaunchOptions, removeTorchData, torchFolder, type TorchEval, type TorchEvent,
  writeTorchJob,
} from '../../train/torch-engine.js';
import type { EpochRecord } from '../../train/trainer.js';
import { commitFile } from '../../util/atomic-write.js';
import { CommandExit, UserError } from '../errors.js';

export interface TorchTrainArgs {
  config: TrainConfig;
  /** The run folder when resuming; null: a new one is made. */
  run: RunFolder | null;
  resume: boolean;
  given: (k: keyof TrainConfig) => string | null;
  label: (k: keyof TrainConfig) => string;
  flags: { progress: boolean; nproc?: string; nnodes?: string; nodeRank?: string; masterAddr?: string; masterPort?: string };
  started: number;
  say: (s: string) => void;
  epochLine: (r: EpochRecord, epochs: number, best: boolean) => string;
  newRunDir: (c: TrainConfig) => string;
  /** The run's last lines: the test line (null: no test set), report.html, the folder. */
  runEnd: (dir: string, testLine: string | null, trained: string, say: (s: string) => void) => Promise<void>;
}

function count(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) throw new UserError(`${flag} ${text}: expected an integer from ${min} to ${max}`);
  return v;
}

type LaunchFlags = Pick<TorchTrainArgs['flags'], 'nproc' | 'nnodes' | 'nodeRank' | 'masterAddr' | 'masterPort'>;
/** The flags of torchrun's launch (processes, machines, rendezvous), not of the recipe. */
export const LAUNCH_FLAGS = ['nproc', 'nnodes', 'nodeRank', 'masterAddr', 'masterPort'] as const;
/** In the run's torch folder: the launch the run was started with, which --resume takes again where not given. */
const LAUNCH_FILE = 'launch.json';
const RELAUNCH = 'delete the file and give --nproc (and the other launch flags) again';

function savedLaunch(run: RunFolder): LaunchFlags {
  const path = join(torchFolder(run), LAUNCH_FILE);
  if (!existsSync(path)) return {};
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path}: cannot read the run's launch settings (${e instanceof Error ? e.message : String(e)}); ${RELAUNCH}`);
  }
  const saved: LaunchFlags = {};
  for (const k of LAUNCH_FLAGS) {
    const value = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
    if (value === undefined) continue;
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new UserError(`${path}: ${k} must be a string or a number, got ${JSON.stringify(value)}; ${RELAUNCH}`);
    }
    saved[k] = String(value);
  }
  return saved;
}

function launchOptions(f: LaunchFlags): LaunchOptions {
  const nproc = count('--nproc', f.nproc, 1, 1, 1024);
  const nnodes = count('--nnodes', f.nnodes, 1, 1, 100_000);
  const nodeRank = count('--node-rank', f.nodeRank, 0, 0, nnodes - 1);
  const masterPort = count('--master-port', f.masterPort, 29500, 1, 65535);
  return {
    nproc, nnodes, nodeRank, masterPort, masterAddr: f.masterAddr ?? '127.0.0.1',
    threads: Math.max(1, Math.floor(cpus().length / nproc)),
  };
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

export async function trainWithTorch(a: TorchTrainArgs): Promise<void> {
  const { config, say } = a;
  // A resumed run is launched as it was, but for the flags given again.
  const given = Object.fromEntries(LAUNCH_FLAGS.filter((k) => a.flags[k] !== undefined).map((k) => [k, a.flags[k]]));
  const launch = launchOptions({ ...(a.run && a.resume ? savedLaunch(a.run) : {}), ...given });
  const version = checkTorch();
  checkTorchRecipe(config, a.label);
  let run = a.run;
  if (!run) checkOutFolder(config.out, 'run folder');
  const prepared = await prepareRun(config, { given: a.given });
  if (!run) run = RunFolder.create(a.newRunDir(config), prepared.config);
  const { job, stopFile } = await writeTorchJob(prepared, run, a.resume, launch);
  run.writeJson(join(torchFolder(run), LAUNCH_FILE), Object.fromEntries(LAUNCH_FLAGS.map((k) => [k, String(launch[k])])));
  const epochs = Math.ceil(prepared.totalSteps / prepared.stepsPerEpoch);
  const c = prepared.config;
  process.stdout.write(`training ${c.model} (${(prepared.model.numParameters() / 1e6).toFixed(2)}M parameters) on ${prepared.train.name}: ` +
    `${prepared.train.length} images, ${epochs} epoch${epochs > 1 ? 's' : ''} of ${prepared.stepsPerEpoch} steps (global batch ${c.batchSize}), ` +
    `torch ${version} DistributedDataParallel, ${launch.nproc * launch.nnodes} process${launch.nproc * launch.nnodes > 1 ? 'es' : ''}` +
    `${launch.nnodes > 1 ? ` on ${launch.nnodes} machines` : ''}\nrun folder: ${run.dir}\n`);

  const progress = new ProgressLine(process.stderr);
  const steps = new StepLog(run.dir, a.flags.progress ? progressListener(progress) : {});
  let best: { epoch: number } | null = null;
  let lastEval: TorchEval | null = null;
  let done: Extract<TorchEvent, { event: 'done' }> | null = null;
  let diverged: string | null = null;
  let lastCheckpoint: string | null = null;
  const folder = run;
  const onEvent = (e: TorchEvent): void => {
    switch (e.event) {
      case 'start':
        say(`torch: ${e.world} process${e.world > 1 ? 'es' : ''} on ${e.device} (${e.backend})`);
        break;
      case 'resumed':
        folder.truncateMetrics(e.epoch);
        steps.truncateAfter(e.step);
        say(e.path ? `resuming from ${e.path} (step ${e.step})` : `no valid checkpoint in ${folder.dir}; starting the run from the beginning`);
        break;
      case 'step': steps.onStep(e); break;
      case 'eval': steps.onEvalBatch(e.done, e.total); break;
      case 'checkpoint':
        // The records before it reach the disk first; only then does the checkpoint get its name.
        steps.onCheckpoint(e.step);
        commitFile(e.pending, e.path);
        folder.pruneCheckpoints(c.keepCheckpoints);
        lastCheckpoint = e.path;
        break;
      case 'weights':
        adoptWeights(prepared, folder, e);
        if (e.which === 'best') best = { epoch: e.epoch };
        break;
      case 'epoch': {
        const r = e.record;
        folder.appendMetrics(r);
        steps.onEpoch(r);
        lastEval = (e as unknown as { evalResult: TorchEval | null }).evalResult ?? lastEval;
        progress.clear();
        process.stdout.write(`${a.epochLine(r, epochs, best?.epoch === r.epoch)}\n`);
        break;
      }
      case 'note': say(e.text); break;
      case 'diverged': diverged = e.text; break;
      case 'done': done = e; break;
    }
  };

  let child: ChildProcess | null = null;
  let signalled: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    progress.clear();
    if (signalled) {
      say('stopping now, without a checkpoint');
      child?.kill('SIGKILL');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    signalled = sig;
    say(`${sig}: finishing the current step and writing a checkpoint (send it again to quit at once)`);
    writeFileSync(stopFile, '');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code: number;
  try {
    code = await launchTorch(job, launch, onEvent, (ch) => {
      child = ch;
    }, () => signalled !== null);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.clear();
    steps.flush();
  }
  const finished = done as Extract<TorchEvent, { event: 'done' }> | null;
  if (finished?.status !== 'stopped') removeTorchData(run);
  if (diverged !== null) throw new CommandExit(3, `torch engine: ${diverged as string}`);
  if (launch.nodeRank !== 0 && code === 0) {
    process.stdout.write(`node ${launch.nodeRank} done; the run folder of node 0 holds the results\n`);
    return;
  }
  // Ctrl-C in a terminal reaches torchrun as well, which then ends with an error of its own after
  // the workers have stopped as asked: the run stopped, and says so.
  const stoppedAsAsked = signalled !== null && finished?.status === 'stopped';
  if ((code !== 0 && !stoppedAsAsked) || finished === null) {
    throw new CommandExit(code === 0 ? 1 : code, `torch engine: torchrun exited with status ${code}` +
      `${lastCheckpoint ? `; the last checkpoint is ${lastCheckpoint as string}; continue with: resnet train --resume ${run.dir}` : ''}` +
      ' (RESNET_TORCH_VERBOSE=1 shows its whole output)');
  }
  if (finished.status === 'stopped') {
    const s = finished.state;
    throw new CommandExit(signalled === 'SIGTERM' ? 143 : 130, `stopped at step ${s.step} (epoch ${s.epoch + 1}, ${s.batchInEpoch} of ` +
      `${prepared.stepsPerEpoch} batches done); checkpoint ${lastCheckpoint ?? '(none)'}; continue with: resnet train --resume ${run.dir}`);
  }
  const test = prepared.evalSplit === 'val' ? finished.test : lastEval as TorchEval | null;
  const records = run.readMetrics();
  const seconds = records.reduce((s, r) => s + (typeof r['epochSeconds'] === 'number' ? r['epochSeconds'] : 0), 0);
  run.writeJson(run.summaryPath, {
    status: 'finished', model: config.model, dataset: config.dataset, epochs: finished.state.epoch, steps: finished.state.step,
    trainingSeconds: seconds, wallSeconds: (performance.now() - a.started) / 1000, backend: `torch ${version}`, precision: 'fp32',
    engine: 'torch', processes: launch.nproc * launch.nnodes,
    test: test && { top1: test.top1, top5: test.top5, loss: test.loss, count: test.count, correct: test.correct, perClass: test.perClass },
    best: finished.state.best, finalWeights: run.finalPath, bestWeights: finished.state.best ? run.bestPath : null,
    finishedAt: new Date().toISOString(),
  });
  const wall = formatDuration((performance.now() - a.started) / 1000);
  const trained = `after ${finished.state.epoch} epoch${finished.state.epoch === 1 ? '' : 's'} (${formatDuration(seconds)} of training, ${wall} in all)`;
  await a.runEnd(run.dir, test && `test accuracy ${pct(test.top1)} (${test.correct} of ${test.count} correct; top-5 ${pct(test.top5)}, ` +
    `loss ${test.loss.toFixed(4)})`, trained, a.say);
}
