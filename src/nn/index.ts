export { Module, Parameter } from './module.js';
export type { StateDict, LoadStateDictOptions, LoadStateDictResult } from './module.js';
export {
  Conv2d, BatchNorm2d, Linear, ReLU, Identity, Sequential, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, stateDictShapes,
} from './layers.js';
export * as init from './init.js';
export { foldBatchNorm } from './fold.js';
export type { BatchNormStatistics, ConvWeights, FoldedConv } from './fold.js';
