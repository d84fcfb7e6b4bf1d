// `resnet convert <in> <out>`: PyTorch .pth (or safetensors) weights to safetensors,
// renamed to our names (torchvision and timm resnet* keep theirs; timm resnetv2_* are
// mapped), optionally checked against a model.
import { basename } from 'node:path';
import type { Command } from 'commander';
import { loadWeights } from '../../io/weights.js';
import { saveSafetensors } from '../../io/safetensors.js';
import { outputProblem } from '../../util/atomic-write.js';
import { checkFinite, checkWeightsFit, optionsFromWeights } from '../../io/weight-checks.js';
import { create, info } from '../../models/registry.js';
import { UserError } from '../errors.js';
import { NAMING_HELP, namingFlag } from '../flags.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

interface ConvertFlags {
  naming: string;
  model?: string;
}

const EXAMPLES = `
Examples:
  resnet convert resnet18-f37072fd.pth resnet18.safetensors --model resnet18
  resnet convert resnetv2_50.pth preact_resnet50.safetensors --naming timm-resnetv2 --model preact_resnet50`;

export const registerConvert: RegisterCommand = (program: Command) => {
  const cmd = program.command('convert')
    .description('convert PyTorch .pth / .pt weights (torch.save of a state dict) to safetensors with our names')
    .argument('<in>', 'a .pth/.pt file written by torch.save, or a .safetensors file')
    .argument('<out>', 'the .safetensors file to write')
    .option('--naming <from>', NAMING_HELP, 'auto')
    .option('--model <name>', 'check that the weights load into this model (e.g. resnet50) and are all finite before writing');
  cmd.addHelpText('after', EXAMPLES);
  cmd.action((input: string, output: string) => userErrors(() => convert(input, output, cmd.opts<ConvertFlags>())));
};

function convert(input: string, output: string, flags: ConvertFlags): void {
  if (!output.endsWith('.safetensors')) {
    throw new UserError(`${output}: the output is written as safetensors; give it a .safetensors name`);
  }
  const problem = outputProblem(output);
  if (problem !== null) throw new UserError(`${output}: ${problem}`);
  if (flags.model !== undefined) info(flags.model);
  const weights = loadWeights(input, { naming: namingFlag(flags.naming) });
  // A conversion keeps every value as it is, NaN included (a file may hold them on
  // purpose); checked against a model, the weights must be usable for inference.
  if (flags.model !== undefined) {
    checkFinite(weights.state, input);
    const name = flags.model;
    const opts = optionsFromWeights(weights.state);
    checkWeightsFit(input, weights.state, () => create(name, opts), (mismatch) =>
      `the weights do not fit ${name}: ${mismatch}; check --model (resnet summary ${name} lists its layers)`);
  }
  const metadata = { ...weights.metadata, format: 'pt', source: basename(input), naming: weights.naming };
  saveSafetensors(output, weights.state, metadata);
  let values = 0;
  for (const t of Object.values(weights.state)) values += t.size;
  const check = flags.model ? `, checked against ${flags.model}` : '';
  process.stdout.write(`converted ${Object.keys(weights.state).length} tensors (${values} values, ${weights.naming} names${check}): ` +
    `${input} -> ${output}\n`);
}
