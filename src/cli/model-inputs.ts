// What `resnet predict` and `resnet embed` share: the model from --weights / --model /
// --preset or a model file given first, the image paths (folders expanded to the images
// they hold, in name order), and running the images through in batches with a progress line.
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { type Command, Option } from 'commander';
import { IMAGENET_PRESET_NAMES, type ImagenetPresetName } from '../data/imagenet.js';
import { IMAGE_EXTENSIONS } from '../data/image-folder.js';
import { ImageClassifier } from '../train/classify.js';
import { modelFromWeights, type WeightsModel } from '../train/model-from-weights.js';
import { ProgressLine } from '../train/progress.js';
import { availableMemory, formatBytes, memoryNeed } from '../train/memory.js';
import type { Module } from '../nn/module.js';
import { UserError } from './errors.js';
import { NAMING_HELP, namingFlag, positiveInt } from './flags.js';

export interface ModelInputFlags {
  weights?: string;
  model?: string;
  preset?: ImagenetPresetName;
  naming: string;
  batchSize: string;
  convertImages?: boolean;
  progress: boolean;
}

/** --weights, --model, --preset, --naming, --batch-size, --convert-images, --no-progress. */
export function addModelInputFlags(cmd: Command): Command {
  return cmd
    .option('--weights <file>', 'weights to use: a model file from `resnet train`, or torchvision / timm .pth or .safetensors ' +
      '(then every path is an image or a folder of images)')
    .option('--model <name>', 'the model the weights are for, e.g. resnet50 (default: the model file\'s, or inferred from the weights)')
    .addOption(new Option('--preset <name>', 'preprocessing of ImageNet-style weights (torchvision\'s transforms of the same name)')
      .choices(IMAGENET_PRESET_NAMES))
    .option('--naming <from>', NAMING_HELP, 'auto')
    .option('--batch-size <n>', 'images per forward pass', '32')
    .option('--convert-images', 'convert images of another channel count (e.g. RGB for a greyscale model) instead of rejecting them')
    .option('--no-progress', 'no progress line on stderr');
}

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

/** Image files of `paths`: files as given, folders by their images (name order, not recursive). */
export function imageFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      // Not there: the decoder names it.
    }
    if (!isDir) {
      out.push(p);
      continue;
    }
    const images = readdirSync(p).filter((n) => IMAGE_EXTENSIONS.includes(extname(n).toLowerCase())).sort().map((n) => join(p, n));
    if (images.length === 0) throw new UserError(`${p}: a folder without images (looked for ${IMAGE_EXTENSIONS.join(' ')})`);
    out.push(...images);
  }
  return out;
}

/** The model and the images: with --weights every path is an image, else the first is the model file. */
export function modelAndImages(paths: readonly string[], flags: ModelInputFlags): { loaded: WeightsModel; images: string[] } {
  if (flags.weights === undefined && (flags.model !== undefined || flags.preset !== undefined)) {
    throw new UserError(`${flags.model !== undefined ? '--model' : '--preset'} goes with --weights FILE (the weights of that model)`);
  }
  const [first, ...rest] = paths;
  const weights = flags.weights ?? first;
  const images = flags.weights !== undefined ? [...paths] : rest;
  if (weights === undefined || images.length === 0) {
    throw new UserError('give the images (files or folders) after the model file, or the weights with --weights FILE');
  }
  const loaded = modelFromWeights(weights, { model: flags.model, preset: flags.preset, naming: namingFlag(flags.naming) });
  return { loaded, images: imageFiles(images) };
}

/**
 * Run `images` through `classifier` in batches; `use(start, x, n)` gets each batch's
 * inputs. A progress line counts the images when there is more than one batch.
 */
export async function forEachBatch(classifier: ImageClassifier, images: readonly string[], flags: ModelInputFlags,
  use: (start: number, x: Float32Array, n: number) => void): Promise<void> {
  const { card, model, file } = classifier.loaded;
  const [h, w] = card.imageSize;
  const batchSize = Math.min(positiveInt('--batch-size', flags.batchSize), imagesThatFit(file, card.model, model, [h, w, card.inChannels]));
  const size = classifier.inputSize;
  const progress = new ProgressLine(process.stderr);
  const show = flags.progress && images.length > batchSize;
  try {
    for (let start = 0; start < images.length; start += batchSize) {
      const files = images.slice(start, start + batchSize);
      const x = new Float32Array(files.length * size);
      for (let i = 0; i < files.length; i++) x.set(await classifier.input(files[i]!, { convert: flags.convertImages ?? false }), i * size);
      use(start, x, files.length);
      if (show) progress.update(`${Math.min(start + batchSize, images.length)}/${images.length} images`);
    }
  } finally {
    progress.clear();
  }
}
