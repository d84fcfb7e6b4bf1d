// Softmax of each row of a logits matrix, computed stably (the row maximum subtracted).
export function softmaxRows(logits: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, logits[base + c]!);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(logits[base + c]! - max);
    for (let c = 0; c < cols; c++) out[base + c] = Math.exp(logits[base + c]! - max) / sum;
  }
  return out;
}
