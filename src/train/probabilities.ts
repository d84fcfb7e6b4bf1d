import { backend } from '../backend/index.js';

/** Softmax of each row of a logits matrix: exp of the backend's (stable) log-softmax. */
export function softmaxRows(logits: Float32Array, rows: number, cols: number): Float32Array {
  return backend().logSoftmax(logits, rows, cols).map(Math.exp);
}
