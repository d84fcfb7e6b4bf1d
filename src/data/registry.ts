// The data sets the command line knows by name, each with its training and test split.
import { existsSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { readCifar } from './cifar.js';
import type { ImageDataset } from './dataset.js';
import { DataError } from './errors.js';
import { readIdxFolder } from './idx.js';
import { ImageFolderDataset, type ImageFolderOptions } from './image-folder.js';

export const DATASET_NAMES = ['fashion-mnist', 'mnist', 'cifar10', 'cifar100', 'folder'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Fashion-MNIST's classes (Xiao et al. 2017, arXiv:1708.07747), by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];
export const MNIST_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** Where the data sets are when no folder is given (Debian's dataset-fashion-mnist). */
export const DEFAULT_DATA_DIRS: Partial<Record<DatasetName, string>> = {
  'fashion-mnist': '/usr/share/datasets/fashion-mnist',
  mnist: '/usr/share/datasets/mnist',
};

export interface DatasetSpec {
  name: DatasetName;
  /** Folder holding the files (default: DEFAULT_DATA_DIRS for the name). */
  dir?: string;
  /** CIFAR-100: 20 superclass labels. */
  coarse?: boolean;
  /** Image folders: size, channels, conversion. */
  folder?: Omit<ImageFolderOptions, 'classNames'>;
  /**
   * Image folders: decode every image once into memory (default: when the decoded
   * pixels fit in `inMemoryLimit` bytes; larger trees stream from disk batch by batch).
   */
  inMemory?: boolean;
  /** Image folders: the most bytes of decoded pixels kept in memory (default: inMemoryLimit()). */
  inMemoryLimit?: number;
}

/** Decoded image folders are never kept in memory beyond this size (one typed array). */
export const IN_MEMORY_LIMIT = 2 ** 31;

/**
 * The decoded pixels an image folder may keep in memory: a quarter of the memory
 * available now (the rest is for the model, its activations and the batches), at most
 * IN_MEMORY_LIMIT. A larger tree streams from disk instead of failing to allocate.
 */
export function inMemoryLimit(available = freemem()): number {
  return Math.min(IN_MEMORY_LIMIT, Math.floor(available / 4));
}

export interface DatasetSplits {
  train: ImageDataset;
  /** Null for an image folder without a test/ (or val/) subfolder. */
  test: ImageDataset | null;
  dir: string;
  /** The folder the training images come from (an image tree's train/, else `dir`). */
  trainDir: string;
}

export function resolveDataDir(spec: Pick<DatasetSpec, 'name' | 'dir'>): string {
  const dir = spec.dir ?? DEFAULT_DATA_DIRS[spec.name];
  if (dir === undefined) {
    throw new DataError(spec.name, `no default location for this data set; give its folder with --data DIR`);
  }
  return dir;
}

export async function loadDataset(spec: DatasetSpec): Promise<DatasetSplits> {
  const dir = resolveDataDir(spec);
  switch (spec.name) {
    case 'fashion-mnist':
    case 'mnist': {
      const names = spec.name === 'mnist' ? MNIST_CLASSES : FASHION_MNIST_CLASSES;
      if (!existsSync(dir) && spec.dir === undefined && spec.name === 'fashion-mnist') {
        throw new DataError(dir, 'no such folder; install the Debian package dataset-fashion-mnist ' +
          '(apt-get install dataset-fashion-mnist) or give the folder holding the IDX files with --data DIR');
      }
      return { train: readIdxFolder(dir, spec.name, 'train', names), test: readIdxFolder(dir, spec.name, 't10k', names), dir, trainDir: dir };
    }
    case 'cifar10':
    case 'cifar100':
      return {
        train: readCifar(dir, spec.name, 'train', { coarse: spec.coarse ?? false }),
        test: readCifar(dir, spec.name, 'test', { coarse: spec.coarse ?? false }),
        dir, trainDir: dir,
      };
    case 'folder':
      return loadFolderSplits(dir, spec);
  }
}

/** root/train and root/test (or root/val); a root without them is all training data. */
async function loadFolderSplits(root: string, spec: DatasetSpec): Promise<DatasetSplits> {
  const trainDir = existsSync(join(root, 'train')) ? join(root, 'train') : root;
  const train = await ImageFolderDataset.open(trainDir, 'folder/train', spec.folder);
  const testName = ['test', 'val'].find((n) => trainDir !== root && existsSync(join(root, n)));
  const test = testName === undefined ? null : await ImageFolderDataset.open(join(root, testName), `folder/${testName}`, {
    ...spec.folder, size: train.height, channels: train.channels, classNames: train.classNames,
  });
  const bytes = (train.length + (test?.length ?? 0)) * train.height * train.width * train.channels;
  if (spec.inMemory ?? bytes <= (spec.inMemoryLimit ?? inMemoryLimit())) {
    return { train: await train.toMemory(), test: test ? await test.toMemory() : null, dir: root, trainDir };
  }
  return { train, test, dir: root, trainDir };
}
