// The files the browser pages load: the prediction page and the dashboard's script (kept
// as plain files in src/serve/page/, which the package ships), and onnxruntime-web's
// JavaScript and WebAssembly from its installed package, so the page's in-browser mode
// fetches nothing from outside this server.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * src/serve/page/ of the package: beside this file when run from the sources, three
 * levels up (dist/src/serve -> package root) when run from the compiled output.
 */
function pageDir(): string {
  for (const dir of [join(HERE, 'page'), join(HERE, '..', '..', '..', 'src', 'serve', 'page')]) {
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  throw new Error(`the page files are missing (looked for src/serve/page/index.html from ${HERE}); reinstall the package`);
}

/** onnxruntime-web's dist/ folder, or null when the package is not installed. */
function ortDir(): string | null {
  try {
    // The package's exports hide package.json; its main entry lies in dist/ beside the browser builds.
    let dir = dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
    while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
    return join(dir, 'dist');
  } catch {
    return null;
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
};

export interface Asset {
  bytes: Buffer;
  type: string;
}

/** Names a request may ask for: plain file names, no paths. */
const PAGE_FILE = /^[a-z][a-z0-9-]*\.(html|js|css)$/;
/** onnxruntime-web's browser builds: its scripts and wasm binaries, not its source maps or Node builds. */
const ORT_FILE = /^ort(-wasm-simd-threaded)?(\.[a-z]+)*\.(js|mjs|wasm)$/;

function read(dir: string, name: string): Asset | null {
  const path = join(dir, name);
  if (!existsSync(path)) return null;
  const ext = name.slice(name.lastIndexOf('.'));
  return { bytes: readFileSync(path), type: TYPES[ext] ?? 'application/octet-stream' };
}

/** Files read once and kept: the pages are small, onnxruntime's wasm is read on first use. */
export class Assets {
  private readonly cache = new Map<string, Asset | null>();
  private readonly page = pageDir();
  private readonly ort = ortDir();

  /** A file of src/serve/page/, or null when there is no such file. */
  pageFile(name: string): Asset | null {
    if (!PAGE_FILE.test(name)) return null;
    return this.cached(`page/${name}`, () => read(this.page, name));
  }

  /** A file of onnxruntime-web's browser build, or null. */
  ortFile(name: string): Asset | null {
    if (this.ort === null || name.includes('node') || !ORT_FILE.test(name)) return null;
    const dir = this.ort;
    return this.cached(`ort/${name}`, () => read(dir, name));
  }

  private cached(key: string, load: () => Asset | null): Asset | null {
    if (!this.cache.has(key)) this.cache.set(key, load());
    return this.cache.get(key)!;
  }
}
