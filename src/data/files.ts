// Reading data-set files with errors that name the file: a missing file, a folder
// where a file was expected, a damaged gzip stream.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError } from './errors.js';

/** The bytes of a file; gzip-compressed content (by its magic bytes) is decompressed. */
export function readMaybeGzip(file: string): Uint8Array {
  const bytes = readBytes(file);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return plain(gunzipSync(bytes));
    } catch (e) {
      throw new DataError(file, `the gzip data is truncated or damaged (${errorText(e)}); download the file again`);
    }
  }
  return bytes;
}

export function readBytes(file: string): Uint8Array {
  try {
    return plain(readFileSync(file));
  } catch (e) {
    throw new DataError(file, fileErrorText(e));
  }
}

/** The folder must exist; the error says what the folder should hold. */
export function requireDirectory(dir: string, holds: string): void {
  if (!existsSync(dir)) throw new DataError(dir, `no such folder; expected ${holds}`);
  if (!statSync(dir).isDirectory()) throw new DataError(dir, `not a folder; expected a folder holding ${holds}`);
}

/** A Node Buffer seen as a plain Uint8Array (same memory). */
function plain(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function fileErrorText(e: unknown): string {
  const code = e instanceof Error && 'code' in e ? String(e.code) : '';
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a folder, expected a file';
  if (code === 'EACCES') return 'permission denied';
  return `cannot read (${errorText(e)})`;
}

export function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}
