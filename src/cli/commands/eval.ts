// `resnet eval <model>`: accuracy of a trained model on a data set, per class, and the
// confusion matrix. The model file says which data set and preprocessing it expects.
import { Option } from 'commander';
import { DATASET_NAMES, type DatasetName, loadDataset } from '../../data/registry.js';
import { DataLoader } from '../../data/loader.js';
import { randomSubset } from '../../data/split.js';
import { Normalize } from '../../data/transforms.js';
import { evaluate, type EvalResult } from '../../train/metrics.js';
import { TTA_MODES, TTA_VIEWS_HELP, type TtaMode } from '../../train/tta.js';
import { checkBatchesFit } from '../../train/memory.js';
import { loadModelFile, type ModelCard } from '../../train/model-file.js';
import { ProgressLine } from '../../train/progress.js';
import type { Precision, PrecisionChoice } from '../../backend/index.js';
import { UserError } from '../errors.js';
import { addComputeFlags, positiveInt } from '../flags.js';
import { selectBackend, selectPrecision } from '../select-backend.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

interface EvalFlags {
  dataset?: string;
  data?: string;
  split: string;
  subset?: string;
  batchSize: string;
  tta: TtaMode;
  json?: boolean;
  backend?: string;
  precision: PrecisionChoice;
  progress: boolean;
}

export const registerEval: RegisterCommand = (program) => {
  const cmd = program.command('eval')
    .description('evaluate a trained model: accuracy, top-5, per-class accuracy and the confusion matrix')
    .argument('<model>', 'a model file written by `resnet train` (.safetensors) or a run folder (uses its best.safetensors)')
    .option('--dataset <name>', `data set (default: the one the model was trained on; one of ${DATASET_NAMES.join(', ')})`)
    .option('--data <dir>', 'folder holding the data set (default: the data set\'s usual location)')
    .option('--split <name>', 'test or train', 'test')
    .option('--subset <n>', 'evaluate on n images drawn at random (seed 0)')
    .option('--batch-size <n>', 'images per forward pass', '500')
    .addOption(new Option('--tta <views>', `test-time augmentation: ${TTA_VIEWS_HELP}`).choices(TTA_MODES).default('none'))
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress line on stderr');
  addComputeFlags(cmd);
  cmd.addHelpText('after', '\nExample:\n  resnet eval runs/20240101-120000-resnet20-fashion-mnist');
  cmd.action((model: string) => userErrors(() => evalCommand(model, cmd.opts<EvalFlags>())));
};

function isDatasetName(s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s);
}

async function evalCommand(modelPath: string, flags: EvalFlags): Promise<void> {
  selectBackend(flags.backend);
  const precision = selectPrecision(flags.precision);
  if (flags.split !== 'test' && flags.split !== 'train') throw new UserError(`--split must be test or train, got ${JSON.stringify(flags.split)}`);
  const batchSize = positiveInt('--batch-size', flags.batchSize);
  const subset = flags.subset === undefined ? null : positiveInt('--subset', flags.subset);
  const { card, model, file } = loadModelFile(modelPath);
  const name = flags.dataset ?? card.dataset;
  if (!isDatasetName(name)) throw new UserError(`--dataset must be one of ${DATASET_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  const splits = await loadDataset({ name, dir: flags.data, folder: { size: card.imageSize[0], channels: card.inChannels === 1 ? 1 : 3 } });
  let ds = flags.split === 'train' ? splits.train : splits.test;
  if (!ds) throw new UserError(`${splits.dir}: has no test split (a test/ or val/ folder); use --split train`);
  checkCompatible(card, ds, file);
  if (subset !== null) ds = randomSubset(ds, subset, 0);
  checkBatchesFit({
    model, modelName: card.model, inputShape: [card.imageSize[0], card.imageSize[1], card.inChannels],
    batches: [{ flag: '--batch-size', batch: Math.min(batchSize, ds.length), mode: 'inference' }],
  });
  const loader = new DataLoader(ds, { batchSize, transform: new Normalize(card.mean, card.std) });
  const progress = new ProgressLine(process.stderr);
  const result = await evaluate(model, loader, card.numClasses, {
    onBatch: flags.progress ? (d, t) => progress.update(`evaluating ${d}/${t}`) : undefined, tta: flags.tta,
  });
  progress.clear();
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ model: file, dataset: ds.name, precision, tta: flags.tta, classNames: card.classNames, ...result }, null, 2)}\n`);
    return;
  }
  process.stdout.write(report(file, ds.name, card.classNames, result, precision, flags.tta));
}

function checkCompatible(card: ModelCard, ds: { name: string; height: number; width: number; channels: number; classNames: readonly string[] }, file: string): void {
  if (ds.channels !== card.inChannels) {
    throw new UserError(`${file}: the model takes ${card.inChannels}-channel images, ${ds.name} has ${ds.channels}`);
  }
  if (ds.classNames.length !== card.numClasses) {
    throw new UserError(`${file}: the model has ${card.numClasses} classes, ${ds.name} has ${ds.classNames.length}`);
  }
}

function pct(x: number): string {
  return Number.isNaN(x) ? '   -  ' : `${(100 * x).toFixed(2).padStart(6)}%`;
}

/** Accuracy lines, the per-class table and the confusion matrix (rows: true class). */
export function report(file: string, dataset: string, classNames: readonly string[], r: EvalResult, precision: Precision = 'fp32', tta: TtaMode = 'none'): string {
  const lines: string[] = [];
  const views = tta === 'none' ? '' : `, ${tta} test-time augmentation`;
  lines.push(`model ${file} on ${dataset} (${r.count} images, ${precision} precision${views})`);
  lines.push(`top-1 accuracy ${pct(r.top1).trim()}   top-5 accuracy ${pct(r.top5).trim()}   loss ${r.loss.toFixed(4)}`);
  lines.push('');
  const width = Math.max(5, ...classNames.map((n) => n.length));
  const counts = r.confusion.map((row) => row.reduce((a, b) => a + b, 0));
  lines.push(`${'#'.padStart(3)}  ${'class'.padEnd(width)}  images  accuracy`);
  classNames.forEach((n, i) => lines.push(`${String(i).padStart(3)}  ${n.padEnd(width)}  ${String(counts[i]).padStart(6)}  ${pct(r.perClass[i]!)}`));
  if (classNames.length <= 20) {
    lines.push('', 'confusion matrix (rows: true class, columns: predicted class)');
    const cell = Math.max(4, ...r.confusion.flat().map((v) => String(v).length + 1));
    lines.push(`${''.padStart(3)} ${classNames.map((_, j) => String(j).padStart(cell)).join('')}`);
    r.confusion.forEach((row, i) => lines.push(`${String(i).padStart(3)} ${row.map((v) => String(v).padStart(cell)).join('')}`));
  }
  return `${lines.join('\n')}\n`;
}
