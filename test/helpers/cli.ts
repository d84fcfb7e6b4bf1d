// Running the `resnet` binary (the compiled dist/src/cli/main.js) in a child process.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The command refused its input as the CLI promises: exit status 2 and one line on
 * stderr, `resnet: ...` matching `pattern`, without a stack trace. `argv` (or a
 * description) names the case in failure messages.
 */
export function assertUsageError(r: { status: number | null; stderr: string }, pattern: RegExp,
  argv: string | readonly string[] = 'resnet'): void {
  const what = typeof argv === 'string' ? argv : `resnet ${argv.join(' ')}`;
  assert.notEqual(r.status, null, `${what}: did not finish (killed by its time limit?)`);
  assert.equal(r.status, 2, `${what}: exit status ${r.status}, stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: expected one line, got: ${r.stderr}`);
  assert.match(lines[0]!, /^resnet: /, what);
  assert.match(lines[0]!, pattern, what);
  assert.ok(!r.stderr.includes('    at '), `${what}: a stack trace`);
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

/** Run `fn` (an in-process command) with its stdout lines dropped. */
export async function quiet<T>(fn: () => Promise<T>): Promise<T> {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await fn();
  } finally {
    process.stdout.write = write;
  }
}
