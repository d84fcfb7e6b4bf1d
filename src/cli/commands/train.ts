// `resnet train`: train a model on a data set, with a run folder that holds the recipe,
// the metrics, checkpoints and weights; `--resume` continues a stopped run.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { backend, type Precision } from '../../backend/index.js';
import { DEFAULT_CONFIG, finishConfig, mergeConfig, type TrainConfig } from '../../train/config.js';
import { applyResume, planResume, type ResumePlan, trainerForRun } from '../../train/run-training.js';
import { readConfigFile } from '../../train/config-file.js';
import { evaluate, type EvalResult } from '../../train/metrics.js';
import { formatDuration, ProgressLine, progressListener } from '../../train/progress.js';
import { checkOutFolder, RunFolder } from '../../train/run-folder.js';
import { StepLog } from '../../experiments/step-log.js';
import { writeRunReport } from '../../experiments/run-report.js';
import { prepareRun, type PreparedRun } from '../../train/setup.js';
import type { EpochRecord, Trainer } from '../../train/trainer.js';
import { CommandExit, UserError } from '../errors.js';
import { selectBackend, selectPrecision } from '../select-backend.js';
import { addRecipeFlags, flagName, recipePatch } from '../train-flags.js';
import { userErrors } from '../user-errors.js';
import { DASHBOARD_PORT, dashboardPort, openDashboard } from './dashboard.js';
import type { RegisterCommand } from './index.js';
import { LAUNCH_FLAGS, trainWithTorch } from './train-torch.js';

export interface TrainFlags {
  config?: string;
  resume?: string;
  restartIfDamaged?: boolean;
  backend?: string;
  progress: boolean;
  dashboard?: string | true;
  nproc?: string;
  nnodes?: string;
  nodeRank?: string;
  masterAddr?: string;
  masterPort?: string;
}

const EXAMPLES = `
Examples:
  resnet train                                   ResNet-20 on Fashion-MNIST, 30 epochs
  resnet train --epochs 1 --subset 10000         a short run on part of the data
  resnet train --model resnet56 --dataset cifar10 --data ~/data/cifar-10-batches-bin \\
    --iterations 64000 --schedule step --milestones 32000,48000 --val-split 5000 \\
    --lr 0.1 --weight-decay 1e-4 --decay-all --no-nesterov --label-smoothing 0 --warmup 0
                                                 the CIFAR-10 recipe of He et al. 2015, sec. 4.2
  resnet train --config recipe.json --seed 3     settings from a file, one flag changed
  resnet train --resume runs/20240101-120000-resnet20-fashion-mnist
                                                 continue a stopped run
  resnet train --weights resnet50.pth --model resnet50 --dataset folder --data ~/photos --image-size 224 \
    --fine-tune-epochs 2 --epochs 6 --backbone-lr-scale 0.1 --lr 0.01
                                                 fine-tune ImageNet weights on your own images
  resnet train --engine torch --nproc 8 --batch-size 1024 --lr 0.8
                                                 the same recipe on PyTorch DDP, 8 processes (docs/scale.md)`;

export const registerTrain: RegisterCommand = (program) => {
  const cmd = program.command('train')
    .description('train a model on a data set (by default ResNet-20 on Fashion-MNIST) into a run folder')
    .option('--config <file>', 'JSON file of recipe settings (field names as the flags in camelCase); flags override it')
    .option('--resume <run-folder>', 'continue a stopped run from its newest valid checkpoint, with its saved config ' +
      '(--on-nan, --max-skipped, --clip-grad-norm, --checkpoint-every and --keep-checkpoints may change; ' +
      'a torch engine run is launched as before, but for the launch flags given)')
    .option('--restart-if-damaged', 'with --resume: when no checkpoint of the run can be read, delete them and train the run ' +
      'again from step 0 (without it, --resume refuses)')
    .option('--backend <name>', 'compute backend: native or reference (default: native when it loads)')
    .option('--no-progress', 'no progress line on stderr')
    .option('--dashboard [port]', `serve this run's live curves at http://127.0.0.1:PORT while it trains (default port ${DASHBOARD_PORT})`)
    .option('--nproc <n>', '--engine torch: training processes on this machine, one per GPU (torchrun --nproc_per_node; default 1)')
    .option('--nnodes <n>', '--engine torch: machines taking part (default 1); run the same command on each, with its --node-rank')
    .option('--node-rank <r>', '--engine torch: this machine\'s number, 0 to nnodes-1 (0 writes the run folder; default 0)')
    .option('--master-addr <host>', '--engine torch: address of the machine of --node-rank 0 (default 127.0.0.1)')
    .option('--master-port <port>', '--engine torch: a free port on it (default 29500)');
  addRecipeFlags(cmd);
  cmd.addHelpText('after', EXAMPLES);
  cmd.action(() => userErrors(() => train(cmd)));
};

function timestamp(d = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function newRunDir(config: TrainConfig): string {
  if (config.name !== null) return join(config.out, config.name);
  const base = join(config.out, `${timestamp()}-${config.model}-${config.dataset}`);
  let dir = base;
  for (let i = 2; existsSync(dir); i++) dir = `${base}-${i}`;
  return dir;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

/** A training mean that may be unknown (every step of the epoch skipped). */
function known(x: number | null, show: (x: number) => string): string {
  return x === null ? 'n/a' : show(x);
}

export function epochLine(r: EpochRecord, epochs: number, best: boolean): string {
  const parts = [
    `epoch ${String(r.epoch).padStart(String(epochs).length)}/${epochs}`,
    `train loss ${known(r.trainLoss, (x) => x.toFixed(4))} acc ${known(r.trainTop1, pct)}`,
  ];
  if (r.eval) parts.push(`${r.eval.split}${r.ema ? ' (ema)' : ''} loss ${r.eval.loss.toFixed(4)} acc ${pct(r.eval.top1)} top-5 ${pct(r.eval.top5)}`);
  parts.push(`lr ${r.lr.toPrecision(3)}`, `${formatDuration(r.epochSeconds)} ${Math.round(r.imagesPerSecond)} img/s`,
    `data ${(100 * r.dataSeconds / Math.max(1e-9, r.epochSeconds)).toFixed(1)}%`);
  if (r.skippedSteps > 0) parts.push(`${r.skippedSteps} steps skipped`);
  return `${parts.join('  ')}${best ? '  *' : ''}`;
}

function describeRun(p: PreparedRun, runDir: string, epochs: number, precision: Precision): string {
  const c = p.config;
  const ds = p.train;
  const params = (p.model.numParameters() / 1e6).toFixed(2);
  // With a validation split the test images are evaluated once, at the end: say both, and which flag sets each.
  const testText = p.test ? ` and on ${p.test.length} test images${c.testSubset !== null ? ' (--test-subset)' : ''} at the end` : '';
  const evalText = !p.evalSet ? 'no evaluation set'
    : p.evalSplit === 'val' ? `evaluating on ${p.evalSet.length} validation images (--val-split) after each epoch${testText}`
      : `evaluating on ${p.evalSet.length} test images`;
  const start = c.weights !== null ? ` from ${c.weights}${c.fineTuneEpochs !== null ? ` (the head alone for ${c.fineTuneEpochs} epochs)` : ''}` : '';
  const frozen = c.freeze !== 'none' ? `, ${c.freeze === 'backbone' ? 'the backbone' : `up to ${c.freeze}`} frozen` : '';
  return `training ${c.model}${start} (${params}M parameters${frozen}) on ${ds.name}: ${ds.length} images ${ds.height}x${ds.width}x${ds.channels}, ` +
    `${evalText}; ${epochs} epoch${epochs > 1 ? 's' : ''} of ${p.stepsPerEpoch} steps (batch ${c.batchSize}), ` +
    `${backend().name} backend, ${precision} precision${c.replicas > 1 ? `, ${c.replicas} replicas sharing each batch` : ''}\nrun folder: ${runDir}\n`;
}

async function train(cmd: Command): Promise<void> {
  // Wall clock of the whole command: reading the data, training, evaluating, writing.
  const started = performance.now();
  const flags = cmd.opts<TrainFlags>();
  selectBackend(flags.backend);
  const port = flags.dashboard === undefined ? null : dashboardPort('dashboard', flags.dashboard);
  const patch = recipePatch(cmd);
  const say = (s: string): void => {
    process.stderr.write(`resnet: ${s}\n`);
  };

  let config: TrainConfig;
  let run: RunFolder | null = null;
  let plan: ResumePlan | null = null;
  // How each setting the user gave is named in a message: the flag, or the config file's field.
  let fileFields: Record<string, unknown> = {};
  const given = (k: keyof TrainConfig): string | null =>
    k in patch ? `--${flagName(k)}` : k in fileFields ? `${flags.config}: .${k}` : null;
  if (flags.restartIfDamaged && flags.resume === undefined) {
    throw new UserError('--restart-if-damaged goes with --resume (it says what to do when no checkpoint of the run can be read)');
  }
  if (flags.resume !== undefined) {
    plan = planResume(flags.resume, {
      changes: patch, refused: flags.config !== undefined ? ['--config'] : [], restartIfDamaged: flags.restartIfDamaged ?? false,
      label: (k) => `--${flagName(k)}`, resumeName: '--resume', say,
    });
    run = plan.run;
    config = plan.config;
  } else {
    config = { ...DEFAULT_CONFIG };
    if (flags.config !== undefined) {
      const fromFile = readConfigFile(flags.config);
      config = mergeConfig(config, fromFile, flags.config);
      fileFields = { ...(fromFile as Record<string, unknown>) };
    }
    config = mergeConfig(config, patch, 'command line', (k) => `--${flagName(k)}`);
    // A clash between settings is named where they came from: the file alone, or the command line.
    const fromFile = flags.config !== undefined && Object.keys(patch).length === 0;
    config = fromFile ? finishConfig(config, flags.config!) : finishConfig(config, 'the command line', (k) => `--${flagName(k)}`);
  }

  if (config.engine === 'torch') {
    await trainWithTorch({ config, run, resume: flags.resume !== undefined, given, flags, started, say, epochLine, newRunDir, runEnd, label: (k) => given(k) ?? `--${flagName(k)}` });
    return;
  }
  const launchFlag = LAUNCH_FLAGS.find((k) => flags[k] !== undefined);
  if (launchFlag !== undefined) throw new UserError(`--${flagName(launchFlag)} is for --engine torch (torchrun's processes and machines); add --engine torch or leave it out`);
  const precision = selectPrecision(config.precision, given('precision') ?? (run ? `${run.configPath}: .precision` : undefined));
  if (!run) checkOutFolder(config.out, 'run folder');
  const prepared = await prepareRun(config, { given });
  for (const note of prepared.notes) say(note);
  if (!run) {
    run = RunFolder.create(newRunDir(config), prepared.config);
  }
  const progress = new ProgressLine(process.stderr);
  const showProgress = flags.progress;
  let trainer: Trainer | null = null;
  // Per-iteration loss and error for the report's curves (steps.jsonl).
  const steps = new StepLog(run.dir, showProgress ? progressListener(progress) : {});
  trainer = trainerForRun(prepared, run, {
    onStep: (p) => steps.onStep(p),
    onEvalBatch: (d, t) => steps.onEvalBatch(d, t),
    onCheckpoint: (step) => steps.onCheckpoint(step),
    onEpoch: (r) => {
      steps.onEpoch(r);
      progress.clear();
      process.stdout.write(`${epochLine(r, trainer!.epochs, trainer!.state.best?.epoch === r.epoch)}\n`);
    },
  });
  process.stdout.write(describeRun(prepared, run.dir, trainer.epochs, precision));
  if (plan) {
    applyResume(trainer, plan, (step) => steps.truncateAfter(step));
    const s = plan.checkpoint?.state;
    if (s) {
      say(`resuming from ${plan.checkpoint!.file} (step ${s.step}, epoch ${s.epoch + (s.batchInEpoch > 0 ? 1 : 0)}${s.batchInEpoch > 0 ? ` batch ${s.batchInEpoch}` : ' done'})`);
    } else if (!plan.restarted) {
      say(`no valid checkpoint in ${run.dir}; starting the run from the beginning`);
    }
  }

  let signalled: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    progress.clear();
    if (signalled) {
      say('stopping now, without a checkpoint');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    signalled = sig;
    say(`${sig}: finishing the current step and writing a checkpoint (send it again to quit at once)`);
    trainer!.requestStop();
  };
  const dashboard = port === null ? null : await openDashboard([run.dir], '127.0.0.1', port);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcome;
  try {
    outcome = await trainer.run();
  } finally {
    await trainer.close();
    await dashboard?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.clear();
    steps.flush();
  }

  if (outcome.status === 'stopped') {
    const s = outcome.state;
    throw new CommandExit(signalled === 'SIGTERM' ? 143 : 130,
      `stopped at step ${s.step} (epoch ${s.epoch + 1}, ${s.batchInEpoch} of ${prepared.stepsPerEpoch} batches done); ` +
      `checkpoint ${outcome.checkpoint}; continue with: resnet train --resume ${run.dir}`);
  }

  let test: EvalResult | null = prepared.evalSplit === 'test' ? outcome.lastEval : null;
  if (!test && prepared.testLoader) {
    const loader = prepared.testLoader;
    const evaluateTest = (): Promise<EvalResult> => evaluate(prepared.model, loader, prepared.card.numClasses,
      { onBatch: showProgress ? (d, t) => progress.update(`testing ${d}/${t}`) : undefined, tta: config.tta });
    test = prepared.ema ? await prepared.ema.withAveraged(prepared.model, evaluateTest) : await evaluateTest();
    progress.clear();
  }
  const seconds = outcome.records.reduce((a, r) => a + r.epochSeconds, 0);
  const epochsDone = outcome.state.epoch;
  run.writeJson(run.summaryPath, {
    status: 'finished', model: config.model, dataset: config.dataset, epochs: epochsDone, steps: outcome.state.step,
    trainingSeconds: seconds, wallSeconds: (performance.now() - started) / 1000, backend: backend().name, precision,
    test: test && { top1: test.top1, top5: test.top5, loss: test.loss, count: test.count, perClass: test.perClass },
    best: outcome.state.best, finalWeights: run.finalPath, bestWeights: outcome.state.best ? run.bestPath : null,
    finishedAt: new Date().toISOString(),
  });
  const wall = formatDuration((performance.now() - started) / 1000);
  const trained = `after ${epochsDone} epoch${epochsDone === 1 ? '' : 's'} (${formatDuration(seconds)} of training, ${wall} in all` +
    `${flags.resume !== undefined ? ' since --resume' : ''})`;
  await runEnd(run.dir, test && `test accuracy ${pct(test.top1)} (top-5 ${pct(test.top5)}, loss ${test.loss.toFixed(4)}) on ${test.count} test images`,
    trained, say);
}

/** A finished run's last lines: its test result (or that there was none), its report.html, its folder. */
async function runEnd(dir: string, testLine: string | null, trained: string, say: (s: string) => void): Promise<void> {
  process.stdout.write(testLine !== null ? `${testLine} ${trained}\n` : `finished ${trained}; no test set to evaluate\n`);
  try {
    process.stdout.write(`report: ${await writeRunReport(dir)}\n`);
  } catch (e) {
    say(`could not write report.html (${e instanceof Error ? e.message : String(e)}); try: resnet report ${dir}`);
  }
  process.stdout.write(`run folder: ${dir}\n`);
}
