// Ctrl-C during `resnet train`: the step finishes, a checkpoint is written, the message
// says how to continue, and `--resume` ends with the weights of an unbroken run.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readSafetensors } from '../src/io/safetensors.js';
import { runCli, startCli } from './helpers/cli.js';
import { tempDir } from './helpers/data-files.js';

function trainLosses(runDir: string): number[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n')
    .map((l) => (JSON.parse(l) as { trainLoss: number }).trainLoss);
}

describe('resnet train interrupted and resumed', () => {
  it('SIGINT writes a checkpoint and says how to resume; --resume reaches the unbroken run\'s weights', async () => {
    const out = tempDir('cli-sigint');
    const args = ['train', '--subset', '128', '--test-subset', '100', '--epochs', '3', '--batch-size', '16', '--lr', '0.05',
      '--out', out, '--no-progress'];
    const unbroken = runCli([...args, '--name', 'a']);
    assert.equal(unbroken.status, 0, unbroken.stderr);

    const proc = startCli([...args, '--name', 'b']);
    await proc.waitForStdout(/^epoch 1\/3 /m);
    proc.child.kill('SIGINT');
    const stopped = await proc.done;
    assert.equal(stopped.status, 130, stopped.stderr);
    const runB = join(out, 'b');
    assert.match(stopped.stderr, /^resnet: SIGINT: finishing the current step and writing a checkpoint/m);
    const last = stopped.stderr.trim().split('\n').pop()!;
    assert.match(last, new RegExp(`^resnet: stopped at step \\d+ \\(epoch [23], \\d+ of 8 batches done\\); checkpoint .*step-\\d+\\.safetensors; continue with: resnet train --resume ${runB}$`));

    const resumed = runCli(['train', '--resume', runB, '--no-progress']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stderr, /resnet: resuming from .*step-\d+\.safetensors \(step \d+, epoch/);
    assert.match(resumed.stdout, /^test accuracy /m);

    const a = readSafetensors(join(out, 'a', 'final.safetensors')).tensors;
    const b = readSafetensors(join(runB, 'final.safetensors')).tensors;
    assert.deepEqual(Object.keys(b), Object.keys(a));
    for (const [k, t] of Object.entries(a)) assert.deepEqual(b[k]!.data, t.data, `${k} differs`);
    assert.deepEqual(trainLosses(runB), trainLosses(join(out, 'a')));
  });
});
