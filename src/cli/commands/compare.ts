// `resnet compare <run-dir...>`: one page overlaying several training runs.
import { writeFileAtomic } from '../../util/atomic-write.js';
import { readRunData } from '../../experiments/run-data.js';
import { renderCompareReport } from '../../report/compare-report.js';
import { UserError } from '../errors.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';

const EXAMPLES = `
Examples:
  resnet compare runs/a runs/b                   writes compare.html here
  resnet compare runs/* --out runs/compare.html`;

export const registerCompare: RegisterCommand = (program) => {
  const cmd = program.command('compare')
    .description('overlay the curves of several training runs on one page (test accuracy, test loss, training loss)')
    .argument('<run-dir...>', 'folders written by `resnet train`')
    .option('--out <file>', 'where to write the page', 'compare.html');
  cmd.addHelpText('after', EXAMPLES);
  cmd.action((dirs: string[]) => userErrors(() => compare(dirs, cmd.opts<{ out: string }>().out)));
};

function compare(dirs: readonly string[], out: string): void {
  const runs = dirs.map(readRunData);
  const names = new Set<string>();
  for (const r of runs) {
    if (names.has(r.name)) throw new UserError(`two runs are both named ${r.name}; give each run once`);
    names.add(r.name);
  }
  writeFileAtomic(out, renderCompareReport(runs));
  process.stdout.write(`compared ${runs.length} runs: ${out}\n`);
}
