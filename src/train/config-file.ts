// Reading a recipe file (`resnet train --config recipe.json`): JSON text to a checked
// TrainConfig. Whatever is in the file, the outcome is a config or one ConfigError line
// naming the file and, for a bad value, the path of the field (`recipe.json: .lr ...`).
import { readFileSync, statSync } from 'node:fs';
import { ConfigError, DEFAULT_CONFIG, finishConfig, mergeConfig, type TrainConfig } from './config.js';

/** A recipe is a few hundred bytes; anything this large is not one (and is not read whole). */
export const MAX_CONFIG_BYTES = 1 << 20;

function oneLine(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

function readText(file: string): string {
  let bytes: Buffer;
  try {
    const size = statSync(file).size;
    if (size > MAX_CONFIG_BYTES) throw new ConfigError(`${file}: ${size} bytes is too large for a config file (at most ${MAX_CONFIG_BYTES}); is it the right file?`);
    bytes = readFileSync(file);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = e instanceof Error && 'code' in e ? String(e.code) : '';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, expected a JSON file' : `cannot read (${oneLine(e instanceof Error ? e.message : String(e))})`;
    throw new ConfigError(`${file}: ${why}`);
  }
  try {
    // A byte-order mark is legal in UTF-8 files written by some editors; JSON.parse rejects it.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ConfigError(`${file}: not UTF-8 text; a config file is JSON`);
  }
}

/** The parsed JSON of a config file. */
export function readConfigFile(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    // V8 quotes the offending text in the message; it may span lines.
    throw new ConfigError(`${file}: not valid JSON (${oneLine(e instanceof Error ? e.message : String(e))})`);
  }
}

/** A config file layered over `base` (the defaults), every field and combination checked. */
export function loadConfigFile(file: string, base: TrainConfig = { ...DEFAULT_CONFIG }): TrainConfig {
  return finishConfig(mergeConfig(base, readConfigFile(file), file), file);
}
