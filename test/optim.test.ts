// SGD and the learning-rate schedules against torch.optim (fixtures written by
// scripts/make_fixtures.py): each step sets the fixture's gradients, checks the lr and
// momentum the step uses, steps, and compares every parameter with PyTorch's.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { nn, optim, setBackend } from '../src/index.js';
import { backendsUnderTest } from './helpers/backends.js';
import { assertClose, assertTensorMatches, type Fixture, loadFixture } from './helpers/fixtures.js';

type Schedule = (opt: optim.SGD, fx: Fixture) => optim.LRScheduler;

function num(o: Record<string, unknown>, key: string): number | undefined {
  const v = o[key];
  return typeof v === 'number' ? v : undefined;
}

/** PyTorch's option names -> ours. */
function sgdOptions(o: Record<string, unknown>): Omit<optim.ParamGroup, 'params'> {
  const out: Omit<optim.ParamGroup, 'params'> = {};
  const lr = num(o, 'lr');
  const momentum = num(o, 'momentum');
  const dampening = num(o, 'dampening');
  const weightDecay = num(o, 'weight_decay');
  if (lr !== undefined) out.lr = lr;
  if (momentum !== undefined) out.momentum = momentum;
  if (dampening !== undefined) out.dampening = dampening;
  if (weightDecay !== undefined) out.weightDecay = weightDecay;
  if (typeof o['nesterov'] === 'boolean') out.nesterov = o['nesterov'];
  return out;
}

function groupsOf(fx: Fixture): { params: number[]; options: Record<string, unknown> }[] {
  const groups = fx.attr('groups');
  assert.ok(Array.isArray(groups), `${fx.name}: groups`);
  return groups.map((g: unknown) => {
    if (typeof g !== 'object' || g === null || !('params' in g) || !('options' in g)) throw new Error(`${fx.name}: bad group`);
    const { params, options } = g;
    if (!Array.isArray(params) || typeof options !== 'object' || options === null) throw new Error(`${fx.name}: bad group`);
    return { params: params.map(Number), options: { ...options } };
  });
}

function perStep(fx: Fixture, key: string): number[][] {
  const v = fx.attr(key);
  assert.ok(Array.isArray(v), `${fx.name}: ${key}`);
  return v.map((row: unknown) => {
    assert.ok(Array.isArray(row));
    return row.map(Number);
  });
}

function replay(name: string, schedule?: Schedule): void {
  const fx = loadFixture('optim', name);
  const groups = groupsOf(fx);
  const nParams = groups.reduce((n, g) => n + g.params.length, 0);
  const params: nn.Parameter[] = [];
  for (let i = 0; i < nParams; i++) params.push(new nn.Parameter(fx.array(`p${i}.init`), fx.shape(`p${i}.init`)));
  const opt = new optim.SGD(
    groups.map((g) => ({ params: g.params.map((i) => params[i]!), ...sgdOptions(g.options) })),
    { lr: 0, ...sgdOptions(fx.record('options')) });
  const sched = schedule?.(opt, fx);
  const lrs = perStep(fx, 'lrs');
  const momentums = perStep(fx, 'momentums');
  const steps = fx.num('steps');
  for (let t = 0; t < steps; t++) {
    assertClose(opt.paramGroups.map((g) => g.lr), lrs[t]!, `${name}: lr of each group at step ${t}`,
      undefined, { rtol: 1e-9, atolScale: 1e-12 });
    assertClose(opt.paramGroups.map((g) => g.momentum), momentums[t]!, `${name}: momentum of each group at step ${t}`,
      undefined, { rtol: 1e-9, atolScale: 1e-12 });
    params.forEach((p, i) => {
      p.grad = fx.tensor(`p${i}.grad.${t}`);
    });
    opt.step();
    sched?.step();
    params.forEach((p, i) => assertTensorMatches(p, fx, `p${i}.after.${t}`, `parameter ${i} after step ${t}`));
  }
}

function scheduleNum(fx: Fixture, key: string): number {
  const v = num(fx.record('schedule'), key);
  if (v === undefined) throw new Error(`${fx.name}: schedule.${key} missing`);
  return v;
}

for (const backendName of backendsUnderTest()) {
  describe(`SGD on the ${backendName} backend matches torch.optim.SGD`, () => {
    before(() => setBackend(backendName));
    for (const name of ['sgd_plain', 'sgd_momentum', 'sgd_dampening', 'sgd_nesterov', 'sgd_weight_decay', 'sgd_two_groups']) {
      it(name, () => replay(name));
    }
  });

  describe(`schedules on the ${backendName} backend match torch.optim.lr_scheduler`, () => {
    before(() => setBackend(backendName));

    it('MultiStepLR (two groups with different base lr)', () => {
      replay('schedule_multistep', (opt, fx) => {
        const s = fx.record('schedule');
        const milestones = s['milestones'];
        assert.ok(Array.isArray(milestones));
        return new optim.MultiStepLR(opt, milestones.map(Number), scheduleNum(fx, 'gamma'));
      });
    });

    it('CosineAnnealingLR (two groups, eta_min)', () => {
      replay('schedule_cosine', (opt, fx) => new optim.CosineAnnealingLR(opt, scheduleNum(fx, 'tMax'), scheduleNum(fx, 'etaMin')));
    });

    it('LinearLR warmup then cosine (SequentialLR)', () => {
      replay('schedule_warmup_cosine', (opt, fx) =>
        optim.warmupCosine(opt, scheduleNum(fx, 'warmupSteps'), scheduleNum(fx, 'totalSteps'), scheduleNum(fx, 'startFactor')));
    });

    it('OneCycleLR with its momentum cycle (defaults)', () => {
      replay('schedule_one_cycle', (opt, fx) =>
        new optim.OneCycleLR(opt, { maxLr: scheduleNum(fx, 'maxLr'), totalSteps: scheduleNum(fx, 'totalSteps') }));
    });

    it('OneCycleLR with every option set', () => {
      replay('schedule_one_cycle_pct', (opt, fx) => new optim.OneCycleLR(opt, {
        maxLr: scheduleNum(fx, 'maxLr'), totalSteps: scheduleNum(fx, 'totalSteps'), pctStart: scheduleNum(fx, 'pctStart'),
        divFactor: scheduleNum(fx, 'divFactor'), finalDivFactor: scheduleNum(fx, 'finalDivFactor'),
        baseMomentum: scheduleNum(fx, 'baseMomentum'), maxMomentum: scheduleNum(fx, 'maxMomentum'),
      }));
    });
  });
}

describe('SGD argument checks', () => {
  it('rejects Nesterov without momentum', () => {
    const p = new nn.Parameter(new Float32Array(2), [2]);
    assert.throws(() => new optim.SGD([p], { lr: 0.1, nesterov: true }), /Nesterov/);
  });

  it('rejects a negative learning rate', () => {
    const p = new nn.Parameter(new Float32Array(2), [2]);
    assert.throws(() => new optim.SGD([p], { lr: -1 }), /learning rate/);
  });
});
