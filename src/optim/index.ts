export { SGD, paramGroupsNoDecay } from './sgd.js';
export type { SgdOptions, ParamGroup, SgdState } from './sgd.js';
export { LRScheduler, MultiStepLR, CosineAnnealingLR, LinearWarmup, OneCycleLR, warmupCosine } from './schedules.js';
