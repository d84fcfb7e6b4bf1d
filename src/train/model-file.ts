// A trained model as one safetensors file: the state dict under torchvision's names,
// plus a `resnet_ts.model` metadata entry that says how to rebuild and feed the model
// (builder name, classes, input size and channels, normalisation), so `resnet eval`
// and `resnet predict` need nothing but the file, and a `resnet_ts.checksum` entry
// (SHA-256 of the tensors and that entry, as checkpoints carry) verified on load.
//
// A file is checked before the model is built from it: the checksum (when there is
// one: weights converted from elsewhere have none), every metadata field (types and
// ranges), the tensors against the shapes of the model the metadata names (a dry build,
// so a lying `width` costs nothing), and every weight for NaN and infinity.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { stateChecksum } from '../io/checksum.js';
import { WeightsFileError } from '../io/errors.js';
import { readSafetensors, saveSafetensors } from '../io/safetensors.js';
import { checkFinite, checkWeightsFit } from '../io/weight-checks.js';
import { create, list } from '../models/registry.js';
import type { Module, StateDict } from '../nn/module.js';

export const MODEL_CARD_KEY = 'resnet_ts.model';
export const MODEL_CHECKSUM_KEY = 'resnet_ts.checksum';

/** The largest image side a model file may name (16.8 M pixels; models here train on 28 to 224). */
export const MAX_IMAGE_SIDE = 4096;

export interface ModelCard {
  /** Builder name for models.create. */
  model: string;
  width: number;
  numClasses: number;
  inChannels: number;
  /** [height, width] of the images the model was trained on. */
  imageSize: [number, number];
  mean: number[];
  std: number[];
  classNames: string[];
  /** The data set it was trained on, e.g. `fashion-mnist`. */
  dataset: string;
  /**
   * Images are resized so their shorter side is this long, then centre-cropped to
   * imageSize (the ImageNet presets: 256 or 232 for 224); absent: scaled to cover imageSize.
   */
  resizeShorter?: number;
}

export function saveModelFile(path: string, model: Module, card: ModelCard, extra: Record<string, string> = {}): void {
  const state = model.stateDict();
  const cardText = JSON.stringify(card);
  saveSafetensors(path, state, {
    ...extra, [MODEL_CARD_KEY]: cardText, [MODEL_CHECKSUM_KEY]: stateChecksum(state, { [MODEL_CARD_KEY]: cardText }),
  });
}

/** A value as a message shows it: JSON, cut short. */
function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function parseCard(text: string, file: string): ModelCard {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new WeightsFileError(file, `the ${MODEL_CARD_KEY} metadata is not valid JSON`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new WeightsFileError(file, `the ${MODEL_CARD_KEY} metadata is not a JSON object`);
  }
  const r = raw as Record<string, unknown>;
  const bad = (field: string, expected: string): WeightsFileError => new WeightsFileError(file,
    `the ${MODEL_CARD_KEY} metadata has an invalid "${field}": expected ${expected}, got ${shown(r[field])}; the file is damaged or was edited`);
  const count = (k: string, max = Number.MAX_SAFE_INTEGER): number => {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) {
      throw bad(k, max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer from 1 to ${max}`);
    }
    return v;
  };
  const model = r['model'];
  if (typeof model !== 'string') throw bad('model', 'a model name');
  if (!list().includes(model)) {
    throw new WeightsFileError(file, `the ${MODEL_CARD_KEY} metadata names an unknown model ${shown(model)}; ` +
      'the file is damaged or was edited, or comes from a newer version of resnet-ts');
  }
  const width = count('width');
  const numClasses = count('numClasses');
  const inChannels = count('inChannels');
  const size = r['imageSize'];
  if (!Array.isArray(size) || size.length !== 2 || !size.every((d) => Number.isInteger(d) && d >= 1 && d <= MAX_IMAGE_SIDE)) {
    throw bad('imageSize', `[height, width], integers from 1 to ${MAX_IMAGE_SIDE}`);
  }
  const numbers = (k: string, ok: (x: number) => boolean, what: string): number[] => {
    const v = r[k];
    if (!Array.isArray(v) || v.length !== inChannels || !v.every((x) => typeof x === 'number' && ok(x))) {
      throw bad(k, `${inChannels} ${what} (one per input channel)`);
    }
    return v as number[];
  };
  const mean = numbers('mean', Number.isFinite, 'finite numbers');
  const std = numbers('std', (x) => Number.isFinite(x) && x > 0, 'numbers > 0');
  const names = r['classNames'];
  if (!Array.isArray(names) || names.length !== numClasses || !names.every((n) => typeof n === 'string')) {
    throw bad('classNames', `${numClasses} strings (one per class)`);
  }
  const dataset = r['dataset'] ?? 'unknown';
  if (typeof dataset !== 'string') throw bad('dataset', 'a data-set name');
  const resize = r['resizeShorter'];
  if (resize !== undefined && !(Number.isInteger(resize) && (resize as number) >= Math.max(size[0], size[1]) && (resize as number) <= MAX_IMAGE_SIDE)) {
    throw bad('resizeShorter', `an integer from the image size to ${MAX_IMAGE_SIDE}`);
  }
  return {
    model, width, numClasses, inChannels, imageSize: [size[0], size[1]], mean, std, classNames: names as string[], dataset,
    ...(resize !== undefined ? { resizeShorter: resize as number } : {}),
  };
}

function describe(card: ModelCard): string {
  const classes = card.numClasses === 1 ? '1 class' : `${card.numClasses} classes`;
  const channels = card.inChannels === 1 ? '1 input channel' : `${card.inChannels} input channels`;
  return `${card.model} at width ${card.width} with ${classes} and ${channels}`;
}

/**
 * The model file a path names: the file itself, or in a run folder `best.safetensors`
 * (else `final.safetensors`).
 */
export function resolveModelPath(path: string): string {
  if (existsSync(path) && statSync(path).isDirectory()) {
    for (const name of ['best.safetensors', 'final.safetensors']) {
      const p = join(path, name);
      if (existsSync(p)) return p;
    }
    throw new WeightsFileError(path, 'is a folder without best.safetensors or final.safetensors; give a run folder or a .safetensors model file');
  }
  return path;
}

export interface LoadedModel {
  file: string;
  card: ModelCard;
  model: Module;
  metadata: Record<string, string>;
}

/** Read a model file and rebuild the model with its weights, in inference mode. */
export function loadModelFile(path: string): LoadedModel {
  const file = resolveModelPath(path);
  const { tensors, metadata } = readSafetensors(file);
  return modelFromFile(file, tensors, metadata);
}

/** The model a model file's tensors and metadata (already read) describe, checked as the file comment says. */
export function modelFromFile(file: string, tensors: StateDict, metadata: Record<string, string>): LoadedModel {
  const text = metadata[MODEL_CARD_KEY];
  if (text === undefined) {
    throw new WeightsFileError(file, `has no ${MODEL_CARD_KEY} metadata, so the model cannot be rebuilt from it; ` +
      'use a file written by `resnet train` (best.safetensors / final.safetensors in the run folder)');
  }
  const stored = metadata[MODEL_CHECKSUM_KEY];
  if (stored !== undefined && stored !== stateChecksum(tensors, { [MODEL_CARD_KEY]: text })) {
    throw new WeightsFileError(file, 'checksum mismatch: the model file is damaged (its weights or metadata changed after it was written)');
  }
  const card = parseCard(text, file);
  const opts = { numClasses: card.numClasses, inChannels: card.inChannels, width: card.width };
  checkWeightsFit(file, tensors, () => create(card.model, opts), (mismatch) =>
    `its ${MODEL_CARD_KEY} metadata describes ${describe(card)}, which its tensors do not fit (${mismatch}); the file is damaged or was edited`);
  checkFinite(tensors, file);
  const model = create(card.model, opts);
  model.loadStateDict(tensors);
  model.eval();
  return { file, card, model, metadata };
}
