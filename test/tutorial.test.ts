// The tutorial is executable: every ```ts block of docs/tutorial.md is type-checked
// against the built library's declarations and run with Node, importing 'resnet-ts'
// the way a user's project does (a node_modules/resnet-ts link to this package). The
// blocks check what the text claims with node:assert, so a claim that stops being true
// fails here. The Chinese version must hold exactly the same blocks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DOCS = [join(REPO, 'docs', 'tutorial.md'), join(REPO, 'docs', 'tutorial.zh.md')] as const;

interface Snippet {
  /** docs/tutorial.md:LINE of the opening fence. */
  readonly where: string;
  /** The nearest heading above the block. */
  readonly heading: string;
  readonly code: string;
}

/** The ```ts (or ```typescript) blocks of a Markdown file, in order. */
function snippets(file: string): Snippet[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Snippet[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^#{1,6} /.test(line)) heading = line.replace(/^#+ /, '');
    const open = /^```(\w*)\s*$/.exec(line);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `${relative(REPO, file)}:${i + 1}: code block is never closed`);
    if (open[1] === 'ts' || open[1] === 'typescript') {
      out.push({ where: `${relative(REPO, file)}:${i + 1}`, heading, code: lines.slice(i + 1, end).join('\n') + '\n' });
    }
    i = end;
  }
  return out;
}

const [english, chinese] = DOCS.map(snippets) as [Snippet[], Snippet[]];

describe('tutorial', () => {
  let dir = '';
  const files: string[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'resnet-ts-tutorial-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(REPO, join(dir, 'node_modules', 'resnet-ts'), 'dir');
    english.forEach((s, k) => {
      const file = join(dir, `snippet-${String(k + 1).padStart(2, '0')}.mts`);
      writeFileSync(file, s.code);
      files.push(file);
    });
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('both languages hold the same code blocks', () => {
    assert.ok(english.length >= 10, `expected the tutorial's snippets in docs/tutorial.md, found ${english.length}`);
    assert.equal(chinese.length, english.length,
      `docs/tutorial.md has ${english.length} ts blocks but docs/tutorial.zh.md has ${chinese.length}`);
    english.forEach((s, k) => {
      assert.equal(chinese[k]!.code, s.code, `block ${k + 1} differs: ${s.where} against ${chinese[k]!.where}`);
    });
  });

  test('every block imports resnet-ts and checks its claims with node:assert', () => {
    for (const s of english) {
      assert.match(s.code, /from 'resnet-ts';/, `${s.where} does not import 'resnet-ts'`);
      assert.match(s.code, /from 'node:assert\/strict';/, `${s.where} does not import node:assert/strict`);
      assert.match(s.code, /\bassert(\.\w+)?\(/, `${s.where} asserts nothing`);
    }
  });

  test('the files and images the tutorial links to exist', () => {
    for (const file of DOCS) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        assert.ok(existsSync(join(dirname(file), target)), `${relative(REPO, file)} links to ${target}, which does not exist`);
      }
    }
  });

  test('the degradation results quoted are those of docs/degradation.md', () => {
    // Table rows `| plain-20 | ... |`, by net name.
    const rows = (file: string): Map<string, string[]> => new Map(readFileSync(file, 'utf8').split('\n')
      .filter((l) => /^\| (plain|resnet)-\d+ \|/.test(l))
      .map((l) => l.split('|').map((c) => c.trim()).filter((c) => c !== ''))
      .map((cells) => [cells[0]!, cells]));
    const source = rows(join(REPO, 'docs', 'degradation.md'));
    for (const file of DOCS) {
      const quoted = rows(file);
      assert.equal(quoted.size, 4, `${relative(REPO, file)} should quote the four nets of docs/degradation.md`);
      for (const [net, cells] of quoted) {
        for (const cell of cells) {
          assert.ok(source.get(net)?.includes(cell), `${relative(REPO, file)}: ${net} ${cell} is not in docs/degradation.md`);
        }
      }
    }
  });

  test('every block type-checks against the library declarations', () => {
    const parsed = ts.parseJsonConfigFileContent(
      ts.readConfigFile(join(REPO, 'tsconfig.json'), ts.sys.readFile).config, ts.sys, REPO);
    const options: ts.CompilerOptions = {
      ...parsed.options,
      noEmit: true,
      declaration: false,
      sourceMap: false,
      typeRoots: [join(REPO, 'node_modules', '@types')],
    };
    delete options.rootDir;
    delete options.outDir;
    const program = ts.createProgram(files, options);
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      if (!d.file) return text;
      const k = files.indexOf(d.file.fileName);
      const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
      const where = k >= 0 ? `${english[k]!.where} (line ${line + 1} of the block)` : `${d.file.fileName}:${line + 1}`;
      return `${where}: ${text}`;
    });
    assert.deepEqual(problems, []);
  });

  english.forEach((s, k) => {
    test(`runs ${s.where} (${s.heading})`, () => {
      const js = ts.transpileModule(s.code, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        fileName: files[k],
      }).outputText;
      const file = files[k]!.replace(/\.mts$/, '.mjs');
      writeFileSync(file, js);
      const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `${s.where} failed (exit ${r.status}, signal ${r.signal}):\n${r.stderr}${r.stdout}`);
    });
  });
});
