// ImageNet-1k preprocessing as torchvision's weights define it
// (torchvision/models/resnet.py: ResNet50_Weights.IMAGENET1K_V1.transforms() is
// ImageClassification(crop_size=224), resize_size 256; IMAGENET1K_V2 uses resize_size 232):
// resize the shorter side (bilinear, antialiased), centre-crop 224x224, scale to [0, 1],
// normalise with the ImageNet mean and std. The class names are in imagenet-classes.ts.
export { IMAGENET_CLASSES } from './imagenet-classes.js';

export const IMAGENET_MEAN: readonly number[] = Object.freeze([0.485, 0.456, 0.406]);
export const IMAGENET_STD: readonly number[] = Object.freeze([0.229, 0.224, 0.225]);

export interface ImagePreset {
  /** The shorter side is resized to this before the crop. */
  resizeShorter: number;
  /** Side of the square centre crop. */
  crop: number;
  mean: readonly number[];
  std: readonly number[];
}

export const IMAGENET_PRESETS = Object.freeze({
  IMAGENET1K_V1: { resizeShorter: 256, crop: 224, mean: IMAGENET_MEAN, std: IMAGENET_STD },
  IMAGENET1K_V2: { resizeShorter: 232, crop: 224, mean: IMAGENET_MEAN, std: IMAGENET_STD },
} satisfies Record<string, ImagePreset>);

export type ImagenetPresetName = keyof typeof IMAGENET_PRESETS;
export const IMAGENET_PRESET_NAMES = Object.keys(IMAGENET_PRESETS) as ImagenetPresetName[];
