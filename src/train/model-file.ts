// A trained model as one safetensors file: the state dict under torchvision's names,
// plus a `resnet_ts.model` metadata entry that says how to rebuild and feed the model
// (builder name, classes, input size and channels, normalisation), so `resnet eval`
// and `resnet predict` need nothing but the file.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, saveSafetensors } from '../io/safetensors.js';
import { WeightsFileError } from '../io/errors.js';
import { create } from '../models/registry.js';
import type { Module, StateDict } from '../nn/module.js';

export const MODEL_CARD_KEY = 'resnet_ts.model';

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
}

export function saveModelFile(path: string, model: Module, card: ModelCard, extra: Record<string, string> = {}): void {
  saveSafetensors(path, model.stateDict(), { ...extra, [MODEL_CARD_KEY]: JSON.stringify(card) });
}

function isNumberList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
}

function parseCard(text: string, file: string): ModelCard {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new WeightsFileError(file, `the ${MODEL_CARD_KEY} metadata is not valid JSON`);
  }
  const bad = (field: string): WeightsFileError =>
    new WeightsFileError(file, `the ${MODEL_CARD_KEY} metadata has no valid "${field}"`);
  if (typeof raw !== 'object' || raw === null) throw bad('model');
  const r = raw as Record<string, unknown>;
  const int = (k: string): number => {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad(k);
    return v;
  };
  if (typeof r['model'] !== 'string') throw bad('model');
  const size = r['imageSize'];
  if (!isNumberList(size) || size.length !== 2) throw bad('imageSize');
  const mean = r['mean'];
  const std = r['std'];
  if (!isNumberList(mean)) throw bad('mean');
  if (!isNumberList(std) || std.length !== mean.length) throw bad('std');
  const names = r['classNames'];
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw bad('classNames');
  const card: ModelCard = {
    model: r['model'], width: int('width'), numClasses: int('numClasses'), inChannels: int('inChannels'),
    imageSize: [size[0]!, size[1]!], mean, std, classNames: names, dataset: typeof r['dataset'] === 'string' ? r['dataset'] : 'unknown',
  };
  if (card.classNames.length !== card.numClasses) throw bad('classNames');
  if (card.mean.length !== card.inChannels) throw bad('mean');
  return card;
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
  const text = metadata[MODEL_CARD_KEY];
  if (text === undefined) {
    throw new WeightsFileError(file, `has no ${MODEL_CARD_KEY} metadata, so the model cannot be rebuilt from it; ` +
      'use a file written by `resnet train` (best.safetensors / final.safetensors in the run folder)');
  }
  const card = parseCard(text, file);
  const model = create(card.model, { numClasses: card.numClasses, inChannels: card.inChannels, width: card.width });
  loadInto(model, tensors, file);
  model.eval();
  return { file, card, model, metadata };
}

function loadInto(model: Module, tensors: StateDict, file: string): void {
  try {
    model.loadStateDict(tensors);
  } catch (e) {
    throw new WeightsFileError(file, `the weights do not fit the model it names (${e instanceof Error ? e.message : String(e)})`);
  }
}
