// `resnet degradation` end to end on a Fashion-MNIST subset (a tiny budget: this checks
// the experiment's records, figure, table and verdict, not the paper's result), its
// recipe and net checks, and its one-line errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { BUDGETS, budgetLabel, describeBudget, experimentRecipe, netsFor, PAPER_RECIPE, readDegradationRun } from '../src/experiments/degradation.js';
import { summarizeDegradation, tailLength, type DegradationSummary } from '../src/report/degradation-report.js';
import { assertUsageError, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/data-files.js';


test('the nets: every family at every depth, plain first, checked against the model registry', () => {
  assert.deepEqual(netsFor([56, 20], ['resnet', 'plain']).map((n) => `${n.name}=${n.model}`),
    ['plain-20=plain20', 'plain-56=plain56', 'resnet-20=resnet20', 'resnet-56=resnet56']);
  assert.deepEqual(netsFor([110], ['preact']).map((n) => n.model), ['preact_resnet110']);
  assert.throws(() => netsFor([21], ['plain']), /no plain net of depth 21; the depths built for this family are 20, 32, 44, 56, 110/);
  assert.throws(() => netsFor([], ['plain']), /at least one depth/);
});

test('the recipe: the paper\'s optimiser settings, the budget, then explicit overrides', () => {
  const quick = experimentRecipe({ budget: 'quick', dataset: 'fashion-mnist', data: null, seed: 3 });
  // Batch 32 at lr 0.05: four times the iterations of the paper's batch 128 on the same images.
  assert.deepEqual([quick.batchSize, quick.lr], [32, 0.05]);
  assert.equal(quick.momentum, 0.9);
  assert.equal(quick.weightDecay, 1e-4);
  assert.equal(quick.schedule, 'step');
  assert.equal(quick.labelSmoothing, 0);
  assert.equal(quick.seed, 3);
  assert.equal(quick.subset, BUDGETS.quick.settings.subset);
  assert.equal(quick.warmup, 1);
  assert.equal(quick.zeroInitResidual, false, 'the paper\'s initialisation');
  const paper = experimentRecipe({ budget: 'paper', dataset: 'fashion-mnist', data: null, seed: 0 });
  assert.deepEqual([paper.iterations, paper.epochs, paper.milestones, paper.warmup], [64000, null, [32000, 48000], 0]);
  assert.equal(paper.batchSize, PAPER_RECIPE.batchSize);
  // An epochs override replaces the paper budget's iterations; iterations replace epochs.
  const short = experimentRecipe({ budget: 'paper', dataset: 'fashion-mnist', data: null, seed: 0, overrides: { epochs: 2 } });
  assert.deepEqual([short.epochs, short.iterations], [2, null]);
  assert.match(describeBudget('paper'), /^the whole training set, 64,000 iterations of batch 128, lr 0\.1 divided by 10 at 32,000 and 48,000/);
  const q = BUDGETS.quick.settings;
  assert.equal(describeBudget('quick').split(';')[0], '12,000 training images, 9 epochs (3,375 iterations) of batch 32, lr 0.05 ' +
    'divided by 10 at 50% and 75%, after 1 epoch of linear warmup from lr/3');
  // The summary names only the overrides that change the budget.
  assert.equal(budgetLabel('quick', { epochs: q.epochs, subset: q.subset }), 'quick');
  assert.equal(budgetLabel('quick', { epochs: q.epochs! + 1, subset: q.subset }), `quick, with epochs ${q.epochs! + 1}`);
  assert.equal(budgetLabel('paper', { milestones: [1, 2] }), 'paper, with milestones 1,2');
  const iters = experimentRecipe({ budget: 'quick', dataset: 'fashion-mnist', data: null, seed: 0, overrides: { iterations: 50 } });
  assert.deepEqual([iters.epochs, iters.iterations, iters.milestones], [null, 50, null]);
});

test('resnet degradation trains every net with one recipe and writes records, figure, table and verdict', async () => {
  const out = tempDir('degradation');
  try {
    const args = ['degradation', '--depths', '20,32', '--subset', '96', '--test-subset', '50', '--epochs', '2',
      '--batch-size', '32', '--out', out, '--name', 'tiny', '--no-progress'];
    const r = runCli(args);
    assert.equal(r.status, 0, r.stderr);
    const dir = join(out, 'tiny');
    const names = ['plain-20', 'plain-32', 'resnet-20', 'resnet-32'];
    for (const f of ['experiment.json', 'summary.json', 'summary.md', 'degradation.svg', 'degradation.png',
      'degradation-loss.svg', 'degradation-loss.png', 'report.html']) {
      assert.ok(existsSync(join(dir, f)), `${f} is written`);
    }
    const recipes = names.map((n) => JSON.parse(readFileSync(join(dir, n, 'config.json'), 'utf8')) as Record<string, unknown>);
    for (const [i, c] of recipes.entries()) {
      assert.equal(c.model, names[i]!.replace('-', ''));
      // One recipe for all: the configs differ in the model and the folder name only.
      assert.deepEqual({ ...c, model: null, name: null }, { ...recipes[0], model: null, name: null });
    }
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as DegradationSummary;
    assert.deepEqual(summary.nets.map((n) => n.name), names);
    for (const [i, name] of names.entries()) {
      const steps = readFileSync(join(dir, name, 'steps.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
      // 96 images in batches of 32: 3 iterations an epoch, 6 in all, each recorded.
      assert.deepEqual(steps.map((s) => s.step), [1, 2, 3, 4, 5, 6]);
      const metrics = readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').trim().split('\n');
      assert.equal(metrics.length, 2);
      const n = tailLength(steps.length);
      const expected = steps.slice(-n).reduce((a, s) => a + s.loss, 0) / n;
      assert.ok(Math.abs(summary.nets[i]!.trainLoss - expected) < 1e-9, `${name}: final loss ${summary.nets[i]!.trainLoss} vs ${expected}`);
      assert.ok(existsSync(join(dir, name, 'report.html')), `${name} has its own report`);
    }
    // The verdict follows from the recorded losses.
    const recomputed = summarizeDegradation(readDegradationRun(dir));
    assert.equal(summary.verdict, recomputed.verdict);
    assert.equal(summary.reproduced, summary.nets[1]!.trainLoss > summary.nets[0]!.trainLoss && summary.nets[3]!.trainLoss <= summary.nets[2]!.trainLoss);
    assert.match(summary.verdict, /plain-32 ends .* plain-20 .*resnet-32 ends .* resnet-20/);
    const md = readFileSync(join(dir, 'summary.md'), 'utf8');
    assert.match(md, /^\| plain-20 \| 269k \| 6 \| /m);
    assert.ok(r.stdout.includes(md.split('\n')[2]!), 'the table is printed');
    assert.ok(md.includes(summary.verdict));
    const svg = readFileSync(join(dir, 'degradation.svg'), 'utf8');
    assert.equal((svg.match(/class="series"/g) ?? []).length, 8, 'training and test error of 4 nets');
    const width = Number(/<svg[^>]* width="([\d.]+)"/.exec(svg)?.[1]);
    const meta = await sharp(readFileSync(join(dir, 'degradation.png'))).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, Math.round(width * 2), 'the PNG is the figure at twice its size');

    // Each net's folder is an ordinary run folder: `resnet compare` overlays them.
    const page = join(out, 'compare.html');
    const cmp = runCli(['compare', join(dir, 'plain-20'), join(dir, 'resnet-20'), '--out', page]);
    assert.equal(cmp.status, 0, cmp.stderr);
    const html = readFileSync(page, 'utf8');
    assert.match(html, /<td class="text" data-key="run">plain-20<\/td>/);
    assert.match(html, /<td class="text" data-key="run">resnet-20<\/td>/);
    assertUsageError(runCli(['compare', join(dir, 'plain-20'), join(dir, 'plain-20')]), /two runs are both named plain-20/);

    // Run again under the same name: every net is reused, nothing is trained.
    const again = runCli(args);
    assert.equal(again.status, 0, again.stderr);
    assert.equal((again.stdout.match(/finished in an earlier run, reusing/g) ?? []).length, 4);
    assert.ok(!/epoch 1\/2/.test(again.stdout));
    // A damaged record is a one-line error naming the file.
    writeFileSync(join(dir, 'plain-20', 'net.json'), '{"parameters": "many"}');
    assertUsageError(runCli(['report', dir]), /plain-20\/net\.json: not a record written by `resnet degradation`/);
    // A different recipe under the same name is refused.
    assertUsageError(runCli([...args.slice(0, -1), '--lr', '0.02', '--no-progress']), /made with another recipe; choose another --name/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('resnet degradation: bad flags are one-line errors', () => {
  assertUsageError(runCli(['degradation', '--depths', '21']), /no plain net of depth 21/);
  assertUsageError(runCli(['degradation', '--depths', 'twenty']), /--depths: "twenty" is not a depth/);
  assertUsageError(runCli(['degradation', '--family', 'plain,dense']), /--family: unknown family "dense"; choose from plain, resnet, preact/);
  assertUsageError(runCli(['degradation', '--budget', 'huge']), /--budget: "huge" is not one of quick, paper/);
  assertUsageError(runCli(['degradation', '--lr', '-1']), /--lr must be a number > 0, got -1/);
  assertUsageError(runCli(['report', '/nonexistent/run']), /\/nonexistent\/run: no such folder/);
  assertUsageError(runCli(['compare', '/tmp']), /\/tmp: not a run folder \(no config\.json\)/);
});
