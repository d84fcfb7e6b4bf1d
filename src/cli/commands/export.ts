// `resnet export <weights> --format onnx`: the inference graph of a model with its
// weights as ONNX (opset 17), for onnxruntime in browsers, on phones and on servers.
// A model file written by `resnet train` names its builder, classes and normalisation;
// for other weights (.pth or .safetensors with torchvision/timm names) pass --model.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { type ExportableNetwork, saveOnnx, type OnnxExportOptions } from '../../io/onnx-export.js';
import { saveTorchExport, TORCH_MODULE_FILE, type TorchExportOptions } from '../../io/torch-export.js';
import { OPSET_VERSION } from '../../io/onnx-graph.js';
import { loadWeights } from '../../io/weights.js';
import { outputProblem } from '../../util/atomic-write.js';
import { checkFinite, checkWeightsFit, optionsFromWeights } from '../../io/weight-checks.js';
import { PreActResNet } from '../../models/preact_resnet.js';
import { create, info } from '../../models/registry.js';
import { ResNet } from '../../models/resnet.js';
import { MODEL_CARD_KEY, modelFromFile, resolveModelPath } from '../../train/model-file.js';
import { UserError } from '../errors.js';
import { NAMING_HELP, namingFlag, numberList, positiveInts } from '../flags.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

interface ExportFlags {
  model?: string;
  format: string;
  output?: string;
  nhwc?: boolean;
  foldBn: boolean;
  naming: string;
  width?: string;
  classes?: string;
  mean?: string;
  std?: string;
  imageSize?: string;
}

const EXAMPLES = `
Examples:
  resnet export runs/fashion/best.safetensors --format onnx -o fashion.onnx
  resnet export resnet50.pth --model resnet50 --format onnx --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225
  resnet export resnet18.safetensors --model resnet18 --format onnx --nhwc --no-fold-bn -o resnet18-nhwc.onnx
  resnet export runs/fashion --format pytorch -o fashion-torch
                                   a folder with model.py (the network as a torch.nn.Module, generated from
                                   its forward pass, state_dict() with our names) and weights.safetensors`;

export const registerExport: RegisterCommand = (program: Command) => {
  const cmd = program.command('export')
    .description(`export a model with its weights for inference: ONNX opset ${OPSET_VERSION}, dynamic batch, NCHW input (or --nhwc)`)
    .argument('<weights>', 'a model file from `resnet train`, or .safetensors / .pth weights (then --model is needed)')
    .option('--model <name>', 'builder name, e.g. resnet50 (default: the one a `resnet train` model file names)')
    .option('--format <format>', 'output format: onnx, or pytorch (a folder with a Python module and its weights)', 'onnx')
    .option('-o, --output <path>', 'where to write (default: the weights file name with .onnx, or -pytorch for a folder)')
    .option('--nhwc', 'take NHWC [batch, height, width, channels] input instead of NCHW')
    .option('--fold-bn', 'fold BatchNorm into the preceding convolutions', true)
    .option('--no-fold-bn', 'keep BatchNorm as BatchNormalization nodes')
    .option('--naming <from>', NAMING_HELP, 'auto')
    .option('--width <k>', 'widening factor of the model (default 1, or the model file\'s)')
    .option('--classes <file>', 'class names, one per line, stored in the metadata')
    .option('--mean <values>', 'per-channel input mean, comma separated, stored in the metadata')
    .option('--std <values>', 'per-channel input standard deviation, comma separated')
    .option('--image-size <h[,w]>', 'fix the input height and width (default: any size)');
  cmd.addHelpText('after', EXAMPLES);
  cmd.action((weights: string) => userErrors(() => exportModel(weights, cmd.opts<ExportFlags>())));
};

function exportModel(weightsPath: string, flags: ExportFlags): void {
  if (flags.format !== 'onnx' && flags.format !== 'pytorch') throw new UserError(`--format ${flags.format}: expected onnx or pytorch`);
  const pytorch = flags.format === 'pytorch';
  if (pytorch && flags.nhwc) throw new UserError('--nhwc is for --format onnx; the PyTorch module takes NCHW input as every torch.nn.Module');
  // Every flag is checked before the weights file is read.
  const width = flags.width !== undefined ? positiveInts('--width', flags.width)[0]! : undefined;
  const imageSize = flags.imageSize !== undefined ? positiveInts('--image-size', flags.imageSize) : undefined;
  if (imageSize && imageSize.length > 2) throw new UserError(`--image-size ${flags.imageSize}: expected h or h,w`);
  if ((flags.mean === undefined) !== (flags.std === undefined)) throw new UserError('--mean and --std go together; pass both');
  const normalization = flags.mean !== undefined && flags.std !== undefined
    ? { mean: numberList('--mean', flags.mean), std: numberList('--std', flags.std) } : undefined;
  if (normalization && normalization.mean.length !== normalization.std.length) {
    throw new UserError(`--mean has ${normalization.mean.length} values and --std ${normalization.std.length}; give one of each per input channel`);
  }
  if (normalization?.std.some((v) => v <= 0)) throw new UserError(`--std ${flags.std}: every standard deviation must be > 0`);
  if (flags.model !== undefined) info(flags.model);
  const classNames = flags.classes !== undefined ? readClassNames(flags.classes) : undefined;
  const file = resolveModelPath(weightsPath);
  const output = flags.output ?? `${basename(weightsPath, extname(weightsPath))}${pytorch ? '-pytorch' : '.onnx'}`;
  // --format pytorch writes a folder: an existing one, or a new one in an existing folder.
  const problem = pytorch && existsSync(output)
    ? (statSync(output).isDirectory() ? outputProblem(join(output, TORCH_MODULE_FILE)) : 'is a file; give a folder for model.py and the weights')
    : outputProblem(output);
  if (problem !== null) throw new UserError(`${flags.output !== undefined ? '-o ' : ''}${output}: ${problem}`);

  const weights = loadWeights(file, { naming: namingFlag(flags.naming) });
  const opts: OnnxExportOptions = { layout: flags.nhwc ? 'NHWC' : 'NCHW', foldBatchNorm: flags.foldBn };
  let modelName: string;
  let model: ExportableNetwork;
  let trainedWidth: number | undefined;
  let trainedSize: [number, number] | null = null;
  if (weights.metadata[MODEL_CARD_KEY] !== undefined && flags.model === undefined) {
    const loaded = modelFromFile(file, weights.state, weights.metadata);
    if (!(loaded.model instanceof ResNet) && !(loaded.model instanceof PreActResNet)) {
      throw new UserError(`${file}: ${loaded.card.model} is not a network this exporter knows`);
    }
    model = loaded.model;
    modelName = loaded.card.model;
    opts.classNames = loaded.card.classNames;
    opts.normalization = { mean: loaded.card.mean, std: loaded.card.std };
    opts.metadata = { dataset: loaded.card.dataset, trained_image_size: loaded.card.imageSize.join('x') };
    trainedWidth = loaded.card.width;
    trainedSize = loaded.card.imageSize;
  } else {
    if (flags.model === undefined) {
      throw new UserError(`${file} does not say which model it holds; pass --model (e.g. --model resnet50)`);
    }
    const name = flags.model;
    modelName = name;
    const modelOpts = {
      ...optionsFromWeights(weights.state),
      ...(width !== undefined ? { width } : {}),
    };
    checkWeightsFit(file, weights.state, () => create(name, modelOpts), (mismatch) =>
      `the weights do not fit ${name}${width !== undefined ? ` at width ${width}` : ''}: ${mismatch}; ` +
      `check --model${width !== undefined ? ' and --width' : ''} (resnet summary ${name} lists its layers)`);
    checkFinite(weights.state, file);
    model = create(name, modelOpts);
    model.loadStateDict(weights.state);
    model.eval();
  }
  opts.modelName = modelName;
  if (classNames) {
    if (classNames.length !== model.numClasses) {
      throw new UserError(`--classes ${flags.classes}: ${classNames.length} class names for a model with ${model.numClasses} outputs; ` +
        'give one name per line, one line per output');
    }
    opts.classNames = classNames;
  }
  if (normalization) {
    if (normalization.mean.length !== model.inChannels) {
      throw new UserError(`--mean and --std: ${normalization.mean.length} values each for a model of ${model.inChannels} input ` +
        `channel${model.inChannels === 1 ? '' : 's'}; give one per channel`);
    }
    opts.normalization = normalization;
  }
  if (imageSize) opts.imageSize = [imageSize[0]!, imageSize[1] ?? imageSize[0]!];
  if (pytorch) {
    const torchOpts: TorchExportOptions = {
      modelName, width: width ?? trainedWidth, classNames: opts.classNames, normalization: opts.normalization,
      imageSize: opts.imageSize ?? trainedSize ?? undefined, dataset: opts.metadata?.['dataset'],
    };
    const written = saveTorchExport(output, model, torchOpts);
    process.stdout.write(`wrote ${written.module} and ${written.weights}: ${modelName} as a torch.nn.Module (NCHW input, ` +
      `${model.numClasses} outputs, preprocess() and load() included); needs torch >= 1.13\n`);
    return;
  }
  saveOnnx(output, model, opts);
  const input = opts.layout === 'NHWC' ? `[batch, ${opts.imageSize?.join(', ') ?? 'height, width'}, ${model.inChannels}]`
    : `[batch, ${model.inChannels}, ${opts.imageSize?.join(', ') ?? 'height, width'}]`;
  process.stdout.write(`wrote ${output}: ${modelName}, ONNX opset ${OPSET_VERSION}, ${opts.layout} input ${input}, ` +
    `${model.numClasses} outputs, BatchNorm ${flags.foldBn ? 'folded' : 'kept'}\n`);
}

function readClassNames(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`--classes ${path}: cannot read (${e instanceof Error ? e.message : String(e)})`);
  }
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}
