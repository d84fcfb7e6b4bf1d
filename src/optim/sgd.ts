// Stochastic gradient descent with momentum, as torch.optim.SGD (dampening, Nesterov,
// L2 weight decay added to the gradient), with parameter groups.
import { backend } from '../backend/index.js';
import type { Module, Parameter } from '../nn/module.js';

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export interface ParamGroup {
  params: Parameter[];
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  /**
   * The group steps with lr x lrScale, whatever lr a schedule sets (timm's `lr_scale`,
   * fastai's discriminative learning rates: a pretrained backbone at a fraction of the
   * head's rate). Default 1.
   */
  lrScale?: number;
}

/** A group with every option resolved. `lr` and `momentum` are what schedules change. */
export interface ResolvedGroup {
  params: Parameter[];
  lr: number;
  /** The lr the group started with (a schedule's base). */
  initialLr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  lrScale: number;
}

/** Optimizer state that can be saved and restored (momentum buffers in parameter order). */
export interface SgdState {
  groups: { lr: number; initialLr: number; momentum: number }[];
  /** One entry per parameter over all groups; null where no step was taken yet. */
  momentumBuffers: (Float32Array | null)[];
}

export class SGD {
  readonly paramGroups: ResolvedGroup[];
  private readonly buffers = new Map<Parameter, Float32Array>();

  constructor(params: Parameter[] | ParamGroup[], opts: SgdOptions) {
    const groups: ParamGroup[] = isGroupList(params) ? params : [{ params }];
    const check = (name: string, v: number, ok: boolean): void => {
      if (!ok || !Number.isFinite(v)) throw new Error(`SGD: invalid ${name} ${v}`);
    };
    this.paramGroups = groups.map((g) => {
      const r: ResolvedGroup = {
        params: g.params,
        lr: g.lr ?? opts.lr,
        initialLr: g.lr ?? opts.lr,
        momentum: g.momentum ?? opts.momentum ?? 0,
        dampening: g.dampening ?? opts.dampening ?? 0,
        weightDecay: g.weightDecay ?? opts.weightDecay ?? 0,
        nesterov: g.nesterov ?? opts.nesterov ?? false,
        lrScale: g.lrScale ?? 1,
      };
      check('lr scale', r.lrScale, r.lrScale >= 0);
      check('learning rate', r.lr, r.lr >= 0);
      check('momentum', r.momentum, r.momentum >= 0);
      check('weight decay', r.weightDecay, r.weightDecay >= 0);
      if (r.nesterov && (r.momentum <= 0 || r.dampening !== 0)) {
        throw new Error('SGD: Nesterov momentum requires a momentum > 0 and zero dampening');
      }
      return r;
    });
  }

  /** Forget all gradients (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.grad = null;
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    const be = backend();
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        let buf: Float32Array | null = null;
        let firstStep = false;
        if (g.momentum !== 0) {
          buf = this.buffers.get(p) ?? null;
          if (!buf) {
            buf = new Float32Array(p.size);
            this.buffers.set(p, buf);
            firstStep = true;
          }
        }
        be.sgdStep(p.data, p.grad.data, buf, {
          lr: g.lr * g.lrScale, momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay,
          nesterov: g.nesterov, firstStep,
        });
        p.markModified();
      }
    }
  }

  stateDict(): SgdState {
    return {
      groups: this.paramGroups.map((g) => ({ lr: g.lr, initialLr: g.initialLr, momentum: g.momentum })),
      momentumBuffers: this.paramGroups.flatMap((g) => g.params.map((p) => this.buffers.get(p)?.slice() ?? null)),
    };
  }

  loadStateDict(state: SgdState): void {
    if (state.groups.length !== this.paramGroups.length) {
      throw new Error(`SGD.loadStateDict: the state has ${state.groups.length} parameter groups, the optimizer ${this.paramGroups.length}`);
    }
    const params = this.paramGroups.flatMap((g) => g.params);
    if (state.momentumBuffers.length !== params.length) {
      throw new Error(`SGD.loadStateDict: the state has ${state.momentumBuffers.length} momentum buffers, the optimizer ${params.length} parameters`);
    }
    state.groups.forEach((s, i) => Object.assign(this.paramGroups[i]!, s));
    this.buffers.clear();
    params.forEach((p, i) => {
      const b = state.momentumBuffers[i];
      if (!b) return;
      if (b.length !== p.size) throw new Error(`SGD.loadStateDict: momentum buffer ${i} has ${b.length} values, its parameter ${p.size}`);
      this.buffers.set(p, b.slice());
    });
  }
}

function isGroupList(p: Parameter[] | ParamGroup[]): p is ParamGroup[] {
  return p.length > 0 && 'params' in p[0]!;
}

/**
 * Two groups: weights with weight decay, and BN parameters and biases (every 1-D
 * parameter) without it, as is usual since Goyal et al. 2017 (arXiv:1706.02677).
 */
export function paramGroupsNoDecay(model: Module, weightDecay: number): ParamGroup[] {
  const decay: Parameter[] = [];
  const noDecay: Parameter[] = [];
  for (const p of model.parameters()) (p.ndim <= 1 ? noDecay : decay).push(p);
  return [{ params: decay, weightDecay }, { params: noDecay, weightDecay: 0 }];
}
