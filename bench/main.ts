// npm run bench [-- options]: ResNet-20 training and inference throughput of resnet-ts on
// its native backend against PyTorch (NCHW and channels_last) and onnxruntime-node, all
// on the same threads, in one process run; on CPUs with native bf16 also our bf16
// precision against our fp32 and PyTorch's CPU autocast to bf16. See BENCHMARKS.md for recorded results.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { bf16Unavailable, getBackend, setBackend, setPrecision } from '../src/backend/index.js';
import { nativeCpu, onednnVersion, setNativeThreads } from '../src/backend/native.js';
import { measureAlternated } from './alternate.js';
import { exportOnnx, measureOnnxRuntime, measureTorch, type Outcome, type OrtResult, type TorchResult } from './baselines.js';
import { measureMemory } from './memory.js';
import { measureResNet50, RESNET50_CONTENDERS, type ResNet50Contender, type ResNet50Result } from './resnet50.js';
import { formatProfile, profile } from './profile.js';
import { measureFusedInference, measureInference, measureTraining, now, timedPair, trainStepFn, buildResNet20, randomBatch, type Timing, type Workload } from './resnet20.js';
import { noGrad } from '../src/tensor/tensor.js';
import { compileInference } from '../src/models/index.js';
import { create as createModel } from '../src/models/registry.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/tensor/random.js';

const USAGE = `usage: npm run bench -- [options]
  --threads N        threads for every contender (default: all cores)
  --batch N          batch size (default 128)
  --steps N          timed training steps (default 10; inference runs 2N batches)
  --no-torch         skip PyTorch (and the onnxruntime-node run, which uses its ONNX export)
  --no-nchw          skip PyTorch's NCHW layout (very slow on some builds)
  --no-bf16          skip the bf16 rows (measured only where the CPU has native bf16)
  --resnet50 N       also ResNet-50 inference (224x224, batch N, BN folded) in fp32 and bf16
  --no-resnet50-rows skip the ResNet-50 rows (batch 1 latency, batch 16 throughput and peak RSS
                     of ours compiled and eager, PyTorch in both layouts, onnxruntime-node on
                     our ONNX export; each contender in a process of its own)
  --resnet50-only    only the ResNet-50 rows
  --resnet50-steps N timed batches per ResNet-50 contender (default 5; median reported)
  --resnet50-rounds N run every ResNet-50 contender N times in turn and keep each one's best
                     (default 1; more rounds expose all to the same drift on a shared machine)
  --profile          print where our training and inference steps spend their time, per kernel
  --memory N         also run N training steps at batch 32 and report RSS growth (the issue asks 1000)
  --markdown         print the result table as Markdown too
  --clock cpu        time with process CPU time instead of wall time: robust to other load on a
                     shared machine, meaningful only with --threads 1 (idle threads spin)`;

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

interface Row {
  readonly name: string;
  readonly train: Timing | null;
  readonly inference: Timing | null;
}

function printTable(rows: Row[], markdown: boolean): void {
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`\n${'contender'.padEnd(w)}  ${'train img/s'.padStart(11)}  ${'ms/step'.padStart(8)}  ${'infer img/s'.padStart(11)}  ${'ms/batch'.padStart(8)}`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(w)}  ${(r.train ? fmt(r.train.imgPerS) : '-').padStart(11)}  ${(r.train ? fmt(r.train.msPerStep) : '-').padStart(8)}  ` +
      `${(r.inference ? fmt(r.inference.imgPerS) : '-').padStart(11)}  ${(r.inference ? fmt(r.inference.msPerStep) : '-').padStart(8)}`);
  }
  if (markdown) {
    console.log('\n| contender | train img/s | train ms/step | inference img/s | inference ms/batch |\n|---|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.name} | ${r.train ? fmt(r.train.imgPerS) : '-'} | ${r.train ? fmt(r.train.msPerStep) : '-'} | ` +
        `${r.inference ? fmt(r.inference.imgPerS) : '-'} | ${r.inference ? fmt(r.inference.msPerStep) : '-'} |`);
    }
  }
}

/** ResNet-50 batch 1 (latency) and batch 16 (throughput, peak RSS), with the ratios the targets name. */
function printResNet50Rows(contenders: readonly ResNet50Contender[], steps: number, rounds: number, threads: number,
  clock: 'wall' | 'cpu', markdown: boolean): void {
  const results = new Map<string, ResNet50Result>();
  for (let r = 0; r < rounds; r++) {
    for (const batch of [1, 16]) {
      for (const m of measureResNet50(contenders, batch, steps, threads, clock)) {
        const key = `${m.contender}@${batch}`;
        if (!('msPerBatch' in m)) {
          console.log(`ResNet-50 ${m.contender}, batch ${batch}: not measured: ${m.reason}`);
          continue;
        }
        // The fastest round's time; the highest peak RSS of any round.
        const best = results.get(key);
        const fastest = !best || m.msPerBatch < best.msPerBatch ? m : best;
        results.set(key, { ...fastest, peakRssMb: Math.max(m.peakRssMb, best?.peakRssMb ?? 0) });
      }
    }
  }
  const get = (c: ResNet50Contender, b: number): ResNet50Result | undefined => results.get(`${c}@${b}`);
  console.log(`\nResNet-50 inference, 224x224, ${threads} thread(s), ${clock} clock, median of ${steps} batches, best of ${rounds} round(s):`);
  const header = ['contender', 'batch 1 ms', 'batch 16 img/s', 'batch 16 peak RSS MB'];
  const lines = contenders.map((c) => {
    const [b1, b16] = [get(c, 1), get(c, 16)];
    return [b1?.label ?? b16?.label ?? c, b1 ? fmt(b1.msPerBatch) : '-', b16 ? fmt(b16.imgPerS) : '-', b16 ? fmt(b16.peakRssMb) : '-'];
  });
  const w = Math.max(...lines.map((l) => l[0]!.length), header[0]!.length);
  console.log(`${header[0]!.padEnd(w)}  ${header.slice(1).map((h) => h.padStart(14)).join('  ')}`);
  for (const l of lines) console.log(`${l[0]!.padEnd(w)}  ${l.slice(1).map((v) => v.padStart(14)).join('  ')}`);
  if (markdown) {
    console.log(`\n| ${header.join(' | ')} |\n|---|---:|---:|---:|`);
    for (const l of lines) console.log(`| ${l.join(' | ')} |`);
  }
  const [ours1, ort1, ours16, ort16] = [get('ours-compiled', 1), get('onnxruntime-node', 1), get('ours-compiled', 16), get('onnxruntime-node', 16)];
  if (ours1 && ort1) {
    const r = ort1.msPerBatch / ours1.msPerBatch;
    console.log(`ResNet-50 batch 1 latency: ours compiled ${fmt(ours1.msPerBatch)} ms, onnxruntime-node ${fmt(ort1.msPerBatch)} ms: ` +
      `${r.toFixed(2)}x (target >= 1.0x: ${r >= 1 ? 'met' : 'missed'})`);
  }
  if (ours16 && ort16) {
    console.log(ratioLine('ResNet-50 batch 16 throughput, ours compiled vs onnxruntime-node',
      { msPerStep: ours16.msPerBatch, imgPerS: ours16.imgPerS }, { name: 'onnxruntime-node', t: { msPerStep: ort16.msPerBatch, imgPerS: ort16.imgPerS } }, 1.1));
    console.log(`ResNet-50 batch 16 peak RSS: ours compiled ${fmt(ours16.peakRssMb)} MB, onnxruntime-node ${fmt(ort16.peakRssMb)} MB ` +
      `(target: no higher: ${ours16.peakRssMb <= ort16.peakRssMb ? 'met' : 'missed'})`);
  }
  // The ratios again from rounds alternated within one process (wall clock only), which
  // the machine's drift reaches alike: the separate processes above each see their own spell.
  if (clock !== 'wall' || !contenders.includes('ours-compiled') || !contenders.includes('onnxruntime-node')) return;
  for (const [batch, target] of [[1, 1.0], [16, 1.1]] as const) {
    const a = measureAlternated('resnet50', batch, 5, threads);
    if ('reason' in a) {
      console.log(`ResNet-50 batch ${batch}, alternated with onnxruntime-node: not measured: ${a.reason}`);
      continue;
    }
    const r = a.onnxruntimeMs / a.oursMs;
    console.log(`ResNet-50 batch ${batch}, alternated with onnxruntime-node in one process (${a.rounds} rounds of ${a.batchesPerRound} batches): ` +
      `ours ${fmt(a.oursMs)} ms, onnxruntime-node ${fmt(a.onnxruntimeMs)} ms: ${r.toFixed(2)}x, per round ` +
      `${a.ratioPerRound.map((v) => v.toFixed(2)).join(' / ')} (target >= ${target.toFixed(1)}x: ${r >= target ? 'met' : 'missed'})`);
  }
}

function ratioLine(what: string, ours: Timing, best: { name: string; t: Timing } | null, target: number): string {
  if (!best) return `${what}: no baseline ran`;
  const r = ours.imgPerS / best.t.imgPerS;
  return `${what}: ${r.toFixed(2)}x ${best.name} (target >= ${target.toFixed(1)}x: ${r >= target ? 'met' : 'missed'})`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string' }, batch: { type: 'string' }, steps: { type: 'string' },
      'no-torch': { type: 'boolean' }, 'no-nchw': { type: 'boolean' }, profile: { type: 'boolean' },
      memory: { type: 'string' }, markdown: { type: 'boolean' }, help: { type: 'boolean' },
      clock: { type: 'string' }, 'no-bf16': { type: 'boolean' }, resnet50: { type: 'string' },
      'no-resnet50-rows': { type: 'boolean' }, 'resnet50-only': { type: 'boolean' }, 'resnet50-steps': { type: 'string' }, 'resnet50-rounds': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const threads = Number(values.threads ?? availableParallelism());
  const batch = Number(values.batch ?? 128);
  const steps = Number(values.steps ?? 10);
  const r50Steps = Number(values['resnet50-steps'] ?? 5);
  const r50Rounds = Number(values['resnet50-rounds'] ?? 1);
  for (const [name, v] of [['threads', threads], ['batch', batch], ['steps', steps], ['resnet50-steps', r50Steps],
    ['resnet50-rounds', r50Rounds]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`bench: --${name} must be a positive integer, got ${String(v)}`);
  }
  const clock = values.clock ?? 'wall';
  if (clock !== 'wall' && clock !== 'cpu') throw new Error(`bench: --clock must be wall or cpu, got ${clock}`);
  const w: Workload = { batch, clock, warmup: 3, trainSteps: steps, inferSteps: 2 * steps };

  setBackend(getBackend('native'));
  setNativeThreads(threads);
  console.log(`ResNet-20 (3x32x32, 16/32/64 channels, 3 blocks/stage, projection shortcuts), batch ${batch}, ` +
    `${threads} thread(s), ${cpus()[0]?.model ?? 'unknown CPU'}, oneDNN ${onednnVersion()} (${nativeCpu().isa}), ${clock} clock`);

  const r50Contenders = values['no-torch'] ? RESNET50_CONTENDERS.filter((c) => !c.startsWith('torch'))
    : values['no-nchw'] ? RESNET50_CONTENDERS.filter((c) => c !== 'torch-nchw') : RESNET50_CONTENDERS;
  if (values['resnet50-only']) {
    printResNet50Rows(r50Contenders, r50Steps, r50Rounds, threads, clock, values.markdown ?? false);
    return;
  }

  const oursTrain = measureTraining(w);
  const oursInference = measureInference(w);
  console.log(`resnet-ts native: train ${fmt(oursTrain.imgPerS)} img/s, inference ${fmt(oursInference.imgPerS)} img/s`);
  const foldedInference = measureFusedInference(w);
  console.log(`resnet-ts native, folded: inference ${fmt(foldedInference.imgPerS)} img/s`);
  const rows: Row[] = [
    { name: 'resnet-ts native', train: oursTrain, inference: oursInference },
    { name: 'resnet-ts native, BN folded + fused post-ops', train: null, inference: foldedInference },
  ];

  // bf16 precision: our three rows again, each timed in rounds alternating with fp32 (the
  // ratio then holds under drifting load), and PyTorch channels_last under CPU autocast.
  const bf16Skip = values['no-bf16'] ? '--no-bf16' : bf16Unavailable();
  type Pair = { fp32: Timing; bf16: Timing };
  let bf16: { train: Pair; inference: Pair; folded: Pair } | null = null;
  if (bf16Skip === null) {
    const fp32Mode = (): void => { setPrecision('fp32'); };
    const bf16Mode = (): void => { setPrecision('bf16'); };
    const pair = (steps: number, make: () => () => unknown): Pair => {
      const [fp32, b] = timedPair(w, steps, 5, batch, { before: fp32Mode, step: make() }, { before: bf16Mode, step: make() });
      return { fp32, bf16: b };
    };
    const { x } = randomBatch(batch, 2);
    bf16 = {
      train: pair(w.trainSteps, () => trainStepFn(buildResNet20(), batch)),
      inference: pair(w.inferSteps, () => {
        const model = buildResNet20().eval();
        return () => noGrad(() => model.forward(x));
      }),
      folded: pair(w.inferSteps, () => {
        const run = compileInference(buildResNet20());
        return () => run(x);
      }),
    };
    setPrecision('fp32');
    console.log(`resnet-ts native bf16: train ${fmt(bf16.train.bf16.imgPerS)} img/s, inference ${fmt(bf16.inference.bf16.imgPerS)} img/s, ` +
      `folded ${fmt(bf16.folded.bf16.imgPerS)} img/s (fp32 alongside: ${fmt(bf16.train.fp32.imgPerS)}, ` +
      `${fmt(bf16.inference.fp32.imgPerS)}, ${fmt(bf16.folded.fp32.imgPerS)})`);
    rows.push({ name: 'resnet-ts native bf16', train: bf16.train.bf16, inference: bf16.inference.bf16 },
      { name: 'resnet-ts native bf16, BN folded + fused post-ops', train: null, inference: bf16.folded.bf16 });
  } else {
    console.log(`bf16: not measured: ${bf16Skip}`);
  }

  const torch: TorchResult[] = [];
  let torchBf16: TorchResult | null = null;
  let ort: Outcome<OrtResult> | null = null;
  if (!values['no-torch']) {
    const layouts = values['no-nchw'] ? (['channels_last'] as const) : (['nchw', 'channels_last'] as const);
    for (const layout of layouts) {
      // NCHW training is ~10x slower on this PyTorch build: fewer steps keep the bench short.
      const r = measureTorch(layout, w, threads, layout === 'nchw' ? Math.min(steps, 3) : steps);
      if (!r.ok) {
        console.log(`PyTorch: not measured: ${r.reason}`);
        break;
      }
      torch.push(r.value);
      rows.push({ name: `PyTorch ${r.value.version} ${layout}`, train: r.value.train, inference: r.value.inference });
      console.log(`PyTorch ${layout}: train ${fmt(r.value.train.imgPerS)} img/s, inference ${fmt(r.value.inference.imgPerS)} img/s`);
    }
    if (torch.length > 0 && bf16) {
      const r = measureTorch('channels_last', w, threads, steps, 'bf16');
      if (r.ok) {
        torchBf16 = r.value;
        rows.push({ name: `PyTorch ${r.value.version} channels_last autocast bf16`, train: r.value.train, inference: r.value.inference });
        console.log(`PyTorch channels_last autocast bf16: train ${fmt(r.value.train.imgPerS)} img/s, inference ${fmt(r.value.inference.imgPerS)} img/s`);
      } else {
        console.log(`PyTorch autocast bf16: not measured: ${r.reason}`);
      }
    }
    if (torch.length > 0) {
      const dir = mkdtempSync(join(tmpdir(), 'resnet-bench-'));
      try {
        const onnx = exportOnnx(join(dir, 'resnet20.onnx'), batch);
        const folded = compileInference(buildResNet20());
        const { x } = randomBatch(batch, 2);
        ort = onnx.ok ? await measureOnnxRuntime(onnx.value, w, threads, () => folded(x)) : onnx;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      if (ort.ok) {
        rows.push({ name: `onnxruntime-node ${ort.value.version}`, train: null, inference: ort.value.inference });
        console.log(`onnxruntime-node: inference ${fmt(ort.value.inference.imgPerS)} img/s ` +
          `(ours folded, in rounds alternated with it: ${fmt(ort.value.alongside?.imgPerS ?? NaN)} img/s)`);
      } else {
        console.log(`onnxruntime-node: not measured: ${ort.reason}`);
      }
    }
  }

  printTable(rows, values.markdown ?? false);
  const bestTorchTrain = torch.reduce<{ name: string; t: Timing } | null>((b, r) =>
    !b || r.train.imgPerS > b.t.imgPerS ? { name: `PyTorch ${r.layout}`, t: r.train } : b, null);
  const bestTorchInfer = torch.reduce<{ name: string; t: Timing } | null>((b, r) =>
    !b || r.inference.imgPerS > b.t.imgPerS ? { name: `PyTorch ${r.layout}`, t: r.inference } : b, null);
  console.log('');
  console.log(ratioLine('training', oursTrain, bestTorchTrain, 1.5));
  console.log(ratioLine('inference (folded) vs PyTorch', foldedInference, bestTorchInfer, 1.0));
  // Against the folded rounds alternated with onnxruntime-node's.
  console.log(ratioLine('inference (folded, alternated) vs onnxruntime-node', ort?.ok ? ort.value.alongside ?? foldedInference : foldedInference,
    ort?.ok ? { name: 'onnxruntime-node', t: ort.value.inference } : null, 1.1));
  if (bf16) {
    // Against the fp32 rounds alternated with the bf16 ones (median of 5 rounds each).
    console.log(ratioLine('bf16 training vs our fp32', bf16.train.bf16, { name: 'resnet-ts fp32 (alternated)', t: bf16.train.fp32 }, 1.5));
    console.log(ratioLine('bf16 inference vs our fp32', bf16.inference.bf16, { name: 'resnet-ts fp32 (alternated)', t: bf16.inference.fp32 }, 1.0));
    console.log(ratioLine('bf16 folded inference vs our fp32 folded', bf16.folded.bf16,
      { name: 'resnet-ts fp32 folded (alternated)', t: bf16.folded.fp32 }, 1.0));
    const tb = torchBf16;
    console.log(ratioLine('bf16 training vs PyTorch autocast bf16', bf16.train.bf16, tb ? { name: 'PyTorch autocast bf16', t: tb.train } : null, 1.0));
    console.log(ratioLine('bf16 folded inference vs PyTorch autocast bf16', bf16.folded.bf16,
      tb ? { name: 'PyTorch autocast bf16', t: tb.inference } : null, 1.0));
  }

  if (values.resnet50 !== undefined) {
    const n = Number(values.resnet50);
    if (!Number.isInteger(n) || n < 1) throw new Error(`bench: --resnet50 must be a positive integer, got ${values.resnet50}`);
    const run = compileInference(createModel('resnet50', { numClasses: 1000, inChannels: 3, seed: 0 }));
    const rng = new Rng(3);
    const x = new Tensor(Float32Array.from({ length: n * 224 * 224 * 3 }, () => rng.normal()), [n, 224, 224, 3]);
    const step = (): void => { run(x); };
    if (bf16Skip === null) {
      const [r50, r50bf16] = timedPair({ ...w, warmup: 1 }, 5, 5, n, { before: () => setPrecision('fp32'), step },
        { before: () => setPrecision('bf16'), step });
      setPrecision('fp32');
      console.log(`\nResNet-50 inference (224x224, batch ${n}, BN folded, alternating rounds): fp32 ${fmt(r50.imgPerS)} img/s ` +
        `(${fmt(r50.msPerStep)} ms/batch), bf16 ${fmt(r50bf16.imgPerS)} img/s (${fmt(r50bf16.msPerStep)} ms/batch)`);
      console.log(ratioLine('ResNet-50 bf16 inference vs our fp32', r50bf16, { name: 'resnet-ts fp32', t: r50 }, 1.0));
    } else {
      console.log(`ResNet-50 bf16: not measured: ${bf16Skip}`);
    }
  }

  if (!values['no-resnet50-rows']) printResNet50Rows(r50Contenders, r50Steps, r50Rounds, threads, clock, values.markdown ?? false);

  if (values.profile) {
    const p = profile(getBackend('native'), () => now(clock));
    setBackend(p.backend);
    const step = trainStepFn(buildResNet20(), batch);
    for (let i = 0; i < w.warmup; i++) step();
    p.reset();
    let t0 = now(clock);
    for (let i = 0; i < steps; i++) step();
    const trainMs = (now(clock) - t0) / steps;
    console.log(`\nper-kernel profile, training step (${fmt(trainMs)} ms/step with profiling):`);
    console.log(formatProfile(p.stats, steps, trainMs));

    const model = buildResNet20().eval();
    const { x } = randomBatch(batch, 2);
    for (let i = 0; i < w.warmup; i++) noGrad(() => model.forward(x));
    p.reset();
    t0 = now(clock);
    for (let i = 0; i < w.inferSteps; i++) noGrad(() => model.forward(x));
    const inferMs = (now(clock) - t0) / w.inferSteps;
    console.log(`\nper-kernel profile, inference batch (${fmt(inferMs)} ms/batch with profiling):`);
    console.log(formatProfile(p.stats, w.inferSteps, inferMs));

    const folded = compileInference(buildResNet20());
    for (let i = 0; i < w.warmup; i++) folded(x);
    p.reset();
    t0 = now(clock);
    for (let i = 0; i < w.inferSteps; i++) folded(x);
    const foldedMs = (now(clock) - t0) / w.inferSteps;
    console.log(`\nper-kernel profile, folded inference batch (${fmt(foldedMs)} ms/batch with profiling):`);
    console.log(formatProfile(p.stats, w.inferSteps, foldedMs));
    setBackend(getBackend('native'));
  }

  if (values.memory !== undefined) {
    const n = Number(values.memory);
    if (!Number.isInteger(n) || n < 10) throw new Error(`bench: --memory must be an integer >= 10, got ${values.memory}`);
    console.log(`\nmemory: ${n} training steps at batch 32 ...`);
    const m = measureMemory(n, 32, (i, rss) => console.log(`  step ${i}: RSS ${rss.toFixed(0)} MB`));
    console.log(`memory: RSS ${m.rssAfterWarmupMb.toFixed(0)} MB after ${m.warmupSteps} warm-up steps, ` +
      `${m.rssEndMb.toFixed(0)} MB after ${m.steps} (peak ${m.rssPeakMb.toFixed(0)} MB): growth ${m.growthMb.toFixed(1)} MB ` +
      `(limit 50 MB: ${m.growthMb < 50 ? 'met' : 'missed'}), ${m.seconds.toFixed(0)} s`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
