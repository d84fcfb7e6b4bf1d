// Shared pieces of the file-reader fuzz tests: seeded mutations of a valid file, and the
// one check every mutated file must pass (it loads, or it fails with one line of the
// expected error class naming the file, within a time bound).
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/random.js';

export type Outcome = 'loaded' | 'rejected';

export interface Mutant {
  /** What was done, for failure messages: e.g. `flip 3 bytes`, `cut at 17`. */
  what: string;
  bytes: Uint8Array;
}

/** Seeded damage of `valid`: truncations, byte flips (anywhere and in the first `headerSize` bytes), appended bytes, a wrong start. */
export function mutants(valid: Uint8Array, count: number, seed: number, headerSize = 16): Mutant[] {
  const rng = new Rng(seed);
  const out: Mutant[] = [];
  for (let i = 0; i < count; i++) {
    const kind = i % 5;
    if (kind === 0) {
      const at = rng.int(valid.length);
      out.push({ what: `cut at ${at}`, bytes: valid.slice(0, at) });
    } else if (kind === 1 || kind === 2) {
      const bytes = valid.slice();
      const range = kind === 1 ? Math.min(headerSize, valid.length) : valid.length;
      const flips = 1 + rng.int(4);
      const where: number[] = [];
      for (let k = 0; k < flips; k++) {
        const at = rng.int(range);
        bytes[at] = rng.int(256);
        where.push(at);
      }
      out.push({ what: `bytes at ${where.join(',')} replaced`, bytes });
    } else if (kind === 3) {
      const extra = Uint8Array.from({ length: 1 + rng.int(64) }, () => rng.int(256));
      const bytes = new Uint8Array(valid.length + extra.length);
      bytes.set(valid);
      bytes.set(extra, valid.length);
      out.push({ what: `${extra.length} bytes appended`, bytes });
    } else {
      const bytes = valid.slice();
      const n = 1 + rng.int(Math.min(8, valid.length));
      for (let k = 0; k < n; k++) bytes[k] = rng.int(256);
      out.push({ what: `first ${n} bytes replaced`, bytes });
    }
  }
  return out;
}

export interface ErrorCheck {
  /** The class the reader must throw. */
  cls: new (...args: never[]) => Error;
  /** The message must start with one of these (file paths) followed by ': '. */
  names: readonly string[];
  /** Time bound of one read. */
  ms?: number;
  what: string;
}

/** Run a reader on a damaged file: it loads, or throws the expected one-line error naming the file; never anything else, never slowly. */
export async function outcome(read: () => unknown, c: ErrorCheck): Promise<Outcome> {
  const ms = c.ms ?? 5000;
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${c.what}: the reader took over ${ms} ms`)), ms);
  });
  try {
    await Promise.race([Promise.resolve().then(read), hang]);
    return 'loaded';
  } catch (e) {
    if (!(e instanceof c.cls)) {
      throw new assert.AssertionError({
        message: `${c.what}: expected a ${c.cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
      });
    }
    assert.ok(c.names.some((n) => e.message.startsWith(`${n}: `)), `${c.what}: the message does not name the file: ${e.message}`);
    assert.ok(!e.message.includes('\n'), `${c.what}: not one line: ${e.message}`);
    assert.ok(e.message.length < 600, `${c.what}: a message of ${e.message.length} characters`);
    return 'rejected';
  } finally {
    clearTimeout(timer);
    // A synchronous reader cannot be interrupted by the timer; its time is checked here.
    assert.ok(performance.now() - started < ms, `${c.what}: the reader took ${Math.round(performance.now() - started)} ms`);
  }
}

/** Counts of each outcome, so a test can require both to have happened. */
export class Tally {
  loaded = 0;
  rejected = 0;

  add(o: Outcome): void {
    if (o === 'loaded') this.loaded++;
    else this.rejected++;
  }

  get total(): number {
    return this.loaded + this.rejected;
  }
}
