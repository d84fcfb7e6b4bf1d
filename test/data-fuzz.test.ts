// Hostile data-set files: hundreds of damaged IDX, CIFAR binary and PNG/JPEG files, made
// by seeded mutations of valid ones (truncations, replaced bytes, appended bytes, wrong
// magic) and by lies in each header field. Every one must load (and then be consistent)
// or fail with a one-line DataError naming the file, quickly; nothing else may escape.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { DataError, decodeImage, ImageFolderDataset, imageInfo, readCifar, readIdxPair } from '../src/data/index.js';
import { cifarRecords, idxBytes, syntheticIdx, tempDir } from './helpers/data-files.js';
import { mutants, outcome, Tally } from './helpers/fuzz.js';

const CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

// ------------------------------------------------------------------------------ IDX

describe('IDX reader on damaged files', { timeout: 60_000 }, () => {
  const dir = tempDir('fuzz-idx');
  const [n, h, w] = [12, 6, 5];
  const synthetic = syntheticIdx(n, h, w);
  const validImages = idxBytes([n, h, w], synthetic.images);
  const validLabels = idxBytes([n], synthetic.labels);
  const imagesFile = join(dir, 'train-images-idx3-ubyte');
  const labelsFile = join(dir, 'train-labels-idx1-ubyte');
  const tally = new Tally();

  /** Write the pair (images gzipped on request) and read it back. */
  async function check(images: Uint8Array, labels: Uint8Array, what: string, gzip = false): Promise<void> {
    const img = gzip ? `${imagesFile}.gz` : imagesFile;
    rmSync(imagesFile, { force: true });
    rmSync(`${imagesFile}.gz`, { force: true });
    writeFileSync(img, images);
    writeFileSync(labelsFile, labels);
    tally.add(await outcome(() => {
      const ds = readIdxPair(img, labelsFile, 'fuzz', CLASSES);
      assert.ok(ds.length > 0 && ds.height > 0 && ds.width > 0, `${what}: loaded an empty set`);
      assert.equal(ds.pixels.length, ds.length * ds.height * ds.width, `${what}: pixels do not match the shape`);
      assert.ok(ds.labels.every((l) => l >= 0 && l < 10), `${what}: a label out of range was loaded`);
    }, { cls: DataError, names: [img, labelsFile], what }));
  }

  it('reads the valid pair (the mutations below start from it)', async () => {
    await check(validImages, validLabels, 'valid');
    assert.equal(tally.loaded, 1);
  });

  it('damaged image files, raw and gzipped, and damaged gzip streams', async () => {
    for (const m of mutants(validImages, 200, 1, 16)) await check(m.bytes, validLabels, `images: ${m.what}`);
    for (const m of mutants(validImages, 60, 2, 16)) await check(gzipSync(m.bytes), validLabels, `gzipped images: ${m.what}`, true);
    for (const m of mutants(gzipSync(validImages), 80, 3, 24)) await check(m.bytes, validLabels, `gzip stream: ${m.what}`, true);
  });

  it('damaged label files', async () => {
    for (const m of mutants(validLabels, 150, 4, 8)) await check(validImages, m.bytes, `labels: ${m.what}`);
  });

  it('lying sizes, wrong magic and type bytes in every header field are rejected', async (t) => {
    const before = tally.rejected;
    const lies: [string, (b: Uint8Array) => void][] = [];
    for (const dim of [0, 1, 2]) {
      for (const v of [0, 1, n - 1, n + 1, 2 ** 16, 2 ** 31, 2 ** 32 - 1]) {
        if (v === [n, h, w][dim]) continue;
        lies.push([`dimension ${dim} = ${v}`, (b) => new DataView(b.buffer).setUint32(4 + 4 * dim, v, false)]);
      }
    }
    for (const ndim of [0, 1, 2, 4, 5, 255]) lies.push([`${ndim} dimensions`, (b) => { b[3] = ndim; }]);
    for (const type of [0x00, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0xff]) lies.push([`type byte ${type}`, (b) => { b[2] = type; }]);
    for (const [i, v] of [[0, 1], [1, 8], [0, 0x1f]]) lies.push([`magic byte ${i} = ${v}`, (b) => { b[i!] = v!; }]);
    for (const [what, lie] of lies) {
      const bytes = validImages.slice();
      lie(bytes);
      await check(bytes, validLabels, `images: ${what}`);
    }
    // A label file that holds images, and the reverse.
    await check(validLabels, validImages, 'swapped files');
    assert.equal(tally.rejected - before, lies.length + 1, 'every lie was rejected');
    t.diagnostic(`IDX: ${tally.total} files, ${tally.loaded} loaded, ${tally.rejected} rejected`);
    assert.ok(tally.total >= 500, `${tally.total} files`);
    assert.ok(tally.loaded > 10 && tally.rejected > 300, `loaded ${tally.loaded}, rejected ${tally.rejected}`);
  });
});

// ------------------------------------------------------------------------------ CIFAR

describe('CIFAR binary reader on damaged files', { timeout: 60_000 }, () => {
  const tally = new Tally();

  function run(variant: 'cifar10' | 'cifar100', dir: string, files: Record<string, Uint8Array | 'folder'>, what: string, coarse = false): Promise<void> {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(files)) {
      if (content === 'folder') mkdirSync(join(dir, name));
      else writeFileSync(join(dir, name), content);
    }
    const names = Object.keys(files).map((f) => join(dir, f));
    return outcome(() => {
      const ds = readCifar(dir, variant, 'test', { coarse });
      const classes = variant === 'cifar10' ? 10 : coarse ? 20 : 100;
      assert.equal(ds.classNames.length, classes, `${what}: ${ds.classNames.length} class names`);
      assert.equal(ds.pixels.length, ds.length * 32 * 32 * 3);
      assert.ok(ds.labels.every((l) => l >= 0 && l < classes), `${what}: a label out of range was loaded`);
    }, { cls: DataError, names: [dir, ...names], what }).then((o) => tally.add(o));
  }

  const records10 = cifarRecords(Array.from({ length: 6 }, (_, i) => [i % 10]));
  const records100 = cifarRecords(Array.from({ length: 6 }, (_, i) => [i % 20, (i * 17) % 100]));
  const names10 = new TextEncoder().encode(`${CLASSES.map((c) => `class ${c}`).join('\n')}\n`);

  it('damaged CIFAR-10 batches: truncated, relabelled, lengthened, record-length lies', async () => {
    const dir = join(tempDir('fuzz-cifar'), 'c10');
    await run('cifar10', dir, { 'test_batch.bin': records10, 'batches.meta.txt': names10 }, 'valid');
    assert.equal(tally.loaded, 1);
    // Label bytes are at 0, 3073, 6146, ...: flips there give labels out of range.
    for (const m of mutants(records10, 200, 5, 3073 * 6)) await run('cifar10', dir, { 'test_batch.bin': m.bytes, 'batches.meta.txt': names10 }, `batch: ${m.what}`);
    for (const len of [0, 1, 3072, 3074, 3073 * 6 - 1, 3073 * 6 + 1]) {
      const before = tally.rejected;
      const bytes = new Uint8Array(len);
      bytes.set(records10.subarray(0, Math.min(len, records10.length)));
      await run('cifar10', dir, { 'test_batch.bin': bytes }, `${len} bytes`);
      assert.equal(tally.rejected, before + 1, `${len} bytes accepted`);
    }
    for (const label of [10, 11, 128, 255]) {
      const bytes = records10.slice();
      bytes[3073 * 2] = label;
      const before = tally.rejected;
      await run('cifar10', dir, { 'test_batch.bin': bytes }, `label ${label}`);
      assert.equal(tally.rejected, before + 1, `label ${label} accepted`);
    }
  });

  it('damaged CIFAR-100 batches, fine and coarse labels', async () => {
    const dir = join(tempDir('fuzz-cifar'), 'c100');
    for (const m of mutants(records100, 120, 6, 3074 * 6)) {
      await run('cifar100', dir, { 'test.bin': m.bytes }, `fine: ${m.what}`);
      await run('cifar100', dir, { 'test.bin': m.bytes }, `coarse: ${m.what}`, true);
    }
  });

  it('damaged class-name files and a folder where a file belongs', async (t) => {
    const dir = join(tempDir('fuzz-cifar'), 'names');
    for (const m of mutants(names10, 60, 7, names10.length)) {
      await run('cifar10', dir, { 'test_batch.bin': records10, 'batches.meta.txt': m.bytes }, `names: ${m.what}`);
    }
    const before = tally.rejected;
    await run('cifar10', dir, { 'test_batch.bin': records10, 'batches.meta.txt': 'folder' }, 'names file is a folder');
    await run('cifar10', dir, { 'test_batch.bin': 'folder' }, 'batch file is a folder');
    await run('cifar10', dir, { 'data_batch_1.bin': records10 }, 'no test batch');
    assert.equal(tally.rejected, before + 3);
    t.diagnostic(`CIFAR: ${tally.total} files, ${tally.loaded} loaded, ${tally.rejected} rejected`);
    assert.ok(tally.total >= 500, `${tally.total} files`);
    assert.ok(tally.loaded > 20 && tally.rejected > 100, `loaded ${tally.loaded}, rejected ${tally.rejected}`);
  });
});

// ------------------------------------------------------------------------------ images

/** CRC-32 of PNG chunks (ISO 3309, the table-driven form of the PNG specification's Annex D). */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG whose IHDR says width x height, with its CRC fixed so the lie is believable. */
function pngWithSize(png: Uint8Array, width: number, height: number): Uint8Array {
  const b = png.slice();
  const v = new DataView(b.buffer);
  // Signature (8), IHDR length (4), "IHDR" (4), width, height, ...; the CRC covers type + 13 data bytes.
  v.setUint32(16, width, false);
  v.setUint32(20, height, false);
  v.setUint32(29, crc32(b.subarray(12, 29)), false);
  return b;
}

/** A JPEG whose baseline frame header (SOF0) says width x height. */
function jpegWithSize(jpeg: Uint8Array, width: number, height: number): Uint8Array {
  const b = jpeg.slice();
  for (let i = 2; i + 9 < b.length; i++) {
    if (b[i] === 0xff && b[i + 1] === 0xc0) {
      const v = new DataView(b.buffer);
      v.setUint16(i + 5, height, false);
      v.setUint16(i + 7, width, false);
      return b;
    }
  }
  throw new Error('no SOF0 marker in the JPEG');
}

describe('image decoder on damaged PNG and JPEG files', { timeout: 90_000 }, () => {
  const root = tempDir('fuzz-images');
  const tally = new Tally();
  const pixels = Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37) & 0xff);
  let png = new Uint8Array();
  let jpeg = new Uint8Array();

  async function check(bytes: Uint8Array, ext: 'png' | 'jpg', what: string): Promise<'loaded' | 'rejected'> {
    const file = join(root, 'cls', `image.${ext}`);
    mkdirSync(join(root, 'cls'), { recursive: true });
    writeFileSync(file, bytes);
    const o = await outcome(async () => {
      await imageInfo(file);
      const out = await decodeImage(file, { height: 8, width: 8, channels: 3, convert: true });
      assert.equal(out.length, 8 * 8 * 3, `${what}: decoded ${out.length} bytes`);
    }, { cls: DataError, names: [file], what });
    tally.add(o);
    return o;
  }

  it('decodes the valid files (the mutations below start from them)', async () => {
    const img = (): Sharp => sharp(Buffer.from(pixels), { raw: { width: 8, height: 8, channels: 3 } });
    png = new Uint8Array(await img().png().toBuffer());
    jpeg = new Uint8Array(await img().jpeg({ quality: 90 }).toBuffer());
    assert.equal(await check(png, 'png', 'valid png'), 'loaded');
    assert.equal(await check(jpeg, 'jpg', 'valid jpeg'), 'loaded');
  });

  it('hundreds of truncated, overwritten, lengthened and re-signed PNG and JPEG files', async () => {
    for (const m of mutants(png, 200, 8, 33)) await check(m.bytes, 'png', `png: ${m.what}`);
    for (const m of mutants(jpeg, 200, 9, 200)) await check(m.bytes, 'jpg', `jpeg: ${m.what}`);
  });

  it('headers that lie about the size: zero, huge and decompression-bomb dimensions are rejected', async (t) => {
    const before = tally.rejected;
    const sizes: [number, number][] = [[0, 8], [8, 0], [100_000, 100_000], [2 ** 31 - 1, 1], [1, 2 ** 31 - 1], [65_535, 65_535]];
    for (const [w, h] of sizes) await check(pngWithSize(png, w, h), 'png', `png ${w}x${h}`);
    for (const [w, h] of [[0, 8], [8, 0], [65_535, 65_535]] as const) await check(jpegWithSize(jpeg, w, h), 'jpg', `jpeg ${w}x${h}`);
    await check(new Uint8Array(0), 'png', 'empty file');
    await check(new TextEncoder().encode('not an image at all'), 'jpg', 'text');
    assert.equal(tally.rejected - before, sizes.length + 5, 'every lie was rejected');
    t.diagnostic(`images: ${tally.total} files, ${tally.loaded} loaded, ${tally.rejected} rejected`);
    assert.ok(tally.total >= 400, `${tally.total} files`);
    assert.ok(tally.rejected > 100, `rejected ${tally.rejected}`);
  });

  it('a folder whose first image claims a large size is refused before any batch is made', async () => {
    const tree = tempDir('fuzz-tree');
    mkdirSync(join(tree, 'a'));
    const first = join(tree, 'a', '0.png');
    // Under libvips' pixel limit (so the header is read), far over a sensible training size.
    writeFileSync(first, pngWithSize(png, 4000, 3000));
    writeFileSync(join(tree, 'a', '1.png'), png);
    await assert.rejects(ImageFolderDataset.open(tree, 'fuzz'), (e: unknown) => {
      assert.ok(e instanceof DataError, String(e));
      assert.ok(e.message.startsWith(`${first}: `), e.message);
      assert.match(e.message, /give the side to resize to \(--image-size/);
      return true;
    });
  });
});
