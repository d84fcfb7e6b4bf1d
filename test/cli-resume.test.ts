// Crash safety of `resnet train`, end to end on a Fashion-MNIST subset. One run is killed
// with SIGKILL again and again (at seeded random times, and in the middle of checkpoint
// writes); after every kill the run folder holds only whole, verified checkpoints,
// `--resume` continues from the newest one, and the run ends with the weights, the
// metrics.jsonl (timings aside) and the steps.jsonl of an unbroken run, bit for bit;
// every step a checkpoint covers is in steps.jsonl. Ctrl-C and SIGTERM write a
// checkpoint and say how to resume.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../src/io/safetensors.js';
import { Rng } from '../src/tensor/random.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { runCli, startCli } from './helpers/cli.js';
import { tempDir } from './helpers/data-files.js';

// 3 epochs of 8 steps; checkpoints after steps 3, 6, 8 (epoch end), 9, 12, 15, 16 (epoch end), ...
const ARGS = ['train', '--subset', '256', '--test-subset', '32', '--epochs', '3', '--batch-size', '32', '--lr', '0.05',
  '--checkpoint-every', '3', '--no-progress'];
const KILL_HOOK = fileURLToPath(new URL('./helpers/kill-during-write.js', import.meta.url));

/** metrics.jsonl without the fields that time the run. */
function metrics(runDir: string): unknown[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const { time: _t, epochSeconds: _s, dataSeconds: _d, imagesPerSecond: _i, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });
}

function steps(runDir: string): unknown[] {
  return readFileSync(join(runDir, 'steps.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
}

/** The weights, the epoch records and the step records of an unbroken run, however often the run was killed. */
function assertSameAsUnbroken(runDir: string, reference: string): void {
  const a = readSafetensors(join(reference, 'final.safetensors')).tensors;
  const b = readSafetensors(join(runDir, 'final.safetensors')).tensors;
  assert.deepEqual(Object.keys(b), Object.keys(a));
  for (const [k, t] of Object.entries(a)) assert.deepEqual(b[k]!.data, t.data, `${k} differs from the unbroken run`);
  assert.equal(steps(reference).length, 24, 'the unbroken run logs its 24 steps');
  assert.deepEqual(steps(runDir), steps(reference), 'steps.jsonl differs from the unbroken run');
  assert.deepEqual(metrics(runDir), metrics(reference), 'metrics.jsonl differs from the unbroken run');
}

/** Every step a checkpoint covers is in steps.jsonl, in order, from step 1. */
function assertStepsCover(runDir: string, checkpoint: string | null): void {
  if (checkpoint === null || !existsSync(join(runDir, 'steps.jsonl'))) return;
  const covered = loadCheckpoint(checkpoint).state.step;
  const logged = (steps(runDir) as { step: number }[]).map((l) => l.step);
  assert.deepEqual(logged.slice(0, covered), Array.from({ length: covered }, (_, i) => i + 1),
    `steps.jsonl holds ${logged.join(',')} while ${checkpoint} covers steps 1-${covered}`);
}

function checkpointDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

function leftoverTemps(runDir: string): string[] {
  return [runDir, checkpointDir(runDir)].flatMap((d) => (existsSync(d) ? readdirSync(d) : []).filter((n) => n.endsWith('.tmp')));
}

/**
 * What a crash may leave: no run folder, or one with its config.json whose every named
 * checkpoint loads and passes its checksum. Returns the newest checkpoint (null: none).
 */
function assertWholeRunFolder(runDir: string): string | null {
  if (!existsSync(runDir)) return null;
  assert.ok(existsSync(join(runDir, 'config.json')), `${runDir} exists without its config.json`);
  JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
  const names = readdirSync(checkpointDir(runDir)).filter((n) => /^step-\d+\.safetensors$/.test(n)).sort();
  for (const n of names) loadCheckpoint(join(checkpointDir(runDir), n));
  return names.length > 0 ? join(checkpointDir(runDir), names[names.length - 1]!) : null;
}

type Kill =
  | { kind: 'timer'; ms: number }
  | { kind: 'write'; write: number; phase: 'partial' | 'unrenamed' }
  | { kind: 'config' };

describe('resnet train killed and resumed', { timeout: 170_000 }, () => {
  const out = tempDir('cli-crash');
  const reference = join(out, 'a');
  let referenceMs = 0;

  it('an unbroken run (the reference)', () => {
    const started = Date.now();
    const r = runCli([...ARGS, '--out', out, '--name', 'a']);
    referenceMs = Date.now() - started;
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(checkpointDir(reference)).sort(), ['step-000000021.safetensors', 'step-000000024.safetensors']);
  });

  it('SIGKILL at random times and inside checkpoint writes: --resume always takes the newest checkpoint and ends bit-identical', async (t) => {
    const runB = join(out, 'b');
    const rng = new Rng(8128);
    // A third of an unbroken run at most, so several kills land before the end.
    const timer = (): Kill => ({ kind: 'timer', ms: Math.round(rng.uniform() * referenceMs / 3) });
    t.diagnostic(`the unbroken run took ${referenceMs} ms`);
    // First a kill while the new run folder's config.json is written, then kills at random times and inside checkpoint writes.
    const plan: Kill[] = [{ kind: 'config' }, timer(), { kind: 'write', write: 1 + rng.int(2), phase: 'partial' }, timer(),
      { kind: 'write', write: 1 + rng.int(2), phase: 'unrenamed' }, timer(), timer()];
    let kills = 0;
    let finished = false;
    for (const kill of plan) {
      const before = assertWholeRunFolder(runB);
      const resuming = existsSync(join(runB, 'config.json'));
      const env: Record<string, string> = kill.kind === 'write'
        ? { RESNET_KILL_CHECKPOINT_WRITE: String(kill.write), RESNET_KILL_PHASE: kill.phase }
        : kill.kind === 'config' ? { RESNET_KILL_CHECKPOINT_WRITE: '1', RESNET_KILL_FILE: 'config' } : {};
      const proc = startCli(resuming ? ['train', '--resume', runB, '--no-progress'] : [...ARGS, '--out', out, '--name', 'b'],
        { env, nodeArgs: kill.kind === 'timer' ? [] : ['--import', KILL_HOOK] });
      if (resuming) {
        // The run says where it continues from before it trains: the newest checkpoint on disk.
        const said = await proc.waitForStderr(/resnet: (resuming from .*|no valid checkpoint .*)\n/);
        if (before) assert.match(said, new RegExp(`resnet: resuming from ${before.replace(/[.]/g, '\\.')} \\(step \\d+`));
        else assert.match(said, /no valid checkpoint in .*; starting the run from the beginning/);
      }
      if (kill.kind === 'timer') setTimeout(() => proc.child.kill('SIGKILL'), kill.ms);
      const r = await proc.done;
      if (r.status === 0) {
        // The timer fired after the run had finished.
        finished = true;
        t.diagnostic(`kill ${kills + 1} (${JSON.stringify(kill)}) came after the run finished`);
        break;
      }
      assert.equal(r.signal, 'SIGKILL', `exit ${r.status}: ${r.stderr}`);
      kills++;
      const newest = assertWholeRunFolder(runB);
      assertStepsCover(runB, newest);
      t.diagnostic(`kill ${kills}: ${JSON.stringify(kill)}; newest checkpoint now ${newest ?? 'none'}`);
      if (kill.kind === 'config') {
        // Killed while making the run folder: there is none (its staging folder is hidden), and the next run starts afresh.
        assert.ok(!existsSync(runB), 'a run folder without its config.json was left');
        assert.ok(readdirSync(out).some((n) => n.startsWith('.b.') && n.endsWith('.tmp')), 'the staging folder of the killed run');
      }
      if (kill.kind === 'write') {
        // The hook killed the process inside a write: the temporary file is there, never renamed.
        const temps = leftoverTemps(runB);
        assert.equal(temps.length, 1, `one temporary file left: ${temps.join(', ')}`);
        const temp = join(checkpointDir(runB), temps[0]!);
        if (kill.phase === 'partial') assert.throws(() => loadCheckpoint(temp), /truncated|runs past the end|not a valid safetensors/);
        else assert.equal(loadCheckpoint(temp).file, temp, 'a complete but unrenamed checkpoint');
      }
    }
    assert.ok(kills >= 5, `only ${kills} of the planned kills landed before the run finished`);
    if (!finished) {
      // A file system without atomic rename could tear the newest checkpoint: --resume says so and takes the one before.
      const names = readdirSync(checkpointDir(runB)).filter((n) => n.startsWith('step-')).sort();
      const torn = names.length >= 2 ? join(checkpointDir(runB), names[names.length - 1]!) : null;
      if (torn) writeFileSync(torn, readFileSync(torn).subarray(0, statSync(torn).size - 1000));
      const r = runCli(['train', '--resume', runB, '--no-progress']);
      assert.equal(r.status, 0, r.stderr);
      if (torn) {
        assert.match(r.stderr, new RegExp(`resnet: skipping ${torn.replace(/[.]/g, '\\.')}: .*(truncated|past the end)`));
        assert.match(r.stderr, new RegExp(`resnet: resuming from ${join(checkpointDir(runB), names[names.length - 2]!).replace(/[.]/g, '\\.')}`));
      }
      assert.match(r.stdout, /^test accuracy /m);
    }
    assert.deepEqual(leftoverTemps(runB), [], 'the temporary files of interrupted writes are cleaned up');
    assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('.b.')), [], 'the staging folder of the killed run is cleaned up');
    assertSameAsUnbroken(runB, reference);
  });

  it('SIGTERM then Ctrl-C: each finishes the step, writes a verified checkpoint, says how to resume; --resume ends bit-identical', async () => {
    const runC = join(out, 'c');
    const stoppedAt = (stderr: string, signal: string, code: number): void => {
      assert.match(stderr, new RegExp(`^resnet: ${signal}: finishing the current step and writing a checkpoint`, 'm'));
      const last = stderr.trim().split('\n').pop()!;
      const m = new RegExp(`^resnet: stopped at step (\\d+) \\(epoch [123], \\d+ of 8 batches done\\); checkpoint (.*step-\\d+\\.safetensors); ` +
        `continue with: resnet train --resume ${runC}$`).exec(last);
      assert.ok(m, `last line: ${last}`);
      const ckpt = loadCheckpoint(m[2]!);
      assert.equal(ckpt.state.step, Number(m[1]), `exit ${code}: the checkpoint holds the step the message names`);
      assert.equal(assertWholeRunFolder(runC), m[2], 'the checkpoint named is the newest');
    };

    const first = startCli([...ARGS, '--out', out, '--name', 'c']);
    // Stopped in epoch 1, once the step-3 checkpoint exists, so the next run's SIGINT lands in epoch 2.
    await first.waitForStdout(/^run folder: /m);
    while (!existsSync(join(checkpointDir(runC), 'step-000000003.safetensors'))) await new Promise((r) => setTimeout(r, 20));
    first.child.kill('SIGTERM');
    const terminated = await first.done;
    assert.equal(terminated.status, 143, terminated.stderr);
    stoppedAt(terminated.stderr, 'SIGTERM', 143);

    const second = startCli(['train', '--resume', runC, '--no-progress']);
    await second.waitForStdout(/^epoch 1\/3 /m);
    second.child.kill('SIGINT');
    const interrupted = await second.done;
    assert.equal(interrupted.status, 130, interrupted.stderr);
    stoppedAt(interrupted.stderr, 'SIGINT', 130);

    const resumed = runCli(['train', '--resume', runC, '--no-progress']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stderr, /resnet: resuming from .*step-\d+\.safetensors \(step \d+, epoch [23]/);
    assertSameAsUnbroken(runC, reference);
  });
});
