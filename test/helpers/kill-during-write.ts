// Preloaded into a `resnet train` child (node --import) by crash tests: SIGKILLs the
// process in the middle of its N-th checkpoint write (or of writing the run's
// config.json), so a test can put a crash exactly where timing alone rarely lands it.
//   RESNET_KILL_CHECKPOINT_WRITE=N   which checkpoint write of this process (1-based)
//   RESNET_KILL_FILE=config          kill in the N-th write of config.json instead
//   RESNET_KILL_PHASE=partial        the temporary file holds half its bytes (a write cut short)
//   RESNET_KILL_PHASE=unrenamed      the temporary file is complete and flushed, not yet renamed
// The patched functions are node:fs's own; syncBuiltinESMExports() makes the ES module
// bindings (`import { openSync } from 'node:fs'`) see them.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const target = Number(process.env['RESNET_KILL_CHECKPOINT_WRITE'] ?? '0');
const phase = process.env['RESNET_KILL_PHASE'] ?? 'partial';
const TEMP = process.env['RESNET_KILL_FILE'] === 'config'
  ? /\.config\.json\.\d+\.\d+\.tmp$/
  : /\.step-\d+\.safetensors\.\d+\.\d+\.tmp$/;

if (target > 0) {
  let writes = 0;
  let fd: number | null = null;
  let path: string | null = null;
  const { openSync, fsyncSync, renameSync, ftruncateSync, fstatSync } = fs;
  const die = (): never => {
    process.kill(process.pid, 'SIGKILL');
    throw new Error('unreachable: SIGKILL was sent');
  };
  fs.openSync = (p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode | null): number => {
    const opened = openSync(p, flags ?? 'r', mode);
    if (TEMP.test(String(p)) && ++writes === target) {
      fd = opened;
      path = String(p);
    }
    return opened;
  };
  fs.fsyncSync = (f: number): void => {
    if (f === fd && phase === 'partial') {
      ftruncateSync(f, Math.floor(fstatSync(f).size / 2));
      fsyncSync(f);
      die();
    }
    fsyncSync(f);
  };
  fs.renameSync = (from: fs.PathLike, to: fs.PathLike): void => {
    if (path !== null && String(from) === path && phase === 'unrenamed') die();
    renameSync(from, to);
  };
  syncBuiltinESMExports();
}
