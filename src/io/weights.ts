// One entry point for weight files of either format, renamed to our names: what the
// CLI and users loading foreign checkpoints call.
import { closeSync, readSync } from 'node:fs';
import type { StateDict } from '../nn/module.js';
import { WeightsFileError } from './errors.js';
import { EMPTY_FILE, openWeightsFile } from './files.js';
import { toOurNames, type WeightNaming } from './name-mapping.js';
import { isLegacyTorchSave, isZip, loadPth } from './pth.js';
import { readSafetensors } from './safetensors.js';

export type WeightFormat = 'safetensors' | 'pth';

export interface LoadedWeights {
  state: StateDict;
  /** The safetensors `__metadata__` map (empty for .pth files). */
  metadata: Record<string, string>;
  format: WeightFormat;
  /** The naming the keys were mapped from. */
  naming: WeightNaming;
}

export interface LoadWeightsOptions {
  /** Whose names the file uses; 'auto' (default) detects them from the keys. */
  naming?: WeightNaming | 'auto';
}

/**
 * The format of a weights file, from its first bytes (a zip or pickle is a .pth; a JSON
 * header after 8 bytes is safetensors), else from its name (.pth or .pt: a damaged
 * PyTorch file), else safetensors.
 */
export function detectFormat(path: string): WeightFormat {
  const { fd, size } = openWeightsFile(path);
  const head = new Uint8Array(9);
  try {
    readSync(fd, head, 0, Math.min(head.length, size), 0);
  } finally {
    closeSync(fd);
  }
  if (size === 0) throw new WeightsFileError(path, EMPTY_FILE);
  if (isZip(head) || isLegacyTorchSave(head)) return 'pth';
  const jsonHeader = size > 8 && head[8] === 0x7b;
  return !jsonHeader && /\.(pth|pt)$/i.test(path) ? 'pth' : 'safetensors';
}

/** Read a .safetensors or .pth file and map its names to ours. */
export function loadWeights(path: string, opts: LoadWeightsOptions = {}): LoadedWeights {
  const format = detectFormat(path);
  const { tensors, metadata } = format === 'pth' ? { tensors: loadPth(path), metadata: {} } : readSafetensors(path);
  const mapped = toOurNames(tensors, opts.naming ?? 'auto', path);
  return { state: mapped.state, metadata, format, naming: mapped.naming };
}
