// A Backend that forwards to another and times every kernel call: the per-op profile
// of where a training or inference step spends its time.
import { type Backend, KERNEL_NAMES, type KernelName } from '../src/backend/backend.js';

export interface KernelStat {
  readonly kernel: string;
  calls: number;
  ms: number;
}

export interface ProfiledBackend {
  readonly backend: Backend;
  readonly stats: Map<string, KernelStat>;
  reset(): void;
}

const KERNEL_SET: ReadonlySet<string> = new Set(KERNEL_NAMES);

function isKernel(key: string): key is KernelName {
  return KERNEL_SET.has(key);
}

/** `clock` gives milliseconds (wall or CPU time). */
export function profile(inner: Backend, clock: () => number = () => performance.now()): ProfiledBackend {
  const stats = new Map<string, KernelStat>();
  const timed = new Proxy(inner, {
    get(target, key, receiver): unknown {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof key !== 'string' || !isKernel(key) || typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        const t0 = clock();
        const out: unknown = Reflect.apply(value, target, args);
        const dt = clock() - t0;
        const s = stats.get(key) ?? { kernel: key, calls: 0, ms: 0 };
        s.calls++;
        s.ms += dt;
        stats.set(key, s);
        return out;
      };
    },
  });
  return { backend: timed, stats, reset: () => stats.clear() };
}

/** Rows "kernel  calls  ms/step  share", the costliest first. */
export function formatProfile(stats: Map<string, KernelStat>, steps: number, stepMs: number): string {
  const rows = [...stats.values()].sort((a, b) => b.ms - a.ms);
  const kernelMs = rows.reduce((s, r) => s + r.ms, 0) / steps;
  const lines = [`  ${'kernel'.padEnd(30)} ${'calls/step'.padStart(10)} ${'ms/step'.padStart(9)} ${'share'.padStart(6)}`];
  for (const r of rows) {
    lines.push(`  ${r.kernel.padEnd(30)} ${(r.calls / steps).toFixed(0).padStart(10)} ${(r.ms / steps).toFixed(2).padStart(9)} ` +
      `${((100 * r.ms) / steps / stepMs).toFixed(1).padStart(5)}%`);
  }
  lines.push(`  ${'(kernels total)'.padEnd(30)} ${''.padStart(10)} ${kernelMs.toFixed(2).padStart(9)} ` +
    `${((100 * kernelMs) / stepMs).toFixed(1).padStart(5)}%`);
  lines.push(`  ${'(outside kernels: JS, autograd, GC)'.padEnd(30)} ${''.padStart(10)} ${(stepMs - kernelMs).toFixed(2).padStart(9)} ` +
    `${((100 * (stepMs - kernelMs)) / stepMs).toFixed(1).padStart(5)}%`);
  return lines.join('\n');
}
