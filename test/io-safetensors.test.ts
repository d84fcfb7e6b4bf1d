// safetensors reader and writer: files written by an independent Python writer
// (scripts/make_io_fixtures.py) read here, files written here read by its stdlib-only
// Python reader, and atomic saving.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { io, Tensor, tensor } from '../src/index.js';
import { assertSameBits, ioFixtureBytes, ioFixturePath, loadExactTensors, REPO_ROOT, tempDir } from './helpers/io-fixtures.js';

const PYTHON = process.env['PYTHON'] ?? 'python3';

function headerOf(bytes: Uint8Array): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
}


describe('safetensors reader', () => {
  it('reads a file written by the Python writer: F32, F16, BF16, F64, I32, I64, 0-d, empty, inf, subnormal', () => {
    const expected = loadExactTensors('small_expected');
    const { tensors, metadata } = io.readSafetensors(ioFixturePath('small.safetensors'));
    assert.deepEqual(metadata, expected.metadata);
    const names = ['f32', 'f16', 'bf16', 'f64', 'i32', 'bn.num_batches_tracked', 'scalar', 'empty', 'base', 'tail',
      'every_third', 'transposed', 'special'];
    assert.deepEqual(Object.keys(tensors).sort(), [...names].sort());
    for (const k of names) {
      assert.deepEqual(tensors[k]!.shape, expected.tensors[k]!.shape, k);
      assertSameBits(tensors[k]!.data, expected.tensors[k]!.values, k);
    }
    const header = headerOf(ioFixtureBytes('small.safetensors'));
    assert.equal(header['bf16']!.dtype, 'BF16');
    assert.equal(header['f16']!.dtype, 'F16');
  });

  it('parses the same bytes from memory as from the file', () => {
    const fromFile = io.readSafetensors(ioFixturePath('small.safetensors'));
    const fromMemory = io.parseSafetensors(ioFixtureBytes('small.safetensors'));
    assert.deepEqual(fromMemory.metadata, fromFile.metadata);
    for (const [k, t] of Object.entries(fromFile.tensors)) {
      assert.deepEqual(fromMemory.tensors[k]!.shape, t.shape, k);
      assert.deepEqual(fromMemory.tensors[k]!.data, t.data, k);
    }
  });

  it('names the file and the problem when it cannot open it', () => {
    assert.throws(() => io.loadSafetensors('/nonexistent/w.safetensors'),
      (e: unknown) => e instanceof io.WeightsFileError && /^\/nonexistent\/w\.safetensors: cannot open/.test(e.message));
  });
});

function sampleStateDict(): Record<string, Tensor> {
  return {
    'conv1.weight': tensor(Array.from({ length: 2 * 3 * 3 * 3 }, (_, i) => Math.sin(i) * 0.3), [2, 3, 3, 3]),
    'bn1.weight': tensor([1.5, -0.25]),
    'bn1.num_batches_tracked': new Tensor(new Float32Array([1234]), []),
    'special': tensor([NaN, Infinity, -Infinity, -0, 1e-45, 3.4028234663852886e38]),
    'empty': tensor([], [0, 4]),
  };
}

describe('safetensors writer', () => {
  it('round-trips through parseSafetensors with metadata, keeping order and values bit for bit', () => {
    const sd = sampleStateDict();
    const bytes = io.serializeSafetensors(sd, { epoch: '3', config: '{"lr":0.1}' });
    const back = io.parseSafetensors(bytes);
    assert.deepEqual(back.metadata, { epoch: '3', config: '{"lr":0.1}' });
    assert.deepEqual(Object.keys(back.tensors), Object.keys(sd));
    for (const [k, t] of Object.entries(sd)) {
      assert.deepEqual(back.tensors[k]!.shape, t.shape, k);
      assertSameBits(back.tensors[k]!.data, t.data, k);
    }
  });

  it('writes F32 tensors, num_batches_tracked as I64 (as PyTorch), and an 8-byte aligned header', () => {
    const bytes = io.serializeSafetensors(sampleStateDict());
    const header = headerOf(bytes);
    assert.equal(header['conv1.weight']!.dtype, 'F32');
    assert.equal(header['bn1.num_batches_tracked']!.dtype, 'I64');
    assert.deepEqual(header['bn1.num_batches_tracked']!.shape, []);
    assert.equal(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8, 0);
    assert.equal('__metadata__' in header, false, 'no metadata map when none is given');
  });

  it('is read by the stdlib-only Python reader of make_io_fixtures.py with the same bits', () => {
    const dir = tempDir('st-py');
    const path = join(dir, 'ours.safetensors');
    const sd = sampleStateDict();
    io.saveSafetensors(path, sd, { format: 'pt', note: 'ünïcode ✓' });
    const out = execFileSync(PYTHON, [join(REPO_ROOT, 'scripts', 'make_io_fixtures.py'), '--read', path], { encoding: 'utf8' });
    const parsed = JSON.parse(out) as { metadata: Record<string, string>; tensors: Record<string, { dtype: string; shape: number[]; values: (string | number)[] }> };
    assert.deepEqual(parsed.metadata, { format: 'pt', note: 'ünïcode ✓' });
    assert.deepEqual(Object.keys(parsed.tensors).sort(), Object.keys(sd).sort());
    for (const [k, t] of Object.entries(sd)) {
      const got = parsed.tensors[k]!;
      assert.deepEqual(got.shape, [...t.shape], k);
      if (k.endsWith('num_batches_tracked')) {
        assert.equal(got.dtype, 'I64');
        assert.deepEqual(got.values, [1234]);
        continue;
      }
      const bits = new Uint8Array(t.data.slice().buffer);
      const hex = Array.from({ length: t.size }, (_, i) => Buffer.from(bits.subarray(4 * i, 4 * i + 4)).toString('hex'));
      assert.deepEqual(got.values, hex, k);
    }
  });

  it('saves atomically: replaces an existing file and leaves no temporary file behind', () => {
    const dir = tempDir('st-atomic');
    const path = join(dir, 'w.safetensors');
    writeFileSync(path, 'old contents');
    io.saveSafetensors(path, sampleStateDict());
    assert.deepEqual(readdirSync(dir), ['w.safetensors']);
    assert.deepEqual(Object.keys(io.loadSafetensors(path)), Object.keys(sampleStateDict()));
    const bytes = readFileSync(path);
    assert.deepEqual(new Uint8Array(bytes), io.serializeSafetensors(sampleStateDict()));
  });

  it('fails with the path when the folder does not exist, writing nothing', () => {
    const dir = tempDir('st-missing');
    const path = join(dir, 'no', 'such', 'w.safetensors');
    assert.throws(() => io.saveSafetensors(path, sampleStateDict()),
      (e: unknown) => e instanceof io.FileWriteError && e.message.startsWith(`${path}: cannot write`));
    assert.equal(existsSync(join(dir, 'no')), false);
  });

  it('rejects non-string metadata and reserved names', () => {
    const numeric: Record<string, string> = JSON.parse('{"epoch": 3}');
    assert.throws(() => io.serializeSafetensors({}, numeric), /metadata "epoch" must be a string/);
    assert.throws(() => io.serializeSafetensors({ __metadata__: tensor([1]) }), /cannot be named "__metadata__"/);
  });
});
