// `resnet summary <model>`: the per-layer table of a model (output shape, parameters,
// multiply-accumulates) and its totals, for any input size.
import { formatSummary, summarize } from '../../models/summary.js';
import { create, info, list } from '../../models/registry.js';
import type { ModelOptions } from '../../models/options.js';
import { stateDictShapes } from '../../nn/layers.js';
import { availableMemory, formatBytes } from '../../train/memory.js';
import type { ShortcutKind } from '../../models/shortcuts.js';
import { SHORTCUT_KINDS } from '../../models/shortcuts.js';
import { UserError } from '../errors.js';
import { positiveInt } from '../flags.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

interface SummaryFlags {
  input?: string;
  numClasses?: string;
  width?: string;
  shortcut?: string;
}

/** "3x32x32" (channels x height x width, as PyTorch writes image sizes) -> [h, w, c]. */
export function parseInputSize(text: string): [number, number, number] {
  const parts = text.toLowerCase().split('x');
  const dims = parts.map(Number);
  if (parts.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
    throw new UserError(`--input must be CxHxW with positive integers, e.g. 3x32x32 or 1x28x28; got ${JSON.stringify(text)}`);
  }
  const [c, h, w] = dims as [number, number, number];
  return [h, w, c];
}

function isShortcut(s: string): s is ShortcutKind {
  return (SHORTCUT_KINDS as readonly string[]).includes(s);
}

/** The model's tensors, counted by a dry build, must fit in memory before it is built. */
function checkFitsMemory(name: string, opts: ModelOptions, flags: SummaryFlags): void {
  let values = 0;
  for (const shape of Object.values(stateDictShapes(() => create(name, opts)))) values += shape.reduce((a, b) => a * b, 1);
  const bytes = 4 * values;
  const available = availableMemory();
  if (bytes <= available) return;
  const asked = [['--width', flags.width], ['--num-classes', flags.numClasses], ['--input', flags.input]]
    .filter(([, v]) => v !== undefined).map(([f, v]) => `${f} ${v}`).join(' ');
  throw new UserError(`${name}${asked ? ` with ${asked}` : ''} has ${values.toPrecision(3)} weights, ${formatBytes(bytes)}, ` +
    `more than the ${formatBytes(available)} of memory available; choose a smaller${asked ? ` ${asked.split(' ')[0]}` : ' model'}`);
}

export function summaryText(name: string, flags: SummaryFlags): string {
  const about = info(name);
  const [h, w, c] = flags.input !== undefined ? parseInputSize(flags.input) : [...about.imageSize, 3] as const;
  if (flags.shortcut !== undefined && !isShortcut(flags.shortcut)) {
    throw new UserError(`--shortcut must be one of ${SHORTCUT_KINDS.join(', ')}, got ${JSON.stringify(flags.shortcut)}`);
  }
  const opts = {
    inChannels: c,
    seed: 0,
    ...(flags.numClasses !== undefined ? { numClasses: positiveInt('--num-classes', flags.numClasses) } : {}),
    ...(flags.width !== undefined ? { width: positiveInt('--width', flags.width) } : {}),
    ...(flags.shortcut !== undefined ? { shortcut: flags.shortcut } : {}),
  };
  checkFitsMemory(name, opts, flags);
  const model = create(name, opts);
  let summary;
  try {
    summary = summarize(model, [h, w, c]);
  } catch (e) {
    throw new UserError(`${name} cannot run on a ${c}x${h}x${w} input: ${e instanceof Error ? e.message : String(e)}`);
  }
  return formatSummary(summary, `${name}: ${about.description}`);
}

export const registerSummary: RegisterCommand = (program) => {
  const cmd = program.command('summary')
    .description('print a model\'s layers with output shapes, parameters and multiply-accumulates (MACs), and the totals')
    .argument('<model>', `a model name (${list().length} in all, e.g. resnet20, resnet50, preact_resnet164)`)
    .option('--input <CxHxW>', 'input image size (default: 3x32x32 for CIFAR-style models, 3x224x224 for ImageNet-style)')
    .option('--num-classes <n>', 'classifier outputs (default: 10 CIFAR-style, 1000 ImageNet-style)')
    .option('--width <k>', 'widening factor of the stages')
    .option('--shortcut <kind>', `shortcut option: ${SHORTCUT_KINDS.join(', ')}`);
  cmd.addHelpText('after', `\nExamples:\n  resnet summary resnet50\n  resnet summary resnet20 --input 1x28x28\n\nModels: ${list().join(', ')}`);
  cmd.action((model: string) => userErrors(() => {
    process.stdout.write(summaryText(model, cmd.opts<SummaryFlags>()));
  }));
};
