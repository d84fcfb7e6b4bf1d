// Taking part of a data set: a seeded random subset, and the train/validation split
// (He et al. 2015 sec. 4.2 hold out 5k of CIFAR-10's 50k training images).
import { Rng } from '../tensor/random.js';
import type { ImageDataset } from './dataset.js';
import { deriveSeed } from './seeds.js';
import { DatasetView } from './view.js';

const SUBSET_STREAM = 0x5355;
const SPLIT_STREAM = 0x5650;
const PER_CLASS_STREAM = 0x5043;

/** `count` images drawn at random (seeded), kept in their original order. */
export function randomSubset(ds: ImageDataset, count: number, seed: number): ImageDataset {
  if (!(Number.isInteger(count) && count > 0)) throw new RangeError(`subset size must be a positive integer, got ${count}`);
  if (count >= ds.length) return ds;
  const perm = new Rng(deriveSeed(seed, SUBSET_STREAM)).permutation(ds.length);
  return new DatasetView(ds, perm.slice(0, count).sort(), `${ds.name}[${count}]`);
}

/** Hold out `valSize` random images (seeded) as a validation set; the rest train. */
export function trainValSplit(ds: ImageDataset, valSize: number, seed: number): { train: ImageDataset; val: ImageDataset } {
  if (!(Number.isInteger(valSize) && valSize > 0 && valSize < ds.length)) {
    throw new RangeError(`validation size must be an integer in 1..${ds.length - 1} (the training set has ${ds.length} images), got ${valSize}`);
  }
  const perm = new Rng(deriveSeed(seed, SPLIT_STREAM)).permutation(ds.length);
  return {
    train: new DatasetView(ds, perm.slice(valSize).sort(), `${ds.name}[${ds.length - valSize}]`),
    val: new DatasetView(ds, perm.slice(0, valSize).sort(), `${ds.name}[val ${valSize}]`),
  };
}

/**
 * The images of `classes` only, relabelled 0, 1, ... in the order given (a transfer
 * experiment's task: e.g. Fashion-MNIST classes 5-9 as a 5-class problem).
 */
export function selectClasses(ds: ImageDataset, classes: readonly number[]): ImageDataset {
  const bad = classes.find((c) => !(Number.isInteger(c) && c >= 0 && c < ds.classNames.length));
  if (bad !== undefined) throw new RangeError(`class ${bad} is not one of ${ds.name}'s classes 0..${ds.classNames.length - 1}`);
  if (new Set(classes).size !== classes.length) throw new RangeError(`classes ${classes.join(',')} name a class twice`);
  const keep = new Set(classes);
  const indices = Int32Array.from([...ds.labels.keys()].filter((i) => keep.has(ds.labels[i]!)));
  return new DatasetView(ds, indices, `${ds.name}[classes ${classes.join(',')}]`, classes);
}

/** `count` images of each class drawn at random (seeded; all of a class that has fewer), in their original order. */
export function perClassSubset(ds: ImageDataset, count: number, seed: number): ImageDataset {
  if (!(Number.isInteger(count) && count > 0)) throw new RangeError(`images per class must be a positive integer, got ${count}`);
  const perm = new Rng(deriveSeed(seed, PER_CLASS_STREAM)).permutation(ds.length);
  const taken = new Array<number>(ds.classNames.length).fill(0);
  const chosen: number[] = [];
  for (const i of perm) {
    const label = ds.labels[i]!;
    if (taken[label]! < count) {
      taken[label]!++;
      chosen.push(i);
    }
  }
  return new DatasetView(ds, Int32Array.from(chosen).sort(), `${ds.name}[${count} per class]`);
}
