#!/usr/bin/python3
"""Write the PyTorch reference fixtures that test/ops.test.ts and test/optim.test.ts
compare against.

    npm run fixtures        # = /usr/bin/python3 scripts/make_fixtures.py

Needs PyTorch (Debian's python3-torch); the tests themselves only read the JSON files
this writes under test/fixtures/, so CI never installs PyTorch.

File format (one case per file):
    { "tensors": { name: { "shape": [...], "data": [...] } }, "attrs": { ... } }
Values are float32, written as the shortest decimal that reads back to the same float32.

Layouts follow resnet-ts, not PyTorch: 4-D activations (inputs, outputs, upstream
gradients, input gradients) are NHWC, so they are permuted from PyTorch's NCHW here;
conv weights stay OIHW, linear weights [out, in].

Op cases: inputs are drawn in float32, the op runs in float64 on them (the exact answer
for those float32 inputs), and a fixed random upstream gradient `g` gives the input
gradients of loss = (out * g).sum(). Optimizer cases run in float32, as torch.optim does.
"""
import json
import math
import os
import warnings
import zlib

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
OPS_DIR = os.path.join(ROOT, 'test', 'fixtures', 'ops')
OPTIM_DIR = os.path.join(ROOT, 'test', 'fixtures', 'optim')


# ----------------------------------------------------------------- writing

def to_ours(t, activation):
    """PyTorch layout -> resnet-ts layout (NCHW -> NHWC for 4-D activations)."""
    t = t.detach()
    if activation and t.dim() == 4:
        t = t.permute(0, 2, 3, 1)
    return t.contiguous()


def tensor_json(t):
    values = t.to(torch.float32).reshape(-1).numpy()
    # str(np.float32) is the shortest decimal that round-trips the float32 value.
    return {'shape': list(t.shape), 'data': [float(str(v)) for v in values]}


def write(directory, name, tensors, attrs):
    os.makedirs(directory, exist_ok=True)
    body = {'tensors': {k: tensor_json(v) for k, v in tensors.items()}, 'attrs': attrs}
    with open(os.path.join(directory, name + '.json'), 'w') as f:
        json.dump(body, f, separators=(',', ':'))
        f.write('\n')


def generator(name):
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def randn(gen, *shape, scale=1.0):
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float32) * scale


def away_from_zero(t, margin=0.05):
    """Keep values off 0 so relu's kink is never within rounding of an input."""
    return torch.sign(t) * (t.abs() + margin)


# ----------------------------------------------------------------- op cases

def op_case(name, inputs, forward, attrs=None, activations=(), buffers=None, extra=None):
    """Run `forward(**inputs, **buffers)` in float64, differentiate (out * g).sum()
    with respect to every input, and write inputs, out, g, grad_<input>, and each
    buffer before and after (<name>_after). `activations` names the 4-D NCHW inputs;
    `out` and `g` are activations whenever they are 4-D."""
    gen = generator(name + '/g')
    leaves = {k: v.double().requires_grad_() for k, v in inputs.items()}
    state = {k: v.double().clone() for k, v in (buffers or {}).items()}
    out = forward(**leaves, **state)
    g = randn(gen, *out.shape).double()
    (out * g).sum().backward()
    acts = set(activations) | {'out', 'g'}
    tensors = {}
    for k, v in inputs.items():
        tensors[k] = to_ours(v, k in acts)
    for k, v in (buffers or {}).items():
        tensors[k] = v
        tensors[k + '_after'] = state[k]
    tensors['out'] = to_ours(out, True)
    tensors['g'] = to_ours(g, True)
    for k, v in leaves.items():
        tensors['grad_' + k] = to_ours(v.grad, k in acts)
    tensors.update(extra or {})
    write(OPS_DIR, name, tensors, attrs or {})


def conv_cases():
    # (name, N, C, H, W, O, KH, KW, stride, padding, bias)
    cases = [
        ('conv2d_3x3_s1_p1_bias', 2, 3, 5, 5, 4, 3, 3, (1, 1), (1, 1), True),
        ('conv2d_3x3_s2_p1', 2, 3, 7, 7, 4, 3, 3, (2, 2), (1, 1), False),
        ('conv2d_3x3_s2_p0_even', 2, 2, 8, 8, 3, 3, 3, (2, 2), (0, 0), True),
        ('conv2d_1x1_s1', 2, 5, 4, 4, 6, 1, 1, (1, 1), (0, 0), False),
        ('conv2d_1x1_s2', 2, 4, 5, 5, 8, 1, 1, (2, 2), (0, 0), False),
        ('conv2d_7x7_s2_p3', 1, 3, 11, 11, 4, 7, 7, (2, 2), (3, 3), False),
        ('conv2d_odd_3x2_s21_p10_bias', 2, 3, 6, 9, 5, 3, 2, (2, 1), (1, 0), True),
    ]
    for name, n, c, h, w, o, kh, kw, stride, padding, bias in cases:
        gen = generator(name)
        inputs = {
            'x': randn(gen, n, c, h, w),
            'weight': randn(gen, o, c, kh, kw, scale=1 / math.sqrt(c * kh * kw)),
        }
        if bias:
            inputs['bias'] = randn(gen, o, scale=0.5)
        attrs = {'stride': list(stride), 'padding': list(padding)}

        def forward(x, weight, bias=None, stride=stride, padding=padding):
            return F.conv2d(x, weight, bias, stride=stride, padding=padding)
        op_case(name, inputs, forward, attrs, activations=('x',))


def batch_norm_cases():
    momentum, eps = 0.1, 1e-5
    n, c, h, w = 4, 5, 3, 3

    def bn_inputs(gen):
        return {
            'x': randn(gen, n, c, h, w, scale=2.0) + 0.5,
            'weight': 1 + randn(gen, c, scale=0.3),
            'bias': randn(gen, c, scale=0.3),
        }

    def running(gen):
        return {'running_mean': randn(gen, c, scale=0.2),
                'running_var': 1 + torch.rand(c, generator=gen)}

    for relu in (False, True):
        suffix = '_relu' if relu else ''
        for training in (True, False):
            name = 'batch_norm2d_' + ('train' if training else 'eval') + suffix
            gen = generator(name)
            inputs = bn_inputs(gen)

            def forward(x, weight, bias, running_mean, running_var, training=training, relu=relu):
                y = F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
                return F.relu(y) if relu else y
            op_case(name, inputs, forward, {'training': training, 'momentum': momentum, 'eps': eps, 'relu': relu},
                    activations=('x',), buffers=running(gen))

    # Two training steps: the running statistics after each (momentum applied twice).
    name = 'batch_norm2d_train_two_steps'
    gen = generator(name)
    inputs = bn_inputs(gen)
    x1 = randn(gen, n, c, h, w) - 0.3
    stats = running(gen)

    def forward_two(x, weight, bias, running_mean, running_var):
        F.batch_norm(x1.double(), running_mean, running_var, weight, bias, True, momentum, eps)
        record['running_mean_step1'] = running_mean.clone()
        record['running_var_step1'] = running_var.clone()
        return F.batch_norm(x, running_mean, running_var, weight, bias, True, momentum, eps)
    record = {'x1': to_ours(x1, True)}  # forward_two adds the step-1 statistics
    op_case(name, inputs, forward_two, {'training': True, 'momentum': momentum, 'eps': eps, 'relu': False},
            activations=('x',), buffers=stats, extra=record)


def elementwise_cases():
    name = 'relu'
    gen = generator(name)
    op_case(name, {'x': away_from_zero(randn(gen, 2, 3, 4, 5))}, lambda x: F.relu(x), activations=('x',))

    name = 'add'
    gen = generator(name)
    op_case(name, {'a': randn(gen, 2, 3, 4, 5), 'b': randn(gen, 2, 3, 4, 5)},
            lambda a, b: a + b, activations=('a', 'b'))

    name = 'add_relu'
    gen = generator(name)
    a = randn(gen, 2, 3, 4, 5)
    b = away_from_zero(randn(gen, 2, 3, 4, 5)) - a  # keeps a + b off relu's kink
    op_case(name, {'a': a, 'b': b}, lambda a, b: F.relu(a + b), activations=('a', 'b'))

    name = 'mul_scalar'
    gen = generator(name)
    scale = -0.37
    op_case(name, {'x': randn(gen, 2, 3, 4, 5)}, lambda x: x * scale, {'scale': scale}, activations=('x',))


def shortcut_cases():
    # Option-A shortcut (He et al. 2015, sec. 4.2), as in the common CIFAR ResNet code:
    # F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, front, back)).
    for name, (n, c, h, w), stride, front, back in [
        ('pad_channels_subsample_s2', (2, 4, 6, 6), 2, 2, 2),
        ('pad_channels_subsample_s2_odd', (1, 3, 5, 5), 2, 1, 2),
        ('pad_channels_subsample_s1', (2, 2, 3, 3), 1, 1, 1),
    ]:
        gen = generator(name)

        def forward(x, stride=stride, front=front, back=back):
            return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, front, back))
        op_case(name, {'x': randn(gen, n, c, h, w)}, forward,
                {'stride': stride, 'outChannels': c + front + back, 'padFront': front}, activations=('x',))


def pooling_cases():
    for name, shape, k, s, p in [
        ('max_pool2d_3x3_s2_p1', (2, 3, 7, 7), 3, 2, 1),
        ('max_pool2d_3x3_s2_p1_even', (2, 3, 8, 8), 3, 2, 1),
        ('max_pool2d_2x2_s2', (1, 2, 6, 6), 2, 2, 0),
    ]:
        gen = generator(name)
        op_case(name, {'x': randn(gen, *shape)}, lambda x, k=k, s=s, p=p: F.max_pool2d(x, k, s, p),
                {'kernelSize': k, 'stride': s, 'padding': p}, activations=('x',))

    for name, shape, k, s, p in [
        ('avg_pool2d_2x2_s2', (2, 3, 6, 6), 2, 2, 0),
        ('avg_pool2d_3x3_s2_p1', (2, 3, 7, 7), 3, 2, 1),
        ('avg_pool2d_3x3_s1_p1', (1, 2, 5, 4), 3, 1, 1),
    ]:
        gen = generator(name)
        # count_include_pad=True is PyTorch's default.
        op_case(name, {'x': randn(gen, *shape)}, lambda x, k=k, s=s, p=p: F.avg_pool2d(x, k, s, p),
                {'kernelSize': k, 'stride': s, 'padding': p}, activations=('x',))

    name = 'global_avg_pool'
    gen = generator(name)
    op_case(name, {'x': randn(gen, 2, 4, 3, 5)}, lambda x: x.mean(dim=(2, 3)), activations=('x',))


def shape_cases():
    # flatten of an NHWC activation keeps H, W, C order, so flatten our layout here.
    name = 'flatten'
    gen = generator(name)
    op_case(name, {'x': randn(gen, 2, 3, 3, 4)}, lambda x: x.reshape(x.shape[0], -1))

    name = 'reshape'
    gen = generator(name)
    op_case(name, {'x': randn(gen, 2, 3, 3, 4)}, lambda x: x.reshape(6, -1), {'shape': [6, -1]})


def linear_cases():
    name = 'linear_bias'
    gen = generator(name)
    op_case(name, {'x': randn(gen, 3, 5), 'weight': randn(gen, 4, 5, scale=0.4), 'bias': randn(gen, 4)},
            lambda x, weight, bias: F.linear(x, weight, bias))

    name = 'linear'
    gen = generator(name)
    op_case(name, {'x': randn(gen, 6, 7), 'weight': randn(gen, 3, 7, scale=0.4)},
            lambda x, weight: F.linear(x, weight))

    name = 'matmul'
    gen = generator(name)
    op_case(name, {'a': randn(gen, 3, 4), 'b': randn(gen, 4, 5)}, lambda a, b: a @ b)


def loss_cases():
    name = 'log_softmax'
    gen = generator(name)
    op_case(name, {'x': randn(gen, 3, 6, scale=4.0)}, lambda x: F.log_softmax(x, dim=1))

    for name, smoothing in [('cross_entropy', 0.0), ('cross_entropy_smoothing', 0.1)]:
        gen = generator(name)
        logits = randn(gen, 5, 4, scale=2.0)
        labels = torch.randint(0, 4, (5,), generator=gen)
        op_case(name, {'logits': logits},
                lambda logits, labels=labels, s=smoothing: F.cross_entropy(logits, labels, label_smoothing=s),
                {'labels': labels.tolist(), 'labelSmoothing': smoothing})

    name = 'sum'
    gen = generator(name)
    op_case(name, {'x': randn(gen, 3, 4)}, lambda x: x.sum())

    name = 'mean'
    gen = generator(name)
    op_case(name, {'x': randn(gen, 3, 4)}, lambda x: x.mean())


# ----------------------------------------------------------------- optimizer cases

PARAM_SHAPES = [(3, 4), (5,)]


def sgd_run(name, groups, options, steps, schedule=None):
    """`groups`: per group, the indices of the parameters in it and its own options.
    Each step sets fixed random gradients, records every group's lr (and momentum)
    as used by that step, calls optimizer.step(), then schedule.step()."""
    gen = generator(name)
    params = [torch.nn.Parameter(randn(gen, *s)) for s in PARAM_SHAPES]
    tensors = {f'p{i}.init': p.detach().clone() for i, p in enumerate(params)}
    opt = torch.optim.SGD([{'params': [params[i] for i in g['params']], **g['options']} for g in groups],
                          **options)
    sched = schedule(opt) if schedule else None
    lrs, momentums = [], []
    for t in range(steps):
        lrs.append([pg['lr'] for pg in opt.param_groups])
        momentums.append([pg['momentum'] for pg in opt.param_groups])
        for i, p in enumerate(params):
            p.grad = randn(gen, *p.shape)
            tensors[f'p{i}.grad.{t}'] = p.grad.clone()
        opt.step()
        if sched:
            sched.step()
        for i, p in enumerate(params):
            tensors[f'p{i}.after.{t}'] = p.detach().clone()
    attrs = {'steps': steps, 'options': options, 'groups': groups, 'lrs': lrs, 'momentums': momentums}
    return tensors, attrs


def sgd_cases():
    one_group = [{'params': [0, 1], 'options': {}}]
    cases = [
        ('sgd_plain', one_group, {'lr': 0.1}),
        ('sgd_momentum', one_group, {'lr': 0.1, 'momentum': 0.9}),
        ('sgd_dampening', one_group, {'lr': 0.05, 'momentum': 0.9, 'dampening': 0.5}),
        ('sgd_nesterov', one_group, {'lr': 0.1, 'momentum': 0.9, 'nesterov': True}),
        ('sgd_weight_decay', one_group, {'lr': 0.1, 'momentum': 0.9, 'weight_decay': 0.05}),
        ('sgd_two_groups', [{'params': [0], 'options': {'weight_decay': 0.05}},
                            {'params': [1], 'options': {'weight_decay': 0.0, 'lr': 0.02}}],
         {'lr': 0.1, 'momentum': 0.9, 'nesterov': True}),
    ]
    for name, groups, options in cases:
        tensors, attrs = sgd_run(name, groups, options, 5)
        write(OPTIM_DIR, name, tensors, attrs)


def schedule_cases():
    two_groups = [{'params': [0], 'options': {}}, {'params': [1], 'options': {'lr': 0.02}}]
    one_group = [{'params': [0, 1], 'options': {}}]
    sgd = {'lr': 0.1, 'momentum': 0.9, 'weight_decay': 1e-3}
    S = torch.optim.lr_scheduler

    def warmup_cosine(opt):
        return S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.25, total_iters=3),
                                    S.CosineAnnealingLR(opt, T_max=5, eta_min=0.0)], milestones=[3])
    cases = [
        ('schedule_multistep', two_groups, 7, lambda opt: S.MultiStepLR(opt, milestones=[2, 5], gamma=0.1),
         {'milestones': [2, 5], 'gamma': 0.1}),
        ('schedule_cosine', two_groups, 7, lambda opt: S.CosineAnnealingLR(opt, T_max=6, eta_min=0.001),
         {'tMax': 6, 'etaMin': 0.001}),
        ('schedule_warmup_cosine', one_group, 8, warmup_cosine,
         {'warmupSteps': 3, 'totalSteps': 8, 'startFactor': 0.25}),
        ('schedule_one_cycle', one_group, 10, lambda opt: S.OneCycleLR(opt, max_lr=0.5, total_steps=10),
         {'maxLr': 0.5, 'totalSteps': 10}),
        ('schedule_one_cycle_pct', one_group, 12,
         lambda opt: S.OneCycleLR(opt, max_lr=0.4, total_steps=12, pct_start=0.25, div_factor=10,
                                  final_div_factor=100, base_momentum=0.8, max_momentum=0.9),
         {'maxLr': 0.4, 'totalSteps': 12, 'pctStart': 0.25, 'divFactor': 10, 'finalDivFactor': 100,
          'baseMomentum': 0.8, 'maxMomentum': 0.9}),
    ]
    for name, groups, steps, make, schedule_attrs in cases:
        tensors, attrs = sgd_run(name, groups, sgd, steps, make)
        attrs['schedule'] = schedule_attrs
        write(OPTIM_DIR, name, tensors, attrs)


def main():
    torch.set_num_threads(1)
    # SequentialLR steps its second schedule with an explicit epoch, which warns.
    warnings.filterwarnings('ignore', message='The epoch parameter', category=UserWarning)
    conv_cases()
    batch_norm_cases()
    elementwise_cases()
    shortcut_cases()
    pooling_cases()
    shape_cases()
    linear_cases()
    loss_cases()
    sgd_cases()
    schedule_cases()
    for d in (OPS_DIR, OPTIM_DIR):
        print(f'{len(os.listdir(d))} fixtures in {os.path.relpath(d, ROOT)}')


if __name__ == '__main__':
    main()
