// Load benchmark of `resnet serve`: the real command in a child process on loopback, loaded
// by autocannon (one image per POST /v1/predict) for a fixed time per cell. For ResNet-20
// (a Fashion-MNIST image, 28x28 greyscale) and ResNet-50 (a 224x224 RGB JPEG): throughput
// and p50/p99 latency at each concurrency, with dynamic batching on (--max-batch 16,
// --max-wait-ms 5) and off (--max-batch 1), and the mean batch the server ran (from its
// /metrics). Then a soak: ResNet-20 with batching under constant load, the server's
// resident set sampled from /proc, flat or not. The models carry seeded random weights:
// the time a forward pass takes does not depend on what the weights are.
//
//   npm run bench:serve                                  10 s a cell, a 10-minute soak
//   node dist/bench/serve-load.js --seconds 5 --soak-seconds 120 --models resnet20
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon, { type Result } from 'autocannon';
import sharp from 'sharp';
import { readIdxFile } from '../src/data/idx.js';
import { create } from '../src/models/registry.js';
import { saveModelFile, type ModelCard } from '../src/train/model-file.js';

const USAGE = `usage: node dist/bench/serve-load.js [options]
  --seconds N          load per cell (default 10)
  --concurrency LIST   connections, comma separated (default 1,8,32)
  --models LIST        resnet20 and/or resnet50 (default both)
  --soak-seconds N     constant load on ResNet-20 while sampling the server's memory (default 600; 0: none)
  --sample-seconds N   memory sample interval of the soak (default 10)`;

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const FASHION_TEST_IMAGES = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz';
const MB = 1024 * 1024;

interface Subject {
  name: 'resnet20' | 'resnet50';
  card: ModelCard;
  body: Buffer;
  type: string;
}

interface Cell {
  model: string;
  batching: 'on' | 'off';
  concurrency: number;
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  meanBatch: number;
  failures: number;
}

/** A real image: the first Fashion-MNIST test image, as the PNG it is or enlarged to an RGB JPEG. */
async function images(): Promise<{ png: Buffer; jpeg224: Buffer }> {
  const idx = readIdxFile(FASHION_TEST_IMAGES);
  const raw = { raw: { width: 28, height: 28, channels: 1 as const } };
  const pixels = Buffer.from(idx.data.subarray(0, 784));
  return {
    png: await sharp(pixels, raw).toColourspace('b-w').png().toBuffer(),
    jpeg224: await sharp(pixels, raw).resize(224, 224).toColourspace('srgb').jpeg({ quality: 90 }).toBuffer(),
  };
}

function subject(name: Subject['name'], dir: string, img: { png: Buffer; jpeg224: Buffer }): { subject: Subject; file: string } {
  const card: ModelCard = name === 'resnet20'
    ? { model: name, width: 1, numClasses: 10, inChannels: 1, imageSize: [28, 28], mean: [0.286], std: [0.353],
      classNames: Array.from({ length: 10 }, (_, i) => `class-${i}`), dataset: 'fashion-mnist' }
    : { model: name, width: 1, numClasses: 1000, inChannels: 3, imageSize: [224, 224], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
      classNames: Array.from({ length: 1000 }, (_, i) => `class-${i}`), dataset: 'imagenet' };
  const model = create(name, { numClasses: card.numClasses, inChannels: card.inChannels, seed: 1 });
  model.eval();
  const file = join(dir, `${name}.safetensors`);
  saveModelFile(file, model, card);
  return { file, subject: { name, card, body: name === 'resnet20' ? img.png : img.jpeg224, type: name === 'resnet20' ? 'image/png' : 'image/jpeg' } };
}

interface Server {
  url: string;
  proc: ChildProcess;
}

function startServer(file: string, batching: boolean): Promise<Server> {
  const args = [CLI, 'serve', file, '--port', '0', ...(batching ? ['--max-batch', '16', '--max-wait-ms', '5'] : ['--max-batch', '1', '--max-wait-ms', '0'])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = / at (http:\/\/\S+)\n/.exec(out);
      if (m) resolve({ url: m[1]!, proc });
    });
    proc.on('exit', (code) => reject(new Error(`resnet serve exited with ${code} before listening: ${out}`)));
  });
}

async function stopServer(s: Server): Promise<void> {
  const exited = new Promise((resolve) => s.proc.once('exit', resolve));
  s.proc.kill('SIGTERM');
  await exited;
}

/** The server's resident set from /proc (Linux), bytes. */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

async function batchTotals(url: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string): number => Number(/^(\S+) (\S+)$/m.exec(text.split('\n').find((l) => l.startsWith(`${name} `)) ?? `${name} 0`)![2]);
  return { sum: value('resnet_batch_size_sum'), count: value('resnet_batch_size_count') };
}

function load(url: string, s: Subject, connections: number, seconds: number): Promise<Result> {
  return autocannon({
    url: `${url}/v1/predict`, method: 'POST', headers: { 'content-type': s.type }, body: s.body,
    connections, pipelining: 1, duration: seconds, timeout: 120,
  });
}

async function cells(s: Subject, file: string, concurrency: readonly number[], seconds: number): Promise<Cell[]> {
  const out: Cell[] = [];
  for (const batching of [true, false]) {
    const server = await startServer(file, batching);
    try {
      const probe = await fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': s.type }, body: new Uint8Array(s.body) });
      if (probe.status !== 200) throw new Error(`${s.name}: the server answers ${probe.status} to the benchmark's image: ${await probe.text()}`);
      // Warm-up: compiled inference, first allocations, and (batching on) batches of every size once.
      await load(server.url, s, Math.max(...concurrency), Math.min(3, seconds));
      for (const c of concurrency) {
        const before = await batchTotals(server.url);
        const r = await load(server.url, s, c, seconds);
        const after = await batchTotals(server.url);
        const cell: Cell = {
          model: s.name, batching: batching ? 'on' : 'off', concurrency: c, requests: r.requests.total,
          perSecond: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99,
          meanBatch: (after.sum - before.sum) / Math.max(1, after.count - before.count), failures: r.errors + r.non2xx,
        };
        process.stderr.write(`${JSON.stringify(cell)}\n`);
        out.push(cell);
      }
    } finally {
      await stopServer(server);
    }
  }
  return out;
}

async function soak(s: Subject, file: string, seconds: number, sampleSeconds: number): Promise<void> {
  const server = await startServer(file, true);
  const pid = server.proc.pid!;
  try {
    await load(server.url, s, 32, 5);
    const before = rss(pid);
    const samples: { t: number; rss: number }[] = [];
    const started = performance.now();
    const timer = setInterval(() => samples.push({ t: (performance.now() - started) / 1000, rss: rss(pid) }), sampleSeconds * 1000);
    const r = await load(server.url, s, 32, seconds);
    clearInterval(timer);
    const after = rss(pid);
    // Least-squares slope over the second half of the samples (after the heap has grown to its working size).
    const tail = samples.slice(Math.floor(samples.length / 2));
    const mt = tail.reduce((a, p) => a + p.t, 0) / tail.length;
    const mr = tail.reduce((a, p) => a + p.rss, 0) / tail.length;
    const slope = tail.reduce((a, p) => a + (p.t - mt) * (p.rss - mr), 0) / Math.max(1e-9, tail.reduce((a, p) => a + (p.t - mt) ** 2, 0));
    process.stdout.write(`\nSoak: ${s.name}, batching on, 32 connections for ${seconds} s: ${r.requests.total} requests ` +
      `(${(r.requests.total / r.duration).toFixed(1)}/s, ${r.errors + r.non2xx} failed)\n` +
      `RSS after warm-up ${(before / MB).toFixed(1)} MB, after the load ${(after / MB).toFixed(1)} MB, ` +
      `largest sample ${(Math.max(...samples.map((p) => p.rss)) / MB).toFixed(1)} MB; slope over the second half ` +
      `${((slope * 60) / MB).toFixed(2)} MB/min\n` +
      `samples (s: MB): ${samples.map((p) => `${p.t.toFixed(0)}: ${(p.rss / MB).toFixed(1)}`).join(', ')}\n`);
  } finally {
    await stopServer(server);
  }
}

function table(rows: readonly Cell[]): string {
  const lines = ['| model | batching | connections | requests | req/s | p50 ms | p99 ms | mean batch | failed |', '|---|---|---:|---:|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    lines.push(`| ${r.model} | ${r.batching} | ${r.concurrency} | ${r.requests} | ${r.perSecond.toFixed(1)} | ${r.p50} | ${r.p99} | ${r.meanBatch.toFixed(2)} | ${r.failures} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' }, concurrency: { type: 'string', default: '1,8,32' },
      models: { type: 'string', default: 'resnet20,resnet50' }, 'soak-seconds': { type: 'string', default: '600' },
      'sample-seconds': { type: 'string', default: '10' }, help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const positive = (flag: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} must be an integer >= ${min}, got ${text}\n${USAGE}`);
    return n;
  };
  const seconds = positive('seconds', values.seconds, 1);
  const concurrency = values.concurrency.split(',').map((c) => positive('concurrency', c, 1));
  const names = values.models.split(',').map((m) => {
    if (m !== 'resnet20' && m !== 'resnet50') throw new Error(`--models: resnet20 or resnet50, got ${m}`);
    return m;
  });
  const soakSeconds = positive('soak-seconds', values['soak-seconds'], 0);
  const dir = mkdtempSync(join(tmpdir(), 'serve-load-'));
  try {
    const img = await images();
    const rows: Cell[] = [];
    let resnet20: { subject: Subject; file: string } | null = null;
    for (const name of names) {
      const made = subject(name, dir, img);
      if (name === 'resnet20') resnet20 = made;
      rows.push(...await cells(made.subject, made.file, concurrency, seconds));
    }
    process.stdout.write(`\n${seconds} s per cell; batching on: --max-batch 16 --max-wait-ms 5, off: --max-batch 1\n\n${table(rows)}\n`);
    if (soakSeconds > 0) {
      resnet20 ??= subject('resnet20', dir, img);
      await soak(resnet20.subject, resnet20.file, soakSeconds, positive('sample-seconds', values['sample-seconds'], 1));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
