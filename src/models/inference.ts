// Compiled eval-mode inference for the models: built from the traced graph, see
// src/graph/compile.ts. No block type is named here or there.
export {
  compileInference, compileInferenceOrForward, inferenceOf, UnsupportedModelError,
} from '../graph/compile.js';
export type { InferenceFn, InferenceOptions } from '../graph/compile.js';
