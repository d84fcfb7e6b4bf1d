// Fine-tuning a pretrained model (fastai's vision_learner(...).fine_tune(n), timm's
// create_model(pretrained=True)): which parts are frozen (the backbone, or the stem up to
// a stage), the head and backbone as parameter groups with their own learning rates, and
// the two phases of --fine-tune-epochs (the head alone, then everything).
// A frozen part takes no optimizer step (no gradient, so no weight decay or momentum
// either) and its BN layers stay in inference mode, keeping their running statistics.
import type { Module } from '../nn/module.js';
import type { ParamGroup } from '../optim/sgd.js';
import { ConfigError, type FreezeLevel, type TrainConfig } from './config.js';

/** The classifier: the model's `fc` child; everything else is the backbone. */
const HEAD = 'fc';

/** The top-level parts of `model` that `level` freezes, in forward order. */
export function frozenParts(model: Module, level: FreezeLevel, name = 'the model'): Module[] {
  const children = model.namedChildren();
  if (level === 'none') return [];
  if (level === 'backbone') return children.filter(([n]) => n !== HEAD).map(([, m]) => m);
  const last = level === 'stem' ? children.findIndex(([n]) => n === 'layer1') - 1 : children.findIndex(([n]) => n === level);
  if (last < 0) {
    const stages = children.map(([n]) => n).filter((n) => /^layer\d+$/.test(n));
    throw new ConfigError(`--freeze ${level}: ${name} has the stages ${stages.join(', ')}; freeze one of them, stem, backbone or none`);
  }
  return children.slice(0, last + 1).map(([, m]) => m);
}

/**
 * SGD parameter groups: weights and (unless decayAll) BN parameters and biases without
 * weight decay, each split into backbone (lr x backboneLrScale) and head.
 */
export function fineTuneGroups(model: Module, config: TrainConfig): ParamGroup[] {
  const head = new Set(model.namedChildren().find(([n]) => n === HEAD)?.[1].parameters() ?? []);
  const groups: ParamGroup[] = [];
  for (const inHead of [false, true]) {
    const params = model.parameters().filter((p) => head.has(p) === inHead);
    const lrScale = inHead ? 1 : config.backboneLrScale;
    if (config.decayAll) {
      groups.push({ params, lrScale, weightDecay: config.weightDecay });
    } else {
      groups.push({ params: params.filter((p) => p.ndim > 1), lrScale, weightDecay: config.weightDecay });
      groups.push({ params: params.filter((p) => p.ndim <= 1), lrScale, weightDecay: 0 });
    }
  }
  return groups.filter((g) => g.params.length > 0);
}

/**
 * The parts frozen in each epoch (0-based): the backbone for the first fineTuneEpochs,
 * then what --freeze says; null when nothing is ever frozen.
 */
export function freezeSchedule(model: Module, config: TrainConfig, name: string): ((epoch: number) => readonly Module[]) | null {
  const always = frozenParts(model, config.freeze, name);
  const first = config.fineTuneEpochs;
  if (first === null) return always.length > 0 ? () => always : null;
  const backbone = frozenParts(model, 'backbone', name);
  return (epoch) => (epoch < first ? backbone : always);
}
