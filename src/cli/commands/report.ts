// `resnet report <run-dir>`: (re)write report.html of a training run folder, or of a
// degradation experiment folder.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeRunReport } from '../../experiments/run-report.js';
import { writeDegradationReport } from '../../experiments/degradation.js';
import { UserError } from '../errors.js';
import { selectBackend } from '../select-backend.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

interface ReportFlags {
  evaluate: boolean;
  misclassified: string;
  backend?: string;
}

const EXAMPLES = `
Examples:
  resnet report runs/20240101-120000-resnet20-fashion-mnist
  resnet report runs/20240101-120000-degradation-fashion-mnist
  resnet report --no-evaluate runs/my-run     curves and tables only, no test-set pass`;

export const registerReport: RegisterCommand = (program) => {
  const cmd = program.command('report')
    .description('write report.html of a run folder: config, curves, confusion matrix, per-class accuracy, misclassified images')
    .argument('<run-dir>', 'a folder written by `resnet train` or `resnet degradation`')
    .option('--no-evaluate', 'do not evaluate the weights (no confusion matrix or misclassified images)')
    .option('--misclassified <n>', 'misclassified test images shown', '40')
    .option('--backend <name>', 'compute backend for the evaluation: native or reference');
  cmd.addHelpText('after', EXAMPLES);
  cmd.action((dir: string) => userErrors(() => report(dir, cmd.opts<ReportFlags>())));
};

export function countFlag(flag: string, text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isInteger(n) || n < 0) throw new UserError(`${flag} must be a whole number >= 0, got ${JSON.stringify(text)}`);
  return n;
}

async function report(dir: string, flags: ReportFlags): Promise<void> {
  selectBackend(flags.backend);
  if (existsSync(join(dir, 'experiment.json'))) {
    const result = await writeDegradationReport(dir);
    process.stdout.write(`${result.summary.verdict}\nreport: ${result.files.report}\nfigure: ${result.files.figurePng}\n`);
    return;
  }
  const path = await writeRunReport(dir, {
    evaluate: flags.evaluate, maxMisclassified: countFlag('--misclassified', flags.misclassified),
  });
  process.stdout.write(`report: ${path}\n`);
}
