// Backend selection: native (oneDNN) when the addon loads, otherwise the reference
// backend with one line saying why. RESNET_BACKEND=native|reference forces a choice.
import type { Backend } from './backend.js';
import { referenceBackend } from './reference.js';
import { loadNativeBinding } from './native-binding.js';
import { loadNativeBackend, nativeConvPrecision, nativeCpu, setNativeConvPrecision } from './native.js';

export type BackendName = Backend['name'];

let native: Backend | null = null;
let nativeError: string | null = null;
let current: Backend | null = null;

function tryNative(): Backend | null {
  if (native || nativeError) return native;
  try {
    native = loadNativeBackend();
  } catch (e) {
    nativeError = e instanceof Error ? e.message : String(e);
  }
  return native;
}

/** Why the native backend is unavailable, or null when it loaded (or was never tried). */
export function nativeUnavailableReason(): string | null {
  tryNative();
  return nativeError;
}

/** The backend every op runs on. Chosen on first use. */
export function backend(): Backend {
  if (current) return current;
  const forced = process.env['RESNET_BACKEND'];
  if (forced !== undefined && forced !== '') {
    current = getBackend(forced);
    return current;
  }
  const n = tryNative();
  if (n) {
    current = n;
  } else {
    process.stderr.write(
      `resnet-ts: native backend unavailable (${nativeError}); using the slow reference backend. ` +
      `To get it: apt-get install libdnnl-dev, then reinstall (npm rebuild resnet-ts).\n`);
    current = referenceBackend;
  }
  return current;
}

/** A backend by name; asking for `native` when it cannot load is an error. */
export function getBackend(name: string): Backend {
  if (name === 'reference') return referenceBackend;
  if (name === 'native') {
    const n = tryNative();
    if (!n) throw new Error(`RESNET_BACKEND=native was asked for, but the native backend cannot load: ${nativeError}. ` +
      `Install libdnnl-dev (apt-get install libdnnl-dev) and reinstall, or use RESNET_BACKEND=reference.`);
    return n;
  }
  throw new Error(`unknown backend '${name}': expected 'native' or 'reference'`);
}

/** Switch every following op to the named backend (or a Backend object). */
export function setBackend(b: BackendName | Backend): void {
  current = typeof b === 'string' ? getBackend(b) : b;
}

/** Names of the backends that can run here. */
export function availableBackends(): BackendName[] {
  return tryNative() ? ['reference', 'native'] : ['reference'];
}

/**
 * Compute precision. 'fp32': everything in float32. 'bf16' (mixed precision, as
 * PyTorch's CPU autocast): the convolutions (forward, backward-data, backward-weights)
 * read bfloat16 and accumulate in float32, and write bfloat16 tensors, which batch norm
 * (training), its ReLU and the residual add keep bfloat16 (src/tensor/ops.ts); master
 * weights and their gradients, batch-norm statistics, loss and optimizer stay float32.
 * 'auto': bf16 where the native backend runs on a CPU with native bf16 instructions,
 * fp32 elsewhere.
 */
export const PRECISIONS = ['fp32', 'bf16', 'auto'] as const;
export type PrecisionChoice = (typeof PRECISIONS)[number];
export type Precision = Exclude<PrecisionChoice, 'auto'>;

/** Why bf16 cannot run on the current backend and CPU (one line), or null when it can. */
export function bf16Unavailable(): string | null {
  if (backend().name !== 'native') {
    return 'bf16 precision needs the native backend (oneDNN); the reference backend computes in float32 only';
  }
  const cpu = nativeCpu();
  if (cpu.bf16) return null;
  return `bf16 precision needs native bf16 instructions (avx512_bf16 or amx_bf16), which oneDNN does not find on this CPU ` +
    `(its instruction set here: ${cpu.isa}); use fp32, or auto to take bf16 only where the CPU has it`;
}

/** The precision 'auto' (or an explicit choice) means on the current backend and CPU. */
export function resolvePrecision(choice: PrecisionChoice): Precision {
  if (choice !== 'auto') return choice;
  return bf16Unavailable() === null ? 'bf16' : 'fp32';
}

/**
 * Sets the precision of the current backend's convolutions and returns the one chosen
 * ('auto' resolved). Asking for 'bf16' where it cannot run natively throws an Error that
 * names the missing CPU feature: emulated bf16 would be slower than float32.
 */
export function setPrecision(choice: PrecisionChoice): Precision {
  if (!(PRECISIONS as readonly string[]).includes(choice)) {
    throw new Error(`unknown precision '${String(choice)}': expected ${PRECISIONS.join(', ')}`);
  }
  const p = resolvePrecision(choice);
  if (p === 'bf16') {
    const why = bf16Unavailable();
    if (why !== null) throw new Error(why);
  }
  if (backend().name === 'native') setNativeConvPrecision(p);
  return p;
}

/** The precision the current backend's convolutions compute in. */
export function precision(): Precision {
  return backend().name === 'native' ? nativeConvPrecision() : 'fp32';
}

/**
 * Run `fn` (synchronous) with the native kernels' outputs carved from this thread's
 * scratch buffers, all of which are reused once the outermost scope returns. A training
 * step allocates hundreds of megabytes of activations and gradients; from the scratch
 * they cost no garbage collection. Nothing `fn` makes through a kernel may be used after
 * it returns: copy out what must stay (a loss value, the logits, parameter gradients).
 * On the reference backend this just runs `fn`.
 */
export function withScratch<T>(fn: () => T): T {
  if (backend().name !== 'native') return fn();
  const b = loadNativeBinding();
  b.scratchOpen();
  let result: T;
  try {
    result = fn();
  } finally {
    b.scratchClose();
  }
  if (result instanceof Promise) {
    throw new Error('withScratch: the function returned a Promise; the scratch serves synchronous work only');
  }
  return result;
}

/**
 * Inside withScratch, run `fn` in a frame: what the kernels carve from the scratch while
 * it runs is released when it returns (the memory carved before it stays), so that a
 * loop of frames reuses the same memory. Nothing made in the frame may be used after
 * it: copy what must stay into an array made before it (scratchFloat32). On the
 * reference backend this just runs `fn`.
 */
export function withScratchFrame(fn: () => void): void {
  if (backend().name !== 'native') {
    fn();
    return;
  }
  const b = loadNativeBinding();
  b.scratchFrameOpen();
  try {
    fn();
  } finally {
    b.scratchFrameClose();
  }
}

/** n floats, carved from the scratch inside withScratch on the native backend, else a new array (contents undefined). */
export function scratchFloat32(n: number): Float32Array {
  return backend().name === 'native' ? loadNativeBinding().scratchFloat32(n) : new Float32Array(n);
}
