// An image classification data set: uint8 images of one size (HWC, row-major), one
// integer label each, and the names of the classes. Readers (IDX, CIFAR, image
// folders) all produce this; the DataLoader turns it into float NHWC batches.
import { DataError } from './errors.js';

export interface ImageDataset {
  /** What the set is, for messages and run records: e.g. `fashion-mnist/train`. */
  readonly name: string;
  readonly length: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly labels: Int32Array;
  readonly classNames: readonly string[];
  /**
   * Copy the pixels of the images at `indices` into `out`, one after another
   * (height * width * channels bytes each, HWC). Async so that a set read from disk
   * on demand can decode while the model computes.
   */
  readImages(indices: ArrayLike<number>, out: Uint8Array): Promise<void>;
}

/** A data set whose pixels are all in memory, one contiguous NHWC uint8 array. */
export class InMemoryDataset implements ImageDataset {
  readonly length: number;

  constructor(readonly name: string, readonly pixels: Uint8Array, readonly labels: Int32Array,
    readonly height: number, readonly width: number, readonly channels: number,
    readonly classNames: readonly string[]) {
    this.length = labels.length;
    const expected = this.length * this.imageSize;
    if (pixels.length !== expected) {
      throw new Error(`InMemoryDataset ${name}: ${pixels.length} pixel bytes for ${this.length} images of ` +
        `${height}x${width}x${channels} (${expected} expected)`);
    }
    checkLabels(name, labels, classNames.length);
  }

  get imageSize(): number {
    return this.height * this.width * this.channels;
  }

  /** The pixels of image i (a view, not a copy). */
  image(i: number): Uint8Array {
    const s = this.imageSize;
    return this.pixels.subarray(i * s, (i + 1) * s);
  }

  readImagesSync(indices: ArrayLike<number>, out: Uint8Array): void {
    const s = this.imageSize;
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      if (!(i >= 0 && i < this.length)) throw new RangeError(`${this.name}: image index ${i} out of range 0..${this.length - 1}`);
      out.set(this.pixels.subarray(i * s, (i + 1) * s), k * s);
    }
  }

  readImages(indices: ArrayLike<number>, out: Uint8Array): Promise<void> {
    this.readImagesSync(indices, out);
    return Promise.resolve();
  }

  /** A new data set holding copies of the images at `indices`, in that order. */
  select(indices: ArrayLike<number>, name = this.name): InMemoryDataset {
    const pixels = new Uint8Array(indices.length * this.imageSize);
    this.readImagesSync(indices, pixels);
    const labels = Int32Array.from({ length: indices.length }, (_, k) => this.labels[indices[k]!]!);
    return new InMemoryDataset(name, pixels, labels, this.height, this.width, this.channels, this.classNames);
  }
}

/** Every label must name a class; a reader calls this with the file the labels came from. */
export function checkLabels(file: string, labels: Int32Array, numClasses: number): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (!(l >= 0 && l < numClasses)) {
      throw new DataError(file, `label ${l} of item ${i} is out of range: expected 0..${numClasses - 1} ` +
        `(${numClasses} classes); the labels file is damaged or belongs to another data set`);
    }
  }
}

/** Number of images of each class. */
export function classCounts(ds: Pick<ImageDataset, 'labels' | 'classNames'>): Int32Array {
  const counts = new Int32Array(ds.classNames.length);
  for (const l of ds.labels) counts[l]!++;
  return counts;
}
