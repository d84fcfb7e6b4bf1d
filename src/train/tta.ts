// Test-time augmentation: the logits of a batch averaged over fixed views of it, as in
// Jordan's CIFAR-10 speed runs (airbench94.py, infer_mirror / infer_mirror_translate):
// 'flip' averages the image and its mirror image; 'flip-translate' gives that pair half
// the weight and the pairs of the image shifted one pixel up-left and one down-right
// (reflection at the border) a quarter each.
import { mirrorRows } from '../data/transforms.js';
import { Tensor } from '../tensor/tensor.js';

export const TTA_MODES = ['none', 'flip', 'flip-translate'] as const;
export type TtaMode = (typeof TTA_MODES)[number];
/** What each mode averages, for the --help of every command that takes --tta. */
export const TTA_VIEWS_HELP = 'average the logits of the image and its mirror image (flip), and of both shifted one ' +
  'pixel up-left and down-right (flip-translate); flip assumes mirrored images keep their class';

/** An NHWC batch mirrored left-right. */
export function flipBatch(x: Tensor): Tensor {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const out = x.data.slice();
  mirrorRows(out, n * h, w, c);
  return new Tensor(out, [n, h, w, c]);
}

/** Reflect index `i` into [0, n) as torch's 'reflect' padding does (the edge is not repeated). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

/**
 * An NHWC batch shifted by `dy` rows and `dx` columns (each -1, 0 or 1): output pixel
 * (y, x) is input pixel (y - dy, x - dx), reflected at the border; torch's
 * F.pad(x, (1,)*4, 'reflect') cropped at offset (1 - dy, 1 - dx).
 */
export function translateBatch(x: Tensor, dy: number, dx: number): Tensor {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const src = x.data;
  const out = new Float32Array(src.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      const sy = reflect(y - dy, h);
      for (let xx = 0; xx < w; xx++) {
        const sx = reflect(xx - dx, w);
        const s = ((b * h + sy) * w + sx) * c;
        const d = ((b * h + y) * w + xx) * c;
        for (let k = 0; k < c; k++) out[d + k] = src[s + k]!;
      }
    }
  }
  return new Tensor(out, [n, h, w, c]);
}

/** The views a mode evaluates and the weight of each in the averaged logits (weights sum to 1). */
export function ttaViews(x: Tensor, mode: TtaMode): { view: Tensor; weight: number }[] {
  if (mode === 'none') return [{ view: x, weight: 1 }];
  if (mode === 'flip') return [{ view: x, weight: 0.5 }, { view: flipBatch(x), weight: 0.5 }];
  const views: { view: Tensor; weight: number }[] = [{ view: x, weight: 0.25 }, { view: flipBatch(x), weight: 0.25 }];
  for (const d of [-1, 1]) {
    const shifted = translateBatch(x, d, d);
    views.push({ view: shifted, weight: 0.125 }, { view: flipBatch(shifted), weight: 0.125 });
  }
  return views;
}

/** Weighted mean of the logits of every view of `x` under `infer`. */
export function ttaLogits(infer: (x: Tensor) => Tensor, x: Tensor, mode: TtaMode): Tensor {
  const views = ttaViews(x, mode);
  if (views.length === 1) return infer(x);
  let sum: Float32Array | null = null;
  let shape: readonly number[] = [];
  for (const { view, weight } of views) {
    const out = infer(view);
    if (sum === null) {
      sum = new Float32Array(out.size);
      shape = out.shape;
    }
    const d = out.data;
    for (let i = 0; i < d.length; i++) sum[i] += weight * d[i]!;
  }
  return new Tensor(sum!, [...shape]);
}
