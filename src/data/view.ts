// A data set seen through a list of indices: subsets and splits without copying pixels.
import type { ImageDataset } from './dataset.js';

export class DatasetView implements ImageDataset {
  readonly length: number;
  readonly labels: Int32Array;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly classNames: readonly string[];

  /** `classes`: the base's classes this view keeps, relabelled 0, 1, ... in this order (its images must be of them). */
  constructor(readonly base: ImageDataset, readonly indices: Int32Array, readonly name: string, classes?: readonly number[]) {
    for (const i of indices) {
      if (!(i >= 0 && i < base.length)) throw new RangeError(`${name}: index ${i} out of range for ${base.name} (${base.length} images)`);
    }
    this.length = indices.length;
    const relabel = classes && new Map(classes.map((c, k) => [c, k]));
    this.labels = Int32Array.from(indices, (i) => {
      const label = base.labels[i]!;
      if (!relabel) return label;
      const k = relabel.get(label);
      if (k === undefined) throw new RangeError(`${name}: image ${i} is of class ${label}, not one of ${classes!.join(', ')}`);
      return k;
    });
    this.height = base.height;
    this.width = base.width;
    this.channels = base.channels;
    this.classNames = classes ? classes.map((c) => base.classNames[c]!) : base.classNames;
  }

  readImages(indices: ArrayLike<number>, out: Uint8Array): Promise<void> {
    const mapped = Int32Array.from({ length: indices.length }, (_, k) => {
      const i = indices[k]!;
      if (!(i >= 0 && i < this.length)) throw new RangeError(`${this.name}: image index ${i} out of range 0..${this.length - 1}`);
      return this.indices[i]!;
    });
    return this.base.readImages(mapped, out);
  }
}
