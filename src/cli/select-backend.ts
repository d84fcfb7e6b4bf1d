// `--backend native|reference` and `--precision fp32|bf16|auto` on the commands that compute.
import { getBackend, setBackend, setPrecision, type Precision, type PrecisionChoice } from '../backend/index.js';
import { UserError } from './errors.js';

export function selectBackend(name: string | undefined): void {
  if (name === undefined) return;
  try {
    setBackend(getBackend(name));
  } catch (e) {
    throw new UserError(`--backend ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Applies a precision (after the backend is chosen) and returns the one chosen; refused in one line where bf16 cannot run. */
export function selectPrecision(choice: PrecisionChoice, where = '--precision'): Precision {
  try {
    return setPrecision(choice);
  } catch (e) {
    throw new UserError(`${where} ${choice}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
