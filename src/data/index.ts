export { InMemoryDataset, checkLabels, classCounts } from './dataset.js';
export type { ImageDataset } from './dataset.js';
export { DataError } from './errors.js';
export { parseIdx, readIdxFile, readIdxPair, readIdxFolder, findIdxFile } from './idx.js';
export type { IdxArray, IdxSplit } from './idx.js';
export { parseCifarBatch, readCifar, resolveCifarFolder } from './cifar.js';
export type { CifarVariant, CifarSplit, CifarOptions } from './cifar.js';
export { decodeImage, imageInfo } from './image-decode.js';
export type { DecodeOptions, ImageInfo } from './image-decode.js';
export { listImageFolder, readImageFolder, ImageFolderDataset, IMAGE_EXTENSIONS } from './image-folder.js';
export type { ImageFolderListing, ImageFolderOptions } from './image-folder.js';
export { RandomCrop, RandomHorizontalFlip, Normalize, RandomErasing, Compose } from './transforms.js';
export type { Transform, FloatImage, RandomErasingOptions } from './transforms.js';
export { BatchMix } from './mix.js';
export type { BatchMixOptions, MixTargets } from './mix.js';
export { channelStats } from './stats.js';
export type { ChannelStats } from './stats.js';
export { DataLoader } from './loader.js';
export type { DataLoaderOptions, Batch } from './loader.js';
export { DatasetView } from './view.js';
export { randomSubset, trainValSplit, selectClasses, perClassSubset } from './split.js';
export { deriveSeed } from './seeds.js';
export {
  loadDataset, resolveDataDir, inMemoryLimit, IN_MEMORY_LIMIT, DATASET_NAMES, DEFAULT_DATA_DIRS, FASHION_MNIST_CLASSES, MNIST_CLASSES,
} from './registry.js';
export type { DatasetName, DatasetSpec, DatasetSplits } from './registry.js';
export { IMAGENET_CLASSES, IMAGENET_MEAN, IMAGENET_STD, IMAGENET_PRESETS, IMAGENET_PRESET_NAMES } from './imagenet.js';
export type { ImagePreset, ImagenetPresetName } from './imagenet.js';
