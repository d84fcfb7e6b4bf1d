// `resnet train` handed what a careless or hostile user might hand it: a decompression
// bomb as a data set, a file as --out, a --name that climbs out of --out, symbolic links
// that lead nowhere, numbers in hexadecimal or out of all proportion, settings that do
// not apply to the data set, a run folder that does not exist or whose every checkpoint
// is damaged. Each is one line on stderr naming the flag or file, and exit status 2.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { assertUsageError, runCli } from './helpers/cli.js';
import { idxBytes, solid, syntheticIdx, tempDir, writeIdxFolder, writeImage } from './helpers/data-files.js';


/** A run on 64 synthetic 28x28 images (16 test images): a second or two. */
const SHORT = ['--epochs', '1', '--batch-size', '32', '--no-progress'];

describe('resnet train refuses hostile input with one line and exit status 2', { timeout: 120_000 }, () => {
  const dir = tempDir('cli-hostile');
  const data = join(dir, 'idx');
  writeIdxFolder(data, 64, 16, 28, 28, true);
  const out = join(dir, 'runs');
  /** Where a check is missing, the run these flags make is still short. */
  const tiny = ['--data', data, '--out', out, '--epochs', '1', '--batch-size', '32', '--no-progress'];

  it('an IDX .gz that inflates to more than its header declares (a decompression bomb)', () => {
    const bomb = join(dir, 'bomb');
    writeIdxFolder(bomb, 10, 4, 28, 28, true);
    const { images } = syntheticIdx(10, 28, 28);
    const file = join(bomb, 'train-images-idx3-ubyte.gz');
    writeFileSync(file, gzipSync(Buffer.concat([idxBytes([10, 28, 28], images), Buffer.alloc(20 << 20)]), { level: 1 }));
    assertUsageError(runCli(['train', '--data', bomb, '--out', out, ...SHORT]),
      new RegExp(`^resnet: ${file}: the file inflates to more than its header declares \\(10x28x28 = 7840 values\\); .*download it again$`));
  });

  it('--out naming a file, or a path through a file', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a folder');
    assertUsageError(runCli(['train', '--data', data, '--out', file, ...SHORT]),
      new RegExp(`^resnet: --out ${file}: is a file, not a folder; give the folder to make the run folder in$`));
    assertUsageError(runCli(['train', '--data', data, '--out', join(file, 'runs'), ...SHORT]),
      new RegExp(`^resnet: --out ${join(file, 'runs')}: ${file} is a file, not a folder; give the folder to make the run folder in$`));
    assertUsageError(runCli(['degradation', '--data', data, '--subset', '64', '--test-subset', '16', '--epochs', '1', '--depths', '20', '--family', 'plain', '--out', file]),
      new RegExp(`^resnet: --out ${file}: is a file, not a folder; give the folder to make the experiment folder in$`));
  });

  it('--name with a path separator or .., on the command line and in a config file', () => {
    for (const name of ['../../x', 'a/b', '..', '.']) {
      assertUsageError(runCli(['train', '--data', data, '--out', out, '--name', name, ...SHORT]),
        /^resnet: --name must be a folder name without \/, \\ or \.\. \(the run folder is made in --out\), got "/);
    }
    const cfg = join(dir, 'name.json');
    writeFileSync(cfg, JSON.stringify({ name: '../escape', data, out, epochs: 1 }));
    assertUsageError(runCli(['train', '--config', cfg]), /name\.json: \.name must be a folder name without/);
    assertUsageError(runCli(['degradation', '--data', data, '--subset', '64', '--test-subset', '16', '--epochs', '1', '--depths', '20', '--family', 'plain', '--out', out, '--name', '../x']), /^resnet: --name must be a folder name without/);
    assert.deepEqual(readdirSync(dir).filter((n) => n === 'x' || n === 'escape'), [], 'nothing was written outside --out');
  });

  it('numbers written other than in decimal, and budgets out of all proportion', () => {
    assertUsageError(runCli(['train', ...tiny, '--lr', '0x10']), /^resnet: --lr must be a number > 0, got "0x10"$/);
    assertUsageError(runCli(['train', ...tiny, '--subset', '0b11']), /^resnet: --subset must be an integer >= 1, got "0b11"$/);
    assertUsageError(runCli(['train', ...tiny, '--milestones', '0x10,20']), /^resnet: --milestones must be a non-empty list of numbers >= 0, got "0x10,20"$/);
    assertUsageError(runCli(['degradation', '--data', data, '--subset', '64', '--test-subset', '16', '--epochs', '1', '--depths', '20', '--family', 'plain', '--out', out, '--lr', '0x10']), /^resnet: --lr must be a number > 0, got "0x10"$/);
    assertUsageError(runCli(['train', ...tiny, '--epochs', '1e9'], undefined, 30_000), /^resnet: --epochs must be an integer >= 1 and <= 100000, got 1000000000$/);
    assertUsageError(runCli(['train', ...tiny, '--seed', '1e30']), /^resnet: --seed must be an integer >= 0 and <= 4294967295, got 1e\+30$/);
    const cfg = join(dir, 'huge.json');
    writeFileSync(cfg, `{"epochs": 1e400, "data": ${JSON.stringify(data)}, "out": ${JSON.stringify(out)}}`);
    assertUsageError(runCli(['train', '--config', cfg]), /huge\.json: \.epochs must be an integer >= 1 and <= 100000, got Infinity, which is not a finite number$/);
    writeFileSync(cfg, `{"epochs": 1e9, "data": ${JSON.stringify(data)}, "out": ${JSON.stringify(out)}}`);
    assertUsageError(runCli(['train', '--config', cfg], undefined, 30_000), /huge\.json: \.epochs must be an integer >= 1 and <= 100000, got 1000000000$/);
  });

  it('--subset and --test-subset larger than the data set, on the command line and in a config file', () => {
    assertUsageError(runCli(['train', '--data', data, '--subset', '100', '--out', out, ...SHORT]),
      /^resnet: --subset 100 is more than the 64 training images of fashion-mnist\/train; give at most 64, or leave it out to train on all$/);
    assertUsageError(runCli(['train', '--data', data, '--val-split', '10', '--subset', '60', '--out', out, ...SHORT]),
      /^resnet: --subset 60 is more than the 54 training images of fashion-mnist\/train\[54\]; give at most 54/);
    assertUsageError(runCli(['train', '--data', data, '--test-subset', '17', '--out', out, ...SHORT]),
      /^resnet: --test-subset 17 is more than the 16 test images of fashion-mnist\/test; give at most 16, or leave it out to evaluate on all$/);
    const cfg = join(dir, 'subset.json');
    writeFileSync(cfg, JSON.stringify({ data, subset: 65, epochs: 1, out }));
    assertUsageError(runCli(['train', '--config', cfg, '--no-progress']), /subset\.json: \.subset 65 is more than the 64 training images/);
  });

  it('--warmup longer than a fifth of the run, on the command line and in a config file', () => {
    assertUsageError(runCli(['train', '--data', data, '--warmup', '1', '--epochs', '2', '--batch-size', '32', '--out', out, '--no-progress']),
      /^resnet: --warmup 1 is longer than a fifth of the run \(2 epochs of 2 steps\); give at most 0\.4, or 0 for none$/);
    assertUsageError(runCli(['train', '--data', data, '--warmup', '3', '--iterations', '10', '--out', out, '--no-progress']),
      /^resnet: --warmup 3 is longer than a fifth of the run \(10 iterations\); give at most 2, or 0 for none$/);
    const cfg = join(dir, 'warmup.json');
    writeFileSync(cfg, JSON.stringify({ data, warmup: 2, epochs: 5, batchSize: 32, out }));
    assertUsageError(runCli(['train', '--config', cfg, '--no-progress']), /warmup\.json: \.warmup 2 is longer than a fifth of the run \(5 epochs of 2 steps\); give at most 1,/);
  });

  it('image-folder settings for an IDX data set, --coarse for a data set without superclasses', () => {
    assertUsageError(runCli(['train', ...tiny, '--image-size', '32']),
      /^resnet: the command line: --image-size is for image folders \(--dataset folder\); fashion-mnist images keep their size: leave it out$/);
    assertUsageError(runCli(['train', ...tiny, '--channels', '3']), /^resnet: the command line: --channels is for image folders \(--dataset folder\)/);
    assertUsageError(runCli(['train', ...tiny, '--convert-images']), /^resnet: the command line: --convert-images is for image folders \(--dataset folder\)/);
    assertUsageError(runCli(['train', ...tiny, '--coarse']), /^resnet: the command line: --coarse is for --dataset cifar100 \(its 20 superclasses\); leave it out$/);
    const cfg = join(dir, 'size.json');
    writeFileSync(cfg, JSON.stringify({ imageSize: 32, data, out, epochs: 1 }));
    assertUsageError(runCli(['train', '--config', cfg]), /size\.json: \.imageSize is for image folders/);
  });

  it('--val-split with --test-subset: the run says which set is evaluated when', () => {
    const r = runCli(['train', '--data', data, '--val-split', '10', '--test-subset', '8', '--out', out, '--name', 'val', '--warmup', '0', ...SHORT]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /evaluating on 10 validation images \(--val-split\) after each epoch and on 8 test images \(--test-subset\) at the end;/);
    assert.match(r.stdout, /^test accuracy .* on 8 test images/m);
  });

  it('an image folder of one class, dangling and looping symbolic links in an image folder', async () => {
    const one = join(dir, 'one-class');
    for (let i = 0; i < 3; i++) await writeImage(join(one, 'cat', `${i}.png`), solid(8, 8, 3, [10 * i, 20, 30]), 8, 8, 3);
    assertUsageError(runCli(['train', '--dataset', 'folder', '--data', one, '--out', out, ...SHORT]),
      new RegExp(`^resnet: ${one}: has one class folder \\(cat\\); a classifier needs at least two: add a subfolder for each class$`));

    const links = join(dir, 'links');
    for (const c of ['a', 'b']) await writeImage(join(links, c, '1.png'), solid(8, 8, 3, [c === 'a' ? 0 : 200, 20, 30]), 8, 8, 3);
    const dangling = join(links, 'ghost');
    symlinkSync(join(dir, 'no-such-folder'), dangling);
    assertUsageError(runCli(['train', '--dataset', 'folder', '--data', links, '--out', out, ...SHORT]),
      new RegExp(`^resnet: ${dangling}: a symbolic link to ${join(dir, 'no-such-folder')}, which does not exist; remove the link or restore its target$`));
    rmSync(dangling);
    const loop = join(links, 'a', 'loop.png');
    symlinkSync(loop, loop);
    assertUsageError(runCli(['train', '--dataset', 'folder', '--data', links, '--out', out, ...SHORT]),
      new RegExp(`^resnet: ${loop}: a symbolic link that leads back to itself \\(a loop\\); remove it$`));
    rmSync(loop);
    const missing = join(links, 'b', 'gone.png');
    symlinkSync(join(dir, 'gone.png'), missing);
    assertUsageError(runCli(['train', '--dataset', 'folder', '--data', links, '--out', out, ...SHORT]),
      new RegExp(`^resnet: ${missing}: a symbolic link to ${join(dir, 'gone.png')}, which does not exist; remove the link or restore its target$`));
  });

  it('a CMYK JPEG is named as CMYK, not as RGBA', async () => {
    const root = join(dir, 'cmyk');
    await writeImage(join(root, 'a', '1.png'), solid(8, 8, 3, [10, 20, 30]), 8, 8, 3);
    const sharp = (await import('sharp')).default;
    const cmyk = join(root, 'b', '1.jpg');
    mkdirSync(join(root, 'b'));
    writeFileSync(cmyk, await sharp(Buffer.from(solid(8, 8, 3, [200, 40, 30])), { raw: { width: 8, height: 8, channels: 3 } })
      .toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer());
    assertUsageError(runCli(['train', '--dataset', 'folder', '--data', root, '--out', out, ...SHORT]),
      new RegExp(`^resnet: ${cmyk}: image is CMYK \\(4 channels\\), expected 3 \\(RGB\\); convert the image, or let the reader convert it \\(--convert-images\\)$`));
  });

  it('--resume of a folder that does not exist, or of a run whose every checkpoint is damaged', () => {
    assertUsageError(runCli(['train', '--resume', join(dir, 'nope')]),
      new RegExp(`^resnet: ${join(dir, 'nope')}: no such folder; give the folder a \`resnet train\` run wrote$`));
    const r = runCli(['train', '--data', data, '--out', out, '--name', 'damaged', '--warmup', '0', '--checkpoint-every', '1', '--keep-checkpoints', '2', ...SHORT]);
    assert.equal(r.status, 0, r.stderr);
    const runDir = join(out, 'damaged');
    const ckpts = join(runDir, 'checkpoints');
    const names = readdirSync(ckpts).sort();
    assert.equal(names.length, 2);
    for (const n of names) writeFileSync(join(ckpts, n), readFileSync(join(ckpts, n)).subarray(0, 100));
    const metricsBefore = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8');
    const stepsBefore = readFileSync(join(runDir, 'steps.jsonl'), 'utf8');
    assertUsageError(runCli(['train', '--resume', runDir]),
      new RegExp(`^resnet: ${runDir}: none of its 2 checkpoints can be read \\(the newest, ${join(ckpts, names[1]!)}: .*\\); ` +
        'resuming would start the run again from step 0: add --restart-if-damaged to do that, or put back a good checkpoint$'));
    assert.equal(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8'), metricsBefore, 'the logs are left as they were');
    assert.equal(readFileSync(join(runDir, 'steps.jsonl'), 'utf8'), stepsBefore);
    const restarted = runCli(['train', '--resume', runDir, '--restart-if-damaged', '--no-progress']);
    assert.equal(restarted.status, 0, restarted.stderr);
    assert.match(restarted.stderr, /resnet: removed 2 damaged checkpoints; starting the run again from step 0 \(--restart-if-damaged\)/);
    assert.match(restarted.stdout, /^test accuracy /m);
    assertUsageError(runCli(['train', ...tiny, '--restart-if-damaged']), /^resnet: --restart-if-damaged goes with --resume/);
    assert.match(runCli(['train', '--help']).stdout, /--restart-if-damaged/);
  });
});
