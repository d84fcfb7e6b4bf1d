// A run folder appears whole or not at all, and opening one to resume clears what
// interrupted writes left behind, but never the files of a writer that is still running.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RunFolder, RunFolderError } from '../src/train/run-folder.js';
import { tempDir } from './helpers/data-files.js';

/** The id of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('run folders', () => {
  it('is made with its config.json in one rename; an empty folder may be taken over, a used one not', () => {
    const out = tempDir('runfolder');
    const run = RunFolder.create(join(out, 'a'), { lr: 0.1 });
    assert.deepEqual(readdirSync(run.dir).sort(), ['checkpoints', 'config.json']);
    assert.deepEqual(JSON.parse(readFileSync(run.configPath, 'utf8')), { lr: 0.1 });
    assert.deepEqual(readdirSync(out), ['a'], 'no staging folder is left');
    mkdirSync(join(out, 'empty'));
    assert.ok(existsSync(RunFolder.create(join(out, 'empty'), {}).configPath));
    assert.throws(() => RunFolder.create(run.dir, {}), (e: unknown) => e instanceof RunFolderError && /exists already; continue it with --resume/.test(e.message));
  });

  it('clears the staging folder a killed process left, and the temporary files of its writes', () => {
    const out = tempDir('runfolder-stale');
    const dead = deadPid();
    mkdirSync(join(out, `.b.${dead}.tmp`, 'checkpoints'), { recursive: true });
    const run = RunFolder.create(join(out, 'b'), {});
    assert.deepEqual(readdirSync(out), ['b']);
    const stale = [join(run.dir, 'checkpoints', `.step-000000003.safetensors.${dead}.0.tmp`), join(run.dir, `.config.json.${dead}.4.tmp`)];
    const live = join(run.dir, 'checkpoints', `.step-000000006.safetensors.${process.pid}.1.tmp`);
    for (const f of [...stale, live]) writeFileSync(f, 'partial');
    const reopened = RunFolder.open(run.dir);
    assert.deepEqual([...reopened.removed].sort(), [...stale].sort());
    for (const f of stale) assert.ok(!existsSync(f), `${f} was left`);
    assert.ok(existsSync(live), 'the file of a running writer is kept');
  });
});
