// PyTorch .pth reading: archives written by torch.save (scripts/make_io_fixtures.py),
// strided views and dtypes exact to the bit, nested checkpoints, and the refusals that
// keep a pickle from running code.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { io } from '../src/index.js';
import { assertSameBits, ioFixtureBytes, ioFixturePath, loadExactTensors, unpackedFixture } from './helpers/io-fixtures.js';

/** Where the evil pickle's shell command would create a file (make_io_fixtures.py EVIL_MARKER). */
const EVIL_MARKER = '/tmp/resnet-ts-evil-pickle-ran';

function assertExact(actual: Record<string, { shape: readonly number[]; data: Float32Array }>, expectedName: string): void {
  const expected = loadExactTensors(expectedName).tensors;
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [k, e] of Object.entries(expected)) {
    assert.deepEqual(actual[k]!.shape, e.shape, `${k} shape`);
    assertSameBits(actual[k]!.data, e.values, `${k} values`);
  }
}

describe('.pth reader', () => {
  it('reads torch.save output: every dtype, storage offsets, strides, 0-d and empty tensors, exactly', () => {
    assertExact(io.loadPth(ioFixturePath('small.pth')), 'small_expected');
  });

  it('reads the same archive from memory', () => {
    assertExact(io.parsePth(ioFixtureBytes('small.pth')), 'small_expected');
  });

  it('reads pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL) and saved Parameters', () => {
    assertExact(io.loadPth(ioFixturePath('protocol4.pth')), 'small_weights');
    assertExact(io.loadPth(ioFixturePath('parameter.pth')), 'small_weights');
  });

  it('finds the state dict nested in a training checkpoint under "state_dict"', () => {
    assertExact(io.loadPth(ioFixturePath('checkpoint.pth')), 'small_weights');
  });

  it('reads torchvision resnet18 and resnet50 archives to the same tensors as their safetensors twins', () => {
    for (const name of ['resnet18', 'resnet50']) {
      const fromPth = io.loadPth(unpackedFixture(`${name}.pth`));
      const fromSafetensors = io.loadSafetensors(unpackedFixture(`${name}.safetensors`));
      assert.deepEqual(Object.keys(fromPth).sort(), Object.keys(fromSafetensors).sort(), name);
      assert.equal(Object.keys(fromPth).length, name === 'resnet18' ? 122 : 320);
      for (const [k, t] of Object.entries(fromPth)) {
        assert.deepEqual(t.shape, fromSafetensors[k]!.shape, `${name} ${k}`);
        assertSameBits(t.data, fromSafetensors[k]!.data, `${name} ${k}`);
      }
    }
  });

  it('refuses a pickle that would call os.system, and nothing runs', () => {
    rmSync(EVIL_MARKER, { force: true });
    assert.throws(() => io.loadPth(ioFixturePath('evil_os_system.pth')), (e: unknown) => {
      assert.ok(e instanceof io.WeightsFileError);
      assert.match(e.message, /evil_os_system\.pth: refused: the pickle asks for the Python global "posix\.system"/);
      assert.match(e.message, /pickle files can run arbitrary code/);
      return true;
    });
    assert.equal(existsSync(EVIL_MARKER), false, 'the shell command of the pickle ran');
  });

  it('refuses a pickled nn.Module, naming its class and saying what to save instead', () => {
    assert.throws(() => io.loadPth(ioFixturePath('whole_model.pth')),
      /refused: the pickle asks for the Python global "torch\.nn\.modules\.linear\.Linear".*state_dict\(\)/);
  });

  it('explains that the legacy pre-1.6 format is not supported', () => {
    assert.throws(() => io.loadPth(ioFixturePath('legacy.pth')), /legacy \(PyTorch < 1\.6\) pickle format/);
  });

  it('says a safetensors file is not a .pth file', () => {
    assert.throws(() => io.loadPth(ioFixturePath('small.safetensors')), /small\.safetensors: not a PyTorch \.pth file/);
  });
});
