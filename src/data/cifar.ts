// CIFAR-10 and CIFAR-100 in the binary format of the official *-binary.tar.gz
// (https://www.cs.toronto.edu/~kriz/cifar.html), read from the extracted folder.
// A CIFAR-10 record is 1 label byte then 3072 pixel bytes; a CIFAR-100 record is a
// coarse and a fine label byte then the pixels. Pixels are planar (1024 red, 1024
// green, 1024 blue, each 32x32 row-major) and are turned into HWC here.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InMemoryDataset } from './dataset.js';
import { DataError } from './errors.js';
import { readBytes, requireDirectory } from './files.js';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = 3 * PLANE;

export type CifarVariant = 'cifar10' | 'cifar100';
export type CifarSplit = 'train' | 'test';

interface Layout {
  readonly title: string;
  /** The folder the archive extracts to. */
  readonly folder: string;
  readonly trainFiles: readonly string[];
  readonly testFiles: readonly string[];
  /** Label bytes before the pixels, and which of them is the label used. */
  readonly labelBytes: number;
  readonly numClasses: number;
  readonly namesFile: string;
}

const LAYOUTS: Record<CifarVariant, Layout> = {
  cifar10: {
    title: 'CIFAR-10', folder: 'cifar-10-batches-bin',
    trainFiles: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), testFiles: ['test_batch.bin'],
    labelBytes: 1, numClasses: 10, namesFile: 'batches.meta.txt',
  },
  cifar100: {
    title: 'CIFAR-100', folder: 'cifar-100-binary',
    trainFiles: ['train.bin'], testFiles: ['test.bin'],
    labelBytes: 2, numClasses: 100, namesFile: 'fine_label_names.txt',
  },
};

/** Used when the names file is missing (it ships in the archive, so rarely). */
const CIFAR10_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export interface CifarOptions {
  /** CIFAR-100 only: use the 20 superclass labels instead of the 100 classes. */
  coarse?: boolean;
}

/** Decode the records of one binary batch file. */
export function parseCifarBatch(bytes: Uint8Array, file: string, variant: CifarVariant, opts: CifarOptions = {}):
  { pixels: Uint8Array; labels: Int32Array } {
  const layout = LAYOUTS[variant];
  const record = layout.labelBytes + PIXELS;
  if (bytes.length === 0 || bytes.length % record !== 0) {
    throw new DataError(file, `${bytes.length} bytes is not a whole number of ${record}-byte ${layout.title} records ` +
      `(${layout.labelBytes} label byte${layout.labelBytes > 1 ? 's' : ''} + 32x32x3 pixels); ` +
      'the file is truncated or not a binary batch (use the *-binary.tar.gz version of the data set)');
  }
  const coarse = variant === 'cifar100' && (opts.coarse ?? false);
  const labelOffset = variant === 'cifar100' && !coarse ? 1 : 0;
  const numClasses = coarse ? 20 : layout.numClasses;
  const n = bytes.length / record;
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = i * record;
    const label = bytes[r + labelOffset]!;
    if (label >= numClasses) {
      throw new DataError(file, `record ${i} has label ${label}, expected 0..${numClasses - 1}; ` +
        `the file is damaged or is not a ${layout.title} batch`);
    }
    labels[i] = label;
    const src = r + layout.labelBytes;
    const dst = i * PIXELS;
    for (let p = 0; p < PLANE; p++) {
      pixels[dst + 3 * p] = bytes[src + p]!;
      pixels[dst + 3 * p + 1] = bytes[src + PLANE + p]!;
      pixels[dst + 3 * p + 2] = bytes[src + 2 * PLANE + p]!;
    }
  }
  return { pixels, labels };
}

/** The folder holding the batches: `dir` itself or its extracted-archive subfolder. */
export function resolveCifarFolder(dir: string, variant: CifarVariant): string {
  const layout = LAYOUTS[variant];
  requireDirectory(dir, `the extracted ${layout.title} binary archive (${layout.folder}/)`);
  if (existsSync(join(dir, layout.testFiles[0]!))) return dir;
  const inner = join(dir, layout.folder);
  if (existsSync(join(inner, layout.testFiles[0]!))) return inner;
  throw new DataError(dir, `no ${layout.title} binary batches here: expected ${layout.testFiles[0]} in this folder or in ${layout.folder}/ ` +
    `(extract ${variant === 'cifar10' ? 'cifar-10-binary.tar.gz' : 'cifar-100-binary.tar.gz'} here)`);
}

function classNames(dir: string, variant: CifarVariant, coarse: boolean): string[] {
  const layout = LAYOUTS[variant];
  const namesFile = join(dir, coarse ? 'coarse_label_names.txt' : layout.namesFile);
  const count = coarse ? 20 : layout.numClasses;
  if (existsSync(namesFile)) {
    const names = new TextDecoder().decode(readBytes(namesFile)).split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
    if (names.length !== count) {
      throw new DataError(namesFile, `lists ${names.length} class names, expected ${count} (one per line)`);
    }
    return names;
  }
  if (variant === 'cifar10') return CIFAR10_NAMES;
  return Array.from({ length: count }, (_, i) => `class ${i}`);
}

/** The training or test split of CIFAR-10/100 from its extracted binary folder. */
export function readCifar(dir: string, variant: CifarVariant, split: CifarSplit, opts: CifarOptions = {}): InMemoryDataset {
  const layout = LAYOUTS[variant];
  const folder = resolveCifarFolder(dir, variant);
  const files = split === 'train' ? layout.trainFiles : layout.testFiles;
  const parts = files.map((f) => {
    const file = join(folder, f);
    return parseCifarBatch(readBytes(file), file, variant, opts);
  });
  const n = parts.reduce((a, p) => a + p.labels.length, 0);
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    pixels.set(p.pixels, at * PIXELS);
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  const names = classNames(folder, variant, variant === 'cifar100' && (opts.coarse ?? false));
  return new InMemoryDataset(`${variant}/${split}`, pixels, labels, SIDE, SIDE, 3, names);
}
