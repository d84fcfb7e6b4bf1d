// Residual networks: v1 (He et al. 2015, arXiv:1512.03385), v2 / pre-activation
// (He et al. 2016, arXiv:1603.05027), their plain twins and wide variants, built by
// name through create() and listed by list().
//
// State-dict names (see docs/models.md):
// - ImageNet v1 family (resnet18 ... resnet152, plain18/34): identical to torchvision,
//   keys and shapes: conv1, bn1, layer1.0.conv1, layer1.0.bn1, ..., layer2.0.downsample.0
//   (1x1 conv), layer2.0.downsample.1 (BN), fc. Bottlenecks add conv3/bn3.
// - CIFAR v1 family (resnet20 ... resnet1202, plain20 ... plain110): the same scheme
//   with three stages: conv1, bn1, layer1..layer3, fc. Option A shortcuts have no
//   parameters; with options B/C a projection is downsample.0 / downsample.1.
// - Pre-activation family (preact_*, wide_*): conv1 (the bare stem convolution),
//   layerK.I.{bn1, conv1, bn2, conv2} (bottlenecks add bn3, conv3), a projection
//   shortcut is one 1x1 conv at layerK.I.downsample.0 (no BN: the next block
//   normalises), then the final bn and fc.
// Convolution weights are OIHW [out, in, kh, kw], activations NHWC [N, H, W, C].
export { BasicBlock, Bottleneck } from './blocks.js';
export { PreActBlock, PreActBottleneck } from './preact_blocks.js';
export { PlainBlock, PlainBottleneck } from './plain_blocks.js';
export { ZeroPadShortcut, postActivationShortcut, preActivationShortcut, SHORTCUT_KINDS } from './shortcuts.js';
export type { ShortcutKind } from './shortcuts.js';
export { makeStage } from './stage.js';
export type { Block, BlockType, Stage } from './stage.js';
export type { NetworkConfig, StemKind } from './network.js';
export { ResNet, PlainNet } from './resnet.js';
export type { PlainNetConfig } from './resnet.js';
export { PreActResNet } from './preact_resnet.js';
export type { PreActResNetConfig } from './preact_resnet.js';
export { conv1x1, conv3x3 } from './convs.js';
export { ModelConfigError } from './errors.js';
export type { ModelOptions, ModelFamily } from './options.js';
export * from './builders.js';
export { create, list, info } from './registry.js';
export type { ModelInfo, CreateOptions } from './registry.js';
export { load, fromStateDict, inferModel, modelsThatFit, checkFits, firstMismatch, headReplacedText, HEAD_KEYS } from './pretrained.js';
export type { PretrainedModel, PretrainedOptions } from './pretrained.js';
export { summarize, formatSummary } from './summary.js';
export { compileInference, compileInferenceOrForward, inferenceOf, UnsupportedModelError } from './inference.js';
export type { InferenceFn, InferenceOptions } from './inference.js';
export type { LayerSummary, ModelSummary } from './summary.js';
