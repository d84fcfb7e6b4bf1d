// resnet-ts public API. See README.md for a tour.
export { Tensor, tensor, zeros, ones, full, randn, rand, noGrad, isGradEnabled } from './tensor/tensor.js';
export type { GradNode, BackwardFn, DType, RandomOptions } from './tensor/tensor.js';
export { Rng, manualSeed } from './tensor/random.js';
export * as F from './tensor/ops.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export { backend, setBackend, getBackend, availableBackends, nativeUnavailableReason, setPrecision, precision, resolvePrecision, bf16Unavailable, PRECISIONS } from './backend/index.js';
export type { Precision, PrecisionChoice } from './backend/index.js';
export type { Backend, Storage } from './backend/backend.js';
export * as io from './io/index.js';
export * as models from './models/index.js';
export * as graph from './graph/index.js';
export * as report from './report/index.js';
export * as data from './data/index.js';
export * as train from './train/index.js';
