// `resnet train` end to end on a Fashion-MNIST subset, then `resnet eval` and
// `resnet predict` on what it wrote, and the one-line errors with exit status 2.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DataLoader, loadDataset, Normalize, randomSubset } from '../src/data/index.js';
import { evaluate } from '../src/train/metrics.js';
import { loadModelFile } from '../src/train/model-file.js';
import { idxBytes, solid, tempDir, writeImage, writeIdxFolder } from './helpers/data-files.js';
import { assertUsageError, runCli } from './helpers/cli.js';


describe('resnet train on Fashion-MNIST (end to end)', () => {
  const out = tempDir('cli-train');
  const runDir = join(out, 'e2e');
  let summary: { test: { top1: number; count: number } } | null = null;

  it('trains 2 epochs on 512 images, writes the run folder, the loss goes down', () => {
    const r = runCli(['train', '--subset', '512', '--test-subset', '1000', '--epochs', '2', '--batch-size', '32', '--lr', '0.05',
      '--out', out, '--name', 'e2e', '--no-progress']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^training resnet20 \(0\.27M parameters\) on fashion-mnist\/train\[512\]: 512 images 28x28x1/m);
    assert.match(r.stdout, /^epoch 1\/2 {2}train loss /m);
    assert.match(r.stdout, /^test accuracy \d+\.\d\d% \(top-5 \d+\.\d\d%, loss \d+\.\d{4}\) on 1000 test images after 2 epochs/m);
    assert.ok(r.stdout.trimEnd().endsWith(`run folder: ${runDir}`));
    for (const f of ['config.json', 'metrics.jsonl', 'best.safetensors', 'final.safetensors', 'summary.json']) {
      assert.ok(existsSync(join(runDir, f)), `${f} is missing`);
    }
    assert.ok(existsSync(join(runDir, 'checkpoints', 'step-000000032.safetensors')));
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config['model'], 'resnet20');
    assert.equal(config['subset'], 512);
    assert.equal((config['mean'] as number[]).length, 1);
    const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { epoch: number; trainLoss: number; eval: { loss: number; top1: number } });
    assert.deepEqual(metrics.map((m) => m.epoch), [1, 2]);
    assert.ok(metrics[1]!.trainLoss < metrics[0]!.trainLoss, `train loss ${metrics[0]!.trainLoss} -> ${metrics[1]!.trainLoss}`);
    assert.ok(metrics[1]!.eval.loss < 2.302, `test loss ${metrics[1]!.eval.loss} is not below chance (ln 10)`);
    summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as { test: { top1: number; count: number } };
    assert.equal(summary.test.count, 1000);
    assert.ok(summary.test.top1 > 0.3, `test accuracy ${summary.test.top1} is not above chance`);
  });

  it('resnet eval reproduces the test accuracy of the final weights and prints the tables', () => {
    assert.ok(summary, 'needs the training run above');
    const r = runCli(['eval', join(runDir, 'final.safetensors'), '--subset', '1000', '--json', '--no-progress']);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { top1: number; count: number; confusion: number[][] };
    assert.equal(result.count, 1000);
    assert.equal(result.top1, summary.test.top1);
    assert.equal(result.confusion.length, 10);
    const text = runCli(['eval', runDir, '--subset', '200', '--no-progress']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /top-1 accuracy \d+\.\d\d%/);
    assert.match(text.stdout, /^ {2}9 {2}Ankle boot/m);
    assert.match(text.stdout, /confusion matrix \(rows: true class, columns: predicted class\)/);
  });

  it('--eval-every 0 evaluates after the last epoch only, --tta flip scores the averaged logits', async () => {
    const r = runCli(['train', '--subset', '256', '--test-subset', '300', '--epochs', '2', '--batch-size', '64', '--lr', '0.05',
      '--eval-every', '0', '--tta', 'flip', '--out', out, '--name', 'tta', '--no-progress']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^test accuracy .* after 2 epochs \(\S+ of training, \S+ in all\)$/m);
    const dir = join(out, 'tta');
    const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { eval: unknown });
    assert.deepEqual(metrics.map((m) => m.eval === null), [true, false]);
    const saved = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { test: { top1: number; loss: number }; wallSeconds: number };
    assert.ok(saved.wallSeconds > 0);
    // The same weights and test images, scored here with and without the mirror images.
    const { model, card } = loadModelFile(join(dir, 'final.safetensors'));
    const test = randomSubset((await loadDataset({ name: 'fashion-mnist' })).test!, 300, 0);
    const loader = new DataLoader(test, { batchSize: 100, transform: new Normalize(card.mean, card.std) });
    const flipped = await evaluate(model, loader, 10, { tta: 'flip' });
    const plain = await evaluate(model, loader, 10);
    assert.ok(Math.abs(saved.test.loss - flipped.loss) < 1e-6, `run ${saved.test.loss}, flip ${flipped.loss}`);
    assert.equal(saved.test.top1, flipped.top1);
    assert.ok(Math.abs(plain.loss - flipped.loss) > 1e-4, 'the mirror images change the loss');
    // resnet eval --tta flip on the same images gives the run's own figures, and says which views it averaged.
    const cli = runCli(['eval', join(dir, 'final.safetensors'), '--subset', '300', '--tta', 'flip', '--json', '--no-progress']);
    assert.equal(cli.status, 0, cli.stderr);
    const viaCli = JSON.parse(cli.stdout) as { tta: string; top1: number; loss: number };
    assert.equal(viaCli.tta, 'flip');
    assert.equal(viaCli.top1, saved.test.top1);
    assert.ok(Math.abs(viaCli.loss - saved.test.loss) < 1e-6, `eval ${viaCli.loss}, run ${saved.test.loss}`);
    const text = runCli(['eval', join(dir, 'final.safetensors'), '--subset', '300', '--tta', 'flip-translate', '--no-progress']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^model \S+ on fashion-mnist\/test\[300\] \(300 images, fp32 precision, flip-translate test-time augmentation\)$/m);
  });

  it('--replicas 2 trains two models in worker threads on halves of each batch, says so, and exits', () => {
    const r = runCli(['train', '--subset', '512', '--test-subset', '300', '--epochs', '2', '--batch-size', '32', '--lr', '0.05',
      '--replicas', '2', '--out', out, '--name', 'replicas', '--no-progress']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /native backend, fp32 precision, 2 replicas sharing each batch\n|reference backend, fp32 precision, 2 replicas sharing each batch\n/);
    const metrics = readFileSync(join(out, 'replicas', 'metrics.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { trainLoss: number; eval: { top1: number } });
    assert.ok(metrics[1]!.trainLoss < metrics[0]!.trainLoss, `training loss ${metrics.map((m) => m.trainLoss).join(' -> ')}`);
    assert.ok(metrics[1]!.eval.top1 > 0.3, `test accuracy ${metrics[1]!.eval.top1}`);
  });

  it('resnet predict gives top-k classes for PNG and JPEG files, and rejects an RGB image for a greyscale model', async () => {
    assert.ok(summary, 'needs the training run above');
    const { test } = await loadDataset({ name: 'fashion-mnist' });
    const px = new Uint8Array(2 * 784);
    await test!.readImages([0, 1], px);
    const png = join(out, 'item0.png');
    const jpg = join(out, 'item1.jpg');
    await writeImage(png, px.subarray(0, 784), 28, 28, 1);
    await writeImage(jpg, px.subarray(784), 28, 28, 1, 'jpeg');
    const r = runCli(['predict', runDir, png, jpg, '--top-k', '3', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { file: string; top: { class: string; probability: number }[] }[];
    assert.equal(res.length, 2);
    for (const item of res) {
      assert.equal(item.top.length, 3);
      const p = item.top.map((t) => t.probability);
      assert.ok(p[0]! >= p[1]! && p[1]! >= p[2]! && p[0]! + p[1]! + p[2]! <= 1 + 1e-6);
    }
    const plain = runCli(['predict', runDir, png]);
    assert.match(plain.stdout, new RegExp(`^${png.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: [A-Za-z/ -]+ \\d+\\.\\d%, `));
    const rgb = join(out, 'colour.png');
    await writeImage(rgb, solid(28, 28, 3, [200, 10, 10]), 28, 28, 3);
    assertUsageError(runCli(['predict', runDir, rgb]), /colour\.png: image has 3 channels \(RGB\), expected 1 \(greyscale\)/);
    assert.equal(runCli(['predict', runDir, rgb, '--convert-images']).status, 0);
  });
});

describe('resnet train: bad input is one line and exit status 2', () => {
  const dir = tempDir('cli-errors');

  it('a missing data set folder', () => {
    assertUsageError(runCli(['train', '--data', join(dir, 'nowhere')]), /nowhere: no such folder; expected the fashion-mnist IDX files/);
  });

  it('a truncated images file', () => {
    const data = join(dir, 'trunc');
    writeIdxFolder(data, 20, 4, 28, 28, false);
    const file = join(data, 'train-images-idx3-ubyte');
    writeFileSync(file, readFileSync(file).subarray(0, 5000));
    assertUsageError(runCli(['train', '--data', data, '--out', dir]), new RegExp(`${file}: the file is truncated: its header says 20x28x28 = 15680 values`));
  });

  it('a labels file with a label out of range', () => {
    const data = join(dir, 'label');
    writeIdxFolder(data, 20, 4, 28, 28, false);
    const labels = Uint8Array.from({ length: 20 }, (_, i) => (i === 13 ? 10 : 1));
    writeFileSync(join(data, 'train-labels-idx1-ubyte'), idxBytes([20], labels));
    assertUsageError(runCli(['train', '--data', data, '--out', dir]), /train-labels-idx1-ubyte: label 10 of item 13 is out of range: expected 0\.\.9/);
  });

  it('bad flags, an unknown model, a bad config file, flags with --resume', () => {
    assertUsageError(runCli(['train', '--lr', '-1']), /--lr must be a number > 0, got -1$/);
    assertUsageError(runCli(['train', '--batch-size', 'many']), /--batch-size must be an integer >= 1 and <= 65536, got "many"$/);
    assertUsageError(runCli(['train', '--epochs', '2', '--iterations', '100']), /give either --epochs or --iterations, not both/);
    assertUsageError(runCli(['train', '--model', 'resnet21', '--subset', '10', '--test-subset', '10', '--out', dir]), /--model: unknown model "resnet21"\. Did you mean resnet20/);
    const cfg = join(dir, 'recipe.json');
    writeFileSync(cfg, JSON.stringify({ learningRate: 0.1 }));
    assertUsageError(runCli(['train', '--config', cfg]), /recipe\.json: unknown field "learningRate"/);
    writeFileSync(cfg, '{ "lr": 0.1,');
    assertUsageError(runCli(['train', '--config', cfg]), /recipe\.json: not valid JSON/);
    assertUsageError(runCli(['train', '--resume', dir, '--lr', '0.1']), /--resume continues a run with its saved config\.json; leave out --lr/);
    assertUsageError(runCli(['train', '--resume', join(dir, 'nothing')]), /nothing: no such folder; give the folder a `resnet train` run wrote/);
    assertUsageError(runCli(['train', '--resume', dir]), /not a run folder \(no config\.json\)/);
    assertUsageError(runCli(['eval', cfg]), /recipe\.json: /);
  });

  it('--help lists every recipe flag', () => {
    const r = runCli(['train', '--help']);
    assert.equal(r.status, 0);
    for (const flag of ['--model', '--dataset', '--data', '--subset', '--epochs', '--iterations', '--lr', '--nesterov', '--weight-decay',
      '--schedule', '--milestones', '--warmup', '--label-smoothing', '--ema', '--crop-padding', '--flip', '--random-erasing',
      '--val-split', '--resume', '--config', '--seed', '--on-nan', '--max-skipped', '--clip-grad-norm', '--restart-if-damaged']) {
      assert.ok(r.stdout.includes(flag), `${flag} missing from --help`);
    }
    for (const cmd of ['eval', 'predict']) assert.equal(runCli([cmd, '--help']).status, 0);
  });
});
