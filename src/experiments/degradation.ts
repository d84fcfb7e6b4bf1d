// The degradation experiment (He et al. 2015, sec. 4.2, Fig. 1 and Fig. 6): plain and
// residual CIFAR-style nets of several depths trained with one recipe and one seed,
// recording per-iteration training loss and error and per-epoch test error, in one
// experiment folder:
//   experiment.json          what was asked (depths, families, budget, the recipe)
//   plain-20/, resnet-56/...  one `resnet train` run folder per net, plus steps.jsonl
//   summary.json, summary.md  final numbers per net and the verdict
//   degradation.svg/.png      training and test error per family (Fig. 6 layout)
//   degradation-loss.svg/.png training loss per family
//   report.html               all of it on one page
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { join } from 'node:path';
import type { DatasetName } from '../data/registry.js';
import { list as listModels } from '../models/registry.js';
import { ConfigError, DEFAULT_CONFIG, finishConfig, flagName, mergeConfig, type TrainConfig } from '../train/config.js';
import { checkOutFolder, RunFolder, RunFolderError } from '../train/run-folder.js';
import { prepareRun } from '../train/setup.js';
import { trainerForRun } from '../train/run-training.js';
import type { Trainer, TrainerListener } from '../train/trainer.js';
import {
  degradationErrorChart, degradationLossChart, degradationMarkdown, renderDegradationReport, summarizeDegradation,
  type DegradationNet, type DegradationRun, type DegradationSummary, type NetFamily,
} from '../report/degradation-report.js';
import { writeSvgAsPng } from '../report/png.js';
import { readRunData } from './run-data.js';
import { StepLog } from './step-log.js';
import { writeRunReport } from './run-report.js';

export const NET_FAMILIES: readonly NetFamily[] = ['plain', 'resnet', 'preact'];
export const BUDGET_NAMES = ['quick', 'paper'] as const;
export type BudgetName = (typeof BUDGET_NAMES)[number];

/**
 * The CIFAR recipe of He et al. 2015, sec. 4.2: SGD, batch 128, lr 0.1 divided by 10 at
 * 50% and 75% of the run, momentum 0.9 (no Nesterov), weight decay 1e-4 on every
 * parameter, no warmup, no label smoothing. A step with a non-finite loss is skipped
 * and recorded rather than ending the experiment, however many there are: a net that
 * diverges is a result.
 */
export const PAPER_RECIPE: Readonly<Partial<TrainConfig>> = Object.freeze({
  batchSize: 128, lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 1e-4, decayAll: true,
  schedule: 'step', milestones: null, gamma: 0.1, warmup: 0, labelSmoothing: 0, ema: null, randomErasing: 0, mixup: 0, cutmix: 0, onNan: 'skip', maxSkipped: 1,
  keepCheckpoints: 1,
});

export interface Budget {
  /** Why this budget, in a few words. */
  purpose: string;
  settings: Partial<TrainConfig>;
}

export const BUDGETS: Readonly<Record<BudgetName, Budget>> = Object.freeze({
  // One epoch of linear warmup from lr/3 for every net: at lr 0.1 from the first step
  // ResNet-56's loss jumps to ~14 within 10 iterations (PyTorch 1.13 does the same), which
  // costs a short run most of its progress. The paper warms up its 110-layer net for the
  // same reason (sec. 4.2); the full-length budget below needs no warmup. Batch 32 at lr
  // 0.05: the same images and epochs as batch 128 give four times the iterations, which a
  // short run needs for ResNet-56 to overtake ResNet-20. At batch 128 or 64 (lr 0.1)
  // ResNet-56 still ends above ResNet-20 on some seeds, with more epochs or with
  // --zero-init-residual too; at batch 32 it has only just caught up by 8 epochs (3,000
  // iterations: ahead on seeds 0 and 1, level on seed 2), so the budget has 9 (3,375;
  // docs/degradation.md has every seed and budget).
  quick: {
    purpose: 'about 18 minutes for plain-20/56 and ResNet-20/56 on 2 AVX-512 cores',
    settings: { subset: 12000, testSubset: 2000, epochs: 9, iterations: null, batchSize: 32, lr: 0.05, warmup: 1 },
  },
  paper: {
    purpose: 'He et al. 2015, sec. 4.2',
    settings: { subset: null, testSubset: null, epochs: null, iterations: 64000, milestones: [32000, 48000] },
  },
});

const count = (n: number): string => n.toLocaleString('en-US');

/** A budget in words, from its settings: what `--help` and the README say. */
export function describeBudget(name: BudgetName): string {
  const s = BUDGETS[name].settings;
  const batch = s.batchSize ?? PAPER_RECIPE.batchSize ?? DEFAULT_CONFIG.batchSize;
  const lr = s.lr ?? PAPER_RECIPE.lr ?? DEFAULT_CONFIG.lr;
  const images = s.subset == null ? 'the whole training set' : `${count(s.subset)} training images`;
  const length = s.iterations != null
    ? `${count(s.iterations)} iterations`
    : s.subset != null && s.epochs != null
      ? `${s.epochs} epochs (${count(s.epochs * Math.ceil(s.subset / batch))} iterations)`
      : `${s.epochs ?? DEFAULT_CONFIG.epochs} epochs`;
  const drops = s.milestones == null ? 'at 50% and 75%' : `at ${s.milestones.map(count).join(' and ')}`;
  const test = s.testSubset == null ? 'the whole test set' : `${count(s.testSubset)} test images`;
  const warmup = s.warmup ? `, after ${s.warmup} epoch${s.warmup === 1 ? '' : 's'} of linear warmup from lr/3` : '';
  return `${images}, ${length} of batch ${batch}, lr ${lr} divided by 10 ${drops}${warmup}; ` +
    `test error on ${test} (${BUDGETS[name].purpose})`;
}

export interface NetSpec {
  family: NetFamily;
  depth: number;
  /** Builder name for models.create. */
  model: string;
  /** Display and folder name: plain-20, resnet-56, preact-resnet-110. */
  name: string;
}

export function netSpec(family: NetFamily, depth: number): NetSpec {
  const model = family === 'plain' ? `plain${depth}` : family === 'resnet' ? `resnet${depth}` : `preact_resnet${depth}`;
  const name = family === 'plain' ? `plain-${depth}` : family === 'resnet' ? `resnet-${depth}` : `preact-resnet-${depth}`;
  return { family, depth, model, name };
}

/** The nets to train, checked against the model registry; plain nets first, shallow first. */
export function netsFor(depths: readonly number[], families: readonly NetFamily[]): NetSpec[] {
  if (depths.length === 0) throw new ConfigError('--depths: give at least one depth, e.g. --depths 20,56');
  if (families.length === 0) throw new ConfigError('--family: give at least one of plain, resnet, preact');
  const known = new Set(listModels());
  const nets: NetSpec[] = [];
  for (const family of NET_FAMILIES.filter((f) => families.includes(f))) {
    for (const depth of [...new Set(depths)].sort((a, b) => a - b)) {
      const spec = netSpec(family, depth);
      if (!known.has(spec.model)) {
        const prefix = netSpec(family, 0).model.replace(/0$/, '');
        const have = [...known].filter((m) => m.startsWith(prefix) && /^\d+$/.test(m.slice(prefix.length))).map((m) => m.slice(prefix.length));
        throw new ConfigError(`--depths: there is no ${spec.name.replace(/-\d+$/, '')} net of depth ${depth}; the depths built for this family are ${have.join(', ')}`);
      }
      nets.push(spec);
    }
  }
  return nets;
}

export interface DegradationOptions {
  depths: readonly number[];
  families: readonly NetFamily[];
  budget: BudgetName;
  dataset: DatasetName;
  /** Data set folder; null: its default location. */
  data: string | null;
  seed: number;
  /** Folder the experiment folder is made in. */
  out: string;
  /** Experiment folder name; null: a time stamp and the data set. An existing one is continued. */
  name: string | null;
  /** Recipe settings given explicitly, applied over the budget (e.g. subset, epochs, lr). */
  overrides?: Partial<TrainConfig>;
  /** Progress and status lines. */
  log?: (line: string) => void;
  /** Listener for each net's training steps (a progress bar). */
  listener?: (net: NetSpec) => TrainerListener;
  /** Evaluate each net's weights for its own report.html (default true). */
  netReports?: boolean;
}

export interface DegradationResult {
  dir: string;
  run: DegradationRun;
  summary: DegradationSummary;
  files: { report: string; figure: string; figurePng: string; lossFigure: string; lossFigurePng: string; table: string; summary: string };
}

interface ExperimentRecord {
  dataset: string;
  budget: string;
  depths: number[];
  families: NetFamily[];
  /** Settings given over the budget's. */
  overrides: Partial<TrainConfig>;
  recipe: TrainConfig;
  nets: NetSpec[];
}

interface NetRecord {
  parameters: number;
  seconds: number;
}

function timestamp(d = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** The shared recipe: paper recipe, then the budget, then the data set and seed, then overrides. */
export function experimentRecipe(opts: Pick<DegradationOptions, 'budget' | 'dataset' | 'data' | 'seed' | 'overrides'>): TrainConfig {
  const patch = { ...PAPER_RECIPE, ...BUDGETS[opts.budget].settings, dataset: opts.dataset, data: opts.data, seed: opts.seed, ...opts.overrides };
  // Epochs and iterations are alternatives: an override of one clears the budget's other.
  if (opts.overrides?.epochs != null) patch.iterations = null;
  if (opts.overrides?.iterations != null) {
    patch.epochs = null;
    if (opts.overrides.milestones === undefined) patch.milestones = null;
  }
  return finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, patch, 'degradation recipe'), 'degradation recipe');
}

/** A net's run folder is finished when it holds its final weights and its record. */
function finished(netDir: string): boolean {
  return existsSync(join(netDir, 'final.safetensors')) && existsSync(join(netDir, 'net.json'));
}

async function trainNet(dir: string, spec: NetSpec, recipe: TrainConfig, opts: DegradationOptions): Promise<void> {
  const netDir = join(dir, spec.name);
  // A net that did not finish starts over: its steps must come from one unbroken run.
  if (existsSync(netDir)) rmSync(netDir, { recursive: true, force: true });
  const started = performance.now();
  // Only the overrides were given by the user: a preset's subset larger than a small data set takes all of it.
  const overrides: Readonly<Record<string, unknown>> = opts.overrides ?? {};
  const prepared = await prepareRun({ ...recipe, model: spec.model, out: dir, name: spec.name },
    { given: (k) => (k in overrides ? `--${flagName(k)}` : null) });
  const run = RunFolder.create(netDir, prepared.config);
  const steps = new StepLog(netDir, opts.listener?.(spec) ?? {});
  const trainer: Trainer = trainerForRun(prepared, run, {
    onStep: (p) => steps.onStep(p),
    onEvalBatch: (d, t) => steps.onEvalBatch(d, t),
    onCheckpoint: (step) => steps.onCheckpoint(step),
    onEpoch: (r) => {
      steps.onEpoch(r);
      const test = r.eval === null ? '' : `, ${r.eval.split} error ${((1 - r.eval.top1) * 100).toFixed(2)}%`;
      opts.log?.(`${spec.name} epoch ${r.epoch}/${trainer.epochs}: training loss ${r.trainLoss === null ? 'n/a' : r.trainLoss.toFixed(4)}${test}` +
        `${r.skippedSteps > 0 ? `, ${r.skippedSteps} non-finite steps skipped` : ''} (${Math.round(r.imagesPerSecond)} img/s)`);
    },
  });
  opts.log?.(`${spec.name}: ${(prepared.model.numParameters() / 1e6).toFixed(2)}M parameters, ${prepared.totalSteps} iterations ` +
    `on ${prepared.train.length} images`);
  try {
    await trainer.run();
  } finally {
    await trainer.close();
  }
  steps.flush();
  const record: NetRecord = { parameters: prepared.model.numParameters(), seconds: (performance.now() - started) / 1000 };
  run.writeJson(join(netDir, 'net.json'), record);
}

/** A JSON record this module wrote; a damaged one is a one-line error naming the file. */
function readRecord<T>(path: string, looksRight: (v: Record<string, unknown>) => boolean): T {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new RunFolderError(`${path}: cannot read it (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof v !== 'object' || v === null || !looksRight({ ...v })) {
    throw new RunFolderError(`${path}: not a record written by \`resnet degradation\`; delete the folder and run the experiment again`);
  }
  return v as T;
}

const isExperimentRecord = (r: Record<string, unknown>): boolean =>
  typeof r.dataset === 'string' && typeof r.budget === 'string' && Array.isArray(r.nets) && typeof r.recipe === 'object';
const isNetRecord = (r: Record<string, unknown>): boolean => typeof r.parameters === 'number' && typeof r.seconds === 'number';

/** The experiment's data from its folder (also for regenerating the report later). */
export function readDegradationRun(dir: string): DegradationRun {
  const path = join(dir, 'experiment.json');
  if (!existsSync(path)) throw new RunFolderError(`${dir}: not a degradation experiment folder (no experiment.json)`);
  const exp = readRecord<ExperimentRecord>(path, isExperimentRecord);
  const nets: DegradationNet[] = exp.nets.filter((n) => finished(join(dir, n.name))).map((n) => {
    const netDir = join(dir, n.name);
    const data = readRunData(netDir);
    const rec = readRecord<NetRecord>(join(netDir, 'net.json'), isNetRecord);
    return { family: n.family, depth: n.depth, name: n.name, parameters: rec.parameters, seconds: rec.seconds, steps: data.steps, epochs: data.epochs };
  });
  const r = exp.recipe;
  const recipe: Record<string, unknown> = {
    batchSize: r.batchSize, lr: r.lr, momentum: r.momentum, nesterov: r.nesterov, weightDecay: r.weightDecay,
    schedule: r.schedule, milestones: r.milestones ?? '50%,75%', epochs: r.epochs, iterations: r.iterations,
    subset: r.subset ?? 'all', testSubset: r.testSubset ?? 'all', seed: r.seed,
  };
  return { dataset: exp.dataset, budget: budgetLabel(exp.budget, exp.overrides ?? {}), recipe, nets };
}

/** The budget's name, and the overrides that change its settings: `quick, with epochs 2`. */
export function budgetLabel(budget: string, overrides: Readonly<Record<string, unknown>>): string {
  const preset = (BUDGETS as Readonly<Record<string, Budget | undefined>>)[budget]?.settings as Readonly<Record<string, unknown>> | undefined;
  const changed = Object.entries(overrides)
    .filter(([k, v]) => JSON.stringify(preset?.[k]) !== JSON.stringify(v))
    .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`);
  return changed.length === 0 ? budget : `${budget}, with ${changed.join(', ')}`;
}

/** Write the figures, tables and report.html of an experiment folder. */
export async function writeDegradationReport(dir: string): Promise<DegradationResult> {
  const run = readDegradationRun(dir);
  const summary = summarizeDegradation(run);
  const error = degradationErrorChart(run);
  const loss = degradationLossChart(run);
  const files = {
    report: join(dir, 'report.html'), figure: join(dir, 'degradation.svg'), figurePng: join(dir, 'degradation.png'),
    lossFigure: join(dir, 'degradation-loss.svg'), lossFigurePng: join(dir, 'degradation-loss.png'),
    table: join(dir, 'summary.md'), summary: join(dir, 'summary.json'),
  };
  writeFileAtomic(files.figure, error.svg);
  writeFileAtomic(files.lossFigure, loss.svg);
  await writeSvgAsPng(error.svg, files.figurePng);
  await writeSvgAsPng(loss.svg, files.lossFigurePng);
  writeFileAtomic(files.table, degradationMarkdown(run, summary));
  writeFileAtomic(files.summary, `${JSON.stringify(summary, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  writeFileAtomic(files.report, renderDegradationReport(run, summary, { error, loss }));
  return { dir, run, summary, files };
}

export async function runDegradation(opts: DegradationOptions): Promise<DegradationResult> {
  const nets = netsFor(opts.depths, opts.families);
  const recipe = experimentRecipe(opts);
  checkOutFolder(opts.out, 'experiment folder');
  const dir = join(opts.out, opts.name ?? `${timestamp()}-degradation-${opts.dataset}`);
  const record: ExperimentRecord = {
    dataset: opts.dataset, budget: opts.budget, depths: [...opts.depths], families: [...opts.families],
    overrides: { ...opts.overrides }, recipe, nets,
  };
  const recordPath = join(dir, 'experiment.json');
  if (existsSync(recordPath)) {
    const before = readRecord<ExperimentRecord>(recordPath, isExperimentRecord);
    // A setting added since the folder was made reads as this recipe's (the presets keep earlier behaviour).
    if (JSON.stringify({ ...recipe, ...before.recipe }) !== JSON.stringify(recipe)) {
      throw new RunFolderError(`${dir}: this experiment folder was made with another recipe; choose another --name`);
    }
  } else if (existsSync(dir)) {
    throw new RunFolderError(`${dir}: exists and is not a degradation experiment folder; choose another --name`);
  }
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(recordPath, `${JSON.stringify(record, null, 2)}\n`);
  for (const spec of nets) {
    const netDir = join(dir, spec.name);
    if (finished(netDir)) {
      opts.log?.(`${spec.name}: finished in an earlier run, reusing ${netDir}`);
      continue;
    }
    await trainNet(dir, spec, recipe, opts);
    if (opts.netReports ?? true) await writeRunReport(netDir);
  }
  return writeDegradationReport(dir);
}
