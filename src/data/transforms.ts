// Per-image transforms on float HWC images, as torchvision.transforms: pad + random
// crop, horizontal flip, per-channel normalisation, random erasing. Every random choice
// draws from the Rng passed in, so a batch is reproducible from its seed.
import type { Rng } from '../tensor/random.js';

/** One image, float values, HWC row-major. */
export interface FloatImage {
  data: Float32Array;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

export interface Transform {
  /** Returns the transformed image (which may be `img` changed in place). */
  apply(img: FloatImage, rng: Rng): FloatImage;
  /** Plain description for run records. */
  describe(): Record<string, unknown>;
}

/**
 * torchvision RandomCrop(size, padding): zero-pad every side by `padding` pixels, then
 * cut a `height` x `width` window at a uniformly random position.
 */
export class RandomCrop implements Transform {
  constructor(readonly padding: number, readonly height?: number, readonly width?: number) {
    if (!(Number.isInteger(padding) && padding >= 0)) throw new RangeError(`RandomCrop: padding must be an integer >= 0, got ${padding}`);
  }

  apply(img: FloatImage, rng: Rng): FloatImage {
    const oh = this.height ?? img.height;
    const ow = this.width ?? img.width;
    const p = this.padding;
    const ph = img.height + 2 * p;
    const pw = img.width + 2 * p;
    if (oh > ph || ow > pw) throw new RangeError(`RandomCrop: crop ${oh}x${ow} is larger than the padded image ${ph}x${pw}`);
    // torchvision draws the row offset first, then the column.
    const top = rng.int(ph - oh + 1) - p;
    const left = rng.int(pw - ow + 1) - p;
    const c = img.channels;
    const out = new Float32Array(oh * ow * c);
    for (let y = 0; y < oh; y++) {
      const sy = y + top;
      if (sy < 0 || sy >= img.height) continue;
      for (let x = 0; x < ow; x++) {
        const sx = x + left;
        if (sx < 0 || sx >= img.width) continue;
        const s = (sy * img.width + sx) * c;
        const d = (y * ow + x) * c;
        for (let k = 0; k < c; k++) out[d + k] = img.data[s + k]!;
      }
    }
    return { data: out, height: oh, width: ow, channels: c };
  }

  describe(): Record<string, unknown> {
    return { randomCrop: { padding: this.padding, height: this.height, width: this.width } };
  }
}

/** Mirror each of `rows` rows of `width` pixels of `channels` values left-right, in place (HWC or NHWC data). */
export function mirrorRows(data: Float32Array, rows: number, width: number, channels: number): void {
  const c = channels;
  for (let y = 0; y < rows; y++) {
    const row = y * width * c;
    for (let x = 0; x < width >> 1; x++) {
      const a = row + x * c;
      const b = row + (width - 1 - x) * c;
      for (let k = 0; k < c; k++) {
        const t = data[a + k]!;
        data[a + k] = data[b + k]!;
        data[b + k] = t;
      }
    }
  }
}

/** torchvision RandomHorizontalFlip(p): mirror left-right with probability p. */
export class RandomHorizontalFlip implements Transform {
  constructor(readonly p = 0.5) {}

  apply(img: FloatImage, rng: Rng): FloatImage {
    if (!(rng.uniform() < this.p)) return img;
    mirrorRows(img.data, img.height, img.width, img.channels);
    return img;
  }

  describe(): Record<string, unknown> {
    return { randomHorizontalFlip: { p: this.p } };
  }
}

/** torchvision Normalize(mean, std): (x - mean[c]) / std[c] for each channel c. */
export class Normalize implements Transform {
  constructor(readonly mean: readonly number[], readonly std: readonly number[]) {
    if (mean.length !== std.length) throw new RangeError(`Normalize: ${mean.length} means but ${std.length} standard deviations`);
    for (const s of std) if (!(s > 0)) throw new RangeError(`Normalize: standard deviations must be > 0, got ${s}`);
  }

  apply(img: FloatImage): FloatImage {
    const c = img.channels;
    if (c !== this.mean.length) throw new RangeError(`Normalize: image has ${c} channels, the statistics ${this.mean.length}`);
    const scale = this.std.map((s) => 1 / s);
    const { data } = img;
    for (let i = 0; i < data.length; i += c) {
      for (let k = 0; k < c; k++) data[i + k] = (data[i + k]! - this.mean[k]!) * scale[k]!;
    }
    return img;
  }

  describe(): Record<string, unknown> {
    return { normalize: { mean: this.mean, std: this.std } };
  }
}

export interface RandomErasingOptions {
  /** Probability of erasing a rectangle (torchvision default 0.5). */
  p?: number;
  /** Range of the erased area as a fraction of the image (default [0.02, 0.33]). */
  scale?: readonly [number, number];
  /** Range of the rectangle's aspect ratio (default [0.3, 3.3], drawn log-uniformly). */
  ratio?: readonly [number, number];
  /** Value written into the rectangle (default 0, the data mean after normalising). */
  value?: number;
}

/**
 * Random erasing (Zhong et al. 2017, arXiv:1708.04896; torchvision RandomErasing):
 * with probability p, fill a random rectangle of random area and aspect ratio. Up to
 * 10 attempts to find one that fits; none fitting leaves the image as it is.
 */
export class RandomErasing implements Transform {
  readonly p: number;
  readonly scale: readonly [number, number];
  readonly ratio: readonly [number, number];
  readonly value: number;

  constructor(opts: RandomErasingOptions = {}) {
    this.p = opts.p ?? 0.5;
    this.scale = opts.scale ?? [0.02, 0.33];
    this.ratio = opts.ratio ?? [0.3, 3.3];
    this.value = opts.value ?? 0;
    if (!(this.p >= 0 && this.p <= 1)) throw new RangeError(`RandomErasing: p must be in [0, 1], got ${this.p}`);
  }

  apply(img: FloatImage, rng: Rng): FloatImage {
    if (!(rng.uniform() < this.p)) return img;
    const { height: h, width: w, channels: c, data } = img;
    const area = h * w;
    const logLo = Math.log(this.ratio[0]);
    const logHi = Math.log(this.ratio[1]);
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = area * (this.scale[0] + rng.uniform() * (this.scale[1] - this.scale[0]));
      const aspect = Math.exp(logLo + rng.uniform() * (logHi - logLo));
      const eh = Math.round(Math.sqrt(target * aspect));
      const ew = Math.round(Math.sqrt(target / aspect));
      if (!(eh < h && ew < w)) continue;
      const top = rng.int(h - eh + 1);
      const left = rng.int(w - ew + 1);
      for (let y = top; y < top + eh; y++) data.fill(this.value, (y * w + left) * c, (y * w + left + ew) * c);
      return img;
    }
    return img;
  }

  describe(): Record<string, unknown> {
    return { randomErasing: { p: this.p, scale: this.scale, ratio: this.ratio, value: this.value } };
  }
}

/** Transforms applied in order. */
export class Compose implements Transform {
  constructor(readonly transforms: readonly Transform[]) {}

  apply(img: FloatImage, rng: Rng): FloatImage {
    let out = img;
    for (const t of this.transforms) out = t.apply(out, rng);
    return out;
  }

  describe(): Record<string, unknown> {
    return { compose: this.transforms.map((t) => t.describe()) };
  }
}

/** Output size of a transform chain: crops may change it. */
export function outputSize(t: Transform, height: number, width: number): [number, number] {
  if (t instanceof RandomCrop) return [t.height ?? height, t.width ?? width];
  if (t instanceof Compose) {
    let size: [number, number] = [height, width];
    for (const s of t.transforms) size = outputSize(s, size[0], size[1]);
    return size;
  }
  return [height, width];
}
