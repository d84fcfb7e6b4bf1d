// `resnet degradation`: train plain and residual nets of several depths with one recipe
// and seed, and show whether the deeper plain net trains worse (He et al. 2015, Fig. 6).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DATASET_NAMES, type DatasetName } from '../../data/registry.js';
import {
  BUDGET_NAMES, describeBudget, NET_FAMILIES, runDegradation, type BudgetName,
} from '../../experiments/degradation.js';
import type { NetFamily } from '../../report/degradation-report.js';
import { FIELDS, flagName, isFolderName, MAX_SEED, type TrainConfig } from '../../train/config.js';
import { ProgressLine, progressListener } from '../../train/progress.js';
import { UserError } from '../errors.js';
import { selectBackend } from '../select-backend.js';
import { decimalNumber, parseValue } from '../train-flags.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

interface DegradationFlags {
  depths: string;
  family: string;
  budget: string;
  dataset: string;
  data?: string;
  seed: string;
  out: string;
  name?: string;
  backend?: string;
  progress: boolean;
  netReports: boolean;
  subset?: string;
  testSubset?: string;
  epochs?: string;
  iterations?: string;
  batchSize?: string;
  lr?: string;
  milestones?: string;
  warmup?: string;
  replicas?: string;
}

/** Recipe flags that may override the budget, by config field. */
const OVERRIDES = ['subset', 'testSubset', 'epochs', 'iterations', 'batchSize', 'lr', 'milestones', 'warmup', 'replicas'] as const;

const flagOf = (key: string): string => `--${flagName(key)}`;

const EXAMPLES = `
Budgets:
${BUDGET_NAMES.map((b) => `  ${b.padEnd(7)} ${describeBudget(b)}`).join('\n')}

Examples:
  resnet degradation                                  plain-20/56 and ResNet-20/56 on Fashion-MNIST, quick budget
  resnet degradation --family plain,resnet,preact     with the pre-activation ResNets as well
  resnet degradation --depths 20,32,44,56 --budget paper --dataset cifar10 --data ~/data/cifar-10-batches-bin
  resnet degradation --name fig6                      continue runs/fig6, reusing the nets it finished`;

export const registerDegradation: RegisterCommand = (program) => {
  const cmd = program.command('degradation')
    .description('train plain and residual nets of several depths with one recipe; plot and judge the degradation problem')
    .option('--depths <list>', 'comma-separated depths (6n+2: 20, 32, 44, 56, 110)', '20,56')
    .option('--family <list>', `comma-separated families: ${NET_FAMILIES.join(', ')}`, 'plain,resnet')
    .option('--budget <name>', `training budget: ${BUDGET_NAMES.join(' or ')} (see below)`, 'quick')
    .option('--dataset <name>', `data set: ${DATASET_NAMES.join(', ')}`, 'fashion-mnist')
    .option('--data <dir>', 'folder holding the data set (default: its usual location)')
    .option('--seed <n>', 'seed of every net\'s initialisation, data order and augmentation', '0')
    .option('--out <dir>', 'folder the experiment folder is made in', 'runs')
    .option('--name <name>', 'experiment folder name; an existing one is continued (default: time stamp)')
    .option('--backend <name>', 'compute backend: native or reference (default: native when it loads)')
    .option('--no-progress', 'no progress line on stderr')
    .option('--no-net-reports', 'skip each net\'s own report.html (saves a test-set pass per net)');
  for (const key of OVERRIDES) {
    const f = FIELDS[key];
    cmd.option(`${flagOf(key)} <${f.arg ?? 'value'}>`, `override the budget: ${f.help}`);
  }
  cmd.addHelpText('after', EXAMPLES);
  cmd.action(() => userErrors(() => degradation(cmd)));
};

function list(flag: string, text: string): string[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UserError(`${flag}: give a comma-separated list, got ${JSON.stringify(text)}`);
  return items;
}

function depthsOf(text: string): number[] {
  return list('--depths', text).map((s) => {
    const n = decimalNumber(s) ?? Number.NaN;
    if (!Number.isInteger(n) || n < 1) throw new UserError(`--depths: ${JSON.stringify(s)} is not a depth; give whole numbers such as 20,56`);
    return n;
  });
}

function familiesOf(text: string): NetFamily[] {
  return list('--family', text).map((s) => {
    const f = NET_FAMILIES.find((x) => x === s);
    if (f === undefined) throw new UserError(`--family: unknown family ${JSON.stringify(s)}; choose from ${NET_FAMILIES.join(', ')}`);
    return f;
  });
}

function oneOf<T extends string>(flag: string, choices: readonly T[], text: string): T {
  const v = choices.find((c) => c === text);
  if (v === undefined) throw new UserError(`${flag}: ${JSON.stringify(text)} is not one of ${choices.join(', ')}`);
  return v;
}

/** A flag's text as its config field's value, checked by the field's own check. */
function overrides(flags: DegradationFlags): Partial<TrainConfig> {
  const out: Partial<TrainConfig> = {};
  for (const key of OVERRIDES) {
    const text = flags[key];
    if (text === undefined) continue;
    const f = FIELDS[key];
    Object.assign(out, { [key]: f.check(parseValue(f.kind, text), flagOf(key)) });
  }
  return out;
}

async function degradation(cmd: Command): Promise<void> {
  const flags = cmd.opts<DegradationFlags>();
  selectBackend(flags.backend);
  const seed = decimalNumber(flags.seed) ?? Number.NaN;
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new UserError(`--seed must be a whole number >= 0 and <= ${MAX_SEED}, got ${JSON.stringify(flags.seed)}`);
  }
  if (flags.name !== undefined && !isFolderName(flags.name)) {
    throw new UserError(`--name must be a folder name without /, \\ or .. (the experiment folder is made in --out), got ${JSON.stringify(flags.name)}`);
  }
  const progress = new ProgressLine(process.stderr);
  const started = performance.now();
  const result = await runDegradation({
    depths: depthsOf(flags.depths),
    families: familiesOf(flags.family),
    budget: oneOf<BudgetName>('--budget', BUDGET_NAMES, flags.budget),
    dataset: oneOf<DatasetName>('--dataset', DATASET_NAMES, flags.dataset),
    data: flags.data ?? null,
    seed,
    out: flags.out,
    name: flags.name ?? null,
    overrides: overrides(flags),
    netReports: flags.netReports,
    log: (line) => {
      progress.clear();
      process.stdout.write(`${line}\n`);
    },
    listener: () => (flags.progress ? progressListener(progress) : {}),
  });
  progress.clear();
  const minutes = ((performance.now() - started) / 60000).toFixed(1);
  process.stdout.write(`\n${readFileSync(result.files.table, 'utf8')}\nfinished in ${minutes} min\n` +
    `report: ${result.files.report}\nfigure: ${result.files.figurePng}\n`);
}
