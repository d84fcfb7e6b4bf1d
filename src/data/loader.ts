// DataLoader: shuffled (or ordered) mini-batches of a data set as float32 NHWC tensors
// in [0, 1] passed through a transform, with int32 labels. The order of epoch e and the
// random draws of its batch b come from deriveSeed(seed, e) and deriveSeed(seed, e, b),
// so any batch can be made on its own: resuming mid-epoch and making the next batch
// while the current one trains both give the same batches as a plain run.
import { Rng } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import type { ImageDataset } from './dataset.js';
import type { BatchMix, MixTargets } from './mix.js';
import { deriveSeed } from './seeds.js';
import { outputSize, type FloatImage, type Transform } from './transforms.js';

export interface DataLoaderOptions {
  batchSize: number;
  shuffle?: boolean;
  /** Leave out the last batch when it is smaller than batchSize. */
  dropLast?: boolean;
  transform?: Transform | null;
  /** Mixes each batch's images after the transform (mixup, CutMix); null: none. */
  mix?: BatchMix | null;
  /** Seeds the order and the augmentation. */
  seed?: number;
}

export interface Batch {
  /** [batch, height, width, channels] */
  readonly x: Tensor;
  readonly labels: Int32Array;
  /** Positions of the images in the data set. */
  readonly indices: Int32Array;
  /** Index of the batch within its epoch. */
  readonly index: number;
  /** Set when the images were mixed: the loss's targets mix `labels` with these. */
  readonly mix: MixTargets | null;
}

const SHUFFLE_STREAM = 0x5348;
const AUGMENT_STREAM = 0x4147;
const MIX_STREAM = 0x4d49;

export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly transform: Transform | null;
  readonly mix: BatchMix | null;
  readonly seed: number;
  /** Height and width of the batches (after the transform). */
  readonly outHeight: number;
  readonly outWidth: number;

  constructor(readonly dataset: ImageDataset, opts: DataLoaderOptions) {
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize > 0)) {
      throw new RangeError(`DataLoader: batch size must be a positive integer, got ${opts.batchSize}`);
    }
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
    this.transform = opts.transform ?? null;
    this.mix = opts.mix ?? null;
    this.seed = opts.seed ?? 0;
    [this.outHeight, this.outWidth] = this.transform
      ? outputSize(this.transform, dataset.height, dataset.width) : [dataset.height, dataset.width];
    if (this.numBatches === 0) {
      throw new RangeError(`DataLoader: ${dataset.name} has ${dataset.length} images, fewer than one batch of ${this.batchSize} with dropLast`);
    }
  }

  /** Batches per epoch. */
  get numBatches(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Image order of an epoch. */
  order(epoch: number): Int32Array {
    const n = this.dataset.length;
    if (!this.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
    return new Rng(deriveSeed(this.seed, SHUFFLE_STREAM, epoch)).permutation(n);
  }

  /** Batch `index` of `epoch`, given that epoch's order. */
  async batch(epoch: number, index: number, order: Int32Array = this.order(epoch)): Promise<Batch> {
    const start = index * this.batchSize;
    const indices = order.slice(start, Math.min(start + this.batchSize, order.length));
    const ds = this.dataset;
    const b = indices.length;
    const inSize = ds.height * ds.width * ds.channels;
    const pixels = new Uint8Array(b * inSize);
    await ds.readImages(indices, pixels);
    const labels = Int32Array.from(indices, (i) => ds.labels[i]!);
    const outSize = this.outHeight * this.outWidth * ds.channels;
    const x = new Float32Array(b * outSize);
    const rng = new Rng(deriveSeed(this.seed, AUGMENT_STREAM, epoch, index));
    for (let k = 0; k < b; k++) {
      const data = new Float32Array(inSize);
      for (let i = 0; i < inSize; i++) data[i] = pixels[k * inSize + i]! / 255;
      let img: FloatImage = { data, height: ds.height, width: ds.width, channels: ds.channels };
      if (this.transform) img = this.transform.apply(img, rng);
      x.set(img.data, k * outSize);
    }
    const shape = [b, this.outHeight, this.outWidth, ds.channels];
    const mix = this.mix ? this.mix.apply(x, shape, labels, new Rng(deriveSeed(this.seed, MIX_STREAM, epoch, index))) : null;
    return { x: new Tensor(x, shape), labels, indices, index, mix };
  }

  /**
   * The batches of `epoch` from batch `from` on. The next batch is requested before the
   * current one is handed out, so reading it from disk (image folders decode on the
   * libuv thread pool) overlaps with the caller's work on the current one. It is made
   * in a macrotask of its own (setImmediate), not in the microtask right after the
   * hand-out: a caller whose step awaits other threads (training replicas) makes it
   * while it waits for them, instead of before its step starts.
   */
  async *epoch(epoch: number, from = 0): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    const total = this.numBatches;
    const request = (i: number): Promise<Batch> | null => {
      if (i >= total) return null;
      const p = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.batch(epoch, i, order));
      // A batch made ahead and never used (the caller stopped) must not fail the process.
      p.catch(() => undefined);
      return p;
    };
    let next = request(from);
    for (let i = from; i < total; i++) {
      const current = await next!;
      next = request(i + 1);
      yield current;
    }
  }
}
