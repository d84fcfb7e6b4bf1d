// Noticing that training runs wrote something: fs.watch on the folders for an early word,
// and a poll of the files' sizes and times as the fallback that always works (fs.watch
// misses events on network file systems and in some containers). `onChange` is called
// once per change of what the folders hold, never twice for the same state.
import { existsSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { STEPS_FILE } from '../experiments/step-log.js';

/** The files of a run folder the dashboard's charts are drawn from. */
const RUN_FILES = ['config.json', 'metrics.jsonl', STEPS_FILE];

function isRunFolder(dir: string): boolean {
  return existsSync(join(dir, 'config.json'));
}

/**
 * The run folders `paths` name: each path that is a run folder itself, else the run
 * folders directly inside it (sorted by name), so `runs/` shows every run in it.
 */
export function findRunFolders(paths: readonly string[]): string[] {
  const found: string[] = [];
  for (const p of paths) {
    if (isRunFolder(p)) {
      found.push(p);
      continue;
    }
    let names: string[];
    try {
      names = readdirSync(p).sort();
    } catch {
      continue;
    }
    for (const name of names) if (isRunFolder(join(p, name))) found.push(join(p, name));
  }
  return found;
}

function stamp(file: string): string {
  try {
    const s = statSync(file);
    return `${s.size}@${s.mtimeMs}`;
  } catch {
    return '-';
  }
}

/** What the folders hold now, as a string that changes whenever a chart could. */
export function runsState(paths: readonly string[]): { runs: string[]; signature: string } {
  const runs = findRunFolders(paths);
  return { runs, signature: runs.map((r) => `${r}|${RUN_FILES.map((f) => stamp(join(r, f))).join('|')}`).join('\n') };
}

export class RunWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly timer: NodeJS.Timeout;
  private signature: string | null = null;
  private pending: NodeJS.Timeout | null = null;

  constructor(private readonly paths: readonly string[], private readonly onChange: (runs: string[]) => void, pollMs: number) {
    this.timer = setInterval(() => this.check(), pollMs);
    this.check();
  }

  /** Look now (and after a watch event, a moment later, when the writer is likely done). */
  check(): void {
    const { runs, signature } = runsState(this.paths);
    this.watch([...this.paths, ...runs]);
    if (signature === this.signature) return;
    this.signature = signature;
    this.onChange(runs);
  }

  close(): void {
    clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private watch(dirs: readonly string[]): void {
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.soon());
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch {
        // Not watchable (gone, or no inotify): the poll still sees it.
      }
    }
  }

  private soon(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.check();
    }, 50);
  }
}
