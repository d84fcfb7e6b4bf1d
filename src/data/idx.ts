// MNIST / Fashion-MNIST in the IDX format (LeCun, http://yann.lecun.com/exdb/mnist/):
// two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, the
// dimensions as big-endian uint32, then the values row-major. Files may be gzipped.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InMemoryDataset } from './dataset.js';
import { DataError } from './errors.js';
import { gunzipAtMost, gunzipHead, isGzip, readBytes, requireDirectory } from './files.js';

export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

const UNSIGNED_BYTE = 0x08;

/** 60000x28x28; a damaged header may claim up to 255 dimensions, shown cut short. */
function shapeText(dims: readonly number[]): string {
  return dims.length <= 4 ? dims.join('x') : `${dims.slice(0, 4).join('x')}x... (${dims.length} dimensions)`;
}

/** The largest header: 255 dimensions. */
const MAX_HEADER_BYTES = 4 + 4 * 255;

/**
 * The most values an IDX file may declare: its data are held in one typed array, copied
 * once. MNIST's 60000x28x28 is 47 MB; EMNIST's largest split under 700 MB.
 */
export const MAX_IDX_VALUES = 2 ** 31;

interface IdxHeader {
  dims: number[];
  /** Bytes before the values. */
  headerSize: number;
  /** Values the header declares. */
  size: number;
}

/** The header at the start of `bytes` (which may hold only part of the file). */
function parseIdxHeader(bytes: Uint8Array, file: string): IdxHeader {
  if (bytes.length < 4) throw new DataError(file, `${bytes.length} bytes is too short for an IDX header; the file is truncated`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataError(file, 'not an IDX file: it must start with two zero bytes (MNIST/Fashion-MNIST *-ubyte format)');
  }
  if (bytes[2] !== UNSIGNED_BYTE) {
    throw new DataError(file, `IDX type byte 0x${bytes[2]!.toString(16).padStart(2, '0')} is not supported: expected 0x08 (unsigned byte)`);
  }
  const ndim = bytes[3]!;
  const headerSize = 4 + 4 * ndim;
  if (ndim === 0 || bytes.length < headerSize) {
    throw new DataError(file, `IDX header with ${ndim} dimensions does not fit in ${bytes.length} bytes; the file is truncated or damaged`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  return { dims, headerSize, size: dims.reduce((a, b) => a * b, 1) };
}

function declared(h: IdxHeader): string {
  return `${shapeText(h.dims)} = ${h.size} values`;
}

/** Parse an IDX file of unsigned bytes; `file` names it in errors. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const header = parseIdxHeader(bytes, file);
  const { dims, headerSize, size } = header;
  const body = bytes.length - headerSize;
  if (body !== size) {
    const what = body < size ? 'truncated' : 'longer than its header says';
    throw new DataError(file, `the file is ${what}: its header says ${declared(header)}, ` +
      `the file holds ${body}; download it again`);
  }
  return { dims, data: bytes.subarray(headerSize) };
}

/**
 * An IDX file, raw or gzipped. A gzipped one is inflated only as far as its header
 * declares: the header is read first, then at most header + declared bytes, so a file
 * that inflates to gigabytes of zeros behind a small header costs no more than that.
 */
export function readIdxFile(file: string): IdxArray {
  const bytes = readBytes(file);
  if (!isGzip(bytes)) return parseIdx(bytes, file);
  const header = parseIdxHeader(gunzipHead(bytes, file, MAX_HEADER_BYTES), file);
  if (header.size > MAX_IDX_VALUES) {
    throw new DataError(file, `its header declares ${declared(header)}, more than the 2 GiB an IDX data set may hold in memory; ` +
      'the header is damaged, or the data set is too large to train from memory');
  }
  const inflated = gunzipAtMost(bytes, file, header.headerSize + header.size,
    `the file inflates to more than its header declares (${declared(header)}); it is damaged or not an IDX file: download it again`);
  return parseIdx(inflated, file);
}

/** Images [N, H, W] and labels [N] from two IDX files, as a one-channel data set. */
export function readIdxPair(imagesFile: string, labelsFile: string, name: string,
  classNames: readonly string[]): InMemoryDataset {
  const images = readIdxFile(imagesFile);
  if (images.dims.length !== 3) {
    throw new DataError(imagesFile, `expected an IDX image file with 3 dimensions [count, height, width], got ${images.dims.length} (${shapeText(images.dims)})`);
  }
  const labels = readIdxFile(labelsFile);
  if (labels.dims.length !== 1) {
    throw new DataError(labelsFile, `expected an IDX label file with 1 dimension [count], got ${labels.dims.length} (${shapeText(labels.dims)})`);
  }
  const [n, h, w] = images.dims as [number, number, number];
  if (n === 0 || h === 0 || w === 0) {
    throw new DataError(imagesFile, `holds no images: its header says ${n} images of ${h}x${w} pixels; the file is damaged or empty`);
  }
  if (labels.dims[0] !== n) {
    throw new DataError(labelsFile, `holds ${labels.dims[0]} labels but ${imagesFile} holds ${n} images; the two files must belong together`);
  }
  const labelArray = Int32Array.from(labels.data);
  // Labels are checked here rather than in the data set so the error names the labels file.
  for (let i = 0; i < n; i++) {
    if (labelArray[i]! >= classNames.length) {
      throw new DataError(labelsFile, `label ${labelArray[i]} of item ${i} is out of range: expected 0..${classNames.length - 1} ` +
        `(${classNames.length} classes); the labels file is damaged or belongs to another data set`);
    }
  }
  return new InMemoryDataset(name, images.data.slice(), labelArray, h, w, 1, classNames);
}

export type IdxSplit = 'train' | 't10k';

/**
 * The file of `kind` for `split` in `dir`, trying the names the data sets ship under:
 * `train-images-idx3-ubyte.gz`, without `.gz`, and `train-images.idx3-ubyte`.
 */
export function findIdxFile(dir: string, split: IdxSplit, kind: 'images' | 'labels'): string {
  const rank = kind === 'images' ? 3 : 1;
  const bases = [`${split}-${kind}-idx${rank}-ubyte`, `${split}-${kind}.idx${rank}-ubyte`];
  const candidates = bases.flatMap((b) => [`${b}.gz`, b]);
  for (const c of candidates) {
    const p = join(dir, c);
    if (existsSync(p)) return p;
  }
  throw new DataError(dir, `no ${split === 'train' ? 'training' : 'test'} ${kind} file: expected ${candidates[0]} (or ${candidates[1]})`);
}

/** MNIST-layout folder: train-* and t10k-* images and labels. */
export function readIdxFolder(dir: string, setName: string, split: IdxSplit, classNames: readonly string[]): InMemoryDataset {
  requireDirectory(dir, `the ${setName} IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-...)`);
  return readIdxPair(findIdxFile(dir, split, 'images'), findIdxFile(dir, split, 'labels'),
    `${setName}/${split === 'train' ? 'train' : 'test'}`, classNames);
}
