// Reading the PyTorch fixtures written by scripts/make_fixtures.py, and comparing
// arrays with a message that says how far off a result is and where.
import { AssertionError } from 'node:assert';
import { readFileSync } from 'node:fs';
import { Tensor, tensor } from '../../src/index.js';

/** test/fixtures, found from this file's place in dist/test/helpers or test/helpers. */
const FIXTURE_ROOT = new URL('../../../test/fixtures/', import.meta.url);

interface StoredTensor {
  shape: number[];
  data: number[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNumberArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number');
}

function isStoredTensor(v: unknown): v is StoredTensor {
  return isRecord(v) && isNumberArray(v['shape']) && isNumberArray(v['data']);
}

/** One fixture file: named float32 tensors and plain attributes. */
export class Fixture {
  private readonly tensors: Record<string, StoredTensor>;
  private readonly attrs: Record<string, unknown>;

  constructor(readonly name: string, json: unknown) {
    if (!isRecord(json) || !isRecord(json['tensors']) || !isRecord(json['attrs'])) {
      throw new Error(`fixture ${name}: expected { tensors, attrs }`);
    }
    const tensors: Record<string, StoredTensor> = {};
    for (const [k, v] of Object.entries(json['tensors'])) {
      if (!isStoredTensor(v)) throw new Error(`fixture ${name}: tensor ${k} is not { shape, data }`);
      tensors[k] = v;
    }
    this.tensors = tensors;
    this.attrs = json['attrs'];
  }

  has(key: string): boolean {
    return key in this.tensors;
  }

  private stored(key: string): StoredTensor {
    const t = this.tensors[key];
    if (!t) throw new Error(`fixture ${this.name} has no tensor '${key}' (has: ${Object.keys(this.tensors).join(', ')})`);
    return t;
  }

  shape(key: string): number[] {
    return this.stored(key).shape;
  }

  array(key: string): Float32Array {
    return Float32Array.from(this.stored(key).data);
  }

  /** A fresh tensor holding the stored values. */
  tensor(key: string, requiresGrad = false): Tensor {
    const t = this.stored(key);
    return tensor(t.data, t.shape, requiresGrad);
  }

  attr(key: string): unknown {
    if (!(key in this.attrs)) throw new Error(`fixture ${this.name} has no attribute '${key}'`);
    return this.attrs[key];
  }

  num(key: string): number {
    const v = this.attr(key);
    if (typeof v !== 'number') throw new Error(`fixture ${this.name}: attribute ${key} is not a number`);
    return v;
  }

  bool(key: string): boolean {
    const v = this.attr(key);
    if (typeof v !== 'boolean') throw new Error(`fixture ${this.name}: attribute ${key} is not a boolean`);
    return v;
  }

  nums(key: string): number[] {
    const v = this.attr(key);
    if (!isNumberArray(v)) throw new Error(`fixture ${this.name}: attribute ${key} is not a number list`);
    return v;
  }

  record(key: string): Record<string, unknown> {
    const v = this.attr(key);
    if (!isRecord(v)) throw new Error(`fixture ${this.name}: attribute ${key} is not an object`);
    return v;
  }
}

/** Load test/fixtures/<kind>/<name>.json. */
export function loadFixture(kind: 'ops' | 'optim', name: string): Fixture {
  const url = new URL(`${kind}/${name}.json`, FIXTURE_ROOT);
  let text: string;
  try {
    text = readFileSync(url, 'utf8');
  } catch {
    throw new Error(`fixture ${kind}/${name}.json is missing: run \`npm run fixtures\` (needs PyTorch) and commit the result`);
  }
  return new Fixture(`${kind}/${name}`, JSON.parse(text));
}

export interface Tolerance {
  /** Allowed relative error, |actual - expected| <= atol + rtol * |expected|. */
  rtol: number;
  /** Allowed absolute error, as a fraction of the largest |expected| (at least 1). */
  atolScale: number;
}

/**
 * float32 tolerance: results computed in float32 (or accumulated in float64 and rounded)
 * against float64 PyTorch results rounded to float32. Sums of a few hundred products lose
 * a few units in the last place; a wrong result is off in the first or second digit.
 */
export const FLOAT32_TOL: Tolerance = { rtol: 1e-4, atolScale: 1e-5 };

function indexIn(shape: readonly number[], flat: number): string {
  if (shape.length === 0) return '[]';
  const idx: number[] = [];
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    idx.unshift(n === 0 ? 0 : rest % n);
    rest = n === 0 ? 0 : Math.floor(rest / n);
  }
  return `[${idx.join(', ')}]`;
}

/**
 * Assert that `actual` matches `expected` elementwise. On failure the message gives the
 * largest absolute and relative errors, the element where each occurs and its values.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string,
  shape: readonly number[] = [expected.length], tol: Tolerance = FLOAT32_TOL): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({ message: `${what}: ${actual.length} values, expected ${expected.length}` });
  }
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  const atol = tol.atolScale * scale;
  let worstAbs = -1;
  let worstAbsAt = 0;
  let worstRel = -1;
  let worstRelAt = 0;
  let failures = 0;
  let firstFailure = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const err = Math.abs(a - e);
    const bad = !(err <= atol + tol.rtol * Math.abs(e)); // NaN counts as bad
    if (bad) {
      failures++;
      if (firstFailure < 0) firstFailure = i;
    }
    if (!(err <= worstAbs)) {
      worstAbs = Number.isNaN(err) ? Infinity : err;
      worstAbsAt = i;
    }
    const rel = err / Math.max(Math.abs(e), Number.MIN_VALUE);
    if (!(rel <= worstRel)) {
      worstRel = Number.isNaN(rel) ? Infinity : rel;
      worstRelAt = i;
    }
  }
  if (failures === 0) return;
  const at = (i: number): string => `${indexIn(shape, i)} (got ${actual[i]}, expected ${expected[i]})`;
  throw new AssertionError({
    message: `${what}: ${failures} of ${expected.length} values outside tolerance ` +
      `(rtol ${tol.rtol}, atol ${atol.toExponential(2)}). ` +
      `Max abs error ${worstAbs.toExponential(3)} at ${at(worstAbsAt)}; ` +
      `max rel error ${worstRel.toExponential(3)} at ${at(worstRelAt)}; first failure at ${at(firstFailure)}`,
  });
}

/** Assert that a shape equals the expected one, naming both. */
export function assertShape(actual: readonly number[], expected: readonly number[], what: string): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new AssertionError({ message: `${what}: shape [${actual.join(', ')}], expected [${expected.join(', ')}]` });
  }
}

/** Compare a tensor against a fixture tensor: shape, then values. */
export function assertTensorMatches(actual: Tensor | null, fx: Fixture, key: string, what = key,
  tol: Tolerance = FLOAT32_TOL): void {
  if (!actual) throw new AssertionError({ message: `${fx.name}: ${what} is missing (null)` });
  assertShape(actual.shape, fx.shape(key), `${fx.name}: ${what}`);
  assertClose(actual.data, fx.array(key), `${fx.name}: ${what}`, fx.shape(key), tol);
}
