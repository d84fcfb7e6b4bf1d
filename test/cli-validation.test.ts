// Every command checks what it is handed: an unknown flag or command, a number out of
// range, an unknown model (with the nearest names), a batch too large for memory. Each is
// one line on stderr, exit status 2, no stack trace unless --debug.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { main } from '../src/cli/program.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { assertUsageError, CLI, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/data-files.js';

/** Run main() in this process, capturing what it writes to stderr. */
async function run(argv: string[]): Promise<{ status: number; stderr: string }> {
  let stderr = '';
  const write = mock.method(process.stderr, 'write', (chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : new TextDecoder().decode(chunk);
    return true;
  });
  try {
    return { status: await main(argv), stderr };
  } finally {
    write.mock.restore();
  }
}


async function expectUsageError(argv: string[], pattern: RegExp): Promise<void> {
  assertUsageError(await run(argv), pattern, argv);
}

describe('command-line validation: one line, exit status 2', { timeout: 60_000 }, () => {
  const dir = tempDir('cli-validation');

  it('an unknown flag on every command, with the nearest flag when there is one', async () => {
    const commands: [string, string[]][] = [['train', []], ['eval', ['m']], ['predict', ['m', 'x.png']], ['summary', ['resnet20']],
      ['export', ['w']], ['convert', ['a', 'b']], ['degradation', []], ['report', ['r']], ['compare', ['r']], ['dashboard', ['r']]];
    for (const [cmd, args] of commands) {
      await expectUsageError([cmd, ...args, '--bogus-flag'], new RegExp(`unknown option '--bogus-flag'; see: resnet ${cmd} --help$`));
    }
    await expectUsageError(['train', '--lrr', '0.1'], /unknown option '--lrr' \(Did you mean --lr\?\); see: resnet train --help$/);
    await expectUsageError(['train', '--batchsize', '64'], /\(Did you mean --batch-size\?\)/);
    await expectUsageError(['trian'], /unknown command 'trian' \(Did you mean train\?\); see: resnet --help$/);
    await expectUsageError(['eval'], /missing required argument 'model'; see: resnet eval --help$/);
    await expectUsageError(['train', '--lr'], /option '--lr <x>' argument missing/);
  });

  it('numbers out of range or not numbers, on every command that takes them', async () => {
    const cases: [string[], RegExp][] = [
      [['train', '--lr', '-1'], /^resnet: --lr must be a number > 0, got -1$/],
      [['train', '--lr', 'fast'], /^resnet: --lr must be a number > 0, got "fast"$/],
      [['train', '--lr', 'Infinity'], /--lr must be a number > 0, got "Infinity"$/],
      [['train', '--momentum', '1.5'], /--momentum must be a number >= 0 and <= 1, got 1\.5$/],
      [['train', '--batch-size', '0'], /--batch-size must be an integer >= 1 and <= 65536, got 0$/],
      [['train', '--batch-size', '12.5'], /--batch-size must be an integer >= 1 and <= 65536, got 12\.5$/],
      [['train', '--width', '1e9'], /--width must be an integer >= 1 and <= 64, got 1000000000$/],
      [['train', '--crop-padding', '100000'], /--crop-padding must be an integer >= 0 and <= 4096, got 100000$/],
      [['train', '--eval-batch-size', '1e7'], /--eval-batch-size must be an integer >= 1 and <= 65536, got 10000000$/],
      [['train', '--epochs', '0'], /--epochs must be an integer >= 1 and <= 100000, got 0$/],
      [['train', '--label-smoothing', '2'], /--label-smoothing must be a number >= 0 and <= 1, got 2$/],
      [['train', '--checkpoint-every', '0'], /--checkpoint-every must be an integer >= 1 and <= 100000000, got 0$/],
      [['train', '--keep-checkpoints', '-2'], /--keep-checkpoints must be an integer >= 1 and <= 10000, got -2$/],
      [['train', '--clip-grad-norm', '0'], /--clip-grad-norm must be a number > 0, got 0$/],
      [['train', '--milestones', '10,x'], /--milestones must be a non-empty list of numbers >= 0, got "10,x"$/],
      [['train', '--milestones', '10,5'], /--milestones must increase, got 10,5$/],
      [['train', '--channels', '2'], /--channels must be 1 or 3, got 2$/],
      [['train', '--on-nan', 'maybe'], /--on-nan must be one of stop, skip, got "maybe"$/],
      [['train', '--epochs', '2', '--iterations', '10'], /give either --epochs or --iterations, not both/],
      [['eval', 'm', '--batch-size', '0'], /--batch-size must be a positive integer, got "0"$/],
      [['eval', 'm', '--subset', '-3'], /--subset must be a positive integer, got "-3"$/],
      [['eval', 'm', '--tta', 'mirror'], /argument 'mirror' is invalid\. Allowed choices are none, flip, flip-translate; see: resnet eval --help$/],
      [['predict', 'm', 'x.png', '--top-k', '0'], /--top-k must be a positive integer, got "0"$/],
      [['summary', 'resnet20', '--width', '0'], /--width must be a positive integer, got "0"$/],
      [['summary', 'resnet20', '--input', '1x0x28'], /--input must be CxHxW with positive integers/],
      [['degradation', '--seed', '-1'], /--seed must be a whole number >= 0 and <= 4294967295, got "-1"$/],
      [['degradation', '--depths', '20,abc'], /--depths: "abc" is not a depth/],
      [['report', dir, '--misclassified', '-1'], /--misclassified must be a whole number >= 0, got "-1"$/],
      [['export', 'w.safetensors', '--image-size', '0'], /--image-size 0: expected positive integers/],
    ];
    for (const [argv, pattern] of cases) await expectUsageError(argv, pattern);
  });

  it('an unknown model name says which names are near, before any data is read', async () => {
    // A data folder that is not there: reading it first would be a different error.
    const data = join(dir, 'no-such-data');
    await expectUsageError(['train', '--data', data], /no-such-data: no such folder; expected the fashion-mnist IDX files/);
    await expectUsageError(['train', '--model', 'resnt20', '--data', data], /--model: unknown model "resnt20"\. Did you mean resnet20\?/);
    await expectUsageError(['train', '--model', 'ResNet-56', '--data', data], /unknown model "ResNet-56"\. Did you mean resnet56\?/);
    await expectUsageError(['train', '--model', 'xyz', '--data', data], /unknown model "xyz"\. Known models: resnet8, resnet14, resnet20,/);
    await expectUsageError(['summary', 'resnet51'], /unknown model 'resnet51'\. Did you mean .*resnet50/);
  });

  it('a batch too large for this machine\'s memory is caught before training, with the batch size that fits', async () => {
    const r = await run(['train', '--batch-size', '60000', '--out', dir]);
    assertUsageError(r, /^resnet: --batch-size 60000: a training step of resnet20 on 28x28x1 images needs about [\d.]+ [GT]B \([\d.]+ MB per image\), but [\d.]+ [GMT]B of memory is available; use --batch-size \d+ or less$/, ['train', '--batch-size', '60000']);
    const fits = Number(/use --batch-size (\d+) or less/.exec(r.stderr)![1]);
    assert.ok(fits > 100 && fits < 60000, `${fits} images would fit`);
  });

  it('in a child process too: exit status 2, one line; --debug adds the stack trace', () => {
    const bad = runCli(['train', '--subset', '0']);
    assertUsageError(bad, /--subset must be an integer >= 1, got 0$/, ['train', '--subset', '0']);
    const debug = runCli(['train', '--subset', '0', '--debug']);
    assert.equal(debug.status, 2, debug.stderr);
    assert.match(debug.stderr, /^ConfigError: --subset must be an integer >= 1, got 0\n {4}at /);
    const unknown = runCli(['train', '--bogus']);
    assertUsageError(unknown, /unknown option '--bogus'/, ['train', '--bogus']);
  });

  it('output piped into a reader that has gone (`resnet train --help | head -1`) ends quietly, not with a stack trace', async () => {
    const child = spawn(process.execPath, [CLI, 'train', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before the first write
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    assert.equal(status, 0, stderr);
    assert.equal(stderr, '');
  });
});
