// PyTorch .pth / .pt state dicts as torch.save writes them since PyTorch 1.6 (the
// format of torchvision's published weights): a zip archive holding `<folder>/data.pkl`
// (the pickled dict, read by the restricted unpickler in pickle.ts), one entry
// `<folder>/data/<key>` of raw little-endian bytes per storage, and `<folder>/byteorder`
// on newer versions. Tensors are strided views (offset, size, stride) of storages.
//
// The zip container is read by fflate. Every size it reports is checked against the
// file's length before fflate allocates for it, the entries must together fit in the
// file, and the number of directory entries is capped by what the file can hold, so
// a hostile archive cannot make us allocate more than the file size or loop for long.
// Every entry is checked against the CRC-32 the archive records for it, so a
// changed byte is an error naming the entry instead of a different weight.
import { closeSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { unzipSync, type UnzipFileInfo } from 'fflate';
import type { StateDict } from '../nn/module.js';
import { formatShape, Tensor } from '../tensor/tensor.js';
import { decodeToFloat32, DTYPE_BYTES } from './dtypes.js';
import { WeightsFileError } from './errors.js';
import { EMPTY_FILE, openWeightsFile, readAt } from './files.js';
import { PickleError, STORAGE_DTYPES, unpickle, type PyValue, type TensorRef } from './pickle.js';

/** Keys under which training checkpoints commonly nest the model's state dict. */
const NESTED_STATE_DICT_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'state_dict_ema'];

/** Smallest central-directory record of a zip file (APPNOTE 4.3.12). */
const CENTRAL_RECORD_BYTES = 46;

/** Read a PyTorch state dict saved with torch.save (zip format) into float32 tensors. */
export function loadPth(path: string): StateDict {
  const { fd, size } = openWeightsFile(path);
  let bytes: Uint8Array;
  try {
    bytes = readAt(fd, path, 0, size);
  } finally {
    closeSync(fd);
  }
  return parsePth(bytes, path);
}

/** Parse the bytes of a torch.save archive. `source` names them in error messages. */
export function parsePth(bytes: Uint8Array, source = '<pth bytes>'): StateDict {
  const bad = (problem: string): WeightsFileError => new WeightsFileError(source, problem);
  checkMagic(bytes, bad);
  const files = readArchive(bytes, bad);

  const pickles = Object.keys(files).filter((name) => name.endsWith('/data.pkl'));
  if (pickles.length !== 1) {
    throw bad(pickles.length === 0
      ? 'the archive has no <folder>/data.pkl entry; it was not written by torch.save'
      : `the archive has ${pickles.length} data.pkl entries (${pickles.join(', ')}); expected one`);
  }
  const folder = pickles[0]!.slice(0, -'/data.pkl'.length);
  const byteorder = files[`${folder}/byteorder`];
  if (byteorder && new TextDecoder().decode(byteorder).trim() !== 'little') {
    throw bad('the archive was saved on a big-endian machine; load and re-save it on a little-endian one');
  }

  let root: PyValue;
  try {
    root = unpickle(files[pickles[0]!]!);
  } catch (e) {
    if (e instanceof PickleError) throw bad(e.message);
    throw e;
  }
  const refs = findTensorDict(root, bad);
  const entries = [...refs].map(([name, ref]): [string, Tensor] => {
    const data = files[`${folder}/data/${ref.storage.key}`];
    if (!data) throw bad(`tensor "${name}" uses storage "${ref.storage.key}", which is missing from the archive`);
    return [name, materialise(name, ref, data, bad)];
  });
  // fromEntries defines own properties, so a tensor named "__proto__" stays a tensor.
  return Object.fromEntries(entries);
}

/** A zip archive starts with a local file header, "PK\x03\x04". */
export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/** torch.save before 1.6 starts with a pickled LONG1 magic number: PROTO n, LONG1 of 10 bytes. */
export function isLegacyTorchSave(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5 && head[2] === 0x8a && head[3] === 0x0a;
}

function checkMagic(bytes: Uint8Array, bad: (p: string) => WeightsFileError): void {
  if (isZip(bytes)) return;
  if (isLegacyTorchSave(bytes)) {
    throw bad('this is the legacy (PyTorch < 1.6) pickle format, which is not supported; ' +
      'load it in PyTorch and save it again with torch.save(state_dict, path) or as safetensors');
  }
  if (bytes.length === 0) throw bad(EMPTY_FILE);
  if (bytes.length < 22) throw bad(`${bytes.length} bytes is too short for the zip archive torch.save writes (truncated?)`);
  throw bad('not a PyTorch .pth file (expected the zip archive torch.save writes)');
}

/**
 * The archive entries a state dict needs: data.pkl, byteorder and data/<key>. Every
 * entry is extracted and checked against its CRC-32, the others too (torch.save's
 * `version` and such are a few bytes), as Python's zipfile.testzip does.
 */
function readArchive(bytes: Uint8Array, bad: (p: string) => WeightsFileError): Record<string, Uint8Array> {
  const maxEntries = Math.floor(bytes.length / CENTRAL_RECORD_BYTES);
  let listed = 0;
  // Directory records may all point at the same data; what they claim in total must
  // still fit the file, or one small file could make us allocate gigabytes.
  let claimed = 0;
  const wanted = (f: UnzipFileInfo): boolean => {
    if (++listed > maxEntries) throw bad('not a valid zip archive (its directory lists more entries than the file can hold)');
    if (f.compression !== 0 && f.compression !== 8) throw bad(`zip entry ${f.name} uses compression method ${f.compression}; torch.save stores entries uncompressed`);
    if (f.originalSize > bytes.length || f.size > bytes.length) {
      throw bad(`zip entry ${f.name} claims ${f.originalSize} bytes, more than the whole file (${bytes.length} bytes)`);
    }
    if (f.compression === 0 && f.size !== f.originalSize) throw bad(`zip entry ${f.name} is stored but its sizes disagree (${f.size} vs ${f.originalSize})`);
    claimed += f.originalSize;
    if (claimed > bytes.length) {
      throw bad(`the archive's entries claim ${claimed} bytes or more, more than the whole file (${bytes.length} bytes)`);
    }
    return true;
  };
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, { filter: wanted });
  } catch (e) {
    if (e instanceof WeightsFileError) throw e;
    throw bad(`not a valid zip archive (${e instanceof Error ? e.message : String(e)})`);
  }
  checkCrcs(bytes, files, bad);
  return Object.fromEntries(Object.entries(files).filter(([name]) => {
    const parts = name.split('/');
    return (parts.length === 2 && (parts[1] === 'data.pkl' || parts[1] === 'byteorder')) || (parts.length === 3 && parts[1] === 'data');
  }));
}

/**
 * Compare each extracted entry with the CRC-32 its central-directory record holds
 * (APPNOTE 4.3.12). The records are walked as fflate walked them to extract the
 * entries, which already succeeded; an entry named twice must match its last record.
 */
function checkCrcs(bytes: Uint8Array, files: Record<string, Uint8Array>, bad: (p: string) => WeightsFileError): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number): number => view.getUint16(at, true);
  const u32 = (at: number): number => view.getUint32(at, true);
  let end = bytes.length - 22;
  while (end > 0 && u32(end) !== 0x06054b50) end--;
  let count = u16(end + 8);
  let at = u32(end + 16);
  if (end >= 20 && u32(end - 20) === 0x07064b50) {
    const zip64 = u32(end - 12);
    if (zip64 + 56 <= bytes.length && u32(zip64) === 0x06064b50) {
      count = u32(zip64 + 32);
      at = u32(zip64 + 48);
    }
  }
  const stored = new Map<string, number>();
  for (let i = 0; i < count && at + 46 <= bytes.length; i++) {
    const nameLength = u16(at + 28);
    const flags = u16(at + 8);
    // As fflate decodes names: UTF-8 when bit 11 is set, else Latin-1 (names in torch.save archives are ASCII).
    const name = new TextDecoder(flags & 0x800 ? 'utf-8' : 'latin1').decode(bytes.subarray(at + 46, at + 46 + nameLength));
    stored.set(name, u32(at + 16));
    at += 46 + nameLength + u16(at + 30) + u16(at + 32);
  }
  for (const [name, data] of Object.entries(files)) {
    const expected = stored.get(name);
    const actual = crc32(data);
    if (expected !== actual) {
      throw bad(`zip entry ${name} is damaged: its CRC-32 is ${hex(actual)} but the archive records ${expected === undefined ? 'none' : hex(expected)} ` +
        '(a changed byte); download or copy the file again');
    }
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** zlib.crc32 (Node 20.15 and later), or the same CRC-32 (IEEE 802.3, reflected) computed here. */
const crc32: (data: Uint8Array) => number = typeof zlib.crc32 === 'function' ? (d) => zlib.crc32(d) : crc32Table;

let table: Uint32Array | null = null;

export function crc32Table(data: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function findTensorDict(root: PyValue, bad: (p: string) => WeightsFileError): Map<string, TensorRef> {
  const direct = asTensorDict(root);
  if (direct) return direct;
  if (root !== null && typeof root === 'object' && root.kind === 'dict') {
    for (const key of NESTED_STATE_DICT_KEYS) {
      const nested = asTensorDict(root.entries.get(key) ?? null);
      if (nested) return nested;
    }
    const keys = [...root.entries.keys()].slice(0, 8).map(String).join(', ');
    throw bad(`the pickled dict is not a state dict (not every entry is a tensor; keys: ${keys}) and holds none under ` +
      `${NESTED_STATE_DICT_KEYS.join('/')}; save model.state_dict() instead`);
  }
  throw bad('the pickle does not hold a dict of tensors; save model.state_dict() instead');
}

function asTensorDict(v: PyValue): Map<string, TensorRef> | null {
  if (v === null || typeof v !== 'object' || v.kind !== 'dict') return null;
  const out = new Map<string, TensorRef>();
  for (const [k, t] of v.entries) {
    if (typeof k !== 'string' || t === null || typeof t !== 'object' || t.kind !== 'tensor') return null;
    out.set(k, t);
  }
  return out;
}

/** The values of a strided view of a storage (torch.as_strided), as a dense float32 tensor. */
function materialise(name: string, ref: TensorRef, storageBytes: Uint8Array, bad: (p: string) => WeightsFileError): Tensor {
  const { storage, offset, size, stride } = ref;
  const dtype = STORAGE_DTYPES[storage.storageType as keyof typeof STORAGE_DTYPES];
  const item = DTYPE_BYTES[dtype];
  if (storageBytes.length !== storage.numel * item) {
    throw bad(`storage "${storage.key}" holds ${storageBytes.length} bytes but the pickle says ${storage.numel} elements of ${item} bytes`);
  }
  // A dense copy of a view has numel elements; a view of a storage in the file never
  // needs more than the storage holds (checked before allocating).
  let numel = 1;
  for (const d of size) {
    numel *= d;
    if (numel > storage.numel) break;
  }
  if (size.includes(0)) numel = 0;
  if (numel > storage.numel) throw bad(`tensor "${name}" of shape ${formatShape(size)} is larger than its storage (${storage.numel} elements)`);
  if (numel === 0) return new Tensor(new Float32Array(0), size);
  let last = offset;
  for (let i = 0; i < size.length; i++) last += (size[i]! - 1) * stride[i]!;
  if (last >= storage.numel) throw bad(`tensor "${name}" (offset ${offset}, shape ${formatShape(size)}, stride ${formatShape(stride)}) reaches past its storage of ${storage.numel} elements`);

  const span = decodeToFloat32(storageBytes.subarray(offset * item, (last + 1) * item), dtype, last + 1 - offset);
  if (isContiguous(size, stride)) return new Tensor(span, size);
  return new Tensor(gather(span, size, stride, numel), size);
}

function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expected) return false;
    expected *= size[i]!;
  }
  return true;
}

/** Row-major walk over a strided view starting at span[0]. */
function gather(span: Float32Array, size: readonly number[], stride: readonly number[], numel: number): Float32Array {
  const out = new Float32Array(numel);
  const index = new Array<number>(size.length).fill(0);
  let src = 0;
  for (let i = 0; i < numel; i++) {
    out[i] = span[src]!;
    for (let d = size.length - 1; d >= 0; d--) {
      index[d]!++;
      src += stride[d]!;
      if (index[d]! < size[d]!) break;
      src -= stride[d]! * size[d]!;
      index[d] = 0;
    }
  }
  return out;
}
