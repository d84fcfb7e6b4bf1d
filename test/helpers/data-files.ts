// Writers for small data-set files in the real on-disk formats, for reader tests.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';

const madeDirs: string[] = [];
// Each test file runs in its own process: its folders go when it ends (RESNET_KEEP_TEMP=1 keeps them).
process.on('exit', () => {
  if (process.env.RESNET_KEEP_TEMP === '1') return;
  for (const d of madeDirs) rmSync(d, { recursive: true, force: true });
});

/** A new empty folder under the system's temp folder, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `resnet-ts-${prefix}-`));
  madeDirs.push(dir);
  return dir;
}

/** An IDX file of unsigned bytes (type 0x08) with the given dimensions. */
export function idxBytes(dims: readonly number[], values: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  const view = new DataView(header.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + values.length);
  out.set(header);
  out.set(values, header.length);
  return out;
}

/** Pixel value of pixel p of image i in the synthetic sets: says which image it came from. */
export function syntheticPixel(i: number, p: number): number {
  return (i * 7 + p * 3) & 0xff;
}

export interface SyntheticIdx {
  images: Uint8Array;
  labels: Uint8Array;
}

export function syntheticIdx(n: number, h: number, w: number, numClasses = 10): SyntheticIdx {
  const images = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) images[i * h * w + p] = syntheticPixel(i, p);
  const labels = Uint8Array.from({ length: n }, (_, i) => (i * 3) % numClasses);
  return { images, labels };
}

/** train-* and t10k-* IDX files in `dir`, gzipped or raw. */
export function writeIdxFolder(dir: string, train: number, test: number, h = 6, w = 5, gzip = true): { train: SyntheticIdx; test: SyntheticIdx } {
  mkdirSync(dir, { recursive: true });
  const write = (name: string, bytes: Uint8Array): void => {
    writeFileSync(join(dir, gzip ? `${name}.gz` : name), gzip ? gzipSync(bytes) : bytes);
  };
  const tr = syntheticIdx(train, h, w);
  const te = syntheticIdx(test, h, w);
  write('train-images-idx3-ubyte', idxBytes([train, h, w], tr.images));
  write('train-labels-idx1-ubyte', idxBytes([train], tr.labels));
  write('t10k-images-idx3-ubyte', idxBytes([test, h, w], te.images));
  write('t10k-labels-idx1-ubyte', idxBytes([test], te.labels));
  return { train: tr, test: te };
}

/** CIFAR records: label byte(s) then planar R, G, B 32x32 planes. Pixel (c, p) of record i is syntheticPixel(i, p) ^ c. */
export function cifarRecords(labels: readonly (readonly number[])[]): Uint8Array {
  const record = labels[0]!.length + 3072;
  const out = new Uint8Array(labels.length * record);
  labels.forEach((ls, i) => {
    const r = i * record;
    out.set(ls, r);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < 1024; p++) out[r + ls.length + c * 1024 + p] = syntheticPixel(i, p) ^ (c * 85);
    }
  });
  return out;
}

/** A PNG or JPEG of raw HWC pixels. */
export async function writeImage(file: string, pixels: Uint8Array, h: number, w: number, channels: 1 | 2 | 3 | 4,
  format: 'png' | 'jpeg' = 'png'): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  let img = sharp(Buffer.from(pixels), { raw: { width: w, height: h, channels } });
  // Without this sharp writes a one-channel input as an RGB file.
  if (channels <= 2) img = img.toColourspace('b-w');
  const bytes = format === 'png' ? await img.png().toBuffer() : await img.jpeg({ quality: 100 }).toBuffer();
  writeFileSync(file, bytes);
}

/** An image of one colour. */
export function solid(h: number, w: number, channels: number, value: readonly number[]): Uint8Array {
  const out = new Uint8Array(h * w * channels);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < channels; c++) out[i * channels + c] = value[c % value.length]!;
  return out;
}
