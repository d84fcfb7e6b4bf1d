// Hostile weight files: hundreds of generated bad safetensors and .pth files, and model
// files whose metadata lies. Each must end in a one-line WeightsFileError naming the
// file (or, for a random flip that happens to leave a valid file, load); never another
// exception, a crash or a hang. Lying sizes
// reach 2^40 and beyond, so a reader that allocated what a header claims would die of
// a RangeError here instead of giving our error.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { strToU8, zipSync } from 'fflate';
import { crc32Table } from '../src/io/pth.js';
import { io, models, Rng, tensor, Tensor } from '../src/index.js';
import { stateChecksum } from '../src/io/checksum.js';
import { type LoadedModel, MAX_IMAGE_SIDE, MODEL_CARD_KEY, MODEL_CHECKSUM_KEY, type ModelCard, modelFromFile } from '../src/train/model-file.js';
import * as fuzz from './helpers/fuzz.js';
import { ioFixtureBytes, tempDir } from './helpers/io-fixtures.js';

type Outcome = 'loaded' | 'rejected';

/** Run a reader on bad input: it loads, or throws a one-line WeightsFileError naming `source`. */
function outcome(source: string, read: () => unknown): Outcome {
  try {
    read();
    return 'loaded';
  } catch (e) {
    if (!(e instanceof io.WeightsFileError)) {
      throw new assert.AssertionError({ message: `${source}: expected a WeightsFileError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}` });
    }
    assert.ok(e.message.startsWith(`${source}: `), `the message names the file: ${e.message}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return 'rejected';
  }
}

function mustReject(source: string, read: () => unknown, pattern?: RegExp): void {
  const got = outcome(source, read);
  assert.equal(got, 'rejected', `${source} was accepted`);
  if (pattern) assert.throws(read, pattern);
}

// ----------------------------------------------------------------- safetensors

function sampleStateDict(): Record<string, Tensor> {
  return {
    'conv.weight': tensor(Array.from({ length: 24 }, (_, i) => i / 7), [2, 3, 2, 2]),
    'bn.running_var': tensor([1, 2]),
    'bn.num_batches_tracked': new Tensor(new Float32Array([5]), []),
    'fc.bias': tensor([0.5, -0.5, 0.25]),
  };
}

/** A safetensors file from a header object and a data section, as a hostile writer would. */
function craft(header: unknown, data: Uint8Array, declaredLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function headerAndData(bytes: Uint8Array): { header: Record<string, Record<string, unknown>>; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.subarray(8 + n) };
}

describe('safetensors reader on hostile files', { timeout: 20_000 }, () => {
  const valid = io.serializeSafetensors(sampleStateDict(), { note: 'fuzz' });
  const { header, data } = headerAndData(valid);
  const names = Object.keys(sampleStateDict());
  let cases = 0;

  it('rejects every truncation of a valid file', () => {
    for (let n = 0; n < valid.length; n++) {
      mustReject(`cut${n}`, () => io.parseSafetensors(valid.subarray(0, n), `cut${n}`));
      cases++;
    }
  });

  it('rejects header lengths that lie (past the end, huge, tiny, off by a few)', () => {
    const jsonLength = BigInt(valid.length - 8 - data.length);
    const lies = [0n, 1n, 7n, jsonLength - 1n, jsonLength + 1n, jsonLength + 8n, BigInt(valid.length), 2n ** 32n, 2n ** 40n,
      2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, BigInt(100_000_001)];
    for (const lie of lies) {
      const bytes = valid.slice();
      new DataView(bytes.buffer).setBigUint64(0, lie, true);
      mustReject(`len${lie}`, () => io.parseSafetensors(bytes, `len${lie}`));
      cases++;
    }
    mustReject('big', () => io.parseSafetensors(craft({}, new Uint8Array(0), 2n ** 40n), 'big'), /runs past the end of the file/);
  });

  it('rejects lying, reversed, overlapping and gapped data_offsets', () => {
    const rng = new Rng(11);
    const lies: unknown[] = [[0, 2 ** 40], [2 ** 40, 2 ** 40 + 96], [-4, 92], [96, 0], [0.5, 96.5], ['0', '96'], [0], [0, 96, 100],
      null, 'x', [2 ** 53, 2 ** 53 + 4], [0, data.length + 1], [data.length, data.length + 96]];
    for (let i = 0; i < 150; i++) {
      const a = rng.int(data.length + 16);
      lies.push([a, a + rng.int(120)]);
    }
    for (const [i, lie] of lies.entries()) {
      const name = names[i % names.length]!;
      const h = structuredClone(header);
      h[name]!['data_offsets'] = lie;
      const src = `offsets${i}`;
      const result = outcome(src, () => io.parseSafetensors(craft(h, data), src));
      // A random pair can only be accepted if it is the tensor's true place.
      if (result === 'loaded') assert.deepEqual(lie, header[name]!['data_offsets'], `${src}: ${JSON.stringify(lie)} accepted`);
      cases++;
    }
    // Two tensors claiming the same bytes; a gap; data left over after the last tensor.
    const twin = structuredClone(header);
    twin['bn.num_batches_tracked']!['data_offsets'] = twin['bn.running_var']!['data_offsets'];
    mustReject('twin', () => io.parseSafetensors(craft(twin, data), 'twin'), /overlaps|belong to no tensor/);
    mustReject('tail', () => io.parseSafetensors(craft(header, new Uint8Array([...data, 0, 0, 0, 0])), 'tail'), /cover (\d+) data bytes but the file holds \d+ after the header/);
  });

  it('rejects huge, negative, fractional and mismatched shapes without allocating them', () => {
    const shapes: unknown[] = [[2 ** 31, 2 ** 31], [2 ** 40], [2 ** 53], [2 ** 60, 2 ** 60, 2 ** 60], [1e308], [-1, 24], [24.5], ['24'],
      [Infinity], [3, 8, 2 ** 50, 0, 2 ** 50], [25], [23], [], [2, 3, 2, 2, 2], null, 'shape', { 0: 24 }];
    for (const [i, shape] of shapes.entries()) {
      const h = structuredClone(header);
      h['conv.weight']!['shape'] = shape;
      mustReject(`shape${i}`, () => io.parseSafetensors(craft(h, data), `shape${i}`));
      cases++;
    }
    // An empty dimension next to a huge one is 0 bytes; it must still match its offsets.
    const zero = structuredClone(header);
    zero['conv.weight']!['shape'] = [0, 2 ** 50];
    mustReject('zero', () => io.parseSafetensors(craft(zero, data), 'zero'), /does not fit its data_offsets/);
  });

  it('rejects unknown dtypes and malformed tensor entries', () => {
    const dtypes: unknown[] = ['F8_E4M3', 'complex64', 'f32', '', 'I128', 5, null, ['F32'], 'U64', 'F32 '];
    for (const [i, dtype] of dtypes.entries()) {
      const h = structuredClone(header);
      h['conv.weight']!['dtype'] = dtype;
      mustReject(`dtype${i}`, () => io.parseSafetensors(craft(h, data), `dtype${i}`));
      cases++;
    }
    assert.throws(() => io.parseSafetensors(craft({ ...header, 'conv.weight': { ...header['conv.weight'], dtype: 'F8_E4M3' } }, data), 'f8'),
      /f8: not a valid safetensors file: tensor "conv.weight" has dtype "F8_E4M3", which this reader does not support/);
    const entries: unknown[] = [null, 3, 'x', [], {}, { dtype: 'F32' }, { dtype: 'F32', shape: [24] }];
    for (const [i, entry] of entries.entries()) {
      mustReject(`entry${i}`, () => io.parseSafetensors(craft({ ...header, 'conv.weight': entry }, data), `entry${i}`));
      cases++;
    }
    const metadata: unknown[] = [3, 'x', [], { a: 1 }, { a: null }, { a: { b: 'c' } }];
    for (const [i, m] of metadata.entries()) {
      mustReject(`meta${i}`, () => io.parseSafetensors(craft({ ...header, __metadata__: m }, data), `meta${i}`));
      cases++;
    }
  });

  it('rejects headers that are not a JSON object', () => {
    const texts = ['', ' ', '[]', '[1,2]', '"x"', '1', 'null', '{', '{"a":', '{"a":1,}', "{'a':1}", 'NaN', '{}}', '\u00ff\u00fe',
      '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}} trailing'];
    for (const [i, text] of texts.entries()) {
      mustReject(`json${i}`, () => io.parseSafetensors(craft(text, data), `json${i}`));
      cases++;
    }
    const invalidUtf8 = craft('{"a":1}', data);
    invalidUtf8[10] = 0xff;
    mustReject('utf8', () => io.parseSafetensors(invalidUtf8, 'utf8'), /not valid UTF-8/);
  });

  it('survives random byte corruption anywhere in the file', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 300; i++) {
      const bytes = valid.slice();
      const flips = 1 + rng.int(4);
      // Flips land in the 8-byte length or the JSON header; flipped data bytes are just other values.
      for (let k = 0; k < flips; k++) bytes[rng.int(valid.length - data.length)] = rng.int(256);
      outcome(`flip${i}`, () => io.parseSafetensors(bytes, `flip${i}`));
      cases++;
    }
  });

  it('rejects bad files on disk through the file reader too', () => {
    const dir = tempDir('fuzz-st');
    const bad = [valid.subarray(0, 5), valid.subarray(0, 40), craft({}, new Uint8Array(0), 2n ** 62n),
      craft({ a: { dtype: 'F32', shape: [2 ** 40], data_offsets: [0, 2 ** 42] } }, new Uint8Array(16))];
    for (const [i, bytes] of bad.entries()) {
      const path = join(dir, `bad${i}.safetensors`);
      writeFileSync(path, bytes);
      mustReject(path, () => io.loadSafetensors(path));
      cases++;
    }
    assert.ok(cases >= 500, `${cases} generated files`);
  });
});

// ----------------------------------------------------------------- .pth

/** A protocol-2 pickle of {name: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}. */
class PickleWriter {
  private readonly parts: number[] = [0x80, 2];

  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }

  global(module: string, name: string): this {
    return this.op(0x63, ...strToU8(`${module}\n${name}\n`));
  }

  str(s: string): this {
    const b = strToU8(s);
    return this.op(0x58, b.length & 0xff, (b.length >> 8) & 0xff, 0, 0, ...b);
  }

  int(v: number): this {
    return this.op(0x4a, v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
  }

  ints(vs: readonly number[]): this {
    this.op(0x28);
    for (const v of vs) this.int(v);
    return this.op(0x74);
  }

  bytes(): Uint8Array {
    return Uint8Array.from([...this.parts, 0x2e]);
  }
}

interface TensorSpec {
  storage?: string;
  key?: string;
  numel?: number;
  offset?: number;
  size?: number[];
  stride?: number[];
}

function tensorDictPickle(specs: Record<string, TensorSpec>): Uint8Array {
  const w = new PickleWriter().global('collections', 'OrderedDict').op(0x29, 0x52, 0x28);
  for (const [name, s] of Object.entries(specs)) {
    w.str(name).global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    w.op(0x28).str('storage').global('torch', s.storage ?? 'FloatStorage').str(s.key ?? '0').str('cpu').int(s.numel ?? 6).op(0x74, 0x51);
    w.int(s.offset ?? 0).ints(s.size ?? [2, 3]).ints(s.stride ?? [3, 1]).op(0x89);
    w.global('collections', 'OrderedDict').op(0x29, 0x52, 0x74, 0x52);
  }
  return w.op(0x75).bytes();
}

/** A torch.save-shaped zip: archive/data.pkl plus archive/data/<key> entries, stored. */
function archive(pickle: Uint8Array, storages: Record<string, Uint8Array> = { 0: new Uint8Array(24) }): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = { 'archive/data.pkl': [pickle, { level: 0 }] };
  for (const [k, v] of Object.entries(storages)) files[`archive/data/${k}`] = [v, { level: 0 }];
  return zipSync(files);
}

describe('.pth reader on hostile files', { timeout: 20_000 }, () => {
  // A copy: slice() of the Buffer read would share its memory, and the mutations below would add up.
  const valid = new Uint8Array(ioFixtureBytes('small.pth'));
  let cases = 0;

  it('reads a crafted archive (so the cases below differ from it by one lie each)', () => {
    const sd = io.parsePth(archive(tensorDictPickle({ w: {} }), { 0: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer) }));
    assert.deepEqual(Array.from(sd['w']!.data), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(sd['w']!.shape, [2, 3]);
  });

  it('rejects truncated archives', () => {
    for (let n = 0; n < valid.length; n += 11) {
      mustReject(`cut${n}`, () => io.parsePth(valid.subarray(0, n), `cut${n}`));
      cases++;
    }
  });

  it('survives random corruption of the zip structure and of the pickle', () => {
    const rng = new Rng(9);
    const pickleAt = findPickle(valid);
    for (let i = 0; i < 300; i++) {
      const bytes = valid.slice();
      const inPickle = i % 2 === 0;
      for (let k = 0, flips = 1 + rng.int(3); k < flips; k++) {
        const at = inPickle ? pickleAt.start + rng.int(pickleAt.end - pickleAt.start) : rng.int(bytes.length);
        bytes[at] = rng.int(256);
      }
      outcome(`flip${i}`, () => io.parsePth(bytes, `flip${i}`));
      cases++;
    }
  });

  it('a changed byte in any entry fails that entry\'s CRC-32, as Python\'s zipfile.testzip finds it', () => {
    const rng = new Rng(17);
    let checked = 0;
    for (const e of zipEntries(valid)) {
      if (e.size === 0) continue;
      const bytes = valid.slice();
      bytes[e.start + rng.int(e.size)] ^= 1 << rng.int(8);
      mustReject(e.name, () => io.parsePth(bytes, e.name), new RegExp(`zip entry ${e.name} is damaged: its CRC-32 is 0x[0-9a-f]{8} but the archive records`));
      checked++;
      cases++;
    }
    assert.ok(checked >= 10, `${checked} entries`);
    // The CRC-32 used where zlib has none (Node before 20.15) is zlib's.
    for (let n = 0; n < 300; n += 7) {
      const data = Uint8Array.from({ length: n }, () => rng.int(256));
      assert.equal(crc32Table(data), zlib.crc32(data), `${n} bytes`);
    }
  });

  it('rejects tensors that reach outside their storage or lie about sizes', () => {
    const lies: TensorSpec[] = [
      { offset: 1 }, { size: [3, 3] }, { stride: [4, 1] }, { size: [2 ** 30, 2 ** 30], stride: [0, 0] }, { size: [2 ** 31 - 1] , stride: [1] },
      { numel: 2 ** 31 - 1 }, { numel: 7 }, { key: 'missing' }, { key: '../../etc/passwd' }, { storage: 'DoubleStorage' },
      { storage: 'CudaFloatStorage' }, { size: [2, 3], stride: [1] }, { offset: -1 }, { size: [-2, 3] },
    ];
    for (const [i, lie] of lies.entries()) {
      mustReject(`lie${i}`, () => io.parsePth(archive(tensorDictPickle({ w: lie })), `lie${i}`));
      cases++;
    }
  });

  it('refuses globals and opcodes outside a plain state dict, saying why', () => {
    const refusals: [string, Uint8Array, RegExp][] = [
      ['os.system', new PickleWriter().global('os', 'system').str('touch /tmp/x').op(0x85, 0x52).bytes(), /"os\.system".*can run arbitrary code/],
      ['builtins.eval', new PickleWriter().op(0x8c, 8, ...strToU8('builtins'), 0x8c, 4, ...strToU8('eval'), 0x93).bytes(), /"builtins\.eval"/],
      ['INST', new PickleWriter().op(0x28, 0x69, ...strToU8('os\nsystem\n')).bytes(), /opcode INST/],
      ['OBJ', new PickleWriter().op(0x28, 0x6f).bytes(), /opcode OBJ/],
      ['NEWOBJ', new PickleWriter().op(0x81).bytes(), /opcode NEWOBJ/],
      ['REDUCE storage', new PickleWriter().global('torch', 'FloatStorage').op(0x29, 0x52).bytes(), /type, not a function/],
      ['OrderedDict args', new PickleWriter().global('collections', 'OrderedDict').op(0x5d, 0x85, 0x52).bytes(), /built with arguments/],
      ['not a dict', new PickleWriter().op(0x4e).bytes(), /does not hold a dict of tensors/],
      ['dict of ints', new PickleWriter().op(0x7d, 0x28).str('a').int(1).op(0x75).bytes(), /not a state dict.*keys: a/],
      ['no STOP', new PickleWriter().op(0x7d).bytes().subarray(0, -1), /truncated/],
      ['bad memo', new PickleWriter().op(0x68, 9).bytes(), /memo entry 9/],
      ['empty stack', new PickleWriter().op(0x52).bytes(), /empty stack/],
      ['unknown opcode', new PickleWriter().op(0xff).bytes(), /unsupported pickle opcode 0xff/],
      ['protocol 9', Uint8Array.from([0x80, 9, 0x7d, 0x2e]), /unsupported pickle protocol 9/],
      ['huge string', new PickleWriter().op(0x58, 0xff, 0xff, 0xff, 0x7f).bytes(), /truncated/],
      ['huge LONG1', new PickleWriter().op(0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9).bytes(), /too large/],
    ];
    for (const [what, pickle, pattern] of refusals) {
      mustReject(what, () => io.parsePth(archive(pickle), what), pattern);
      cases++;
    }
  });

  it('rejects hostile zip containers: huge claimed sizes, unknown compression, huge entry counts, no data.pkl', () => {
    const ok = archive(tensorDictPickle({ w: {} }));
    const eocd = lastIndexOf(ok, [0x50, 0x4b, 0x05, 0x06]);
    const central = indexOf(ok, [0x50, 0x4b, 0x01, 0x02]);
    const variants: [string, (b: Uint8Array) => void][] = [
      ['count 65535', (b) => { b[eocd + 8] = 0xff; b[eocd + 9] = 0xff; b[eocd + 10] = 0xff; b[eocd + 11] = 0xff; }],
      ['directory offset', (b) => { b[eocd + 16] = 0xff; b[eocd + 17] = 0xff; b[eocd + 18] = 0xff; b[eocd + 19] = 0x7f; }],
      ['uncompressed size 4G', (b) => { b[central + 24] = 0xfe; b[central + 25] = 0xff; b[central + 26] = 0xff; b[central + 27] = 0xff; }],
      ['compression 99', (b) => { b[central + 10] = 99; }],
      ['deflate with a huge size', (b) => { b[central + 10] = 8; b[central + 24] = 0xfe; b[central + 27] = 0x7f; }],
      ['name length', (b) => { b[central + 28] = 0xff; b[central + 29] = 0xff; }],
    ];
    for (const [what, mutate] of variants) {
      const bytes = ok.slice();
      mutate(bytes);
      mustReject(what, () => io.parsePth(bytes, what));
      cases++;
    }
    // Directory records repeated 200 times, all pointing at the same stored data.
    const repeated = repeatDirectory(ok, central, eocd, 200);
    mustReject('repeat', () => io.parsePth(repeated, 'repeat'), /entries claim \d+ bytes or more, more than the whole file/);
    // A zip64 end record claiming 2^32 - 1 entries must not be walked entry by entry.
    const zip64 = zip64Claim(ok, eocd);
    const started = Date.now();
    mustReject('zip64', () => io.parsePth(zip64, 'zip64'));
    assert.ok(Date.now() - started < 2000, 'the zip64 entry count was walked');
    const noPickle = zipSync({ 'archive/other.txt': [strToU8('x'), { level: 0 }] });
    mustReject('nopkl', () => io.parsePth(noPickle, 'nopkl'), /no <folder>\/data\.pkl/);
    const bigEndian = zipSync({ 'archive/data.pkl': [tensorDictPickle({}), { level: 0 }], 'archive/byteorder': [strToU8('big'), { level: 0 }] });
    mustReject('be', () => io.parsePth(bigEndian, 'be'), /big-endian/);
    assert.ok(cases >= 300, `${cases} generated files`);
  });
});

function indexOf(bytes: Uint8Array, pattern: readonly number[]): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Uint8Array.from(pattern));
}

function lastIndexOf(bytes: Uint8Array, pattern: readonly number[]): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).lastIndexOf(Uint8Array.from(pattern));
}

/** Each entry of a zip: its name and where its stored bytes lie, from the central directory. */
function zipEntries(zip: Uint8Array): { name: string; start: number; size: number }[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const out: { name: string; start: number; size: number }[] = [];
  for (let at = indexOf(zip, [0x50, 0x4b, 0x01, 0x02]); at >= 0 && view.getUint32(at, true) === 0x02014b50;) {
    const nameLength = view.getUint16(at + 28, true);
    const local = view.getUint32(at + 42, true);
    out.push({
      name: new TextDecoder().decode(zip.subarray(at + 46, at + 46 + nameLength)),
      start: local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true),
      size: view.getUint32(at + 20, true),
    });
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return out;
}

/** Where the first entry's bytes (data.pkl in torch.save archives) sit, from the zip directory. */
function findPickle(zip: Uint8Array): { start: number; end: number } {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const central = indexOf(zip, [0x50, 0x4b, 0x01, 0x02]);
  const size = view.getUint32(central + 20, true);
  const local = view.getUint32(central + 42, true);
  const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
  assert.equal(zip[start], 0x80, 'data.pkl found in the archive');
  return { start, end: start + size };
}

/** `zip` with its central directory written `times` times over (and the end record saying so). */
function repeatDirectory(zip: Uint8Array, central: number, eocd: number, times: number): Uint8Array {
  const directory = zip.subarray(central, eocd);
  const count = new DataView(zip.buffer, zip.byteOffset).getUint16(eocd + 10, true) * times;
  const out = new Uint8Array(central + directory.length * times + (zip.length - eocd));
  out.set(zip.subarray(0, central));
  for (let i = 0; i < times; i++) out.set(directory, central + i * directory.length);
  const end = central + directory.length * times;
  out.set(zip.subarray(eocd), end);
  const v = new DataView(out.buffer);
  v.setUint16(end + 8, count, true);
  v.setUint16(end + 10, count, true);
  v.setUint32(end + 12, directory.length * times, true);
  return out;
}

/** `zip` with a zip64 end record and locator before its end record, claiming 2^32 - 1 entries. */
function zip64Claim(zip: Uint8Array, eocd: number): Uint8Array {
  const record = new Uint8Array(56 + 20);
  const v = new DataView(record.buffer);
  v.setUint32(0, 0x06064b50, true);
  v.setUint32(32, 0xffffffff, true); // entries on this disk
  v.setUint32(48, 0, true); // directory offset
  v.setUint32(56, 0x07064b50, true); // locator
  v.setUint32(56 + 8, eocd, true); // where the zip64 record starts
  const out = new Uint8Array(zip.length + record.length);
  out.set(zip.subarray(0, eocd));
  out.set(record, eocd);
  out.set(zip.subarray(eocd), eocd + record.length);
  return out;
}

// ----------------------------------------------------------------- model-file metadata

describe('model-file metadata with absurd and inconsistent values', { timeout: 120_000 }, () => {
  const file = join(tempDir('fuzz-card'), 'best.safetensors');
  const state = models.create('resnet20', { numClasses: 10, inChannels: 1, seed: 4 }).stateDict();
  const card: ModelCard = {
    model: 'resnet20', width: 1, numClasses: 10, inChannels: 1, imageSize: [28, 28], mean: [0.286], std: [0.353],
    classNames: Array.from({ length: 10 }, (_, i) => `class ${i}`), dataset: 'fashion-mnist',
  };
  const tally = new fuzz.Tally();

  /** What a loaded file must be: a card within every range, and the file's weights in a model they fit. */
  function assertSane(loaded: LoadedModel, what: string): void {
    const c = loaded.card;
    const count = (v: number): boolean => Number.isSafeInteger(v) && v >= 1;
    assert.ok(models.list().includes(c.model) && count(c.width) && count(c.numClasses) && count(c.inChannels), `${what}: ${JSON.stringify(c)}`);
    assert.ok(c.imageSize.length === 2 && c.imageSize.every((d) => Number.isInteger(d) && d >= 1 && d <= MAX_IMAGE_SIDE), what);
    assert.ok(c.mean.length === c.inChannels && c.mean.every(Number.isFinite), what);
    assert.ok(c.std.length === c.inChannels && c.std.every((s) => Number.isFinite(s) && s > 0), what);
    assert.ok(c.classNames.length === c.numClasses && c.classNames.every((n) => typeof n === 'string'), what);
    const loadedState = loaded.model.stateDict();
    assert.deepEqual(Object.keys(loadedState).sort(), Object.keys(state).sort(), what);
    for (const [k, t] of Object.entries(state)) assert.deepEqual(loadedState[k]!.data, t.data, `${what}: ${k}`);
  }

  /** Load `text` as the model card, with a checksum that matches it, none, or the original file's. */
  async function check(text: string, what: string, checksum: 'matching' | 'none' | 'stale'): Promise<fuzz.Outcome> {
    const metadata: Record<string, string> = { [MODEL_CARD_KEY]: text };
    if (checksum !== 'none') {
      metadata[MODEL_CHECKSUM_KEY] = stateChecksum(state, { [MODEL_CARD_KEY]: checksum === 'matching' ? text : JSON.stringify(card) });
    }
    const before = process.memoryUsage().arrayBuffers;
    const o = await fuzz.outcome(() => assertSane(modelFromFile(file, state, metadata), what),
      { cls: io.WeightsFileError, names: [file], what: `${what} (${checksum} checksum)`, ms: 2000 });
    // The model a lying card names is never built: nothing near its size is allocated.
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 64e6, `${what}: ${Math.round(grown / 1e6)} MB allocated`);
    tally.add(o);
    return o;
  }

  async function both(value: unknown, what: string): Promise<fuzz.Outcome> {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    const o = await check(text, what, 'matching');
    assert.equal(await check(text, what, 'none'), o, `${what}: the checksum changed the outcome`);
    return o;
  }

  it('loads the valid card, with and without its checksum, and with values that are unusual but valid', async () => {
    assert.equal(await both(card, 'valid'), 'loaded');
    for (const v of [{ ...card, mean: [-1e300], std: [1e-300] }, { ...card, imageSize: [MAX_IMAGE_SIDE, 1] }, { ...card, dataset: 'x'.repeat(10_000) },
      { ...card, classNames: Array(10).fill('') }, { ...card, resizeShorter: 32 }, { ...card, extra: { nested: [1, 2] } }, { ...card, dataset: undefined }]) {
      assert.equal(await both(v, JSON.stringify(v).slice(0, 60)), 'loaded');
    }
  });

  it('refuses every absurd value of every field in one line', async () => {
    const anyField: unknown[] = [0, -1, 1.5, -0.5, 1e9, 2 ** 53, 1e308, '1', '', null, true, [], {}, [1], 'NaN', 'Infinity'];
    const absurd: Record<keyof ModelCard, unknown[]> = {
      model: ['resnet21', 'ResNet20', '__proto__', 'constructor', 'toString', ' resnet20', 5, null, ['resnet20']],
      width: [...anyField, 2, 1000, 1e6, 2 ** 53 - 1],
      numClasses: [...anyField, 11, 1e6],
      inChannels: [...anyField, 3, 2 ** 31],
      imageSize: [...anyField, [100000, 100000], [0, 28], [-28, 28], [28], [28, 28, 28], [28.5, 28], ['28', '28'], [1e308, 1],
        [MAX_IMAGE_SIDE + 1, 28], [28, null]],
      mean: [...anyField.filter((v) => JSON.stringify(v) !== '[1]'), [null], ['0.5'], [0.5, 0.5], [1e309], [[0.5]]],
      std: [...anyField.filter((v) => JSON.stringify(v) !== '[1]'), [0], [-0], [-0.353], [null], [0.353, 0.353], ['0.353'], [1e309]],
      classNames: [...anyField, Array(9).fill('x'), Array(11).fill('x'), Array.from({ length: 10 }, (_, i) => i), 'abcdefghij'],
      dataset: [5, true, [], {}],
      // Shorter than the image it is cropped to, or not a whole number of pixels.
      resizeShorter: [...anyField.filter((v) => typeof v !== 'number' || v < 28 || v > MAX_IMAGE_SIDE || !Number.isInteger(v)), 27, MAX_IMAGE_SIDE + 1],
    };
    for (const [field, values] of Object.entries(absurd)) {
      for (const v of values) {
        const what = `${field} = ${JSON.stringify(v)?.slice(0, 40)}`;
        assert.equal(await both({ ...card, [field]: v }, what), 'rejected', `${what} was accepted`);
      }
      if (field !== 'dataset' && field !== 'resizeShorter') assert.equal(await both({ ...card, [field]: undefined }, `no ${field}`), 'rejected');
    }
    for (const text of ['', ' ', '[]', '5', 'null', '"resnet20"', '{}', '{', '{"model": "resnet20"', `${JSON.stringify(card)}x`]) {
      assert.equal(await both(text, `card text ${JSON.stringify(text).slice(0, 30)}`), 'rejected');
    }
  });

  it('refuses cards that agree with themselves but not with the tensors, without building what they describe', async () => {
    const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `c${i}`);
    const inconsistent: ModelCard[] = [
      { ...card, width: 1000 }, { ...card, width: 2 ** 40 }, { ...card, model: 'resnet1202' }, { ...card, model: 'wide_resnet28_10' },
      { ...card, model: 'resnet152', imageSize: [224, 224] }, { ...card, model: 'preact_resnet20' },
      { ...card, model: 'resnet32' }, { ...card, numClasses: 1000, classNames: names(1000) }, { ...card, numClasses: 9, classNames: names(9) },
      { ...card, inChannels: 3, mean: [0, 0, 0], std: [1, 1, 1] }, { ...card, inChannels: 1000, mean: Array(1000).fill(0), std: Array(1000).fill(1) },
    ];
    for (const c of inconsistent) {
      const what = `${c.model} w${c.width} ${c.numClasses} classes ${c.inChannels} channels`;
      assert.equal(await both(c, what), 'rejected', `${what} was accepted`);
      assert.throws(() => modelFromFile(file, state, { [MODEL_CARD_KEY]: JSON.stringify(c) }), /its resnet_ts\.model metadata describes .* which its tensors do not fit/);
    }
    // plain20 (option A shortcuts hold no weights) has resnet20's tensors exactly: the shapes cannot tell
    // them apart, so only the checksum catches that edit.
    const plain = JSON.stringify({ ...card, model: 'plain20' });
    assert.equal(await check(plain, 'plain20', 'matching'), 'loaded');
    assert.equal(await check(plain, 'plain20', 'stale'), 'rejected');
  });

  it('random damage to the card text: refused or loaded sane; with the original checksum, never loaded', async (t) => {
    const text = new TextEncoder().encode(JSON.stringify(card));
    for (const m of fuzz.mutants(text, 240, 21, text.length)) {
      const damaged = new TextDecoder().decode(m.bytes);
      await both(damaged, m.what);
      if (damaged !== JSON.stringify(card)) assert.equal(await check(damaged, m.what, 'stale'), 'rejected', `${m.what}: loaded with the old checksum`);
    }
    t.diagnostic(`model cards: ${tally.total} loads, ${tally.loaded} loaded, ${tally.rejected} rejected`);
    assert.ok(tally.total >= 500 && tally.loaded >= 10, `${tally.total} cases, ${tally.loaded} loaded`);
  });
});
