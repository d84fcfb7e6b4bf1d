// `resnet predict <model> <image...>`: the top-k classes of each image with their
// probabilities. Images are decoded, resized and normalised as the model was trained.
import { ImageClassifier } from '../../train/classify.js';
import { loadModelFile } from '../../train/model-file.js';
import type { Module } from '../../nn/module.js';
import { availableMemory, formatBytes, memoryNeed } from '../../train/memory.js';
import type { PrecisionChoice } from '../../backend/index.js';
import { UserError } from '../errors.js';
import { addComputeFlags, positiveInt } from '../flags.js';
import { selectBackend, selectPrecision } from '../select-backend.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

/** Images per forward pass. */
const PREDICT_BATCH = 32;

interface PredictFlags {
  topK: string;
  convertImages?: boolean;
  json?: boolean;
  backend?: string;
  precision: PrecisionChoice;
}

export const registerPredict: RegisterCommand = (program) => {
  const cmd = program.command('predict')
    .description('classify images with a trained model: the top-k classes with probabilities')
    .argument('<model>', 'a model file written by `resnet train` (.safetensors) or a run folder')
    .argument('<image...>', 'PNG or JPEG files')
    .option('--top-k <k>', 'classes shown per image', '3')
    .option('--convert-images', 'convert images of another channel count (e.g. RGB for a greyscale model) instead of rejecting them')
    .option('--json', 'print the result as JSON');
  addComputeFlags(cmd);
  cmd.addHelpText('after', '\nExample:\n  resnet predict runs/20240101-120000-resnet20-fashion-mnist shoe.png shirt.jpg');
  cmd.action((model: string, images: string[]) => userErrors(() => predict(model, images, cmd.opts<PredictFlags>())));
};

/** How many images a forward pass can take in the memory available (at least one, or an error). */
export function imagesThatFit(file: string, modelName: string, model: Module, shape: [number, number, number]): number {
  const need = memoryNeed(model, shape);
  const available = availableMemory();
  const fit = Math.floor((available - need.fixedBytes) / need.inferenceBytesPerImage);
  if (fit < 1) {
    throw new UserError(`${file}: classifying one ${shape[0]}x${shape[1]} image with ${modelName} needs about ` +
      `${formatBytes(need.fixedBytes + need.inferenceBytesPerImage)}, but ${formatBytes(available)} of memory is available`);
  }
  return fit;
}

async function predict(modelPath: string, images: string[], flags: PredictFlags): Promise<void> {
  selectBackend(flags.backend);
  selectPrecision(flags.precision);
  const k = positiveInt('--top-k', flags.topK);
  const loaded = loadModelFile(modelPath);
  const classifier = new ImageClassifier(loaded);
  const { card } = loaded;
  const [h, w] = card.imageSize;
  const batchSize = Math.min(PREDICT_BATCH, imagesThatFit(loaded.file, card.model, loaded.model, [h, w, card.inChannels]));
  const size = classifier.inputSize;
  const probs = new Float32Array(images.length * card.numClasses);
  // Images are decoded and classified a batch at a time: a shell glob may name thousands.
  for (let start = 0; start < images.length; start += batchSize) {
    const files = images.slice(start, start + batchSize);
    const x = new Float32Array(files.length * size);
    for (let i = 0; i < files.length; i++) {
      x.set(await classifier.input(files[i]!, { convert: flags.convertImages ?? false }), i * size);
    }
    probs.set(classifier.probabilities(x, files.length), start * card.numClasses);
  }
  const results = images.map((file, i) => ({ file, top: classifier.top(probs.subarray(i * card.numClasses, (i + 1) * card.numClasses), k) }));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  for (const r of results) {
    process.stdout.write(`${r.file}: ${r.top.map((t) => `${t.class} ${(100 * t.probability).toFixed(1)}%`).join(', ')}\n`);
  }
}
