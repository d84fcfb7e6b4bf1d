// Memory stays flat over a long training run: RSS after warm-up against RSS at the end
// of `steps` training steps (ResNet-20, projection shortcuts).
import { buildResNet20, trainStepFn } from './resnet20.js';

export interface MemoryResult {
  readonly steps: number;
  readonly batch: number;
  readonly warmupSteps: number;
  readonly rssAfterWarmupMb: number;
  readonly rssEndMb: number;
  readonly rssPeakMb: number;
  readonly growthMb: number;
  readonly seconds: number;
}

const mb = (bytes: number): number => bytes / (1024 * 1024);

export function measureMemory(steps: number, batch: number, onProgress?: (step: number, rssMb: number) => void): MemoryResult {
  const step = trainStepFn(buildResNet20(), batch);
  const warmupSteps = Math.min(100, Math.floor(steps / 10));
  const t0 = performance.now();
  let rssAfterWarmup = 0;
  let peak = 0;
  for (let i = 1; i <= steps; i++) {
    step();
    const rss = process.memoryUsage.rss();
    peak = Math.max(peak, rss);
    if (i === warmupSteps) rssAfterWarmup = rss;
    if (onProgress && i % 100 === 0) onProgress(i, mb(rss));
  }
  const end = process.memoryUsage.rss();
  return {
    steps, batch, warmupSteps,
    rssAfterWarmupMb: mb(rssAfterWarmup), rssEndMb: mb(end), rssPeakMb: mb(peak),
    growthMb: mb(end - rssAfterWarmup), seconds: (performance.now() - t0) / 1000,
  };
}
