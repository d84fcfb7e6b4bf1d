// State dicts from other libraries under our names (docs/weights.md has the tables).
//
// - torchvision ResNets and timm's `resnet*` (timm/models/resnet.py keeps torchvision's
//   names): loaded as they are into resnet18 ... resnet152.
// - timm's `resnetv2_*` with BatchNorm (resnetv2_18/34/50/101; timm/models/resnetv2.py,
//   preact=True): the same pre-activation blocks as our preact_resnet* (stride on the
//   3x3 convolution, a bare 1x1 projection reading the pre-activated input, a final
//   BN-ReLU), renamed by the table below; its 1x1-conv classifier becomes a Linear.
// - Keras ResNet v2 (keras.applications.ResNet50V2 ...) is recognised and refused with
//   the reasons: it puts each stage's stride on its last block, subsamples the shortcut
//   with a 1x1 max pool, and gives the stem, shortcut and block-output convolutions a
//   bias; none of these exist in He et al. 2016 or in our models.
import type { StateDict } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { WeightsFileError } from './errors.js';

export type WeightNaming = 'torchvision' | 'timm' | 'timm-resnetv2' | 'keras-resnet-v2';

export const WEIGHT_NAMINGS: readonly WeightNaming[] = ['torchvision', 'timm', 'timm-resnetv2', 'keras-resnet-v2'];

/** timm resnetv2 key pattern -> our key; `$1`, `$2`... are the groups, `S` is stage + 1. */
export const TIMM_RESNETV2_TABLE: readonly (readonly [RegExp, (m: RegExpMatchArray) => string])[] = [
  [/^stem\.conv\.weight$/, () => 'conv1.weight'],
  [/^stages\.(\d+)\.blocks\.(\d+)\.norm([123])\.(weight|bias|running_mean|running_var|num_batches_tracked)$/,
    (m) => `layer${Number(m[1]) + 1}.${m[2]}.bn${m[3]}.${m[4]}`],
  [/^stages\.(\d+)\.blocks\.(\d+)\.conv([123])\.weight$/, (m) => `layer${Number(m[1]) + 1}.${m[2]}.conv${m[3]}.weight`],
  [/^stages\.(\d+)\.blocks\.(\d+)\.downsample\.conv\.weight$/, (m) => `layer${Number(m[1]) + 1}.${m[2]}.downsample.0.weight`],
  [/^norm\.(weight|bias|running_mean|running_var|num_batches_tracked)$/, (m) => `bn.${m[1]}`],
  [/^head\.fc\.(weight|bias)$/, (m) => `fc.${m[1]}`],
];

const KERAS_KEY = /^(conv\d_block\d+_|conv1_conv|post_bn|predictions)/;

/** Which library's names a state dict uses, from its keys. */
export function detectNaming(state: StateDict): WeightNaming {
  const keys = Object.keys(state);
  if (keys.some((k) => KERAS_KEY.test(k))) return 'keras-resnet-v2';
  if (keys.some((k) => k.startsWith('stages.') || k.startsWith('stem.'))) return 'timm-resnetv2';
  return 'torchvision';
}

export interface MappedStateDict {
  state: StateDict;
  naming: WeightNaming;
}

/**
 * Rename a state dict to our names. `naming` 'auto' (the default) detects it. Keys the
 * table does not know are kept, so loadStateDict lists them as unexpected.
 */
export function toOurNames(state: StateDict, naming: WeightNaming | 'auto' = 'auto', source = '<state dict>'): MappedStateDict {
  const from = naming === 'auto' ? detectNaming(state) : naming;
  switch (from) {
    case 'torchvision':
    case 'timm':
      return { state, naming: from };
    case 'timm-resnetv2':
      return { state: fromTimmResNetV2(state, source), naming: from };
    case 'keras-resnet-v2':
      throw new WeightsFileError(source, 'holds Keras ResNet v2 weights, which do not fit these models: Keras puts each stage\'s ' +
        'stride on its last block and subsamples the shortcut with a 1x1 max pool, and its stem, shortcut and block-output ' +
        'convolutions have biases; the pre-activation ResNets here follow He et al. 2016 and timm (stride in the first block, ' +
        'projection shortcut, no convolution biases). Use timm resnetv2_* or torchvision weights');
  }
}

function fromTimmResNetV2(state: StateDict, source: string): StateDict {
  const keys = Object.keys(state);
  const groupNorm = keys.find((k) => /(^|\.)norm\d?\.weight$/.test(k) && !(k.replace(/weight$/, 'running_mean') in state));
  if (groupNorm) {
    throw new WeightsFileError(source, `is a timm resnetv2 with GroupNorm (${groupNorm} has no running statistics), as the BiT ` +
      'models (resnetv2_*_bit) are; only the BatchNorm variants (resnetv2_18, _34, _50, _101) match preact_resnet*');
  }
  const out: [string, Tensor][] = keys.map((key) => {
    const t = state[key]!;
    for (const [pattern, rename] of TIMM_RESNETV2_TABLE) {
      const m = key.match(pattern);
      if (!m) continue;
      const name = rename(m);
      // timm's head is a 1x1 convolution: [classes, features, 1, 1] -> Linear [classes, features].
      if (name === 'fc.weight' && t.ndim === 4 && t.shape[2] === 1 && t.shape[3] === 1) {
        return [name, new Tensor(t.data, [t.shape[0]!, t.shape[1]!])];
      }
      return [name, t];
    }
    return [key, t];
  });
  return Object.fromEntries(out);
}
