// Any ResNet weights as a model: torchvision `.pth` or safetensors files (torchvision or
// timm names, found from the keys), the builder named or inferred from the keys' shapes,
// and the classifier head replaced when another class count is asked for (timm's
// `create_model(name, pretrained=True, num_classes=N)`). Weights are checked against a
// dry build of the model first, so a wrong architecture costs nothing and is named in
// one line: the first key that does not fit, both shapes, and the models that do fit.
import { loadWeights } from '../io/weights.js';
import { WeightsFileError } from '../io/errors.js';
import type { WeightNaming } from '../io/name-mapping.js';
import { checkFinite, optionsFromWeights } from '../io/weight-checks.js';
import { stateDictShapes } from '../nn/layers.js';
import { shapesAgree, type StateDict } from '../nn/module.js';
import { formatShape } from '../tensor/tensor.js';
import type { ResidualNetwork } from './builders.js';
import type { ModelOptions } from './options.js';
import { create, info, list } from './registry.js';

/** The state-dict keys of the classifier head (replaced on a new class count). */
export const HEAD_KEYS: readonly string[] = ['fc.weight', 'fc.bias'];

export interface PretrainedOptions {
  /** Builder name, e.g. resnet50; default: the one model whose layers the weights fit. */
  model?: string;
  /** Whose names the file uses (default: detected from the keys). */
  naming?: WeightNaming | 'auto';
  /** Classifier outputs; when it differs from the weights' head, the head is new (initialised from `seed`). */
  numClasses?: number;
  /** Widening factor of the model (default 1). */
  width?: number;
  /** Seed of a replaced head's initialisation (default: the process-wide generator). */
  seed?: number;
}

export interface PretrainedModel {
  model: ResidualNetwork;
  /** The builder name. */
  name: string;
  /** The classes of the weights' own head, and whether it was replaced by one of `numClasses`. */
  headReplaced: { from: number; to: number } | null;
  naming: WeightNaming;
}

type Shapes = Readonly<Record<string, readonly number[]>>;

/** Shapes of a model's state dict, by a dry build (nothing allocated). */
function shapesOf(name: string, opts: ModelOptions): Shapes {
  return stateDictShapes(() => create(name, opts));
}

/**
 * The first thing keeping `state` from loading into a model of `expected` shapes, in the
 * model's key order (the file's extra keys after); null when it fits exactly.
 */
export function firstMismatch(expected: Shapes, state: StateDict, modelName: string): string | null {
  for (const [k, shape] of Object.entries(expected)) {
    const t = state[k];
    if (t === undefined) return `${modelName} has ${k} ${formatShape(shape)}, the file has no such key`;
    if (!shapesAgree(t.shape, shape)) return `${k} is ${formatShape(t.shape)} in the file, ${formatShape(shape)} in ${modelName}`;
  }
  const extra = Object.keys(state).find((k) => !Object.hasOwn(expected, k));
  return extra === undefined ? null : `the file has ${extra} ${formatShape(state[extra]!.shape)}, which ${modelName} does not have`;
}

/** Every builder (at width 1) whose state dict the weights fit exactly, classes and channels taken from them. */
export function modelsThatFit(state: StateDict): string[] {
  const opts = optionsFromWeights(state);
  const keys = Object.keys(state).length;
  return list().filter((name) => {
    try {
      const shapes = shapesOf(name, opts);
      return Object.keys(shapes).length === keys && firstMismatch(shapes, state, name) === null;
    } catch {
      // Options the builder cannot take (e.g. a class count of 0): it does not fit.
      return false;
    }
  });
}

function fitHint(state: StateDict, asked: string): string {
  const fits = modelsThatFit(state).filter((n) => n !== asked);
  if (fits.length === 0) return 'no model here fits them (resnet summary <model> lists a model\'s layers)';
  return `they fit ${fits.join(' and ')}: use --model ${fits[0]}`;
}

/** The builder the weights were made for, from their shapes; an error when none or several fit. */
export function inferModel(state: StateDict, source: string): string {
  const fits = modelsThatFit(state);
  if (fits.length === 1) return fits[0]!;
  if (fits.length === 0) {
    throw new WeightsFileError(source, 'no model here has these layers (a ResNet of another depth, width or family?); ' +
      'name it with --model (resnet summary <model> lists a model\'s layers)');
  }
  throw new WeightsFileError(source, `the weights fit ${fits.join(', ')} alike (they differ in parts without weights); ` +
    `name the one they are for with --model, e.g. --model ${fits[0]}`);
}

/**
 * Check that `state` fits `name` (with the head of `numClasses` outputs, which may differ
 * from the weights': then the head is not checked); a WeightsFileError naming the first
 * mismatched key, both shapes and the models that do fit otherwise.
 */
export function checkFits(state: StateDict, source: string, name: string, opts: ModelOptions = {}): void {
  info(name);
  const expected = shapesOf(name, { ...optionsFromWeights(state), ...opts });
  const replacing = opts.numClasses !== undefined && state['fc.weight']?.shape[0] !== opts.numClasses;
  const body = replacing ? withoutHead(state) : state;
  const bodyShapes = replacing ? Object.fromEntries(Object.entries(expected).filter(([k]) => !HEAD_KEYS.includes(k))) : expected;
  const mismatch = firstMismatch(bodyShapes, body, name);
  if (mismatch !== null) {
    const width = opts.width !== undefined && opts.width !== 1 ? ` at width ${opts.width}` : '';
    throw new WeightsFileError(source, `the weights do not fit ${name}${width}: ${mismatch}; ${fitHint(state, name)}`);
  }
}

function withoutHead(state: StateDict): StateDict {
  return Object.fromEntries(Object.entries(state).filter(([k]) => !HEAD_KEYS.includes(k)));
}

/** A model with `state` loaded (see PretrainedOptions); `source` names the weights in messages. */
export function fromStateDict(state: StateDict, source: string, opts: PretrainedOptions = {}, naming: WeightNaming = 'torchvision'): PretrainedModel {
  const name = opts.model ?? inferModel(state, source);
  const own = optionsFromWeights(state);
  const numClasses = opts.numClasses ?? own.numClasses;
  const modelOpts: ModelOptions = {
    ...own, ...(numClasses !== undefined ? { numClasses } : {}),
    ...(opts.width !== undefined ? { width: opts.width } : {}), ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
  };
  checkFits(state, source, name, { ...modelOpts, seed: undefined });
  checkFinite(state, source);
  const model = create(name, modelOpts);
  const replaced = own.numClasses !== undefined && numClasses !== own.numClasses;
  model.loadStateDict(replaced ? withoutHead(state) : state, { strict: !replaced });
  model.eval();
  return { model, name, naming, headReplaced: replaced ? { from: own.numClasses!, to: numClasses! } : null };
}

/** Read `.pth` or `.safetensors` weights and build the model they are for (see PretrainedOptions). */
export function load(file: string, opts: PretrainedOptions = {}): PretrainedModel {
  const weights = loadWeights(file, { naming: opts.naming ?? 'auto' });
  return fromStateDict(weights.state, file, opts, weights.naming);
}

/** One line for a replaced head, as the CLI and the library say it. */
export function headReplacedText(p: PretrainedModel): string | null {
  return p.headReplaced && `replaced the ${p.headReplaced.from}-class head of ${p.name} with a new ${p.headReplaced.to}-class one`;
}
