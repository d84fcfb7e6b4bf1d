// Classifying images with a trained model file, as `resnet predict` and `resnet serve`
// do: each image decoded, resized (cover + centre crop), scaled to [0, 1] and normalised
// with the model card's mean and std, exactly as the model was trained; a batch of them
// through the model's compiled inference path (src/graph/compile.ts); softmax;
// the k most probable classes.
import { decodeImage, type ImageSource } from '../data/image-decode.js';
import { Normalize } from '../data/transforms.js';
import { WeightsFileError } from '../io/errors.js';
import { type InferenceFn, inferenceOf } from '../models/inference.js';
import { Tensor } from '../tensor/tensor.js';
import type { LoadedModel, ModelCard } from './model-file.js';
import { softmaxRows } from './probabilities.js';

/** One class of a prediction. */
export interface ClassScore {
  class: string;
  index: number;
  probability: number;
}

export interface InputOptions {
  /** Convert an image of another channel count (greyscale <-> RGB, alpha dropped) instead of rejecting it. */
  convert?: boolean;
  /** Refuse an image whose header claims more pixels than this, before decoding it. */
  maxPixels?: number;
}

export class ImageClassifier {
  readonly card: ModelCard;
  /** Float values of one input image: height x width x channels. */
  readonly inputSize: number;
  private readonly normalize: Normalize;
  private readonly infer: InferenceFn;

  constructor(readonly loaded: LoadedModel) {
    const { card } = loaded;
    if (card.inChannels !== 1 && card.inChannels !== 3) {
      throw new WeightsFileError(loaded.file, `the model takes ${card.inChannels}-channel images; ` +
        'only models of greyscale (1) or RGB (3) images can classify image files');
    }
    this.card = card;
    this.inputSize = card.imageSize[0] * card.imageSize[1] * card.inChannels;
    this.normalize = new Normalize(card.mean, card.std);
    this.infer = inferenceOf(loaded.model);
  }

  /** The preprocessing applied to every image, as the model's clients need to know it. */
  describePreprocessing(): { resize: string; scale: number; mean: number[]; std: number[] } {
    const [h, w] = this.card.imageSize;
    const resize = this.card.resizeShorter !== undefined
      ? `shorter side to ${this.card.resizeShorter} (bilinear, antialiased), then the centre ${w}x${h}`
      : `${w}x${h}, scaled to cover then centre-cropped`;
    return { resize, scale: 1 / 255, mean: this.card.mean, std: this.card.std };
  }

  /** One image as the model's input (HWC floats): decoded, resized, scaled to [0, 1], normalised. */
  async input(source: ImageSource, opts: InputOptions = {}): Promise<Float32Array> {
    const [height, width] = this.card.imageSize;
    const channels = this.card.inChannels as 1 | 3;
    const pixels = await decodeImage(source, {
      height, width, channels, convert: opts.convert ?? false, maxPixels: opts.maxPixels, resizeShorter: this.card.resizeShorter,
    });
    const data = Float32Array.from(pixels, (v) => v / 255);
    return this.normalize.apply({ data, height, width, channels }).data;
  }

  /** Class probabilities [n, numClasses] of `n` inputs laid end to end in `x`. */
  probabilities(x: Float32Array, n: number): Float32Array {
    const [h, w] = this.card.imageSize;
    const logits = this.infer(new Tensor(x, [n, h, w, this.card.inChannels]));
    return softmaxRows(logits.data, n, this.card.numClasses);
  }

  /** The k most probable classes of one image's probabilities, most probable first (ties: the lower index). */
  top(probs: Float32Array, k: number): ClassScore[] {
    const row = Array.from(probs, (p, cls) => ({ cls, p }));
    row.sort((a, b) => b.p - a.p || a.cls - b.cls);
    return row.slice(0, Math.min(k, row.length)).map(({ cls, p }) => ({ class: this.card.classNames[cls]!, index: cls, probability: p }));
  }
}
