// The `resnet` command line. Each subcommand lives in its own module under commands/
// and is registered in buildProgram(). Every way a command can fail ends here, in
// main(): a mistake of the user is one line on stderr and exit status 2 (a stack trace
// only with --debug), a diverged training run one line and status 1.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { TrainingDivergedError } from '../train/trainer.js';
import { commands } from './commands/index.js';
import { CommandExit } from './errors.js';
import { isUserFacing } from './user-errors.js';

/** Exit status of a usage error or a bad file, as commander, git and most CLIs use. */
export const USAGE_EXIT = 2;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** A message on one line: whitespace runs (newlines included) become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

export function buildProgram(parseError: { message: string } = { message: '' }): Command {
  const program = new Command();
  program
    .name('resnet')
    .description('Deep residual networks for TypeScript: define, train, evaluate, export and run ResNets.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--debug', 'print stack traces on errors')
    .showSuggestionAfterError(true)
    // Commander's "error: unknown option '--lrr'\n(Did you mean --lr?)" is kept for main()
    // to print as one line; subcommands inherit this when they are created below.
    .configureOutput({ outputError: (text) => { parseError.message = oneLine(text.replace(/^error:\s*/, '')); } })
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

/** `resnet <command>` named in argv, for a pointer to its --help. */
function commandIn(program: Command, argv: readonly string[]): string | null {
  const names = new Set(program.commands.map((c) => c.name()));
  return argv.find((a) => names.has(a)) ?? null;
}

export async function main(argv: readonly string[]): Promise<number> {
  const parseError = { message: '' };
  const program = buildProgram(parseError);
  const debug = argv.includes('--debug');
  const say = (text: string): void => {
    process.stderr.write(`resnet: ${oneLine(text)}\n`);
  };
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      if (e.exitCode === 0) return 0;
      const command = commandIn(program, argv);
      say(`${(parseError.message || e.message).replace(/\.$/, '')}; see: resnet ${command ? `${command} ` : ''}--help`);
      return USAGE_EXIT;
    }
    if (e instanceof CommandExit) {
      if (e.message) say(e.message);
      return e.exitCode;
    }
    if (debug) process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    if (isUserFacing(e)) {
      if (!debug) say(e.message);
      return USAGE_EXIT;
    }
    if (e instanceof TrainingDivergedError) {
      if (!debug) say(e.message);
      return 1;
    }
    if (!debug) say(`${e instanceof Error ? e.message : String(e)} (run with --debug for details)`);
    return 1;
  }
}
