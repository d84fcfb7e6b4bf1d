// One entry point for weight files of either format, renamed to our names: what the
// CLI and users loading foreign checkpoints call.
import { closeSync, openSync, readSync } from 'node:fs';
import type { StateDict } from '../nn/module.js';
import { WeightsFileError } from './errors.js';
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

/** The format of a weights file, from its first bytes (a zip or pickle is a .pth). */
export function detectFormat(path: string): WeightFormat {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new WeightsFileError(path, `cannot open: ${e instanceof Error ? e.message : String(e)}`);
  }
  const head = new Uint8Array(4);
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return isZip(head) || isLegacyTorchSave(head) ? 'pth' : 'safetensors';
}

/** Read a .safetensors or .pth file and map its names to ours. */
export function loadWeights(path: string, opts: LoadWeightsOptions = {}): LoadedWeights {
  const format = detectFormat(path);
  const { tensors, metadata } = format === 'pth' ? { tensors: loadPth(path), metadata: {} } : readSafetensors(path);
  const mapped = toOurNames(tensors, opts.naming ?? 'auto', path);
  return { state: mapped.state, metadata, format, naming: mapped.naming };
}
