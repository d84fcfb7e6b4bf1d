// `resnet dashboard <runs...>`: serve the live curves of training runs (src/serve/dashboard.ts)
// until Ctrl-C or SIGTERM. `resnet train --dashboard` opens the same for the run it trains.
import { existsSync } from 'node:fs';
import { type RunningDashboard, startDashboard } from '../../serve/dashboard.js';
import { findRunFolders } from '../../serve/run-watch.js';
import { UserError } from '../errors.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';
import { integerFlag, listenError } from './serve.js';

/** The port `--dashboard` without a value and `resnet dashboard` listen on. */
export const DASHBOARD_PORT = 8090;

const EXAMPLES = `
Examples:
  resnet dashboard runs/                        every run in runs/, overlaid; new runs appear as they start
  resnet dashboard runs/my-run --port 9000      one run: loss, accuracy, learning rate, throughput
  resnet train --epochs 30 --dashboard          train with the dashboard of the new run at http://127.0.0.1:${DASHBOARD_PORT}`;

interface DashboardFlags {
  host: string;
  port: string;
}

export const registerDashboard: RegisterCommand = (program) => {
  const cmd = program.command('dashboard')
    .description('serve live training curves of run folders in the browser; they update as the runs write their metrics')
    .argument('<run-dir...>', 'run folders written by `resnet train`, or folders holding them (e.g. runs/)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', String(DASHBOARD_PORT));
  cmd.addHelpText('after', EXAMPLES);
  cmd.action((dirs: string[]) => userErrors(() => dashboard(dirs, cmd.opts<DashboardFlags>())));
};

/** The port a flag names (`--dashboard` alone: the default one). */
export function dashboardPort(flag: string, text: string | true): number {
  return text === true ? DASHBOARD_PORT : integerFlag(flag, text, 0, 65535);
}

/** Start the dashboard of `paths` on `host`:`port`, with one-line errors, and say where. */
export async function openDashboard(paths: readonly string[], host: string, port: number): Promise<RunningDashboard> {
  try {
    const running = await startDashboard(paths, { host, port });
    process.stdout.write(`dashboard: ${running.url}\n`);
    return running;
  } catch (e) {
    throw listenError(e, { host, port });
  }
}

async function dashboard(dirs: readonly string[], flags: DashboardFlags): Promise<void> {
  for (const d of dirs) if (!existsSync(d)) throw new UserError(`${d}: no such folder; give run folders written by \`resnet train\` or a folder holding them`);
  if (findRunFolders(dirs).length === 0) {
    process.stderr.write(`resnet dashboard: no run folder in ${dirs.join(', ')} yet; runs appear on the page once they start\n`);
  }
  const running = await openDashboard(dirs, flags.host, dashboardPort('port', flags.port));
  await new Promise<void>((resolve, reject) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      running.close().then(resolve, reject);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
