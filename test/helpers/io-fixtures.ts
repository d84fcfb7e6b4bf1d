// The weight-file fixtures written by scripts/make_io_fixtures.py (test/fixtures/io).
// Large ones are committed brotli-compressed and unpacked here into a temporary folder.
import { AssertionError } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import { Fixture } from './fixtures.js';

/** test/fixtures/io, found from dist/test/helpers or test/helpers. */
const IO_FIXTURES = new URL('../../../test/fixtures/io/', import.meta.url);

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export function ioFixturePath(name: string): string {
  return fileURLToPath(new URL(name, IO_FIXTURES));
}

export function ioFixtureBytes(name: string): Uint8Array {
  try {
    return readFileSync(ioFixturePath(name));
  } catch {
    throw new Error(`fixture io/${name} is missing: run /usr/bin/python3 scripts/make_io_fixtures.py (needs PyTorch) and commit the result`);
  }
}

export function loadIoFixture(name: string): Fixture {
  return new Fixture(`io/${name}`, JSON.parse(new TextDecoder().decode(ioFixtureBytes(`${name}.json`))));
}

const madeDirs: string[] = [];
process.on('exit', () => {
  for (const dir of madeDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `resnet-ts-${prefix}-`));
  madeDirs.push(dir);
  return dir;
}

let unpackDir: string | null = null;
const unpacked = new Map<string, string>();

/** Decompress `<name>.br` (once per process) into a temporary folder; the path of `<name>`. */
export function unpackedFixture(name: string): string {
  const known = unpacked.get(name);
  if (known) return known;
  unpackDir ??= tempDir('io');
  const path = join(unpackDir, name);
  writeFileSync(path, unpackedBytes(name));
  unpacked.set(name, path);
  return path;
}

/** The decompressed bytes of `<name>.br`. */
export function unpackedBytes(name: string): Uint8Array {
  return brotliDecompressSync(ioFixtureBytes(`${name}.br`));
}


/** The logits input of make_io_fixtures.py, NCHW: ((31n + 17c + 7h + 3w) mod 23 - 11) / 11. */
export function logitsInputNchw(n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(n * c * h * w);
  let i = 0;
  for (let a = 0; a < n; a++) for (let b = 0; b < c; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[i++] = (((31 * a + 17 * b + 7 * y + 3 * x) % 23) - 11) / 11;
  }
  return out;
}

/** NCHW values -> NHWC values. */
export function nchwToNhwc(src: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let a = 0; a < n; a++) for (let b = 0; b < c; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[((a * h + y) * w + x) * c + b] = src[((a * c + b) * h + y) * w + x]!;
  }
  return out;
}

export interface ExactTensors {
  metadata: Record<string, string>;
  tensors: Record<string, { shape: number[]; values: Float32Array }>;
}

/** An expected-values file of make_io_fixtures.py: float32 bit patterns, compared exactly. */
export function loadExactTensors(name: string): ExactTensors {
  const json: { metadata: Record<string, string>; tensors: Record<string, { shape: number[]; f32le: string }> } =
    JSON.parse(new TextDecoder().decode(ioFixtureBytes(`${name}.json`)));
  const tensors: ExactTensors['tensors'] = {};
  for (const [k, v] of Object.entries(json.tensors)) {
    const bytes = Uint8Array.from(Buffer.from(v.f32le, 'hex'));
    tensors[k] = { shape: v.shape, values: new Float32Array(bytes.buffer) };
  }
  return { metadata: json.metadata, tensors };
}

/** Assert two float32 arrays hold the same bit patterns (fast on 25M values). */
export function assertSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(e)) return;
  let i = 0;
  while (i < Math.min(actual.length, expected.length) && Object.is(actual[i], expected[i])) i++;
  throw new AssertionError({ message: `${what}: ${actual.length} values vs ${expected.length}; first difference at ${i}: ${actual[i]} vs ${expected[i]}` });
}
