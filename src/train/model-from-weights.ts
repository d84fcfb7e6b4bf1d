// The model a weights file holds, for every command that runs one (predict, embed, export,
// train --weights): a model file from `resnet train` rebuilds itself from its card; other
// weights (torchvision / timm `.pth` or safetensors) are built as the named or inferred
// model, with a card made for them: ImageNet-style models with 1,000 classes get the
// ImageNet preprocessing preset and class names, others the ImageNet normalisation and
// numbered classes.
import { IMAGENET_CLASSES, IMAGENET_MEAN, IMAGENET_PRESETS, IMAGENET_STD, type ImagenetPresetName } from '../data/imagenet.js';
import type { WeightNaming } from '../io/name-mapping.js';
import { loadWeights } from '../io/weights.js';
import { fromStateDict } from '../models/pretrained.js';
import { info } from '../models/registry.js';
import { type LoadedModel, MODEL_CARD_KEY, type ModelCard, modelFromFile, resolveModelPath } from './model-file.js';

export interface ModelFromWeightsOptions {
  /** Builder name; default: the model file's card, else inferred from the weights' shapes. */
  model?: string;
  naming?: WeightNaming | 'auto';
  width?: number;
  /** Preprocessing of ImageNet-style models (default IMAGENET1K_V1). */
  preset?: ImagenetPresetName;
}

export interface WeightsModel extends LoadedModel {
  /** Whether the card came from the file (a `resnet train` model file) or was made for foreign weights. */
  fromCard: boolean;
}

/** The card of foreign weights for `name` with `numClasses` outputs and `inChannels` input channels. */
export function cardForWeights(name: string, numClasses: number, inChannels: number, width: number, preset: ImagenetPresetName = 'IMAGENET1K_V1'): ModelCard {
  const about = info(name);
  const imagenet = about.family === 'imagenet';
  const p = IMAGENET_PRESETS[preset];
  const rgb = inChannels === 3;
  return {
    model: name, width, numClasses, inChannels,
    imageSize: imagenet ? [p.crop, p.crop] : [about.imageSize[0], about.imageSize[1]],
    mean: rgb ? [...IMAGENET_MEAN] : new Array<number>(inChannels).fill(0.5),
    std: rgb ? [...IMAGENET_STD] : new Array<number>(inChannels).fill(0.5),
    classNames: numClasses === IMAGENET_CLASSES.length ? [...IMAGENET_CLASSES] : Array.from({ length: numClasses }, (_, i) => `class ${i}`),
    dataset: numClasses === IMAGENET_CLASSES.length ? 'imagenet' : 'unknown',
    ...(imagenet ? { resizeShorter: p.resizeShorter } : {}),
  };
}

/** Read a model file or foreign weights and build the model, in inference mode. */
export function modelFromWeights(path: string, opts: ModelFromWeightsOptions = {}): WeightsModel {
  const file = resolveModelPath(path);
  const weights = loadWeights(file, { naming: opts.naming ?? 'auto' });
  if (weights.metadata[MODEL_CARD_KEY] !== undefined && opts.model === undefined) {
    return { ...modelFromFile(file, weights.state, weights.metadata), fromCard: true };
  }
  const built = fromStateDict(weights.state, file, { model: opts.model, width: opts.width }, weights.naming);
  const card = cardForWeights(built.name, built.model.numClasses, built.model.inChannels, opts.width ?? 1, opts.preset);
  return { file, card, model: built.model, metadata: weights.metadata, fromCard: false };
}

