// Mixing images across a batch (timm's Mixup with mode 'batch'): each image is mixed with
// its partner in the batch read backwards (image i with image b - 1 - i), with one
// weight for the whole batch, and the loss mixes the two labels' targets with the same
// weight (crossEntropy's `mix`).
//  - mixup (Zhang et al. 2017, arXiv:1710.09412): lambda ~ Beta(alpha, alpha), every
//    pixel lambda x its image + (1 - lambda) x its partner's;
//  - CutMix (Yun et al. 2019, arXiv:1905.04899): a box of about (1 - lambda) of the area,
//    centred uniformly and clipped at the edges, is pasted from the partner; lambda is
//    then the share of the image left, 1 - box area / image area.
// With both on, each mixed batch takes one of them, each with probability 1/2; a batch
// is mixed with probability `prob`.
import type { MixTargets } from '../tensor/ops.js';
import type { Rng } from '../tensor/random.js';

export type { MixTargets };

export interface BatchMixOptions {
  /** Beta(alpha, alpha) of mixup's weight; 0: no mixup. */
  mixup?: number;
  /** Beta(alpha, alpha) of CutMix's box area; 0: no CutMix. */
  cutmix?: number;
  /** Probability that a batch is mixed at all (default 1). */
  prob?: number;
}

export class BatchMix {
  readonly mixup: number;
  readonly cutmix: number;
  readonly prob: number;

  constructor(opts: BatchMixOptions) {
    this.mixup = opts.mixup ?? 0;
    this.cutmix = opts.cutmix ?? 0;
    this.prob = opts.prob ?? 1;
    for (const [name, v] of [['mixup', this.mixup], ['cutmix', this.cutmix]] as const) {
      if (!(v >= 0 && Number.isFinite(v))) throw new RangeError(`BatchMix: ${name} alpha must be a number >= 0, got ${v}`);
    }
    if (!(this.prob >= 0 && this.prob <= 1)) throw new RangeError(`BatchMix: prob must be in [0, 1], got ${this.prob}`);
    if (this.mixup === 0 && this.cutmix === 0) throw new RangeError('BatchMix: give mixup or cutmix an alpha above 0');
  }

  /**
   * Mixes a batch of images x ([b, h, w, c] NHWC) in place; returns the partner labels
   * and the weight, or null when this batch is left as it is.
   */
  apply(x: Float32Array, shape: readonly number[], labels: Int32Array, rng: Rng): MixTargets | null {
    const [b, h, w, c] = shape as [number, number, number, number];
    if (!(rng.uniform() < this.prob) || b < 2) return null;
    const useCutmix = this.cutmix > 0 && (this.mixup === 0 || rng.uniform() < 0.5);
    const partnerLabels = Int32Array.from({ length: b }, (_, i) => labels[b - 1 - i]!);
    const src = x.slice();
    const per = h * w * c;
    if (!useCutmix) {
      const lam = rng.beta(this.mixup, this.mixup);
      for (let i = 0; i < b; i++) {
        const o = i * per;
        const p = (b - 1 - i) * per;
        for (let k = 0; k < per; k++) x[o + k] = lam * src[o + k]! + (1 - lam) * src[p + k]!;
      }
      return { labels: partnerLabels, weight: lam };
    }
    const lam = rng.beta(this.cutmix, this.cutmix);
    const cut = Math.sqrt(1 - lam);
    const ch = Math.floor(h * cut);
    const cw = Math.floor(w * cut);
    const cy = rng.int(h);
    const cx = rng.int(w);
    const top = Math.min(Math.max(cy - (ch >> 1), 0), h);
    const bottom = Math.min(Math.max(cy + (ch >> 1), 0), h);
    const left = Math.min(Math.max(cx - (cw >> 1), 0), w);
    const right = Math.min(Math.max(cx + (cw >> 1), 0), w);
    for (let i = 0; i < b; i++) {
      const o = i * per;
      const p = (b - 1 - i) * per;
      for (let y = top; y < bottom; y++) {
        const row = (y * w + left) * c;
        x.set(src.subarray(p + row, p + (y * w + right) * c), o + row);
      }
    }
    return { labels: partnerLabels, weight: 1 - ((bottom - top) * (right - left)) / (h * w) };
  }
}
