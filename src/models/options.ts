// Options every builder takes, checked once with messages that say what to pass.
import { defaultRng, Rng } from '../tensor/random.js';
import { ModelConfigError } from './errors.js';
import { SHORTCUT_KINDS, type ShortcutKind } from './shortcuts.js';

export interface ModelOptions {
  /** Size of the classifier output (default 10 for CIFAR-style models, 1000 for ImageNet-style). */
  numClasses?: number;
  /** Image channels: 3 for RGB (default), 1 for grey scale such as Fashion-MNIST. */
  inChannels?: number;
  /** Shortcut option A, B or C (He et al. 2015, sec. 3.3); 'none' builds the plain twin of a v1 model. */
  shortcut?: ShortcutKind;
  /** Start every residual branch at zero (torchvision's zero_init_residual). Default false. */
  zeroInitResidual?: boolean;
  /**
   * Widening factor k: every stage gets k times the named model's channels (Zagoruyko &
   * Komodakis 2016). Default 1, the model as named (wide_resnet28_10 is already 10 wide).
   */
  width?: number;
  /** Seed of the initialisation; without it the process-wide generator (see manualSeed) is used. */
  seed?: number;
}

export type ModelFamily = 'cifar' | 'imagenet';

/** Options with every default filled in. */
export interface ResolvedOptions {
  readonly numClasses: number;
  readonly inChannels: number;
  readonly shortcut: ShortcutKind;
  readonly zeroInitResidual: boolean;
  readonly width: number;
  readonly rng: Rng;
}

const KNOWN_KEYS: readonly string[] = ['numClasses', 'inChannels', 'shortcut', 'zeroInitResidual', 'width', 'seed'];

function positiveInteger(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v <= 0) throw new ModelConfigError(`${name} must be a positive integer, got ${String(v)}`);
  return v;
}

export function resolveOptions(opts: ModelOptions, family: ModelFamily, defaultShortcut: ShortcutKind): ResolvedOptions {
  for (const key of Object.keys(opts)) {
    if (!KNOWN_KEYS.includes(key)) {
      throw new ModelConfigError(`unknown model option '${key}'; the options are ${KNOWN_KEYS.join(', ')}`);
    }
  }
  const shortcut = opts.shortcut ?? defaultShortcut;
  if (!SHORTCUT_KINDS.includes(shortcut)) {
    throw new ModelConfigError(`shortcut must be one of ${SHORTCUT_KINDS.map((k) => `'${k}'`).join(', ')}, got '${String(shortcut)}'`);
  }
  if (opts.zeroInitResidual !== undefined && typeof opts.zeroInitResidual !== 'boolean') {
    throw new ModelConfigError(`zeroInitResidual must be true or false, got ${String(opts.zeroInitResidual)}`);
  }
  if (opts.seed !== undefined && !Number.isInteger(opts.seed)) {
    throw new ModelConfigError(`seed must be an integer, got ${String(opts.seed)}`);
  }
  return {
    numClasses: positiveInteger('numClasses', opts.numClasses, family === 'cifar' ? 10 : 1000),
    inChannels: positiveInteger('inChannels', opts.inChannels, 3),
    shortcut,
    zeroInitResidual: opts.zeroInitResidual ?? false,
    width: positiveInteger('width', opts.width, 1),
    rng: opts.seed === undefined ? defaultRng : new Rng(opts.seed),
  };
}
