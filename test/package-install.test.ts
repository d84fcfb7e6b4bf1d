// The package as a user gets it. `npm pack` (which prebuilds the addon) in a copy of
// the build inputs, then `npm install` of the tarball into a new project, where the
// library is imported from JavaScript and type-checked from TypeScript against our
// .d.ts, `npx resnet --help` runs, and two training steps run on the native backend
// from the prebuilt addon. Then the fallbacks: without the prebuilt the install script
// compiles the addon, and with neither the library runs on the reference backend and
// says so in one line. Dependencies come from the registry or the npm cache.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';

import { models, noGrad, randn, setBackend } from '../src/index.js';
import { REPO_ROOT, tempDir } from './helpers/io-fixtures.js';

/** What `npm pack` needs to build the package: its sources and build files (no tests, no outputs). */
const BUILD_INPUTS = ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'binding.gyp', 'src', 'native', 'scripts', 'python'];
const PREBUILT = join('prebuilds', `${process.platform}-${process.arch}`, 'resnet_native.node');
const BUILT = join('build', 'Release', 'resnet_native.node');

/**
 * The environment of the npm commands: this test's node first on PATH (so npm and the
 * `resnet` bin run on the Node version under test), without the npm_* variables that
 * `npm test` hands its scripts (they would configure the inner npm as the outer one).
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  env['PATH'] = [dirname(process.execPath), process.env['PATH'] ?? ''].join(delimiter);
  delete env['RESNET_BACKEND'];
  return env;
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], cwd: string, extraEnv: Record<string, string> = {}): Ran {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...npmEnv(), ...extraEnv }, timeout: 300_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Ran, what: string): Ran {
  assert.equal(r.status, 0, `${what} failed (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

const CONSUMER_JS = `import * as rt from 'resnet-ts';
const model = rt.models.create('resnet20', { numClasses: 10, inChannels: 1, seed: 7 });
model.eval();
const logits = rt.noGrad(() => model.forward(rt.randn([2, 28, 28, 1], { seed: 1 })));
console.log(JSON.stringify({ backend: rt.backend().name, shape: logits.shape, logits: Array.from(logits.toFloat32Array()) }));
`;

const CONSUMER_TS = `import * as rt from 'resnet-ts';
const model: rt.nn.Module = rt.models.create('resnet20', { numClasses: 10, inChannels: 1 });
const names: string[] = rt.models.list();
const x: rt.Tensor = rt.randn([1, 28, 28, 1], { seed: 0 });
const opt = new rt.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
opt.zeroGrad();
const backendName: 'native' | 'reference' = rt.backend().name;
// @ts-expect-error the options are an object: only checked when the declarations are found
rt.models.create('resnet20', 10);
export { names, x, backendName };
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true,
    skipLibCheck: false, types: ['node'],
  },
  files: ['consumer.ts'],
};

describe('the npm package installed as a dependency', { timeout: 900_000 }, () => {
  const work = tempDir('package');
  const app = join(work, 'app');
  const installed = join(app, 'node_modules', 'resnet-ts');
  let tarball = '';

  before(() => {
    const stage = join(work, 'stage');
    for (const entry of BUILD_INPUTS) cpSync(join(REPO_ROOT, entry), join(stage, entry), { recursive: true });
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(stage, 'node_modules'));
    ok(run('npm', ['pack', '--pack-destination', work], stage), 'npm pack');
    const tgz = readdirSync(work).filter((f) => f.endsWith('.tgz'));
    assert.equal(tgz.length, 1, `npm pack wrote ${tgz.join(', ')}`);
    tarball = join(work, tgz[0]!);
    assert.ok(!existsSync(join(stage, 'prebuilds')), 'postpack removes prebuilds/ from the working tree');

    // A new project that reviewed install scripts: ours may run (it compiles the addon
    // where no prebuilt matches); protobufjs' (a warning about version ranges) may not.
    const dev = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> })
      .devDependencies;
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({
      name: 'consumer', private: true, type: 'module', allowScripts: { [`file:${tarball}`]: true, protobufjs: false },
    }));
    const install = ok(run('npm', ['install', tarball, `typescript@${dev['typescript']}`, `@types/node@${dev['@types/node']}`,
      '--prefer-offline', '--no-audit', '--no-fund'], app), 'npm install of the tarball');
    const ourWarnings = install.stderr.split('\n').filter((l) => /^npm warn/i.test(l) && l.includes('resnet-ts'));
    assert.deepEqual(ourWarnings, [], install.stderr);
  });

  it('ships the compiled library, its declarations, the prebuilt addon and the sources to rebuild it, not the tests', () => {
    for (const f of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', PREBUILT, 'binding.gyp',
      'native/addon.cc', 'scripts/build-native.mjs', 'python/resnet_torch_train.py', 'python/resnet_torchrun.py']) {
      assert.ok(existsSync(join(installed, f)), `${f} is in the package`);
    }
    assert.ok(!existsSync(join(installed, 'dist', 'test')), 'no compiled tests in the package');
    assert.ok(!existsSync(join(installed, BUILT)), 'the install compiled nothing: the prebuilt addon loads');
    // The page of `resnet serve` and the dashboard's script, and onnxruntime-web's browser build, found from the installed code.
    const assets = ok(run(process.execPath, ['--input-type=module', '-e', `const { Assets } = await import('./node_modules/resnet-ts/dist/src/serve/assets.js');
const a = new Assets();
console.log(JSON.stringify(['index.html', 'page.js', 'page.css', 'dashboard.js'].map((f) => a.pageFile(f) !== null)
  .concat(['ort.wasm.min.js', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'].map((f) => a.ortFile(f) !== null))));`], app), 'the page assets');
    assert.deepEqual(JSON.parse(assets.stdout), [true, true, true, true, true, true, true]);
  });

  it('the install script uses the prebuilt addon instead of compiling', () => {
    const r = ok(run(process.execPath, ['scripts/build-native.mjs'], installed), 'build-native.mjs');
    assert.match(r.stdout, new RegExp(`^resnet-ts: native backend ready, prebuilt for ${process.platform}-${process.arch} \\(oneDNN \\d+\\.\\d+`));
    assert.ok(!existsSync(join(installed, 'build')), 'nothing compiled');
  });

  it('imports from JavaScript, on the native backend, with the results of this checkout', () => {
    writeFileSync(join(app, 'consumer.mjs'), CONSUMER_JS);
    const r = ok(run(process.execPath, ['consumer.mjs'], app), 'node consumer.mjs');
    assert.equal(r.stderr, '');
    const got = JSON.parse(r.stdout) as { backend: string; shape: number[]; logits: number[] };
    assert.equal(got.backend, 'native');
    assert.deepEqual(got.shape, [2, 10]);
    setBackend('native');
    const model = models.create('resnet20', { numClasses: 10, inChannels: 1, seed: 7 });
    model.eval();
    const want = noGrad(() => model.forward(randn([2, 28, 28, 1], { seed: 1 }))).toFloat32Array();
    want.forEach((w, i) => assert.ok(Math.abs(got.logits[i]! - w) <= 1e-5 + 1e-5 * Math.abs(w), `logit ${i}: ${got.logits[i]} vs ${w}`));
  });

  it('type-checks from TypeScript against the shipped declarations', () => {
    writeFileSync(join(app, 'consumer.ts'), CONSUMER_TS);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    ok(run(process.execPath, [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app), 'tsc --noEmit');
  });

  it('npx resnet --help, and two training steps on the native backend', () => {
    const help = ok(run('npx', ['--no', '--', 'resnet', '--help'], app), 'npx resnet --help');
    assert.match(help.stdout, /^Usage: resnet /m);
    assert.match(help.stdout, /^ {2}train /m);
    const train = ok(run('npx', ['--no', '--', 'resnet', 'train', '--backend', 'native', '--subset', '64', '--test-subset', '64',
      '--batch-size', '32', '--epochs', '1', '--out', 'runs', '--name', 'two-steps', '--no-progress'], app), 'npx resnet train');
    assert.match(train.stdout, /1 epoch of 2 steps \(batch 32\), native backend/);
    assert.match(train.stdout, /^test accuracy [\d.]+% .* on 64 test images after 1 epoch/m);
    const metrics = readFileSync(join(app, 'runs', 'two-steps', 'metrics.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { step: number; trainLoss: number });
    assert.equal(metrics.length, 1);
    assert.equal(metrics[0]!.step, 2);
    assert.ok(Number.isFinite(metrics[0]!.trainLoss));
  });

  it('without a prebuilt addon, npm rebuild compiles it; without either, the reference backend with one line', () => {
    renameSync(join(installed, 'prebuilds'), join(work, 'prebuilds-aside'));
    const rebuild = ok(run('npm', ['rebuild', 'resnet-ts', '--foreground-scripts'], app), 'npm rebuild resnet-ts');
    assert.match(rebuild.stdout, /resnet-ts: native backend built \(build\/Release\/resnet_native\.node\)/);
    const compiled = JSON.parse(ok(run(process.execPath, ['consumer.mjs'], app), 'consumer on the compiled addon').stdout) as
      { backend: string };
    assert.equal(compiled.backend, 'native');

    renameSync(join(installed, 'build'), join(work, 'build-aside'));
    const r = ok(run(process.execPath, ['consumer.mjs'], app), 'consumer without an addon');
    assert.equal(JSON.parse(r.stdout).backend, 'reference');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp('^resnet-ts: native backend unavailable \\(the addon build/Release/resnet_native\\.node was not ' +
      `built and no prebuilt one matches ${process.platform}-${process.arch} .*\\); using the slow reference backend\\. To get it: `));
  });
});
