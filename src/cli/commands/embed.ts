// `resnet embed`: the pooled penultimate features of images (model.forwardFeatures, what
// the classifier reads) as a NumPy .npy file [images, features], with the images' paths
// in the same order in a text file beside it, for search and clustering (README:
// "Pretrained models" has a nearest-neighbour example).
import type { PrecisionChoice } from '../../backend/index.js';
import { saveNpy } from '../../io/npy.js';
import { noGrad, Tensor } from '../../tensor/tensor.js';
import { ImageClassifier } from '../../train/classify.js';
import { outputProblem, writeFileAtomic } from '../../util/atomic-write.js';
import { UserError } from '../errors.js';
import { addComputeFlags } from '../flags.js';
import { addModelInputFlags, forEachBatch, type ModelInputFlags, modelAndImages } from '../model-inputs.js';
import { selectBackend, selectPrecision } from '../select-backend.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

interface EmbedFlags extends ModelInputFlags {
  output: string;
  backend?: string;
  precision: PrecisionChoice;
}

const EXAMPLES = `
Examples:
  resnet embed runs/20240101-120000-resnet20-fashion-mnist shoes/ -o shoes.npy
  resnet embed --weights resnet50.pth photos/ -o features.npy      2048 features per photo
  python3 -c "import numpy as np; print(np.load('features.npy').shape)"`;

export const registerEmbed: RegisterCommand = (program) => {
  const cmd = program.command('embed')
    .description('write the pooled penultimate features of images to a NumPy .npy file, and the image order beside it')
    .argument('<path...>', 'a model file from `resnet train` or a run folder, then images or folders (with --weights: only images)')
    .requiredOption('-o, --output <file.npy>', 'the .npy file to write; the image paths go to <file>.files.txt, one per line');
  addModelInputFlags(cmd);
  addComputeFlags(cmd);
  cmd.addHelpText('after', EXAMPLES);
  cmd.action((paths: string[]) => userErrors(() => embed(paths, cmd.opts<EmbedFlags>())));
};

/** The file listing the images of `output` in row order. */
export function filesListPath(output: string): string {
  return `${output.replace(/\.npy$/, '')}.files.txt`;
}

async function embed(paths: string[], flags: EmbedFlags): Promise<void> {
  selectBackend(flags.backend);
  selectPrecision(flags.precision);
  if (!flags.output.endsWith('.npy')) throw new UserError(`-o ${flags.output}: the features are written as NumPy .npy; give a .npy name`);
  const problem = outputProblem(flags.output);
  if (problem !== null) throw new UserError(`-o ${flags.output}: ${problem}`);
  const { loaded, images } = modelAndImages(paths, flags);
  const model = loaded.model as Partial<{ forwardFeatures(x: Tensor): Tensor }> & typeof loaded.model;
  if (typeof model.forwardFeatures !== 'function') throw new UserError(`${loaded.file}: ${loaded.card.model} has no feature layer to read`);
  const classifier = new ImageClassifier(loaded);
  const [h, w] = loaded.card.imageSize;
  let features: Float32Array | null = null;
  let dim = 0;
  model.eval();
  await forEachBatch(classifier, images, flags, (start, x, n) => {
    const f = noGrad(() => model.forwardFeatures!(new Tensor(x, [n, h, w, loaded.card.inChannels])));
    dim = f.shape[1]!;
    features ??= new Float32Array(images.length * dim);
    features.set(f.data, start * dim);
  });
  saveNpy(flags.output, features!, [images.length, dim]);
  writeFileAtomic(filesListPath(flags.output), images.map((f) => `${f}\n`).join(''));
  process.stdout.write(`wrote ${flags.output}: ${images.length} x ${dim} float32 features of ${loaded.card.model}; ` +
    `image order in ${filesListPath(flags.output)}\n`);
}
