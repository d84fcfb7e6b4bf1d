// `resnet predict`: the top-k classes of each image with their probabilities, from a
// model file of `resnet train` (`resnet predict MODEL IMAGES...`) or any ResNet weights
// (`resnet predict --weights resnet50.pth --model resnet50 IMAGES...`, ImageNet class
// names and preprocessing). Folders are expanded to their images; results as text,
// JSON or CSV.
import type { PrecisionChoice } from '../../backend/index.js';
import { ImageClassifier, type ClassScore } from '../../train/classify.js';
import { UserError } from '../errors.js';
import { addComputeFlags, positiveInt } from '../flags.js';
import { addModelInputFlags, forEachBatch, type ModelInputFlags, modelAndImages } from '../model-inputs.js';
import { selectBackend, selectPrecision } from '../select-backend.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

export { imagesThatFit } from '../model-inputs.js';

interface PredictFlags extends ModelInputFlags {
  topK: string;
  json?: boolean;
  csv?: boolean;
  backend?: string;
  precision: PrecisionChoice;
}

const EXAMPLES = `
Examples:
  resnet predict runs/20240101-120000-resnet20-fashion-mnist shoe.png shirt.jpg
  resnet predict --weights resnet50.pth --model resnet50 cat.jpg      ImageNet top-5
  resnet predict --weights resnet50.pth --preset IMAGENET1K_V2 photos/ --csv > predictions.csv`;

export const registerPredict: RegisterCommand = (program) => {
  const cmd = program.command('predict')
    .description('classify images: the top-k classes with probabilities')
    .argument('<path...>', 'a model file from `resnet train` (.safetensors) or a run folder, then PNG / JPEG files or folders of them ' +
      '(with --weights: only images)')
    .option('--top-k <k>', 'classes shown per image', '5')
    .option('--json', 'print the result as JSON')
    .option('--csv', 'print the result as CSV: file, rank, class index, class, probability');
  addModelInputFlags(cmd);
  addComputeFlags(cmd);
  cmd.addHelpText('after', EXAMPLES);
  cmd.action((paths: string[]) => userErrors(() => predict(paths, cmd.opts<PredictFlags>())));
};

/** A CSV field: quoted when it holds a comma, quote or line break (RFC 4180). */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

async function predict(paths: string[], flags: PredictFlags): Promise<void> {
  selectBackend(flags.backend);
  selectPrecision(flags.precision);
  const k = positiveInt('--top-k', flags.topK);
  if (flags.json && flags.csv) throw new UserError('--json and --csv: choose one output format');
  const { loaded, images } = modelAndImages(paths, flags);
  const classifier = new ImageClassifier(loaded);
  const classes = loaded.card.numClasses;
  const probs = new Float32Array(images.length * classes);
  await forEachBatch(classifier, images, flags, (start, x, n) => probs.set(classifier.probabilities(x, n), start * classes));
  const results: { file: string; top: ClassScore[] }[] = images.map((file, i) =>
    ({ file, top: classifier.top(probs.subarray(i * classes, (i + 1) * classes), k) }));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else if (flags.csv) {
    const rows = ['file,rank,index,class,probability'];
    for (const r of results) r.top.forEach((t, i) => rows.push([csvField(r.file), i + 1, t.index, csvField(t.class), t.probability.toFixed(6)].join(',')));
    process.stdout.write(`${rows.join('\n')}\n`);
  } else {
    for (const r of results) {
      process.stdout.write(`${r.file}: ${r.top.map((t) => `${t.class} ${(100 * t.probability).toFixed(1)}%`).join(', ')}\n`);
    }
  }
}
