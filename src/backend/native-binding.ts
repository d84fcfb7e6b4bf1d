// The type of the oneDNN addon (native/*.cc), which follows from the KERNELS table,
// and its loader. Every kernel validates sizes itself and throws an Error naming the
// kernel and the shapes involved.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { KERNEL_NAMES, type Kernels } from './backend.js';

/**
 * What the addon exports: every kernel of KERNELS under its own name, with the same
 * arguments (native/kernels.h, RESNET_KERNELS), plus these runtime controls.
 */
export interface NativeBinding extends Kernels {
  /** Version of the oneDNN library the addon runs on, e.g. "2.6.3". */
  readonly onednnVersion: string;
  /** OpenMP threads the kernels use (all cores unless RESNET_THREADS or setThreads says otherwise). */
  getThreads(): number;
  setThreads(threads: number): void;
  /** oneDNN's effective instruction set, e.g. "avx512_core_bf16" (DNNL_MAX_CPU_ISA lowers it). */
  readonly cpuIsa: string;
  /** Whether that instruction set has native bf16 dot products (AVX512_BF16 or AMX). */
  readonly nativeBf16: boolean;
  /** Precision of the three conv kernels; 'bf16' throws unless nativeBf16. */
  setConvPrecision(precision: 'fp32' | 'bf16'): void;
  getConvPrecision(): 'fp32' | 'bf16';
  /** Open / close a scratch scope on this thread (see withScratch in index.ts). */
  scratchOpen(): void;
  scratchClose(): void;
  /** Open / close a frame: a scope whose close releases what was carved since it opened (withScratchFrame). */
  scratchFrameOpen(): void;
  scratchFrameClose(): void;
  /** n floats from the scratch while a scope is open, else a new array; contents undefined. */
  scratchFloat32(n: number): Float32Array;
  /** Free this thread's scratch buffers (no scope may be open). */
  scratchRelease(): void;
  /** When on, closing a scope fills the released scratch with NaN. */
  setScratchPoison(on: boolean): void;
  scratchStats(): { reservedBytes: number; peakBytes: number; depth: number };
}

/** The functions the addon exports besides the kernels. */
export const CONTROLS = ['getThreads', 'setThreads', 'setConvPrecision', 'getConvPrecision', 'scratchOpen', 'scratchClose',
  'scratchFrameOpen', 'scratchFrameClose', 'scratchFloat32', 'scratchRelease', 'setScratchPoison', 'scratchStats'] as const satisfies
  readonly (keyof NativeBinding)[];

/**
 * Where the addon is looked for, first found and loaded wins: the one prebuilt for this
 * platform and shipped in the npm package (`npm pack` builds it: scripts/build-native.mjs
 * --prebuild), then the one compiled on this machine (npm install, npm run build:native).
 * scripts/build-native.mjs names the same two paths.
 */
export const ADDON_FILES = [
  join('prebuilds', `${process.platform}-${process.arch}`, 'resnet_native.node'),
  join('build', 'Release', 'resnet_native.node'),
] as const;

/** The package root: the nearest folder above this module holding package.json (works from src/ and dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the resnet-ts package root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

function isNativeBinding(m: unknown): m is NativeBinding {
  if (typeof m !== 'object' || m === null) return false;
  if (typeof Reflect.get(m, 'onednnVersion') !== 'string') return false;
  if (typeof Reflect.get(m, 'cpuIsa') !== 'string' || typeof Reflect.get(m, 'nativeBf16') !== 'boolean') return false;
  return [...KERNEL_NAMES, ...CONTROLS].every((k) => typeof Reflect.get(m, k) === 'function');
}

let cached: NativeBinding | null = null;

/** Loads the addon once; throws an Error saying why it cannot (not built, oneDNN missing, stale build). */
export function loadNativeBinding(): NativeBinding {
  if (cached) return cached;
  // The addon applies RESNET_THREADS when it loads; a value it cannot use is an error
  // here rather than silently all cores.
  const threads = process.env['RESNET_THREADS'];
  if (threads !== undefined && threads !== '' && !/^[1-9][0-9]{0,3}$/.test(threads)) {
    throw new Error(`RESNET_THREADS must be a whole number of threads from 1 to 9999, got '${threads}'`);
  }
  const root = packageRoot();
  const present = ADDON_FILES.filter((f) => existsSync(join(root, f)));
  if (present.length === 0) {
    throw new Error(`the addon ${ADDON_FILES[ADDON_FILES.length - 1]} was not built and no prebuilt one matches ` +
      `${process.platform}-${process.arch} (is libdnnl-dev installed? see ${join(root, 'build', 'native-build.log')})`);
  }
  // OpenMP threads spin after each parallel region by default. When anything else
  // wants the cores (V8's GC threads, other processes) the spinning threads hold them
  // while the one with work waits: measured on 2 cores under load, a ResNet-20 step
  // took 1-1.8 s instead of 0.17-0.22 s with the passive policy. libgomp reads the
  // policy once, when the addon loads it, so it is set only around that load and
  // only when the user has not chosen one.
  const choosePolicy = process.env['OMP_WAIT_POLICY'] === undefined && process.env['GOMP_SPINCOUNT'] === undefined;
  if (choosePolicy) process.env['OMP_WAIT_POLICY'] = 'PASSIVE';
  const failures: string[] = [];
  let mod: NativeBinding | null = null;
  try {
    for (const file of present) {
      let m: unknown;
      try {
        m = createRequire(import.meta.url)(join(root, file));
      } catch (e) {
        failures.push(`the addon ${file} failed to load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
        continue;
      }
      if (isNativeBinding(m)) {
        mod = m;
        break;
      }
      failures.push(`the addon ${file} is out of date (kernels missing); rebuild it with npm run build:native`);
    }
  } finally {
    if (choosePolicy) delete process.env['OMP_WAIT_POLICY'];
  }
  if (!mod) throw new Error(failures.join('; '));
  cached = mod;
  return mod;
}
