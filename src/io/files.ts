// Opening a weights file to read, with errors that name it: a missing file, a folder
// where a file was expected, a file we may not read.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { WeightsFileError } from './errors.js';

/** An open descriptor of `path` and its size; a folder or an unreadable path is a WeightsFileError. */
export function openWeightsFile(path: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new WeightsFileError(path, openErrorText(e));
  }
  const stat = fstatSync(fd);
  if (stat.isDirectory()) {
    closeSync(fd);
    throw new WeightsFileError(path, 'is a folder, expected a weights file');
  }
  return { fd, size: stat.size };
}

/** `length` bytes of the open file `fd` (named `path`) from byte `position`; the file must still hold them. */
export function readAt(fd: number, path: string, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) throw new WeightsFileError(path, `file ended at byte ${position + done} while reading (was it truncated while being read?)`);
    done += n;
  }
  return out;
}

/** The problem of a 0-byte weights file, whatever its format. */
export const EMPTY_FILE = 'the file is empty (0 bytes): it was truncated, or not completely written or downloaded';

function openErrorText(e: unknown): string {
  const code = e instanceof Error && 'code' in e ? String(e.code) : '';
  if (code === 'ENOENT') return 'cannot open: no such file';
  if (code === 'ENOTDIR') return 'cannot open: no such file (a part of the path is a file, not a folder)';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot open: permission denied';
  return `cannot open: ${e instanceof Error ? e.message : String(e)}`;
}
