// Soak test: train as `resnet train` does (Fashion-MNIST subset, evaluation after every
// epoch, checkpoints every --checkpoint-every steps into a run folder, metrics, best
// weights) for a fixed time, sampling the process's memory at a fixed interval, and
// report whether the resident set grows after warm-up. A leak of even a few kB per
// step shows as a steady slope over an hour.
//
//   npm run build && node dist/bench/soak.js                     # 60 minutes, a sample a minute
//   node dist/bench/soak.js --minutes 3 --sample-seconds 20       # a quick look
//   node dist/bench/soak.js -- train --config recipes/fashion-mnist-resnet20.json
//                        # watch a real `resnet train` process instead: its resident set is read
//                        # from /proc every --sample-seconds until it exits (Linux)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { backend } from '../src/backend/index.js';
import { DEFAULT_CONFIG, finishConfig, mergeConfig } from '../src/train/config.js';
import { RunFolder } from '../src/train/run-folder.js';
import { prepareRun } from '../src/train/setup.js';
import { Trainer } from '../src/train/trainer.js';

const USAGE = `usage: node dist/bench/soak.js [options]
  --minutes N          how long to train (default 60)
  --sample-seconds N   memory sample interval (default 60)
  --warmup-minutes N   samples before this are warm-up, left out of the growth (default: a sixth of the run, at most 10)
  --model NAME         model (default resnet20)
  --subset N           training images (default 4096)
  --batch-size N       (default 64)
  --checkpoint-every N (default 100)
  -- ARGS...           instead of the built-in run, start \`resnet ARGS...\` and sample its
                       resident set until it exits (then only --sample-seconds and
                       --warmup-minutes apply)`;

interface Sample {
  seconds: number;
  /** Step, heap and array buffers are known only for the in-process run. */
  step?: number;
  rss: number;
  heapUsed?: number;
  arrayBuffers?: number;
}

const MB = 1024 * 1024;

function mb(bytes: number): string {
  return (bytes / MB).toFixed(1);
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function number(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!(Number.isFinite(n) && n > 0)) {
    process.stderr.write(`soak: ${flag} must be a positive number, got ${JSON.stringify(text)}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

/** Resident set of a process from /proc, in bytes (undefined once it has exited). */
function residentSet(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function printSample(s: Sample): void {
  process.stdout.write(`  ${(s.seconds / 60).toFixed(1).padStart(6)} min` +
    (s.step === undefined ? '' : `  step ${String(s.step).padStart(7)}`) + `  rss ${mb(s.rss).padStart(7)} MB` +
    (s.heapUsed === undefined ? '' : `  heap ${mb(s.heapUsed).padStart(6)} MB`) +
    (s.arrayBuffers === undefined ? '' : `  array buffers ${mb(s.arrayBuffers).padStart(7)} MB`) + '\n');
}

/** Runs `resnet <args>` as a child process and samples its resident set until it exits. */
async function watchCli(args: readonly string[], sampleSeconds: number): Promise<Sample[]> {
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
  process.stdout.write(`soak: resnet ${args.join(' ')}; a sample every ${sampleSeconds} s until it exits\n`);
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  const started = performance.now();
  const samples: Sample[] = [];
  const sample = (): void => {
    const rss = residentSet(child.pid!);
    if (rss === undefined) return;
    samples.push({ seconds: (performance.now() - started) / 1000, rss });
    printSample(samples[samples.length - 1]!);
  };
  const timer = setInterval(sample, sampleSeconds * 1000);
  const code = await new Promise<number>((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1))));
  clearInterval(timer);
  if (code !== 0) process.stdout.write(`soak: resnet exited with code ${code}\n`);
  return samples;
}

interface InProcessOptions { model?: string; subset?: string; 'batch-size'?: string; 'checkpoint-every'?: string }

async function soakInProcess(values: InProcessOptions, minutes: number, sampleSeconds: number,
  warmupMinutes: number): Promise<Sample[]> {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-soak-'));
  const config = finishConfig(mergeConfig({ ...DEFAULT_CONFIG }, {
    model: values.model ?? 'resnet20', subset: number(values.subset, 4096, '--subset'), testSubset: 1000,
    batchSize: number(values['batch-size'], 64, '--batch-size'), iterations: 1e9, warmup: 0, schedule: 'constant', lr: 0.02,
    checkpointEvery: number(values['checkpoint-every'], 100, '--checkpoint-every'), out: dir, name: 'run',
  }, 'soak'), 'soak');
  const prepared = await prepareRun(config);
  const run = RunFolder.create(join(dir, 'run'), prepared.config);
  const trainer = new Trainer({
    model: prepared.model, optimizer: prepared.optimizer, scheduler: prepared.scheduler, trainLoader: prepared.trainLoader,
    evalLoader: prepared.evalLoader, numClasses: prepared.card.numClasses, totalSteps: prepared.totalSteps,
    labelSmoothing: config.labelSmoothing, run, config: prepared.config, card: prepared.card,
    checkpointEvery: config.checkpointEvery, keepCheckpoints: 2,
  });
  process.stdout.write(`soak: ${config.model} on ${prepared.train.name}, batch ${config.batchSize}, ${backend().name} backend, ` +
    `checkpoint every ${config.checkpointEvery} steps, evaluation on ${prepared.evalSet?.length ?? 0} images each epoch of ` +
    `${prepared.stepsPerEpoch} steps; ${minutes} min, a sample every ${sampleSeconds} s, warm-up ${warmupMinutes.toFixed(1)} min\n`);

  const started = performance.now();
  const samples: Sample[] = [];
  const sample = (): void => {
    const m = process.memoryUsage();
    samples.push({
      seconds: (performance.now() - started) / 1000, step: trainer.state.step,
      rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers,
    });
    printSample(samples[samples.length - 1]!);
  };
  sample();
  const timer = setInterval(sample, sampleSeconds * 1000);
  const stop = setTimeout(() => trainer.requestStop(), minutes * 60_000);
  await trainer.run();
  clearInterval(timer);
  clearTimeout(stop);
  sample();
  rmSync(dir, { recursive: true, force: true });
  return samples;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      minutes: { type: 'string' }, 'sample-seconds': { type: 'string' }, 'warmup-minutes': { type: 'string' },
      model: { type: 'string' }, subset: { type: 'string' }, 'batch-size': { type: 'string' }, 'checkpoint-every': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const minutes = number(values.minutes, 60, '--minutes');
  const sampleSeconds = number(values['sample-seconds'], 60, '--sample-seconds');
  const samples = positionals.length > 0 ? await watchCli(positionals, sampleSeconds) : undefined;
  const length = samples ? (samples[samples.length - 1]?.seconds ?? 0) / 60 : minutes;
  const warmupMinutes = number(values['warmup-minutes'], Math.min(10, length / 6), '--warmup-minutes');
  report(samples ?? await soakInProcess(values, minutes, sampleSeconds, warmupMinutes), warmupMinutes);
}

function report(samples: readonly Sample[], warmupMinutes: number): void {
  const cell = (bytes: number | undefined): string => (bytes === undefined ? '-' : mb(bytes));
  const after = samples.filter((s) => s.seconds >= warmupMinutes * 60);
  const hours = (s: Sample): number => s.seconds / 3600;
  process.stdout.write('\n| minute | step | RSS MB | heap MB | array buffers MB |\n|---:|---:|---:|---:|---:|\n');
  for (const s of samples) {
    process.stdout.write(`| ${(s.seconds / 60).toFixed(1)} | ${s.step ?? '-'} | ${mb(s.rss)} | ${cell(s.heapUsed)} | ${cell(s.arrayBuffers)} |\n`);
  }
  if (after.length < 2) {
    process.stdout.write(`\nfewer than two samples after the ${warmupMinutes} min warm-up: run longer or sample more often\n`);
    return;
  }
  const rss = after.map((s) => s.rss);
  const first = after[0]!;
  const last = after[after.length - 1]!;
  const perHour = slope(after.map(hours), rss);
  const half = Math.ceil(rss.length / 2);
  const stepsAfter = first.step === undefined || last.step === undefined ? 0 : last.step - first.step;
  process.stdout.write(`\nafter warm-up (${after.length} samples, ${(first.seconds / 60).toFixed(1)}-${(last.seconds / 60).toFixed(1)} min, ` +
    (stepsAfter > 0 ? `steps ${first.step}-${last.step}` : 'resnet process') + '):\n' +
    `  RSS ${mb(first.rss)} -> ${mb(last.rss)} MB (${(last.rss - first.rss) >= 0 ? '+' : ''}${mb(last.rss - first.rss)} MB), ` +
    `min ${mb(Math.min(...rss))}, max ${mb(Math.max(...rss))} MB\n` +
    `  trend ${(perHour / MB).toFixed(1)} MB per hour` +
    (stepsAfter > 0 ? `, ${((slope(after.map((s) => s.step ?? 0), rss)) / 1024).toFixed(2)} kB per step` : '') + '\n' +
    `  peak RSS of the first and second half: ${mb(Math.max(...rss.slice(0, half)))} and ${mb(Math.max(...rss.slice(half)))} MB ` +
    '(a leak raises the second; a one-off step up of the allocator does not repeat)\n' +
    (first.heapUsed === undefined ? '' : `  heap ${cell(first.heapUsed)} -> ${cell(last.heapUsed)} MB, ` +
      `array buffers ${cell(first.arrayBuffers)} -> ${cell(last.arrayBuffers)} MB\n`));
}

await main();
