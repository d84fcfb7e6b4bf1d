// Errors about something the user handed us (a data-set file, a weights file, a config
// field, a model name, a run folder) become UserErrors: one line, exit status 2.
import { DataError } from '../data/errors.js';
import { WeightsFileError } from '../io/errors.js';
import { ModelConfigError } from '../models/errors.js';
import { ConfigError } from '../train/config.js';
import { FileWriteError } from '../util/atomic-write.js';
import { RunFolderError } from '../train/run-folder.js';
import { TorchEngineError } from '../train/torch-engine.js';
import { UserError } from './errors.js';

/** The error classes whose message is a complete, one-line answer for the user (exit status 2). */
export const USER_FACING = [UserError, DataError, WeightsFileError, ModelConfigError, ConfigError, RunFolderError, FileWriteError, TorchEngineError] as const;

export function isUserFacing(e: unknown): e is Error {
  return USER_FACING.some((cls) => e instanceof cls);
}

export function asUserError(e: unknown): unknown {
  if (isUserFacing(e) && !(e instanceof UserError)) {
    const u = new UserError(e.message);
    u.stack = e.stack;
    return u;
  }
  return e;
}

/** Run `fn`; a user-facing error from it is rethrown as a UserError. */
export async function userErrors<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asUserError(e);
  }
}
