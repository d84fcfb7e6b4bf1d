#!/usr/bin/env node
// Builds the oneDNN addon (build/Release/resnet_native.node) with node-gyp.
//
// As the package's install script it never fails the install: when the addon prebuilt
// for this platform (shipped in the npm package) loads, it compiles nothing; otherwise
// it compiles, and a failed build prints one line saying why and how to get the native
// backend, and exits 0, as the library then runs on its reference backend.
// --strict (npm run build:native): always compile; a failed build exits 1.
// --prebuild (prepack): compile as --strict, then copy the addon to prebuilds/, where
// the package's loader looks first (src/backend/native-binding.ts, ADDON_FILES).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const prebuild = process.argv.includes('--prebuild');
const strict = prebuild || process.argv.includes('--strict');
const logPath = join(root, 'build', 'native-build.log');
const BUILT = join('build', 'Release', 'resnet_native.node');
const PREBUILT = join('prebuilds', `${process.platform}-${process.arch}`, 'resnet_native.node');

/** The oneDNN version of the addon at `file` when it loads here, else null. */
function loads(file) {
  try {
    const m = createRequire(import.meta.url)(join(root, file));
    return typeof m.onednnVersion === 'string' ? m.onednnVersion : null;
  } catch {
    return null;
  }
}

/** The node-gyp bundled with npm: npm exports its path to scripts it runs. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    process.env.npm_execpath ? join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : undefined,
  ];
  return candidates.find((p) => p !== undefined && p !== '' && existsSync(p));
}

/**
 * Node's headers without a download: npm passes the project's `nodedir` (.npmrc) to
 * its scripts; run by hand, use the prefix of the running node when it ships them
 * (Debian's nodejs: /usr/include/node).
 */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node.h')) ? [`--nodedir=${prefix}`] : [];
}

/** A short reason read from the compiler and linker output. */
function reasonFrom(log) {
  if (/dnnl\.hpp: No such file/.test(log)) return 'the oneDNN headers (oneapi/dnnl/dnnl.hpp) were not found';
  if (/cannot find -ldnnl/.test(log)) return 'the oneDNN library (libdnnl.so) was not found';
  if (/napi\.h: No such file|node-addon-api/.test(log) && /No such file|Cannot find module/.test(log)) {
    return 'node-addon-api is missing (run npm install)';
  }
  if (/node\.h: No such file|common\.gypi not found|gyp ERR!.*(headers|tarball|download|network connectivity)/i.test(log)) {
    return "Node.js headers were not found (set nodedir, e.g. 'nodedir=/usr' in .npmrc)";
  }
  if (/make: not found|g\+\+: not found|c\+\+: not found|not found: make/.test(log)) {
    return 'no C++ toolchain (make, g++) was found';
  }
  return `the C++ build failed (log: ${logPath})`;
}

function finish(ok, reason) {
  if (ok && prebuild) {
    mkdirSync(join(root, dirname(PREBUILT)), { recursive: true });
    copyFileSync(join(root, BUILT), join(root, PREBUILT));
    const version = loads(PREBUILT);
    if (version === null) {
      console.log(`resnet-ts: the prebuilt addon ${PREBUILT} does not load.`);
      process.exit(1);
    }
    console.log(`resnet-ts: native backend prebuilt (${PREBUILT}, oneDNN ${version}).`);
    process.exit(0);
  }
  if (ok) {
    console.log(`resnet-ts: native backend built (${BUILT}).`);
    process.exit(0);
  }
  console.log(
    `resnet-ts: native backend not built: ${reason}; the slower reference backend will be used. ` +
      'To get it: apt-get install libdnnl-dev, then npm rebuild resnet-ts (or npm install again).',
  );
  process.exit(strict ? 1 : 0);
}

if (!strict && existsSync(join(root, PREBUILT))) {
  const version = loads(PREBUILT);
  if (version !== null) {
    console.log(`resnet-ts: native backend ready, prebuilt for ${process.platform}-${process.arch} (oneDNN ${version}).`);
    process.exit(0);
  }
}

const nodeGyp = findNodeGyp();
if (nodeGyp === undefined) finish(false, "npm's node-gyp was not found");

const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--jobs', 'max', ...nodedirArgs()], {
  cwd: root,
  encoding: 'utf8',
  env: process.env,
  maxBuffer: 64 * 1024 * 1024,
});
const log = `${result.stdout ?? ''}\n${result.stderr ?? ''}${result.error ? `\n${String(result.error)}` : ''}`;
try {
  mkdirSync(dirname(logPath), { recursive: true });
  writeFileSync(logPath, log);
} catch {
  // The log is a convenience; an unwritable build folder shows up in the reason anyway.
}
const built = result.status === 0 && existsSync(join(root, BUILT));
finish(built, built ? '' : reasonFrom(log));
