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

/** Run `resnet ...args` asynchronously, so a test can watch its output and send it signals. */
export function startCli(args: readonly string[], cwd?: string): {
  child: ReturnType<typeof spawn>;
  waitForStdout: (pattern: RegExp) => Promise<string>;
  done: Promise<CliResult>;
} {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: (s: string) => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of waiters.splice(0)) {
      if (w.pattern.test(stdout)) w.resolve(stdout);
      else waiters.push(w);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const done = new Promise<CliResult>((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
  const waitForStdout = (pattern: RegExp): Promise<string> => new Promise((resolve, reject) => {
    if (pattern.test(stdout)) resolve(stdout);
    else waiters.push({ pattern, resolve });
    void done.then((r) => reject(new Error(`the command ended (status ${r.status}) before printing ${pattern}: ${r.stderr}`)));
  });
  return { child, waitForStdout, done };
}
