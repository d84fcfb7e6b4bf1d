// Flag parsers the commands share (train's recipe flags are in train-flags.ts): each
// turns a flag's text into a checked value or a one-line UserError that names the flag.
import { type Command, Option } from 'commander';
import { PRECISIONS } from '../backend/index.js';
import { WEIGHT_NAMINGS, type WeightNaming } from '../io/name-mapping.js';
import { FIELDS } from '../train/config.js';
import { UserError } from './errors.js';
import { decimalNumber } from './train-flags.js';

/** An integer from min to max written in decimal. */
export function integerFlag(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = decimalNumber(text);
  if (n === null || !Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min === 1 ? 'a positive integer' : `an integer >= ${min}`) : `an integer from ${min} to ${max}`;
    throw new UserError(`${flag} must be ${range}, got ${JSON.stringify(text)}`);
  }
  return n;
}

export function positiveInt(flag: string, text: string): number {
  return integerFlag(flag, text, 1);
}

/** Comma-separated finite numbers. */
export function numberList(flag: string, text: string): number[] {
  const values = text.split(',').map((s) => decimalNumber(s));
  if (values.length === 0 || values.some((v) => v === null)) throw new UserError(`${flag} ${text}: expected comma-separated numbers`);
  return values as number[];
}

/** Comma-separated positive integers. */
export function positiveInts(flag: string, text: string): number[] {
  const values = numberList(flag, text);
  if (values.some((v) => !Number.isInteger(v) || v < 1)) throw new UserError(`${flag} ${text}: expected positive integers`);
  return values;
}

/** `--naming`: whose state-dict names a weights file uses. */
export function namingFlag(value: string): WeightNaming | 'auto' {
  if (value === 'auto') return value;
  const known = WEIGHT_NAMINGS.find((n) => n === value);
  if (!known) throw new UserError(`--naming ${value}: expected auto or one of ${WEIGHT_NAMINGS.join(', ')}`);
  return known;
}

export const NAMING_HELP = `whose names the weights use: auto, ${WEIGHT_NAMINGS.join(', ')}`;

/** --backend and --precision, as every command that runs a model takes them. */
export function addComputeFlags(cmd: Command): Command {
  return cmd
    .option('--backend <name>', 'compute backend: native or reference')
    .addOption(new Option('--precision <p>', FIELDS.precision.help).choices(PRECISIONS).default('fp32'));
}
