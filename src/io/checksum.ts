// The SHA-256 checksum that training checkpoints and model files carry in their
// metadata, so that a changed byte anywhere (tensor names, shapes, values or the
// metadata it covers) is found on load instead of giving different weights.
import { createHash } from 'node:crypto';
import type { StateDict } from '../nn/module.js';

/** SHA-256 (hex) over the tensor names, shapes and float32 values (in name order), then the metadata entries (in key order). */
export function stateChecksum(tensors: StateDict, metadata: Record<string, string>): string {
  const h = createHash('sha256');
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name]!;
    h.update(`${name}:${t.shape.join('x')};`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  for (const k of Object.keys(metadata).sort()) h.update(`${k}=${metadata[k]};`);
  return h.digest('hex');
}
