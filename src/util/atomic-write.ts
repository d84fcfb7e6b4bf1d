// Atomic file replacement: write a temporary file in the target's directory, flush it
// to disk, rename it over the target, then flush the directory entry. Readers see the
// old file or the complete new one (rename is atomic within a POSIX file system).
// Every file the library writes whole (weights, checkpoints, JSON records, reports,
// images) goes through here.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A file could not be written: the message names it and says why, on one line. */
export class FileWriteError extends Error {
  override readonly name = 'FileWriteError';

  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

let counter = 0;

/** Replace `path` with `data` (text is written as UTF-8), atomically; a FileWriteError says why it could not. */
export function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  const parts = typeof data === 'string' ? [new TextEncoder().encode(data)] : data instanceof Uint8Array ? [data] : data;
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${counter++}.tmp`);
  let fd: number | null = null;
  try {
    fd = openSync(temp, 'wx');
    for (const part of parts) {
      let done = 0;
      while (done < part.byteLength) done += writeSync(fd, part, done, part.byteLength - done);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(temp, path);
  } catch (e) {
    try {
      if (fd !== null) closeSync(fd);
      rmSync(temp, { force: true });
    } catch {
      // Nothing was created, or it cannot be removed either; the first error is the one to report.
    }
    throw new FileWriteError(path, `cannot write: ${outputProblem(path) ?? (e instanceof Error ? e.message : String(e))}`);
  }
  syncDirectory(dirname(path));
}

/** Give a finished, flushed file `temp` its name `path` (atomically, in the same folder); a FileWriteError says why it could not. */
export function commitFile(temp: string, path: string): void {
  try {
    renameSync(temp, path);
  } catch (e) {
    throw new FileWriteError(path, `cannot rename ${temp} to it: ${e instanceof Error ? e.message : String(e)}`);
  }
  syncDirectory(dirname(path));
}

/**
 * Why a file cannot be written at `path` (its folder is missing or is a file, or `path`
 * is a folder); null when nothing stands in the way. Commands ask before their work.
 */
export function outputProblem(path: string): string | null {
  const dir = dirname(path);
  let info;
  try {
    info = statSync(dir);
  } catch (e) {
    const code = e instanceof Error && 'code' in e ? String(e.code) : '';
    if (code === 'ENOENT') return `the folder ${dir} does not exist`;
    if (code === 'ENOTDIR') return `${dir} is not a folder (a part of the path is a file)`;
    return `cannot reach the folder ${dir} (${e instanceof Error ? e.message : String(e)})`;
  }
  if (!info.isDirectory()) return `${dir} is a file, not a folder`;
  try {
    if (statSync(path).isDirectory()) return 'is a folder; give a file name';
  } catch {
    // No such file yet: it is created.
  }
  return null;
}

/** Persist the rename itself; not every platform can fsync a directory (Windows). */
function syncDirectory(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort: the data itself is already on disk.
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
