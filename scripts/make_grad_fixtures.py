#!/usr/bin/env python3
"""Write the gradient-accuracy fixtures in test/fixtures/gradients/ from PyTorch.

Run from the repository root:  /usr/bin/python3 scripts/make_grad_fixtures.py

For torchvision's resnet18 and resnet50 and a few hash seeds, it fills every state-dict
tensor from the integer hash of scripts/make_model_fixtures.py (seeded per case, so no
weights are committed; test/models_hashed_weights.ts computes the same values), takes
an input batch of 4 at 64x64 and labels from the same hash, and runs one training-mode
forward pass, cross-entropy and backward three times:

  1. in float64: the truth;
  2. in float32, NCHW (PyTorch's default memory layout);
  3. in float32, channels-last (NHWC, the layout the native backend computes in).

For every parameter it keeps a fixed sample of gradient entries of the truth and, on
that sample, each float32 run's error max|g32 - g64| / max|g64|; the tests hold our
gradients to a multiple of those errors (see test/models_gradient_accuracy.test.ts).

Before the runs, every BN shift (beta) that feeds a ReLU is nudged as in
make_model_fixtures.py until all pre-activations of the float64 pass lie at least
RELU_MARGIN from zero. Without that, a pre-activation within float32 rounding of zero
takes the ReLU's mask to either side depending on the rounding of everything before
it, and with 16 to 64 values per channel in the last stages one such flip moves whole
gradients by percents: which float32 implementation flips is then a coin toss, not a
measure of accuracy.
"""
import base64
import copy
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model_fixtures as mm  # noqa: E402  (the shared hash and ReLU-margin helpers)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'gradients')
INPUT_NHWC = (4, 64, 64, 3)
NUM_CLASSES = 1000
SAMPLES_PER_PARAM = 128
CASES = [('resnet18', seed) for seed in (1, 2, 3, 4)] + [('resnet50', seed) for seed in (1, 2, 3)]


def hashed_state(model, seed):
    state = {}
    for key, t in model.state_dict().items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.zeros_like(t)
        else:
            state[key] = torch.from_numpy(mm.hashed_tensor(key, tuple(t.shape), seed).copy())
    return state


def gradients(name, state, x_nchw, labels, dtype, channels_last=False):
    model = getattr(torchvision.models, name)(num_classes=NUM_CLASSES)
    model.load_state_dict(state)
    model.to(dtype)
    x = x_nchw.to(dtype)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    loss = F.cross_entropy(model(x), labels)
    loss.backward()
    grads = {k: p.grad.detach().to(torch.float64).reshape(-1).numpy() for k, p in model.named_parameters()}
    return float(loss.item()), grads


def sample_indices(n):
    """Every entry of small tensors; else a Weyl sequence with Knuth's multiplicative-hash
    constant, which does not line up with any axis of a weight tensor (an even stride can
    land on one input channel and one kernel tap only, which in the last stage may be
    all zeros)."""
    if n <= SAMPLES_PER_PARAM:
        return list(range(n))
    return [(j * 2654435761) % n for j in range(SAMPLES_PER_PARAM)]


def relative_error(approx, truth):
    return float(np.abs(approx - truth).max() / np.abs(truth).max())


def make_case(name, seed):
    state = hashed_state(getattr(torchvision.models, name)(num_classes=NUM_CLASSES), seed)
    x = torch.from_numpy(mm.hashed_input(INPUT_NHWC, seed)).permute(0, 3, 1, 2).contiguous()
    labels = [int(u * NUM_CLASSES) for u in mm.hashed_uniform('labels', INPUT_NHWC[0], seed)]
    y = torch.tensor(labels, dtype=torch.long)

    probe = getattr(torchvision.models, name)(num_classes=NUM_CLASSES)
    probe.load_state_dict(state)
    probe.double()
    adjustments = mm.nudge_relu_inputs(copy.deepcopy(probe), x.double())
    for key, changes in adjustments.items():
        for c, value in changes:
            state[key][c] = value
    probe.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state.items()})
    margin = mm.smallest_preactivation(probe, x.double())
    assert margin >= 0.99 * mm.RELU_MARGIN, f'{name} seed {seed}: a pre-activation is {margin} from zero'

    loss, truth = gradients(name, state, x, y, torch.float64)
    _, nchw = gradients(name, state, x, y, torch.float32)
    _, nhwc = gradients(name, state, x, y, torch.float32, channels_last=True)

    params = {}
    worst = {'nchw': 0.0, 'channels_last': 0.0}
    for key, g in truth.items():
        idx = sample_indices(g.size)
        t = g[idx]
        assert np.abs(t).max() > 0, f'{name} seed {seed}: the sample of {key} is all zeros'
        e_nchw = relative_error(nchw[key][idx], t)
        e_nhwc = relative_error(nhwc[key][idx], t)
        worst['nchw'] = max(worst['nchw'], e_nchw)
        worst['channels_last'] = max(worst['channels_last'], e_nhwc)
        params[key] = {
            'size': int(g.size),
            'torch_f32': float(f'{e_nchw:.4g}'),
            'torch_f32_channels_last': float(f'{e_nhwc:.4g}'),
            # float32 keeps the truth to 6e-8 of its largest entry, far below what is measured.
            'truth_f32_base64': base64.b64encode(t.astype('<f4').tobytes()).decode('ascii'),
        }

    fixture = {
        'model': name,
        'generated_by': 'scripts/make_grad_fixtures.py (PyTorch %s, torchvision %s)' % (torch.__version__, torchvision.__version__),
        'hash_seed': seed,
        'input_shape': list(INPUT_NHWC),
        'labels': labels,
        'num_classes': NUM_CLASSES,
        'loss': loss,
        'relu_margin': mm.RELU_MARGIN,
        'smallest_preactivation': margin,
        'bias_adjustments': {k: [[c, float(f'{v:.9g}')] for c, v in changes] for k, changes in adjustments.items()},
        'hash_check': {'key': 'conv1.weight', 'shape': list(state['conv1.weight'].shape), 'values': mm.rounded(state['conv1.weight'].reshape(-1)[:4].numpy())},
        'samples_per_param': SAMPLES_PER_PARAM,
        'sample_rule': 'all entries when size <= samples_per_param, else (j * 2654435761) % size for j < samples_per_param',
        'params': params,
    }
    path = mm.write_fixture(OUT, f'{name}_seed{seed}.json', fixture)
    n_adj = sum(len(c) for c in adjustments.values())
    print(f'{path}: loss {loss:.6f}, {n_adj} BN shifts nudged, worst torch float32 error '
          f'{worst["nchw"]:.2e} (NCHW), {worst["channels_last"]:.2e} (channels-last), {os.path.getsize(path)} bytes')


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    for name, seed in CASES:
        make_case(name, seed)


if __name__ == '__main__':
    main()
