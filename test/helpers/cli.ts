// Running the `resnet` binary (the compiled dist/src/cli/main.js) in a child process.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run `resnet ...args` to the end (in `cwd`, default the current folder). */
export function runCli(args: readonly string[], cwd?: string, timeoutMs = 300_000): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd, timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface StartOptions {
  cwd?: string;
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /** Node options before the script, e.g. ['--import', hookUrl]. */
  nodeArgs?: readonly string[];
}

/** Run `resnet ...args` asynchronously, so a test can watch its output and send it signals. */
export function startCli(args: readonly string[], cwdOrOptions?: string | StartOptions): {
  child: ReturnType<typeof spawn>;
  waitForStdout: (pattern: RegExp) => Promise<string>;
  waitForStderr: (pattern: RegExp) => Promise<string>;
  done: Promise<CliResult & { signal: NodeJS.Signals | null }>;
} {
  const opts = typeof cwdOrOptions === 'string' ? { cwd: cwdOrOptions } : cwdOrOptions ?? {};
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLI, ...args], {
    cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ? { ...process.env, ...opts.env } : process.env,
  });
  const text = { stdout: '', stderr: '' };
  const waiters: { stream: 'stdout' | 'stderr'; pattern: RegExp; resolve: (s: string) => void }[] = [];
  const onData = (stream: 'stdout' | 'stderr') => (d: string): void => {
    text[stream] += d;
    for (const w of waiters.splice(0)) {
      if (w.stream === stream && w.pattern.test(text[stream])) w.resolve(text[stream]);
      else waiters.push(w);
    }
  };
  child.stdout.setEncoding('utf8').on('data', onData('stdout'));
  child.stderr.setEncoding('utf8').on('data', onData('stderr'));
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (status, signal) => resolve({ status, signal, stdout: text.stdout, stderr: text.stderr })));
  const waitFor = (stream: 'stdout' | 'stderr') => (pattern: RegExp): Promise<string> => new Promise((resolve, reject) => {
    if (pattern.test(text[stream])) resolve(text[stream]);
    else waiters.push({ stream, pattern, resolve });
    void done.then((r) => reject(new Error(`the command ended (status ${r.status}) before printing ${pattern}: ${r.stderr}`)));
  });
  return { child, waitForStdout: waitFor('stdout'), waitForStderr: waitFor('stderr'), done };
}
