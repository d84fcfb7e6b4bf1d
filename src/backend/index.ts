// Backend selection: native (oneDNN) when the addon loads, otherwise the reference
// backend with one line saying why. RESNET_BACKEND=native|reference forces a choice.
import type { Backend } from './backend.js';
import { referenceBackend } from './reference.js';
import { loadNativeBackend } from './native.js';

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
