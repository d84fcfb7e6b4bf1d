// The `resnet train` flags, one per recipe field (src/train/config.ts), so the help,
// the checks and a --config file always agree. Flag values are parsed to numbers and
// lists here and checked by the field's own check (which names the flag on error).
import { type Command, Option } from 'commander';
import { DEFAULT_CONFIG, FIELD_KEYS, FIELDS, type TrainConfig } from '../train/config.js';

export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function defaultText(key: keyof TrainConfig): string {
  const v = DEFAULT_CONFIG[key];
  if (v === null || v === false) return '';
  if (v === true) return ' (default: on)';
  return ` (default: ${Array.isArray(v) ? v.join(',') : String(v)})`;
}

/** A flag's text as the value its field expects; text that is not a number stays text so the check can quote it. */
function parseValue(kind: string, text: string): unknown {
  if (kind === 'int' || kind === 'number') {
    const n = Number(text);
    return text.trim() !== '' && Number.isFinite(n) ? n : text;
  }
  if (kind === 'numbers') {
    const parts = text.split(',').map((s) => s.trim());
    const nums = parts.map(Number);
    return parts.every((s, i) => s !== '' && Number.isFinite(nums[i])) ? nums : text;
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
