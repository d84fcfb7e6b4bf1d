// The folder of one training run:
//   config.json        the recipe (written once, atomically)
//   metrics.jsonl      one JSON line per finished epoch
//   checkpoints/       step-<n>.safetensors, the newest few
//   best.safetensors   the weights that scored best so far, with their model card
//   final.safetensors  the weights at the end
//   summary.json       the final result
import {
  appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { type EpochRecord, epochRecordLine, parseEpochRecords } from './records.js';

const CHECKPOINT = /^step-(\d+)\.safetensors$/;
/** writeFileAtomic's temporary files: `.<name>.<pid>.<counter>.tmp`. */
const ATOMIC_TEMP = /^\..+\.(\d+)\.\d+\.tmp$/;

/** Whether a process with this id is running (then its temporary files may be in use). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e instanceof Error && 'code' in e && e.code === 'EPERM';
  }
}

/** Staging folders of `dir` that a creating process left when it was killed. */
function removeStaleStagingFolders(dir: string): void {
  const parent = dirname(dir);
  if (!existsSync(parent)) return;
  const prefix = `.${basename(dir)}.`;
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const pid = Number(name.slice(prefix.length, -'.tmp'.length));
    if (Number.isInteger(pid) && !processAlive(pid)) rmSync(join(parent, name), { recursive: true, force: true });
  }
}

export class RunFolderError extends Error {
  override readonly name = 'RunFolderError';
}

/**
 * `--out` must be a folder or a path that can become one: a file in the way is named
 * before any data is read, rather than failing when the `made` folder is created.
 */
export function checkOutFolder(out: string, made: string): void {
  for (let p = out.replace(/(.)[\\/]+$/, '$1'); ; p = dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      // Not there (yet): mkdir makes it, if what is above it is a folder.
      if (dirname(p) === p) return;
      continue;
    }
    if (isDir) return;
    throw new RunFolderError(`--out ${out}: ${p === out ? '' : `${p} `}is a file, not a folder; give the folder to make the ${made} in`);
  }
}

export class RunFolder {
  constructor(readonly dir: string) {}

  /**
   * Make a new run folder, with `config` as its config.json when given; an existing
   * non-empty folder is an error (resume it instead). The folder is made under a hidden
   * temporary name and renamed into place, so a crash leaves either no run folder or one
   * with its config.json (which `--resume` needs).
   */
  static create(dir: string, config?: unknown): RunFolder {
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      throw new RunFolderError(`${dir}: the run folder exists already; continue it with --resume ${dir}, or choose another --name`);
    }
    const temp = join(dirname(dir), `.${basename(dir)}.${process.pid}.tmp`);
    try {
      removeStaleStagingFolders(dir);
      rmSync(temp, { recursive: true, force: true });
      mkdirSync(join(temp, 'checkpoints'), { recursive: true });
      const staged = new RunFolder(temp);
      if (config !== undefined) staged.writeJson(staged.configPath, config);
      if (existsSync(dir)) rmdirSync(dir);
      renameSync(temp, dir);
    } catch (e) {
      try {
        rmSync(temp, { recursive: true, force: true });
      } catch {
        // Nothing was made where nothing can be (a file in the way, no permission).
      }
      throw new RunFolderError(`${dir}: cannot make the run folder (${e instanceof Error ? e.message : String(e)})`);
    }
    return new RunFolder(dir);
  }

  /**
   * An existing run folder, to resume or read. Temporary files that an interrupted
   * atomic write left behind (their writer is gone) are deleted and listed in `removed`.
   */
  static open(dir: string): RunFolder {
    if (!existsSync(dir)) throw new RunFolderError(`${dir}: no such folder; give the folder a \`resnet train\` run wrote`);
    if (!existsSync(join(dir, 'config.json'))) {
      throw new RunFolderError(`${dir}: not a run folder (no config.json); give the folder a \`resnet train\` run wrote`);
    }
    mkdirSync(join(dir, 'checkpoints'), { recursive: true });
    const run = new RunFolder(dir);
    for (const folder of [dir, join(dir, 'checkpoints')]) {
      for (const name of readdirSync(folder)) {
        const m = ATOMIC_TEMP.exec(name);
        if (m && !processAlive(Number(m[1]))) {
          rmSync(join(folder, name), { force: true });
          run.removed.push(join(folder, name));
        }
      }
    }
    return run;
  }

  /** Leftovers of interrupted writes that open() deleted. */
  readonly removed: string[] = [];

  get configPath(): string { return join(this.dir, 'config.json'); }
  get metricsPath(): string { return join(this.dir, 'metrics.jsonl'); }
  get bestPath(): string { return join(this.dir, 'best.safetensors'); }
  get finalPath(): string { return join(this.dir, 'final.safetensors'); }
  get summaryPath(): string { return join(this.dir, 'summary.json'); }

  writeJson(path: string, value: unknown): void {
    writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
  }

  readConfig(): unknown {
    try {
      return JSON.parse(readFileSync(this.configPath, 'utf8'));
    } catch (e) {
      throw new RunFolderError(`${this.configPath}: cannot read the run's config (${e instanceof Error ? e.message : String(e)})`);
    }
  }

  /** Append one record to metrics.jsonl and flush it to disk. */
  appendMetrics(record: EpochRecord): void {
    appendFileSync(this.metricsPath, epochRecordLine(record));
    const fd = openSync(this.metricsPath, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The records of metrics.jsonl (a torn last line, from a crash while appending, is dropped). */
  readMetrics(): EpochRecord[] {
    return existsSync(this.metricsPath) ? parseEpochRecords(readFileSync(this.metricsPath, 'utf8')) : [];
  }

  /** Keep only the records of epochs up to `epoch` (the ones a checkpoint already covers). */
  truncateMetrics(epoch: number): void {
    writeFileAtomic(this.metricsPath, this.readMetrics().filter((r) => r.epoch <= epoch).map(epochRecordLine).join(''));
  }

  checkpointPath(step: number): string {
    return join(this.dir, 'checkpoints', `step-${String(step).padStart(9, '0')}.safetensors`);
  }

  /** Checkpoint files, newest (highest step) first. */
  listCheckpoints(): { path: string; step: number }[] {
    const dir = join(this.dir, 'checkpoints');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .map((name) => ({ name, m: CHECKPOINT.exec(name) }))
      .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
      .map(({ name, m }) => ({ path: join(dir, name), step: Number(m[1]) }))
      .sort((a, b) => b.step - a.step);
  }

  /** Delete all but the newest `keep` checkpoints. */
  pruneCheckpoints(keep: number): void {
    for (const c of this.listCheckpoints().slice(keep)) rmSync(c.path, { force: true });
  }
}
