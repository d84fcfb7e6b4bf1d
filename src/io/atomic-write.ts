// Atomic file replacement: write a temporary file in the target's directory, flush it
// to disk, rename it over the target, then flush the directory entry. Readers see the
// old file or the complete new one (rename is atomic within a POSIX file system).
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { WeightsFileError } from './errors.js';

let counter = 0;

export function writeFileAtomic(path: string, parts: readonly Uint8Array[]): void {
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
    if (fd !== null) closeSync(fd);
    rmSync(temp, { force: true });
    throw new WeightsFileError(path, `cannot write: ${e instanceof Error ? e.message : String(e)}`);
  }
  syncDirectory(dirname(path));
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
