// The `resnet` command line. Each subcommand lives in its own module under commands/
// and is registered in buildProgram().
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { CommandExit, UserError } from './errors.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('resnet')
    .description('Deep residual networks for TypeScript: define, train, evaluate, export and run ResNets.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--debug', 'print stack traces on errors')
    .showSuggestionAfterError(true)
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0; usage errors already printed.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof CommandExit) {
      if (e.message) process.stderr.write(`resnet: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof UserError && !debug) {
      process.stderr.write(`resnet: ${e.message}\n`);
      return 2;
    }
    if (debug) process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    else process.stderr.write(`resnet: ${e instanceof Error ? e.message : String(e)} (run with --debug for details)\n`);
    return 1;
  }
}
