// Hostile training files: hundreds of damaged recipe files (`--config`) and training
// checkpoints. A recipe loads or fails with one ConfigError line that names the file and,
// for a bad value, the path of the field (`recipe.json: .lr must be ...`). A checkpoint
// whose bytes changed in any way never loads: its SHA-256 checksum or its structure
// gives a one-line WeightsFileError naming the file.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WeightsFileError } from '../src/io/errors.js';
import { SGD } from '../src/optim/sgd.js';
import { Rng } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { loadCheckpoint, restoreCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { ConfigError, DEFAULT_CONFIG, FIELD_KEYS, FIELDS, type TrainConfig } from '../src/train/config.js';
import { loadConfigFile, MAX_CONFIG_BYTES } from '../src/train/config-file.js';
import { CosineAnnealingLR } from '../src/optim/schedules.js';
import { tempDir } from './helpers/data-files.js';
import { mutants, outcome, Tally } from './helpers/fuzz.js';
import { TinyNet } from './helpers/tiny-net.js';

const RECIPE = {
  model: 'resnet20', dataset: 'cifar10', data: '/data/cifar-10-batches-bin', iterations: 64000, batchSize: 128, lr: 0.1,
  momentum: 0.9, nesterov: false, weightDecay: 1e-4, decayAll: true, schedule: 'step', milestones: [32000, 48000], gamma: 0.1,
  warmup: 0, labelSmoothing: 0, valSplit: 5000, seed: 3, ema: null, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26],
  checkpointEvery: 500,
};

/** Every field of a loaded config passes its own check: nothing unchecked slipped through. */
function assertValidConfig(c: TrainConfig, what: string): void {
  for (const k of FIELD_KEYS) FIELDS[k].check(c[k], `${what}: ${k}`);
  assert.ok((c.epochs === null) !== (c.iterations === null), `${what}: exactly one budget`);
}

describe('recipe files (--config) on damaged and wrong input', { timeout: 30_000 }, () => {
  const dir = tempDir('fuzz-config');
  const file = join(dir, 'recipe.json');
  const valid = new TextEncoder().encode(JSON.stringify(RECIPE, null, 2));
  const tally = new Tally();

  async function check(bytes: Uint8Array | string, what: string): Promise<'loaded' | 'rejected'> {
    writeFileSync(file, bytes);
    const o = await outcome(() => assertValidConfig(loadConfigFile(file), what), { cls: ConfigError, names: [file], what, ms: 2000 });
    tally.add(o);
    return o;
  }

  it('loads the valid recipe, also with a byte-order mark', async () => {
    assert.equal(await check(valid, 'valid'), 'loaded');
    assert.equal(await check(`\ufeff${JSON.stringify(RECIPE)}`, 'BOM'), 'loaded');
    assert.equal(loadConfigFile(file).checkpointEvery, 500);
  });

  it('every truncation and hundreds of damaged copies', async () => {
    for (let n = 0; n < valid.length; n += 3) await check(valid.subarray(0, n), `cut at ${n}`);
    for (const m of mutants(valid, 300, 11, valid.length)) await check(m.bytes, m.what);
  });

  it('a wrong value in any field names the file and the path of the field', async () => {
    const rng = new Rng(12);
    const wrong: unknown[] = ['fast', -1, 0, 1e300, -0.5, 2.5, true, null, [], {}, [1, 'x'], { lr: 1 }, 'x'.repeat(5000), ''];
    let checked = 0;
    for (const k of FIELD_KEYS) {
      for (let i = 0; i < 4; i++) {
        const v = wrong[rng.int(wrong.length)];
        const o = await check(JSON.stringify({ ...RECIPE, [k]: v }), `${k} = ${JSON.stringify(v)?.slice(0, 20)}`);
        if (o === 'rejected') {
          const message = captureMessage(() => loadConfigFile(file));
          // A bad value names its field; a legal value can still clash with another field (both named).
          assert.match(message, new RegExp(`^${escape(file)}: (.*\\.${k}\\b|.*\\.(epochs|iterations|mean|std|milestones)\\b)`), message);
          checked++;
        }
      }
    }
    assert.ok(checked > 80, `${checked} rejected values`);
    assert.equal(captureMessage(() => { writeFileSync(file, JSON.stringify({ ...RECIPE, lr: 'fast' })); loadConfigFile(file); }),
      `${file}: .lr must be a number > 0, got "fast"`);
    assert.equal(captureMessage(() => { writeFileSync(file, JSON.stringify({ ...RECIPE, milestones: [100, -3] })); loadConfigFile(file); }),
      `${file}: .milestones[1] must be a number >= 0, got -3`);
    assert.match(captureMessage(() => { writeFileSync(file, JSON.stringify({ ...RECIPE, model: 'resnet21' })); loadConfigFile(file); }),
      new RegExp(`^${escape(file)}: \\.model: unknown model "resnet21"\\. Did you mean resnet20\\?`));
    assert.match(captureMessage(() => { writeFileSync(file, JSON.stringify({ ...RECIPE, learningRate: 0.1 })); loadConfigFile(file); }),
      new RegExp(`^${escape(file)}: unknown field "learningRate"`));
    assert.match(captureMessage(() => { writeFileSync(file, JSON.stringify({ ...RECIPE, batchsize: 64 })); loadConfigFile(file); }),
      /unknown field "batchsize"; did you mean "batchSize"\?/);
  });

  it('not an object, not JSON, not text, too large, too deep, no file at all', async (t) => {
    const before = tally.rejected;
    const texts: (string | Uint8Array)[] = ['', ' ', '[]', '[1]', '1', '"recipe"', 'null', 'true', '{', '{"lr":}', "{'lr': 0.1}", '{"lr": NaN}',
      '{"lr": 0.1,}', '{"lr": 0.1}}', '{"lr": 1e999}', '\u0000', Uint8Array.from([0xff, 0xfe, 0x7b, 0x7d]), Uint8Array.from([0x7b, 0xc3, 0x28, 0x7d]),
      `${'['.repeat(200_000)}${']'.repeat(200_000)}`, `{"data": "${'x'.repeat(MAX_CONFIG_BYTES)}"}`,
      '{"__proto__": {"lr": 5}}', '{"constructor": 1}', '{"lr": 0.1, "lr": "fast"}'];
    for (const [i, t] of texts.entries()) await check(t, `text ${i}`);
    assert.equal(tally.rejected - before, texts.length, 'every one was rejected');
    for (const missing of [join(dir, 'nope.json'), dir]) {
      await outcome(() => loadConfigFile(missing), { cls: ConfigError, names: [missing], what: missing });
      assert.throws(() => loadConfigFile(missing), /no such file|is a folder/);
    }
    t.diagnostic(`recipes: ${tally.total} files, ${tally.loaded} loaded, ${tally.rejected} rejected`);
    assert.ok(tally.total >= 500, `${tally.total} files`);
  });
});

function captureMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error('expected an error');
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('training checkpoints on damaged files', { timeout: 30_000 }, () => {
  const dir = tempDir('fuzz-ckpt');
  const source = join(dir, 'step-000000003.safetensors');
  const model = new TinyNet(1, 3);
  const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  // A momentum buffer for every parameter, so they are in the file.
  for (const p of model.parameters()) p.grad = new Tensor(p.data.slice(), p.shape);
  optimizer.step();
  saveCheckpoint(source, {
    model, optimizer, ema: null, config: { ...DEFAULT_CONFIG },
    state: {
      epoch: 0, batchInEpoch: 3, step: 3, epochTotals: { lossSum: 1, lossCount: 2, correct: 1, seen: 2, skipped: 0, seconds: 0.5 },
      best: null, rng: new Rng(1).getState(), optimizerGroups: optimizer.stateDict().groups, emaUpdates: null,
    },
  });
  const valid = new Uint8Array(readFileSync(source));
  const file = join(dir, 'damaged.safetensors');
  const headerLength = Number(new DataView(valid.buffer).getBigUint64(0, true)) + 8;

  it('loads the valid checkpoint and puts it back into a fresh model', () => {
    const fresh = new TinyNet(1, 3, 9);
    const opt = new SGD(fresh.parameters(), { lr: 0.1, momentum: 0.9 });
    restoreCheckpoint(loadCheckpoint(source), { model: fresh, optimizer: opt, scheduler: new CosineAnnealingLR(opt, 10), ema: null });
    for (const [k, t] of Object.entries(model.stateDict())) assert.deepEqual(fresh.stateDict()[k]!.data, t.data, k);
  });

  it('no changed byte anywhere gets through: truncations, header and data damage all fail with a WeightsFileError', async (t) => {
    const tally = new Tally();
    const original = loadCheckpoint(source);
    const cases = mutants(valid, 300, 13, headerLength);
    const rng = new Rng(14);
    // Single replaced bytes in the tensor data: the checksum's job.
    for (let i = 0; i < 100; i++) {
      const bytes = valid.slice();
      const at = headerLength + rng.int(valid.length - headerLength);
      bytes[at] = (bytes[at]! + 1 + rng.int(255)) & 0xff;
      cases.push({ what: `data byte ${at} changed`, bytes });
    }
    for (const m of cases) {
      writeFileSync(file, m.bytes);
      const o = await outcome(() => {
        // What loads must be the checkpoint itself (a replaced byte of header padding changes nothing).
        const got = loadCheckpoint(file);
        assert.deepEqual(got.state, original.state, `${m.what}: another state loaded`);
        assert.deepEqual(Object.keys(got.tensors), Object.keys(original.tensors));
        for (const [k, t] of Object.entries(original.tensors)) assert.deepEqual(got.tensors[k]!.data, t.data, `${m.what}: ${k} loaded changed`);
      }, { cls: WeightsFileError, names: [file], what: m.what, ms: 2000 });
      tally.add(o);
    }
    t.diagnostic(`${tally.rejected} rejected, ${tally.loaded} loaded unchanged`);
    assert.ok(tally.rejected >= 390, `rejected ${tally.rejected} of ${tally.total}`);
  });

  it('a checkpoint of another model is refused when it is put back, naming the file', () => {
    const other = new TinyNet(3, 3);
    const opt = new SGD(other.parameters(), { lr: 0.1 });
    assert.throws(() => restoreCheckpoint(loadCheckpoint(source), { model: other, optimizer: opt, scheduler: new CosineAnnealingLR(opt, 10), ema: null }),
      (e: unknown) => e instanceof WeightsFileError && e.message.startsWith(`${source}: the model weights do not fit this run`) && !e.message.includes('\n'));
  });
});
