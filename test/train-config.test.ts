import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, DEFAULT_CONFIG, FIELD_KEYS, finishConfig, mergeConfig } from '../src/train/config.js';
import { budget, buildScheduler } from '../src/train/schedule.js';
import { SGD } from '../src/optim/sgd.js';
import { Parameter } from '../src/nn/module.js';
import { prepareRun } from '../src/train/setup.js';
import { BasicBlock } from '../src/models/blocks.js';
import { tempDir, writeIdxFolder } from './helpers/data-files.js';

describe('training config', () => {
  it('layers a JSON object over the defaults', () => {
    const c = mergeConfig({ ...DEFAULT_CONFIG }, { lr: 0.05, milestones: [10, 20], ema: 0.999, flip: false }, 'r.json');
    assert.equal(c.lr, 0.05);
    assert.deepEqual(c.milestones, [10, 20]);
    assert.equal(c.ema, 0.999);
    assert.equal(c.flip, false);
    assert.equal(c.model, 'resnet20');
  });

  it('names the file and the field of a bad value', () => {
    assert.throws(() => mergeConfig({ ...DEFAULT_CONFIG }, { lr: -1 }, 'r.json'),
      new ConfigError('r.json: .lr must be a number > 0, got -1'));
    assert.throws(() => mergeConfig({ ...DEFAULT_CONFIG }, { batchSize: 12.5 }, 'r.json'), /r\.json: \.batchSize must be an integer >= 1 and <= 65536, got 12.5/);
    assert.throws(() => mergeConfig({ ...DEFAULT_CONFIG }, { schedule: 'linear' }, 'r.json'), /r\.json: \.schedule must be one of step, cosine, onecycle, constant, got "linear"/);
    assert.throws(() => mergeConfig({ ...DEFAULT_CONFIG }, { std: [0.3, 0] }, 'r.json'), /r\.json: \.std\[1\] must be a number > 0, got 0/);
    assert.throws(() => mergeConfig({ ...DEFAULT_CONFIG }, { lr: '0.1' }, 'x', (k) => `--${k}`), /^ConfigError: --lr must be a number > 0, got "0.1"$/);
  });

  it('test-time augmentation and the evaluation interval are checked fields', () => {
    const c = mergeConfig({ ...DEFAULT_CONFIG }, { tta: 'flip-translate', evalEvery: 0 }, 'r.json');
    assert.equal(c.tta, 'flip-translate');
    assert.equal(c.evalEvery, 0);
    assert.equal(DEFAULT_CONFIG.tta, 'none');
    assert.equal(DEFAULT_CONFIG.evalEvery, 1);
    assert.throws(() => mergeConfig({ ...DEFAULT_CONFIG }, { tta: 'mirror' }, 'r.json'), /r\.json: \.tta must be one of none, flip, flip-translate, got "mirror"/);
    assert.throws(() => mergeConfig({ ...DEFAULT_CONFIG }, { evalEvery: -1 }, 'r.json'), /r\.json: \.evalEvery must be an integer >= 0, got -1/);
  });

  it('rejects an unknown field with a suggestion, and a non-object', () => {
    assert.throws(() => mergeConfig({ ...DEFAULT_CONFIG }, { batch_size: 64 }, 'r.json'), /r\.json: unknown field "batch_size"; did you mean "batchSize"\?/);
    assert.throws(() => mergeConfig({ ...DEFAULT_CONFIG }, [1], 'r.json'), /expected a JSON object of training settings, got an array/);
  });

  it('giving iterations clears the default epochs; both given is an error', () => {
    const c = finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, { iterations: 100 }, 'f'), 'f');
    assert.equal(c.epochs, null);
    assert.equal(c.iterations, 100);
    assert.throws(() => finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, { iterations: 100, epochs: 3 }, 'f'), 'f'), /f: give either \.epochs or \.iterations, not both/);
    assert.throws(() => finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, { mean: [0.5] }, 'f'), 'f'), /f: give \.mean and \.std together/);
  });

  it('the benchmark recipes in recipes/ are valid configs', () => {
    const dir = fileURLToPath(new URL('../../recipes/', import.meta.url));
    const names = readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.ok(names.length >= 3, names.join(', '));
    for (const name of names) {
      const file = join(dir, name);
      const c = finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, JSON.parse(readFileSync(file, 'utf8')), file), file);
      assert.equal(c.model, 'resnet20');
      assert.equal(c.dataset, 'fashion-mnist');
    }
  });

  it('every field has a default', () => {
    for (const k of FIELD_KEYS) assert.ok(k in DEFAULT_CONFIG, k);
  });
});

describe('schedules from a recipe', () => {
  const optimizer = (): SGD => new SGD([new Parameter(new Float32Array(1), [1])], { lr: 0.1, momentum: 0.9 });
  const lrs = (c: typeof DEFAULT_CONFIG, spe: number): number[] => {
    const opt = optimizer();
    const b = budget(c, spe);
    const s = buildScheduler(opt, c, b);
    const out: number[] = [];
    for (let t = 0; t < b.totalSteps; t++) {
      out.push(opt.paramGroups[0]!.lr);
      s.step();
    }
    return out;
  };

  it('step milestones are in epochs with --epochs and in iterations with --iterations', () => {
    const byEpoch = lrs({ ...DEFAULT_CONFIG, schedule: 'step', epochs: 4, milestones: [2, 3], warmup: 0 }, 5);
    assert.equal(byEpoch.length, 20);
    assert.ok(Math.abs(byEpoch[9]! - 0.1) < 1e-12 && Math.abs(byEpoch[10]! - 0.01) < 1e-12 && Math.abs(byEpoch[15]! - 0.001) < 1e-12);
    const byIter = lrs({ ...DEFAULT_CONFIG, schedule: 'step', epochs: null, iterations: 8, milestones: [4, 6], warmup: 0 }, 100);
    assert.deepEqual(byIter.map((x) => +x.toPrecision(6)), [0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]);
  });

  it('default step milestones are 50% and 75% of the run; warmup ramps linearly first', () => {
    const l = lrs({ ...DEFAULT_CONFIG, schedule: 'step', epochs: 5, warmup: 1 }, 4);
    assert.ok(Math.abs(l[0]! - 0.1 / 3) < 1e-12, 'warmup starts at lr / 3');
    assert.ok(l[1]! > l[0]! && l[3]! < 0.1 && Math.abs(l[4]! - 0.1) < 1e-12);
    assert.ok(Math.abs(l[9]! - 0.1) < 1e-12 && Math.abs(l[10]! - 0.01) < 1e-12 && Math.abs(l[15]! - 0.001) < 1e-12);
  });

  it('the warmup takes at most a fifth of the run', () => {
    const l = lrs({ ...DEFAULT_CONFIG, schedule: 'cosine', epochs: 1, warmup: 1 }, 50);
    assert.ok(l[9]! < 0.1 && Math.abs(l[10]! - 0.1) < 1e-12, 'peak after 10 of 50 steps');
  });

  it('cosine with warmup peaks after the warmup and falls towards zero', () => {
    const l = lrs({ ...DEFAULT_CONFIG, schedule: 'cosine', epochs: 10, warmup: 1 }, 10);
    assert.ok(Math.abs(l[10]! - 0.1) < 1e-12);
    assert.ok(l.slice(10).every((v, i, a) => i === 0 || v <= a[i - 1]!));
    assert.ok(l[99]! < 1e-3);
  });

  it('--fine-tune-epochs runs the schedule afresh in each phase (fastai fine_tune)', () => {
    const spe = 10;
    const phased = lrs({ ...DEFAULT_CONFIG, schedule: 'cosine', epochs: 5, warmup: 0, weights: 'w.safetensors', fineTuneEpochs: 2 }, spe);
    const head = lrs({ ...DEFAULT_CONFIG, schedule: 'cosine', epochs: 2, warmup: 0 }, spe);
    const rest = lrs({ ...DEFAULT_CONFIG, schedule: 'cosine', epochs: 3, warmup: 0 }, spe);
    assert.equal(phased.length, 50);
    for (let t = 0; t < 50; t++) {
      const want = t < 20 ? head[t]! : rest[t - 20]!;
      assert.ok(Math.abs(phased[t]! - want) < 1e-12, `step ${t}: ${phased[t]} against ${want}`);
    }
    assert.ok(phased[19]! < 0.01 && Math.abs(phased[20]! - 0.1) < 1e-12, 'back to the peak when everything starts training');
  });

  it('zeroInitResidual starts every residual branch at zero, and is refused for plain nets', async () => {
    const data = tempDir('zero-init');
    writeIdxFolder(data, 16, 8);
    const recipe = (model: string, zero: boolean) => finishConfig(mergeConfig({ ...DEFAULT_CONFIG },
      { model, data, epochs: 1, batchSize: 8, zeroInitResidual: zero }, 'test'), 'test');
    const zeroed = (await prepareRun(recipe('resnet14', true))).model;
    const plain = (await prepareRun(recipe('resnet14', false))).model;
    const blocks = (m: typeof zeroed) => m.namedModules().map(([, x]) => x).filter((x): x is BasicBlock => x instanceof BasicBlock);
    assert.equal(blocks(zeroed).length, 6);
    for (const [a, b] of blocks(zeroed).map((blk, i) => [blk, blocks(plain)[i]!] as const)) {
      assert.ok(a.bn2.weight.data.every((v) => v === 0), 'the last BN scale of each block is zero');
      assert.ok(b.bn2.weight.data.every((v) => v === 1), 'and one without the option');
      assert.deepEqual(a.conv1.weight.data, b.conv1.weight.data, 'the rest of the initialisation is unchanged');
    }
    await assert.rejects(prepareRun(recipe('plain20', true)), /PlainBlock has no residual branch to start at zero/);
  });
});
