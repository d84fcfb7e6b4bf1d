#!/usr/bin/env node
// Runs the compiled test suites with Node's own test runner, one file at a time.
//
//   node scripts/run-tests.mjs                            every suite
//   node scripts/run-tests.mjs native-backend models_ cli-  the suites whose names start so
//
// The files are listed here rather than handed to `node --test` as a folder (Node 21 and
// later take only files and globs there) or as a shell glob (expanded differently by each
// shell): the suites are test/*.test.ts, each run as its compiled dist/test/*.test.js, so
// a compiled test whose source was deleted never runs. It runs on the node that runs it.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SUFFIX = '.test.ts';

function fail(message) {
  console.error(`run-tests: ${message}`);
  process.exit(2);
}

const prefixes = process.argv.slice(2);
const unknownFlag = prefixes.find((p) => p.startsWith('-'));
if (unknownFlag !== undefined) {
  fail(`unknown option '${unknownFlag}'; give suite names or their beginnings, e.g. native-backend models_ cli-`);
}

const suites = readdirSync(join(root, 'test'))
  .filter((f) => f.endsWith(SUFFIX))
  .map((f) => f.slice(0, -SUFFIX.length))
  .sort();
for (const p of prefixes) {
  if (!suites.some((s) => s.startsWith(p))) fail(`no suite in test/ starts with '${p}'; the suites: ${suites.join(' ')}`);
}
const chosen = prefixes.length === 0 ? suites : suites.filter((s) => prefixes.some((p) => s.startsWith(p)));
const files = chosen.map((s) => join('dist', 'test', `${s}.test.js`));
const missing = files.filter((f) => !existsSync(join(root, f)));
if (missing.length > 0) fail(`${missing[0]} is not compiled (${missing.length} missing); run npm run build first`);

console.log(`run-tests: ${files.length} suite${files.length === 1 ? '' : 's'} on Node ${process.version}`);
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: root, stdio: 'inherit' });
if (r.error) fail(`could not start ${process.execPath}: ${r.error.message}`);
process.exit(r.status ?? 1);
