// `resnet train --engine torch`: real 2-process gloo runs of PyTorch DDP on a Fashion-MNIST
// subset (needs /usr/bin/python3 with torch, which CI installs as Debian's python3-torch).
// The run folder is ours: `resnet eval` in TypeScript on its weights counts the same
// correct images PyTorch reported, and a run killed mid-way or stopped with Ctrl-C resumes to the end.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI } from './helpers/cli.js';

const ENV = { ...process.env, RESNET_PYTHON: '/usr/bin/python3' };
const RUN = ['train', '--engine', 'torch', '--nproc', '2', '--subset', '512', '--test-subset', '500', '--batch-size', '64', '--no-progress'];

function cli(args: string[], env = ENV): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 600_000 });
}

/** A training run in a process group of its own, its stderr gathered, `exit` its exit status. */
function start(args: string[]): { child: ChildProcess; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: ENV, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr!.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { child, stderr: () => text, exit: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
}

/** The steps steps.jsonl logs, in order. */
function loggedSteps(run: string): number[] {
  return readFileSync(join(run, 'steps.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
}

/** The states (R, S, Z, ...) of process `pid`'s children, found through /proc/N/stat. */
function childStates(pid: number): string[] {
  const states: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === pid) states.push(state!);
    } catch {
      // a process that has just ended
    }
  }
  return states;
}

/** A checkpoint PyTorch has written and resnet has not yet named (python/resnet_torch_train.py, save_checkpoint). */
const PENDING = /^\.step-\d+\.safetensors\.\d+\.[1-9]\d*\.tmp$/;

describe('training on PyTorch DDP (2 gloo processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'torch-engine-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finishes, and resnet eval counts the correct images PyTorch counted', () => {
    const r = cli([...RUN, '--epochs', '1', '--out', dir, '--name', 'a', '--master-port', '29611']);
    assert.equal(r.status, 0, r.stderr);
    const run = join(dir, 'a');
    for (const f of ['config.json', 'metrics.jsonl', 'steps.jsonl', 'best.safetensors', 'final.safetensors', 'summary.json']) {
      assert.ok(existsSync(join(run, f)), `${f} in the run folder`);
    }
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as { test: { correct: number; count: number }; steps: number };
    assert.equal(summary.steps, 8);
    assert.equal(summary.test.count, 500);
    const steps = readFileSync(join(run, 'steps.jsonl'), 'utf8').trim().split('\n');
    assert.equal(steps.length, 8, 'one steps.jsonl line a step');
    // The same 500 test images: --test-subset with seed 0 is resnet eval's --subset.
    const ev = cli(['eval', run, '--subset', '500', '--json', '--no-progress']);
    assert.equal(ev.status, 0, ev.stderr);
    const ours = JSON.parse(ev.stdout) as { top1: number; count: number };
    assert.equal(Math.round(ours.top1 * ours.count), summary.test.correct, 'correct test images: resnet eval vs PyTorch');
  });

  it('a run killed mid-way resumes from its checkpoint to the end', async () => {
    const run = join(dir, 'b');
    const args = [...RUN, '--epochs', '2', '--checkpoint-every', '2', '--keep-checkpoints', '2', '--out', dir, '--name', 'b', '--master-port', '29612'];
    const { child } = start(args);
    const ckpts = join(run, 'checkpoints');
    // resnet (the process that writes steps.jsonl) is paused from the launch of torchrun until
    // PyTorch has written a checkpoint under its temporary name: a checkpoint named before
    // resnet logged its steps is seen here. The whole process group is then killed, without
    // warning, as soon as a checkpoint has its name; the steps it covers must be in
    // steps.jsonl by then.
    let paused = false;
    let resumed = false;
    await new Promise<void>((resolve, reject) => {
      const end = (e?: Error): void => {
        clearInterval(timer);
        clearTimeout(deadline);
        process.kill(-child.pid!, 'SIGKILL');
        if (e) reject(e);
        else resolve();
      };
      const timer = setInterval(() => {
        const names = existsSync(ckpts) ? readdirSync(ckpts) : [];
        if (names.some((f) => /^step-\d+\.safetensors$/.test(f))) {
          end();
        } else if (!paused && existsSync(join(run, 'torch', 'job.json')) && childStates(child.pid!).length > 0) {
          process.kill(child.pid!, 'SIGSTOP');
          paused = true;
        } else if (paused && !resumed && names.some((f) => PENDING.test(f))) {
          process.kill(child.pid!, 'SIGCONT');
          resumed = true;
        }
      }, 5);
      const deadline = setTimeout(() => end(new Error(`no checkpoint within 5 minutes (paused ${paused}, resumed ${resumed})`)), 300_000);
      child.on('exit', () => {
        clearInterval(timer);
        clearTimeout(deadline);
        reject(new Error('the run ended before it wrote a checkpoint'));
      });
    });
    assert.ok(paused, 'resnet was paused while torchrun ran');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.ok(!existsSync(join(run, 'final.safetensors')), 'killed before the end');
    const r = cli(['train', '--resume', run, '--no-progress']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resuming from .*step-0000000\d\d\.safetensors/);
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as { steps: number; epochs: number };
    assert.deepEqual([summary.steps, summary.epochs], [16, 2]);
    assert.deepEqual(loggedSteps(run), Array.from({ length: 16 }, (_, i) => i + 1), 'every step logged once');
    const left = readdirSync(ckpts);
    assert.deepEqual(left.filter((f) => f.startsWith('.')), [], 'no half-written or unnamed checkpoint left');
    assert.deepEqual(left.sort(), ['step-000000014.safetensors', 'step-000000016.safetensors'], 'the newest --keep-checkpoints 2');
    const epochs = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { epoch: number }).epoch);
    assert.deepEqual(epochs, [1, 2]);
  });

  it('Ctrl-C in a terminal (SIGINT to the whole process group): a checkpoint, exit 130, and --resume ends the run', async () => {
    const run = join(dir, 'c');
    const args = [...RUN, '--epochs', '2', '--checkpoint-every', '2', '--out', dir, '--name', 'c', '--master-port', '29613'];
    const { child, stderr, exit } = start(args);
    const ckpts = join(run, 'checkpoints');
    // Once training is under way: the terminal sends SIGINT to resnet, torchrun and the workers alike.
    const timer = setInterval(() => {
      if (existsSync(ckpts) && readdirSync(ckpts).some((f) => /^step-\d+\.safetensors$/.test(f))) {
        clearInterval(timer);
        process.kill(-child.pid!, 'SIGINT');
      }
    }, 20);
    const code = await exit;
    clearInterval(timer);
    assert.equal(code, 130, stderr());
    assert.match(stderr(), /^resnet: stopped at step \d+ .*checkpoint .*step-\d+\.safetensors; continue with: resnet train --resume /m);
    assert.doesNotMatch(stderr(), /Traceback|torchrun exited/);
    const r = cli(['train', '--resume', run, '--no-progress']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^resnet: torch: 2 processes on cpu/m, 'resumed as launched (--nproc 2), without the flag');
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as { steps: number; epochs: number };
    assert.deepEqual([summary.steps, summary.epochs], [16, 2]);
    assert.deepEqual(loggedSteps(run), Array.from({ length: 16 }, (_, i) => i + 1), 'every step logged once');
  });

  it('a stop asked at a checkpoint step, saved twice while resnet lags behind: each save named in turn, exit 130', async () => {
    const run = join(dir, 'd');
    const args = [...RUN, '--epochs', '2', '--checkpoint-every', '1', '--out', dir, '--name', 'd', '--master-port', '29614'];
    const { child, stderr, exit } = start(args);
    const ckpts = join(run, 'checkpoints');
    // resnet paused from torchrun's launch; the stop asked the way resnet asks it (the stop file);
    // resnet let go once PyTorch has stopped and torchrun has ended (the checkpoint of step 1
    // saved twice: the one of every step, then the stop's).
    let paused = false;
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const states = childStates(child.pid!);
        if (!paused && existsSync(join(run, 'torch', 'job.json')) && states.length > 0) {
          process.kill(child.pid!, 'SIGSTOP');
          paused = true;
          writeFileSync(join(run, 'torch', 'stop'), '');
        } else if (paused && states.length > 0 && states.every((st) => st === 'Z')) {
          clearInterval(timer);
          clearTimeout(deadline);
          process.kill(child.pid!, 'SIGCONT');
          resolve();
        }
      }, 5);
      const deadline = setTimeout(() => {
        clearInterval(timer);
        process.kill(-child.pid!, 'SIGKILL');
        reject(new Error(`torchrun did not end within 5 minutes (paused ${paused})`));
      }, 300_000);
    });
    assert.equal(await exit, 130, stderr());
    const stopped = /^resnet: stopped at step (\d+) .*checkpoint .*(step-\d+\.safetensors); continue with/m.exec(stderr());
    assert.ok(stopped, stderr());
    assert.equal(stopped[2], `step-${stopped[1]!.padStart(9, '0')}.safetensors`);
    // The stop is asked before the first step ends: step 1 is the one saved twice, and the only one.
    assert.deepEqual(readdirSync(ckpts), [stopped[2]], 'every pending checkpoint named, none left');
  });

  it('python3 or torch missing: one line naming what to install, exit 2', () => {
    const r = cli([...RUN, '--epochs', '1', '--out', dir], { ...ENV, RESNET_PYTHON: join(dir, 'no-python3') });
    assert.equal(r.status, 2);
    assert.match(r.stderr.trim(), /^resnet: --engine torch: .*no-python3 was not found; install Python 3 and .*python3-torch/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
