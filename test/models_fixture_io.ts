// Reading the PyTorch model fixtures written by scripts/make_model_fixtures.py.
import { readFileSync } from 'node:fs';

export interface GradSample {
  readonly norm: number;
  readonly index: readonly number[];
  readonly value: readonly number[];
}

export interface ModelFixture {
  readonly model: string;
  readonly input_shape: readonly number[];
  readonly labels: readonly number[];
  readonly num_classes: number;
  readonly num_parameters: number;
  readonly state_dict: readonly (readonly [string, readonly number[]])[];
  readonly relu_margin: number;
  readonly bias_adjustments: Readonly<Record<string, readonly (readonly [number, number])[]>>;
  readonly hash_check: { readonly key: string; readonly values: readonly number[] };
  readonly eval_logits: readonly number[];
  readonly train_logits: readonly number[];
  readonly loss: number;
  readonly running_stats_after_train_forward: Readonly<Record<string, readonly number[]>>;
  readonly grads: Readonly<Record<string, GradSample>>;
}

export interface CountsFixture {
  readonly params: Readonly<Record<string, number>>;
  readonly macs: Readonly<Record<string, number>>;
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(new URL(`../../test/fixtures/models/${file}`, import.meta.url), 'utf8'));
}

export function readModelFixture(name: string): ModelFixture {
  return readJson(`${name}.json`) as ModelFixture;
}

export function readCounts(): CountsFixture {
  return readJson('counts.json') as CountsFixture;
}
