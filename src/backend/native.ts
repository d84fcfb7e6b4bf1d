// The native backend: every kernel of KERNELS runs in the oneDNN addon, zero-copy on
// the caller's Float32Arrays. The addon exports each kernel under its name, taking the
// arguments its row declares (the loader checks that none is missing), so the backend
// is the addon itself; sizes are checked inside the addon.
import type { Backend } from './backend.js';
import { loadNativeBinding, type NativeBinding } from './native-binding.js';

function makeBackend(b: NativeBinding): Backend {
  return { ...b, name: 'native', threads: () => b.getThreads() };
}

let instance: Backend | null = null;

/** The oneDNN backend; throws an Error with the reason when the addon cannot load. */
export function loadNativeBackend(): Backend {
  instance ??= makeBackend(loadNativeBinding());
  return instance;
}

/** Threads the native kernels use (OpenMP; all cores unless RESNET_THREADS is set). */
export function nativeThreads(): number {
  return loadNativeBinding().getThreads();
}

export function setNativeThreads(threads: number): void {
  loadNativeBinding().setThreads(threads);
}

/** oneDNN's effective instruction set and whether it has native bf16 dot products. */
export function nativeCpu(): { isa: string; bf16: boolean } {
  const b = loadNativeBinding();
  return { isa: b.cpuIsa, bf16: b.nativeBf16 };
}

/** Precision of the native float32 convolutions (conv2d, prepareConv2d, conv2dBackward), and so of the ops (precision()). */
export function setNativeConvPrecision(precision: 'fp32' | 'bf16'): void {
  loadNativeBinding().setConvPrecision(precision);
}

export function nativeConvPrecision(): 'fp32' | 'bf16' {
  return loadNativeBinding().getConvPrecision();
}

/** The oneDNN version the addon runs on. */
export function onednnVersion(): string {
  return loadNativeBinding().onednnVersion;
}
