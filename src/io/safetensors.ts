// safetensors (https://github.com/huggingface/safetensors, format section of its
// README): an 8-byte little-endian header length N, N bytes of JSON mapping each tensor
// name to {dtype, shape, data_offsets: [begin, end]} (plus an optional `__metadata__`
// string -> string map), then the raw little-endian data; offsets count from the first
// data byte and must cover the data exactly, without gaps or overlaps.
//
// Files are hostile until proven otherwise: the header length, every offset and every
// shape are checked against the file size before anything is allocated for them, so a
// lying header costs an error message, never memory.
import { closeSync } from 'node:fs';
import type { StateDict } from '../nn/module.js';
import { formatShape, Tensor } from '../tensor/tensor.js';
import { decodeToFloat32, DTYPE_BYTES, isStoredDtype, type StoredDtype } from './dtypes.js';
import { WeightsFileError } from './errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { EMPTY_FILE, openWeightsFile, readAt } from './files.js';

/** What a safetensors file holds: its tensors (as float32) and its metadata map. */
export interface SafetensorsContents {
  tensors: StateDict;
  metadata: Record<string, string>;
}

/** The reference implementation's limit on the JSON header (safetensors MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

interface TensorEntry {
  name: string;
  dtype: StoredDtype;
  shape: number[];
  begin: number;
  end: number;
}

interface Layout {
  /** Absolute position of the first data byte (8 + header length). */
  dataStart: number;
  entries: TensorEntry[];
  metadata: Record<string, string>;
}

/** Reads `length` bytes at absolute `position`; both already checked against the size. */
type ReadBytes = (position: number, length: number) => Uint8Array;

// ------------------------------------------------------------------ reading

/** Read a safetensors file into a state dict (every tensor as float32). */
export function loadSafetensors(path: string): StateDict {
  return readSafetensors(path).tensors;
}

/** Read a safetensors file: tensors and the `__metadata__` map. */
export function readSafetensors(path: string): SafetensorsContents {
  const { fd, size } = openWeightsFile(path);
  try {
    const read: ReadBytes = (position, length) => readAt(fd, path, position, length);
    return decode(read, size, path);
  } finally {
    closeSync(fd);
  }
}

/** Parse safetensors bytes held in memory. `source` names them in error messages. */
export function parseSafetensors(bytes: Uint8Array, source = '<safetensors bytes>'): SafetensorsContents {
  const read: ReadBytes = (position, length) => bytes.subarray(position, position + length);
  return decode(read, bytes.byteLength, source);
}

function decode(read: ReadBytes, size: number, file: string): SafetensorsContents {
  const layout = readLayout(read, size, file);
  const entries = layout.entries.map((e): [string, Tensor] => {
    const count = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
    const bytes = read(layout.dataStart + e.begin, e.end - e.begin);
    return [e.name, new Tensor(decodeToFloat32(bytes, e.dtype, count), e.shape)];
  });
  // fromEntries defines own properties, so a tensor named "__proto__" stays a tensor.
  return { tensors: Object.fromEntries(entries), metadata: layout.metadata };
}

function readLayout(read: ReadBytes, size: number, file: string): Layout {
  const bad = (problem: string): WeightsFileError => new WeightsFileError(file, `not a valid safetensors file: ${problem}`);
  if (size === 0) throw new WeightsFileError(file, EMPTY_FILE);
  if (size < 8) throw bad(`${size} bytes is too short (the format starts with an 8-byte header length)`);
  const lengthBytes = read(0, 8);
  const declared = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(size - 8)) {
    throw bad(`the header length (${declared} bytes) runs past the end of the file (${size} bytes)`);
  }
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES) throw bad(`the header length (${headerLength} bytes) exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLength < 2) throw bad(`the header length is ${headerLength} bytes; a JSON object needs at least 2`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(read(8, headerLength));
  } catch {
    throw bad('the header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw bad('the header does not start with "{" (expected a JSON object)');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw bad(`the header is not valid JSON (${errorText(e)})`);
  }
  if (!isPlainObject(header)) throw bad('the header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataLength = size - dataStart;
  let metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = readMetadata(value, bad);
      continue;
    }
    entries.push(readEntry(name, value, dataLength, bad));
  }

  // The data must be covered exactly once: sorted by offset, each tensor starts where
  // the previous one ended and the last ends at the end of the file.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous = '';
  for (const e of sorted) {
    if (e.begin < expected) throw bad(`tensor "${e.name}" (bytes ${e.begin}-${e.end}) overlaps tensor "${previous}" (ends at ${expected})`);
    if (e.begin > expected) throw bad(`${e.begin - expected} bytes of data before tensor "${e.name}" (offset ${e.begin}) belong to no tensor`);
    expected = e.end;
    previous = e.name;
  }
  if (expected !== dataLength) {
    throw bad(`the tensors cover ${expected} data bytes but the file holds ${dataLength} after the header`);
  }
  return { dataStart, entries, metadata };
}

function readMetadata(value: unknown, bad: (p: string) => WeightsFileError): Record<string, string> {
  if (!isPlainObject(value)) throw bad(`"${METADATA_KEY}" must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw bad(`"${METADATA_KEY}" entry "${k}" is not a string`);
    out[k] = v;
  }
  return out;
}

function readEntry(name: string, value: unknown, dataLength: number, bad: (p: string) => WeightsFileError): TensorEntry {
  if (!isPlainObject(value)) throw bad(`tensor "${name}" is not described by a JSON object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw bad(`tensor "${name}" has no dtype string`);
  if (!isStoredDtype(dtype)) {
    throw bad(`tensor "${name}" has dtype ${JSON.stringify(dtype)}, which this reader does not support (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`tensor "${name}" has an invalid shape (expected an array of non-negative integers)`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw bad(`tensor "${name}" has invalid data_offsets (expected [begin, end] as non-negative integers)`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`tensor "${name}" has data_offsets [${begin}, ${end}] that end before they begin`);
  if (end > dataLength) {
    throw bad(`tensor "${name}" has data_offsets [${begin}, ${end}] past the end of the data (${dataLength} bytes; truncated file?)`);
  }
  const dims = shape as number[];
  const span = end - begin;
  // Multiply with an early exit so a huge shape is rejected, never allocated.
  const itemBytes = DTYPE_BYTES[dtype];
  let bytes = dims.includes(0) ? 0 : itemBytes;
  for (const d of dims) {
    bytes *= d;
    if (bytes > span) break;
  }
  if (bytes !== span) {
    throw bad(`tensor "${name}" has shape ${formatShape(dims)} of ${dtype}, which does not fit its data_offsets [${begin}, ${end}] (${span} bytes)`);
  }
  return { name, dtype, shape: dims, begin, end };
}

// ------------------------------------------------------------------ writing

/** PyTorch keeps BatchNorm's batch counter as int64; so do files we write. */
function isCounter(name: string): boolean {
  return name === 'num_batches_tracked' || name.endsWith('.num_batches_tracked');
}

/** The bytes of a safetensors file: header, then each tensor's data, in order. */
function encodeParts(stateDict: StateDict, metadata: Record<string, string> | undefined): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata "${k}" must be a string, got ${typeof v} (JSON.stringify it first)`);
    }
    if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(stateDict)) {
    if (name === METADATA_KEY || name === '') throw new Error(`safetensors: a tensor cannot be named ${JSON.stringify(name)}`);
    if (!(t instanceof Tensor)) throw new Error(`safetensors: state dict entry "${name}" is not a Tensor`);
    const data = isCounter(name) ? encodeInt64(t.data) : encodeFloat32(t.data);
    header[name] = { dtype: isCounter(name) ? 'I64' : 'F32', shape: [...t.shape], data_offsets: [offset, offset + data.byteLength] };
    chunks.push(data);
    offset += data.byteLength;
  }
  // Pad the JSON with spaces so the data starts 8-byte aligned, as the reference writer does.
  let json = JSON.stringify(header);
  const jsonBytes = new TextEncoder().encode(json);
  const padded = jsonBytes.byteLength + ((8 - (jsonBytes.byteLength % 8)) % 8);
  json += ' '.repeat(padded - jsonBytes.byteLength);
  const head = new Uint8Array(8 + padded);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(new TextEncoder().encode(json), 8);
  return [head, ...chunks];
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function encodeFloat32(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  data.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return out;
}

function encodeInt64(data: Float32Array): Uint8Array {
  const out = new Uint8Array(data.length * 8);
  const view = new DataView(out.buffer);
  data.forEach((v, i) => view.setBigInt64(8 * i, BigInt(Math.round(v)), true));
  return out;
}

/**
 * A safetensors file as bytes: float32 tensors (int64 for `num_batches_tracked`) in the
 * state dict's order, and `metadata` (string -> string) in `__metadata__`.
 */
export function serializeSafetensors(stateDict: StateDict, metadata?: Record<string, string>): Uint8Array {
  const parts = encodeParts(stateDict, metadata);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Write a state dict as a safetensors file, atomically: the bytes go to a temporary
 * file beside `path`, are flushed to disk, then renamed over `path`, so a crash leaves
 * the old file or the new one, never half of one.
 */
export function saveSafetensors(path: string, stateDict: StateDict, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeParts(stateDict, metadata));
}

// ------------------------------------------------------------------ helpers

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
