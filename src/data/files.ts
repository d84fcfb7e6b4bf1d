// Reading data-set files with errors that name the file: a missing file, a folder
// where a file was expected, a damaged gzip stream, a gzip stream that inflates to more
// than the file's own header declares (a decompression bomb).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { constants, gunzipSync } from 'node:zlib';
import { DataError } from './errors.js';

/** Whether `bytes` start with the gzip magic bytes. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzipError(file: string, e: unknown): DataError {
  return new DataError(file, `the gzip data is truncated or damaged (${errorText(e)}); download the file again`);
}

/**
 * The first `count` inflated bytes of a gzip file (fewer if it holds fewer), for reading
 * its header: inflates a growing prefix of the compressed bytes, so at most about a
 * thousand times that prefix (deflate's largest ratio) is ever held.
 */
export function gunzipHead(gz: Uint8Array, file: string, count: number): Uint8Array {
  for (let prefix = 1024; ; prefix *= 4) {
    let out: Buffer;
    try {
      // A sync flush inflates what the prefix holds instead of failing at its cut end.
      out = gunzipSync(gz.subarray(0, prefix), { finishFlush: constants.Z_SYNC_FLUSH });
    } catch (e) {
      throw gunzipError(file, e);
    }
    if (out.length >= count || prefix >= gz.length) return plain(out).subarray(0, Math.min(count, out.length));
  }
}

/**
 * A gzip file inflated, stopping once more than `limit` bytes come out: a file whose
 * header declares `limit` bytes is never inflated beyond that (plus zlib's 16 KiB chunk).
 * `tooLong` says what is wrong when more data follows.
 */
export function gunzipAtMost(gz: Uint8Array, file: string, limit: number, tooLong: string): Uint8Array {
  try {
    return plain(gunzipSync(gz, { maxOutputLength: Math.max(1, limit) }));
  } catch (e) {
    if (e instanceof RangeError && 'code' in e && e.code === 'ERR_BUFFER_TOO_LARGE') throw new DataError(file, tooLong);
    throw gunzipError(file, e);
  }
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
