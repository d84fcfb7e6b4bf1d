// Model and weight files that lie or are damaged, handed to the commands that read
// them (predict, eval, export, convert) and bad paths and sizes given to those and to
// summary: each is one line on stderr naming the file or flag, exit status 2, and
// nothing large is built or written first.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stateChecksum } from '../src/io/checksum.js';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { models } from '../src/index.js';
import type { StateDict } from '../src/nn/module.js';
import { MODEL_CARD_KEY, MODEL_CHECKSUM_KEY, type ModelCard, saveModelFile } from '../src/train/model-file.js';
import { assertUsageError, type CliResult, runCli } from './helpers/cli.js';
import { ioFixturePath, tempDir } from './helpers/io-fixtures.js';

const CARD: ModelCard = {
  model: 'resnet20', width: 1, numClasses: 10, inChannels: 1, imageSize: [28, 28], mean: [0.286], std: [0.353],
  classNames: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  dataset: 'fashion-mnist',
};

/** A time bound for commands that, unchecked, would build a model of hundreds of gigabytes. */
const BOUND_MS = 60_000;

function oneLineError(r: CliResult, pattern: RegExp, what: string): void {
  assertUsageError(r, pattern, what);
  assert.ok(!r.stderr.includes('strict: false'), `${what}: advice the command line cannot follow: ${r.stderr}`);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const trained = models.create('resnet20', { numClasses: 10, inChannels: 1, seed: 3 });

/** A model file of `state` with `card` (as JSON text, so it can lie in any way) and, unless told otherwise, a checksum that matches. */
function writeModel(path: string, card: unknown, opts: { state?: StateDict; checksum?: boolean } = {}): string {
  const state = opts.state ?? trained.stateDict();
  const text = JSON.stringify(card);
  const metadata: Record<string, string> = { [MODEL_CARD_KEY]: text };
  if (opts.checksum ?? true) metadata[MODEL_CHECKSUM_KEY] = stateChecksum(state, { [MODEL_CARD_KEY]: text });
  writeFileSync(path, serializeSafetensors(state, metadata));
  return path;
}

/** predict, eval and export of one model file: each must refuse it with `pattern`. */
function refusedByEveryReader(file: string, pattern: RegExp, dir: string): void {
  const out = join(dir, 'refused.onnx');
  for (const args of [['predict', file, join(dir, 'shoe.png')], ['eval', file, '--no-progress'], ['export', file, '-o', out]]) {
    oneLineError(runCli(args, dir, BOUND_MS), pattern, `resnet ${args[0]}`);
  }
  assert.equal(existsSync(out), false, 'export wrote a file');
}

describe('model files whose metadata lies', { timeout: 240_000 }, () => {
  const dir = tempDir('cli-model-lies');

  it('a width raised from 1 to 1000 in the metadata is refused before the model is built', () => {
    const file = writeModel(join(dir, 'best.safetensors'), { ...CARD, width: 1000 }, { checksum: false });
    refusedByEveryReader(file, new RegExp(`^resnet: ${escape(file)}: its resnet_ts\\.model metadata describes resnet20 at width 1000 ` +
      'with 10 classes and 1 input channel, which its tensors do not fit \\(layer1\\.0\\.conv1\\.weight has shape \\[16, 16, 3, 3\\] ' +
      'in the file, the model has \\[16000, 16, 3, 3\\]\\); the file is damaged or was edited$'), dir);
  });

  it('a lie with a checksum recomputed to match is still caught by the tensor shapes; an edit without one fails the checksum', () => {
    const lies: [unknown, RegExp][] = [
      [{ ...CARD, model: 'resnet1202' }, /describes resnet1202 .* \(missing keys: layer1\.3\.conv1\.weight/],
      [{ ...CARD, model: 'preact_resnet20' }, /describes preact_resnet20 .*(missing|unexpected) keys/],
      [{ ...CARD, inChannels: 3, mean: [0, 0, 0], std: [1, 1, 1] }, /with 10 classes and 3 input channels.*conv1\.weight has shape \[16, 1, 3, 3\] in the file, the model has \[16, 3, 3, 3\]/],
      [{ ...CARD, numClasses: 2, classNames: ['a', 'b'] }, /fc\.weight has shape \[10, 64\] in the file, the model has \[2, 64\]/],
    ];
    for (const [card, pattern] of lies) {
      const file = writeModel(join(dir, 'lie.safetensors'), card);
      oneLineError(runCli(['predict', file, 'x.png'], dir, BOUND_MS), pattern, JSON.stringify(card).slice(0, 60));
    }
    // Saved by `resnet train`, then the metadata edited by hand: the checksum no longer matches.
    const saved = join(dir, 'saved.safetensors');
    saveModelFile(saved, trained, CARD);
    const bytes = readFileSync(saved);
    // The card is JSON inside the JSON header, so its quotes are escaped.
    const at = bytes.indexOf('\\"width\\":1,');
    assert.ok(at > 0);
    bytes.set(new TextEncoder().encode('\\"width\\":9,'), at);
    writeFileSync(saved, bytes);
    oneLineError(runCli(['predict', saved, 'x.png'], dir), new RegExp(`^resnet: ${escape(saved)}: checksum mismatch: the model file is damaged`), 'edited');
  });

  it('absurd sizes, a std of 0, NaN and values of the wrong type are refused in one line naming the field', () => {
    const cases: [unknown, RegExp][] = [
      [{ ...CARD, imageSize: [100000, 100000] }, /invalid "imageSize": expected \[height, width\], integers from 1 to 4096, got \[100000,100000\]/],
      [{ ...CARD, imageSize: [0, 28] }, /invalid "imageSize"/],
      [{ ...CARD, imageSize: [-28, 28] }, /invalid "imageSize"/],
      [{ ...CARD, width: 0 }, /invalid "width": expected a positive integer, got 0/],
      [{ ...CARD, width: -1 }, /invalid "width"/],
      [{ ...CARD, numClasses: 0, classNames: [] }, /invalid "numClasses"/],
      [{ ...CARD, std: [0] }, /invalid "std": expected 1 numbers > 0 \(one per input channel\), got \[0\]/],
      [{ ...CARD, std: [-0.3] }, /invalid "std"/],
      [{ ...CARD, mean: ['NaN'] }, /invalid "mean": expected 1 finite numbers/],
      [{ ...CARD, width: '1' }, /invalid "width": expected a positive integer, got "1"/],
      [{ ...CARD, model: 'resnet21' }, /names an unknown model "resnet21"; the file is damaged or was edited, or comes from a newer version of resnet-ts$/],
    ];
    for (const [card, pattern] of cases) {
      const file = writeModel(join(dir, 'absurd.safetensors'), card);
      oneLineError(runCli(['predict', file, 'x.png'], dir, BOUND_MS), new RegExp(`^resnet: ${escape(file)}: the resnet_ts\\.model metadata (?:has an )?${pattern.source}`), JSON.stringify(card).slice(0, 80));
    }
    // JSON has no NaN: a hand-edited "std": [NaN] is not JSON at all.
    const nan = join(dir, 'nan.safetensors');
    const state = trained.stateDict();
    writeFileSync(nan, serializeSafetensors(state, { [MODEL_CARD_KEY]: JSON.stringify(CARD).replace('"std":[0.353]', '"std":[NaN]') }));
    oneLineError(runCli(['predict', nan, 'x.png'], dir), /nan\.safetensors: the resnet_ts\.model metadata is not valid JSON$/, 'NaN');
    // export used to write an ONNX file with std 0.
    const zero = writeModel(join(dir, 'std0.safetensors'), { ...CARD, std: [0] });
    const out = join(dir, 'std0.onnx');
    oneLineError(runCli(['export', zero, '-o', out], dir), /invalid "std"/, 'export std 0');
    assert.equal(existsSync(out), false);
  });
});

describe('damaged weights', { timeout: 120_000 }, () => {
  const dir = tempDir('cli-model-damage');

  it('a NaN or infinite weight is refused by predict, eval, export and convert --model, naming the tensor', () => {
    for (const [value, word] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity']] as const) {
      const state = models.create('resnet20', { numClasses: 10, inChannels: 1, seed: 3 }).stateDict();
      state['layer2.1.conv1.weight']!.data[17] = value;
      const file = writeModel(join(dir, `${word}.safetensors`), CARD, { state });
      const pattern = new RegExp(`^resnet: ${escape(file)}: tensor "layer2\\.1\\.conv1\\.weight" holds ${escape(word)} \\(value 18 of 9216\\)`);
      refusedByEveryReader(file, pattern, dir);
      oneLineError(runCli(['convert', file, join(dir, 'out.safetensors'), '--model', 'resnet20'], dir), pattern, 'convert --model');
    }
  });

  it('a changed byte in a tensor of a model file fails its checksum; a file without one (converted weights) still loads', () => {
    const file = join(dir, 'best.safetensors');
    saveModelFile(file, trained, CARD);
    const bytes = readFileSync(file);
    bytes[bytes.length - 1000]! ^= 0x40;
    writeFileSync(file, bytes);
    refusedByEveryReader(file, new RegExp(`^resnet: ${escape(file)}: checksum mismatch: the model file is damaged \\(its weights or metadata changed after it was written\\)$`), dir);

    const unchecked = writeModel(join(dir, 'unchecked.safetensors'), CARD, { checksum: false });
    const r = runCli(['export', unchecked, '-o', join(dir, 'unchecked.onnx')], dir);
    assert.equal(r.status, 0, r.stderr);
  });

  it('a flipped byte inside a tensor entry of a .pth fails that entry\'s CRC-32, in convert and export', () => {
    const bytes = readFileSync(ioFixturePath('small.pth'));
    const entry = zipEntry(bytes, 'archive/data/9');
    bytes[entry.start + 5]! ^= 0x01;
    const file = join(dir, 'flipped.pth');
    writeFileSync(file, bytes);
    const pattern = new RegExp(`^resnet: ${escape(file)}: zip entry archive/data/9 is damaged: its CRC-32 is 0x[0-9a-f]{8} but the archive records 0x${entry.crc.toString(16).padStart(8, '0')} \\(a changed byte\\); download or copy the file again$`);
    oneLineError(runCli(['convert', file, join(dir, 'flipped.safetensors')], dir), pattern, 'convert');
    oneLineError(runCli(['export', file, '--model', 'resnet20', '-o', join(dir, 'flipped.onnx')], dir), pattern, 'export');
    assert.equal(existsSync(join(dir, 'flipped.safetensors')), false);
  });

  it('an empty or cut .pth is called empty or truncated, not "not a valid safetensors file"', () => {
    const empty = join(dir, 'empty.pth');
    writeFileSync(empty, new Uint8Array(0));
    oneLineError(runCli(['convert', empty, join(dir, 'e.safetensors')], dir), new RegExp(`^resnet: ${escape(empty)}: the file is empty \\(0 bytes\\)`), 'empty');
    const cut = join(dir, 'cut.pth');
    writeFileSync(cut, readFileSync(ioFixturePath('small.pth')).subarray(0, 3));
    oneLineError(runCli(['convert', cut, join(dir, 'c.safetensors')], dir), new RegExp(`^resnet: ${escape(cut)}: 3 bytes is too short for the zip archive torch\\.save writes \\(truncated\\?\\)$`), 'cut');
  });
});

describe('paths and sizes the commands cannot use', { timeout: 120_000 }, () => {
  const dir = tempDir('cli-model-paths');
  const model = writeModel(join(dir, 'model.safetensors'), CARD);
  const aFile = join(dir, 'notes.txt');
  writeFileSync(aFile, 'not a folder\n');
  const folder = join(dir, 'folder');
  mkdirSync(folder);

  it('summary --width 100000 and --num-classes 10^11 are refused before anything is allocated', () => {
    oneLineError(runCli(['summary', 'resnet20', '--width', '100000']), /^resnet: resnet20 with --width 100000 has 2\.65e\+15 weights, [\d.]+ TB, more than the [\d.]+ [GMT]B of memory available; choose a smaller --width$/, 'width');
    oneLineError(runCli(['summary', 'resnet18', '--num-classes', '100000000000']), /resnet18 with --num-classes 100000000000 has 5\.13e\+13 weights/, 'classes');
  });

  it('a folder where a file is expected, and an output inside a file, name the path', () => {
    oneLineError(runCli(['export', folder]), new RegExp(`^resnet: ${escape(folder)}: is a folder without best\\.safetensors or final\\.safetensors`), 'export DIR');
    oneLineError(runCli(['convert', folder, join(dir, 'x.safetensors')]), new RegExp(`^resnet: ${escape(folder)}: is a folder, expected a weights file$`), 'convert DIR');
    oneLineError(runCli(['export', model, '-o', join(aFile, 'm.onnx')]), new RegExp(`^resnet: -o ${escape(join(aFile, 'm.onnx'))}: ${escape(aFile)} is a file, not a folder$`), 'export -o FILE/x');
    oneLineError(runCli(['export', model, '-o', folder]), new RegExp(`^resnet: -o ${escape(folder)}: is a folder; give a file name$`), 'export -o DIR');
    oneLineError(runCli(['convert', model, join(aFile, 'm.safetensors')]), new RegExp(`^resnet: ${escape(join(aFile, 'm.safetensors'))}: ${escape(aFile)} is a file, not a folder$`), 'convert OUT in a file');
    oneLineError(runCli(['convert', model, join(dir, 'missing', 'm.safetensors')]), /: the folder .*missing does not exist$/, 'convert OUT in no folder');
    // A run folder works where a model file does.
    const run = join(dir, 'run');
    mkdirSync(run);
    writeModel(join(run, 'best.safetensors'), CARD);
    const r = runCli(['export', run, '-o', join(dir, 'run.onnx')]);
    assert.equal(r.status, 0, r.stderr);
  });

  it('a wrong --classes count names --classes, a wrong --mean count names --mean, a mismatch gives no library advice', () => {
    const classes = join(dir, 'classes.txt');
    writeFileSync(classes, 'shirt\nshoe\n');
    oneLineError(runCli(['export', model, '--classes', classes, '-o', join(dir, 'c.onnx')]),
      new RegExp(`^resnet: --classes ${escape(classes)}: 2 class names for a model with 10 outputs; give one name per line, one line per output$`), 'classes');
    oneLineError(runCli(['export', model, '--mean', '0.5,0.5,0.5', '--std', '0.2,0.2,0.2', '-o', join(dir, 'c.onnx')]),
      /^resnet: --mean and --std: 3 values each for a model of 1 input channel; give one per channel$/, 'mean');
    oneLineError(runCli(['export', model, '--mean', '0.5', '--std', '0', '-o', join(dir, 'c.onnx')]), /--std 0: every standard deviation must be > 0/, 'std');
    oneLineError(runCli(['export', model, '--model', 'resnet32', '-o', join(dir, 'c.onnx')]),
      /the weights do not fit resnet32: missing keys: layer1\.3\.conv1\.weight, .* \(72 in all\); check --model \(resnet summary resnet32 lists its layers\)$/, 'resnet32');
    oneLineError(runCli(['export', model, '--model', 'resnet20', '--width', '1000', '-o', join(dir, 'c.onnx')], undefined, BOUND_MS),
      /the weights do not fit resnet20 at width 1000: layer1\.0\.conv1\.weight has shape \[16, 16, 3, 3\] in the file, the model has \[16000, 16, 3, 3\]; check --model and --width/, 'width flag');
  });
});

/** Where an entry's stored bytes lie in a zip, and the CRC-32 its central-directory record holds. */
function zipEntry(zip: Uint8Array, name: string): { start: number; crc: number } {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const directory = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength).indexOf(Uint8Array.from([0x50, 0x4b, 0x01, 0x02]));
  for (let at = directory; view.getUint32(at, true) === 0x02014b50;) {
    const nameLength = view.getUint16(at + 28, true);
    const local = view.getUint32(at + 42, true);
    if (new TextDecoder().decode(zip.subarray(at + 46, at + 46 + nameLength)) === name) {
      return { start: local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true), crc: view.getUint32(at + 16, true) };
    }
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  throw new Error(`no entry ${name}`);
}
