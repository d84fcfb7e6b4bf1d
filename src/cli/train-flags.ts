// The `resnet train` flags, one per recipe field (src/train/config.ts), so the help,
// the checks and a --config file always agree. Flag values are parsed to numbers and
// lists here and checked by the field's own check (which names the flag on error).
import { type Command, Option } from 'commander';
import { DEFAULT_CONFIG, FIELD_KEYS, FIELDS, flagName, type TrainConfig } from '../train/config.js';

export { flagName };

function defaultText(key: keyof TrainConfig): string {
  const v = DEFAULT_CONFIG[key];
  if (v === null || v === false) return '';
  if (v === true) return ' (default: on)';
  return ` (default: ${Array.isArray(v) ? v.join(',') : String(v)})`;
}

/** A number as people write one: decimal, with an optional exponent (not 0x10, 0b11, Infinity). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The number `text` writes in decimal notation; null for anything else. */
export function decimalNumber(text: string): number | null {
  const t = text.trim();
  return DECIMAL.test(t) ? Number(t) : null;
}

/** A flag's text as the value its field expects; text that is not a number stays text so the check can quote it. */
export function parseValue(kind: string, text: string): unknown {
  if (kind === 'int' || kind === 'number') return decimalNumber(text) ?? text;
  if (kind === 'numbers') {
    const nums = text.split(',').map(decimalNumber);
    return nums.every((n) => n !== null) ? nums : text;
  }
  return text;
}

/** Add every recipe flag to `cmd`. Flags have no commander defaults: unset stays undefined. */
export function addRecipeFlags(cmd: Command): void {
  for (const key of FIELD_KEYS) {
    const f = FIELDS[key];
    const flag = flagName(key);
    if (f.kind === 'bool') {
      cmd.addOption(new Option(`--${flag}`, `${f.help}${defaultText(key)}`));
      cmd.addOption(new Option(`--no-${flag}`, `turn off --${flag}`));
      continue;
    }
    const opt = new Option(`--${flag} <${f.arg ?? 'value'}>`, `${f.help}${defaultText(key)}`);
    if (f.choices) opt.choices(f.choices);
    cmd.addOption(opt.argParser((text: string) => parseValue(f.kind, text)));
  }
}

/** The recipe fields given on the command line, as a patch for mergeConfig. */
export function recipePatch(cmd: Command): Record<string, unknown> {
  const opts = cmd.opts();
  const patch: Record<string, unknown> = {};
  for (const key of FIELD_KEYS) {
    const source = cmd.getOptionValueSource(key);
    if (source === 'cli' && opts[key] !== undefined) patch[key] = opts[key];
  }
  return patch;
}
