// npm run bench:replicas: training throughput of one model on every core against
// `--replicas 2` (two models in worker threads, each on half of every batch), through
// `resnet train` as a user runs it (loader, augmentation, loss, optimizer, all counted):
// the fast Fashion-MNIST recipe on a subset, one epoch per run, in fp32 and (where the
// CPU has native bf16) bf16. The one-model runs use OMP_WAIT_POLICY=ACTIVE, the faster
// of OpenMP's wait policies for them here (BENCHMARKS.md), so the baseline is its best.
// Each setting runs `--rounds` times in alternation, so that load drifting over the run
// hits both alike; the median of each is printed with the ratio.
//
//   node dist/bench/replicas.js [--rounds 1] [--subset 25600] [--model resnet20]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeCpu } from '../src/backend/native.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const rounds = Number(flag('rounds', '1'));
const subset = flag('subset', '25600');
const model = flag('model', 'resnet20');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

/** Images per second of one epoch of `resnet train`, as its metrics.jsonl records it. */
function run(out: string, name: string, precision: string, replicas: number): number {
  const args = [cli, 'train', '--config', join(root, 'recipes', 'fashion-mnist-fast.json'), '--model', model, '--subset', subset,
    '--epochs', '1', '--warmup', '0.2', '--eval-every', '0', '--tta', 'none', '--test-subset', '100',
    '--precision', precision, '--replicas', String(replicas), '--out', out, '--name', name, '--no-progress'];
  const env = replicas === 1 ? { ...process.env, OMP_WAIT_POLICY: 'ACTIVE' } : process.env;
  const r = spawnSync(process.execPath, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`resnet train ${args.slice(2).join(' ')} failed: ${r.stderr.trim()}`);
  const record = JSON.parse(readFileSync(join(out, name, 'metrics.jsonl'), 'utf8').trim().split('\n')[0]!) as { imagesPerSecond: number };
  return record.imagesPerSecond;
}

function main(): void {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1]?.trim().split(/\s+/) ?? [];
  const vector = flags.filter((f) => /^(avx|fma|amx)/.test(f)).join(' ');
  process.stdout.write(`CPU: ${cpu}, ${cpus().length} logical cores; ${vector}\n`);
  process.stdout.write(`${model}, fashion-mnist ${subset} images, batch 128, one epoch per run, ${rounds} round(s)\n\n`);
  const precisions = nativeCpu().bf16 ? ['fp32', 'bf16'] : ['fp32'];
  const out = mkdtempSync(join(tmpdir(), 'resnet-ts-replicas-'));
  try {
    process.stdout.write('| precision | one model, all cores (img/s) | --replicas 2 (img/s) | ratio |\n|---|---:|---:|---:|\n');
    for (const precision of precisions) {
      const one: number[] = [];
      const two: number[] = [];
      for (let r = 0; r < rounds; r++) {
        one.push(run(out, `${precision}-one-${r}`, precision, 1));
        two.push(run(out, `${precision}-two-${r}`, precision, 2));
      }
      const [a, b] = [median(one), median(two)];
      process.stdout.write(`| ${precision} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(2)}x |\n`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

main();
