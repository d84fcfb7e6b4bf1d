// `--backend native|reference` on the commands that compute.
import { getBackend, setBackend } from '../backend/index.js';
import { UserError } from './errors.js';

export function selectBackend(name: string | undefined): void {
  if (name === undefined) return;
  try {
    setBackend(getBackend(name));
  } catch (e) {
    throw new UserError(`--backend ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
