export { trace, readers, TraceError } from './trace.js';
export type { Graph, Node, Value, ValueKind, TraceOptions } from './trace.js';
export { fuse, opName } from './passes.js';
export type { Step, ConvStep, BatchNormStep, NodeStep, FuseOptions } from './passes.js';
export { compileInference, compileInferenceOrForward, inferenceOf, runConv, UnsupportedModelError } from './compile.js';
export type { InferenceFn, InferenceOptions, PreparedConv } from './compile.js';
