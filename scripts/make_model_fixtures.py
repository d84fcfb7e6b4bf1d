#!/usr/bin/env python3
"""Write the model fixtures in test/fixtures/models/ from PyTorch.

Run from the repository root:  /usr/bin/python3 scripts/make_model_fixtures.py

For torchvision's resnet18 and resnet50, and for resnet20 (option A),
preact_resnet18 and preact_resnet164 defined below after the papers, it fills every
state-dict tensor from an integer hash that test/models_hashed_weights.ts computes
bit for bit the same way (so no weights are committed), runs

  1. an eval-mode forward pass (BN running statistics come from the hash too),
  2. a train-mode forward pass, cross-entropy on fixed labels, backward,

in float64, and saves the input shape, labels, both logits, the loss, per-parameter
gradient L2 norms with a fixed sample of gradient entries, the BN running statistics
of two layers after the train-mode pass, and the state-dict keys and shapes.
It also writes counts.json: parameter counts of the CIFAR ResNets (option A) and the
ImageNet ResNets, and ResNet-50's multiply-accumulates at 224x224.
"""
import copy
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'models')
SEED = 20151210  # arXiv:1512.03385 went up on 10 Dec 2015
SAMPLES_PER_PARAM = 32
M32 = 0xFFFFFFFF


# ---------------------------------------------------------------- the hash

def fnv1a32(text):
    h = 0x811C9DC5
    for byte in text.encode('utf-8'):
        h ^= byte
        h = (h * 0x01000193) & M32
    return h


def hashed_uniform(key, n, seed=SEED):
    """u_i in [0, 1) for i < n: murmur3's fmix32 of (i*0x9E3779B1 + fnv1a(key)*0x85EBCA77 + seed) mod 2^32."""
    i = np.arange(n, dtype=np.uint64)
    k = np.uint64(fnv1a32(key))
    x = (i * np.uint64(0x9E3779B1) + k * np.uint64(0x85EBCA77) + np.uint64(seed)) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(M32)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    return x.astype(np.float64) / 4294967296.0


def hashed_tensor(name, shape, seed=SEED):
    """The float32 value of state-dict entry `name` (see hashedTensorValues in the TS helper)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = hashed_uniform(name, n, seed)
    if name.endswith('running_var'):
        v = 0.5 + u
    elif name.endswith('running_mean') or name.endswith('bias'):
        v = (2.0 * u - 1.0) * 0.1
    elif len(shape) == 1:  # BN weight (gamma)
        v = 0.5 + u
    elif len(shape) == 4:  # conv, OIHW: Kaiming-like, uniform with std sqrt(2 / fan_in)
        fan_in = shape[1] * shape[2] * shape[3]
        v = (2.0 * u - 1.0) * math.sqrt(6.0 / fan_in)
    elif len(shape) == 2:  # linear [out, in]
        v = (2.0 * u - 1.0) * (1.0 / math.sqrt(shape[1]))
    else:
        raise ValueError(f'no hash rule for {name} {shape}')
    return v.astype(np.float32).reshape(shape)


def hashed_input(shape_nhwc, seed=SEED):
    return hashed_uniform('input', int(np.prod(shape_nhwc)), seed).astype(np.float32).reshape(shape_nhwc) * np.float32(2) - np.float32(1)


# ---------------------------------------------------------------- models after the papers

class LambdaLayer(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class CifarBasicBlockA(nn.Module):
    """He et al. 2015 sec. 4.2, option A as the common CIFAR code (akamaster/pytorch_resnet_cifar10)."""
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            pad = planes // 4
            self.downsample = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad), 'constant', 0))
        else:
            self.downsample = nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class CifarResNetA(nn.Module):
    def __init__(self, n, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for i, planes in enumerate([16, 32, 64]):
            blocks = []
            for j in range(n):
                blocks.append(CifarBasicBlockA(in_planes, planes, (1 if i == 0 else 2) if j == 0 else 1))
                in_planes = planes
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.fc = nn.Linear(64, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class PreActBasic(nn.Module):
    """He et al. 2016 Fig. 4(e); the projection reads the pre-activated input (timm PreActBasic)."""
    expansion = 1

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))
        self.relu = nn.ReLU()

    def forward(self, x):
        x_preact = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(x_preact)
        out = self.conv1(x_preact)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + shortcut


class PreActBottleneck(nn.Module):
    """He et al. 2016 bottleneck, stride on the 3x3 (timm PreActBottleneck)."""
    expansion = 4

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        out_planes = planes * 4
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, 1, bias=False)
        self.downsample = None
        if stride != 1 or in_planes != out_planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False))
        self.relu = nn.ReLU()

    def forward(self, x):
        x_preact = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(x_preact)
        out = self.conv1(x_preact)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """Bare stem conv (+ max pool for ImageNet), pre-activation stages, final BN-ReLU, pool, fc."""
    def __init__(self, block, layers, widths, imagenet, num_classes, stem=None):
        super().__init__()
        stem = stem or (64 if imagenet else widths[0])
        if imagenet:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        in_planes = stem
        self.stages = []
        for i, (n, planes) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                blocks.append(block(in_planes, planes, (1 if i == 0 else 2) if j == 0 else 1))
                in_planes = planes * block.expansion
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
            self.stages.append(f'layer{i + 1}')
        self.bn = nn.BatchNorm2d(in_planes)
        self.fc = nn.Linear(in_planes, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        for name in self.stages:
            x = getattr(self, name)(x)
        x = self.relu(self.bn(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---------------------------------------------------------------- ReLU margins
#
# A pre-activation within float32 rounding of zero makes the ReLU mask of a float32
# run differ from this float64 one, and with few values per channel in the last
# stage one such flip moves whole gradients by percents. So, in the train-mode pass,
# every BN that feeds a ReLU gets its shift (beta) nudged per channel until all its
# pre-activations lie at least RELU_MARGIN away from zero. The nudged betas are
# saved in the fixture; the tests apply them after the hash.

RELU_MARGIN = 1e-3


def relu_sites(model):
    """Each nn.ReLU attribute with the BN layers whose outputs (plus a shortcut) it activates, call by call."""
    sites = []
    for path, m in model.named_modules():
        relu = getattr(m, 'relu', None)
        if not isinstance(relu, nn.ReLU):
            continue
        if path == '':
            names = ['bn1'] if isinstance(getattr(m, 'bn1', None), nn.BatchNorm2d) else ['bn']
        else:
            names = ['bn1', 'bn2', 'bn3'] if hasattr(m, 'bn3') else ['bn1', 'bn2']
        sites.append((relu, [f'{path}.{n}' if path else n for n in names]))
    return sites


def with_relu_hooks(model, on_site):
    """Call on_site(bn_name, pre_activation) before every ReLU; it may return a changed input."""
    handles = []
    calls = {}
    for relu, names in relu_sites(model):
        calls[id(relu)] = 0

        def pre_hook(mod, inputs, names=names):
            i = calls[id(mod)] % len(names)
            calls[id(mod)] += 1
            return (on_site(names[i], inputs[0]),)
        handles.append(relu.register_forward_pre_hook(pre_hook))
    return handles


def nudge_relu_inputs(model, x):
    """Train-mode pass that moves every pre-activation RELU_MARGIN away from 0 by shifting BN betas."""
    model.train()
    modules = dict(model.named_modules())
    adjusted = {}

    def on_site(bn, v):
        low = (v.abs().amin(dim=(0, 2, 3)) < RELU_MARGIN).nonzero().flatten().tolist()
        if not low:
            return v
        v = v.clone()
        bias = modules[bn].bias.data
        for c in low:
            for k in range(1, 10000):
                delta = (k // 2 + 1) * RELU_MARGIN * (1 if k % 2 else -1)
                new = float(np.float32(bias[c].item() + delta))
                shift = new - bias[c].item()
                if (v[:, c] + shift).abs().min().item() >= RELU_MARGIN:
                    break
            else:
                raise RuntimeError(f'no shift of {bn}.bias[{c}] clears the margin')
            v[:, c] += shift
            bias[c] = new
            adjusted.setdefault(f'{bn}.bias', {})[c] = new
        return v

    handles = with_relu_hooks(model, on_site)
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return {k: sorted(v.items()) for k, v in adjusted.items()}


def smallest_preactivation(model, x):
    seen = [math.inf]

    def on_site(_bn, v):
        seen[0] = min(seen[0], v.abs().min().item())
        return v
    handles = with_relu_hooks(model, on_site)
    model.train()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen[0]


# ---------------------------------------------------------------- fixtures

def write_fixture(folder, filename, fixture):
    """Write `fixture` as compact JSON with a final newline; returns the path."""
    path = os.path.join(folder, filename)
    with open(path, 'w') as f:
        json.dump(fixture, f, separators=(',', ':'))
        f.write('\n')
    return path


def rounded(values):
    return [float(f'{v:.9g}') for v in np.asarray(values, dtype=np.float64).ravel()]


def sample_indices(n):
    if n <= SAMPLES_PER_PARAM:
        return list(range(n))
    return [int((j + 0.5) * n / SAMPLES_PER_PARAM) for j in range(SAMPLES_PER_PARAM)]


def make_fixture(name, model, input_nhwc, labels, watched_bn):
    state = model.state_dict()
    hashed = {}
    for key, t in state.items():
        if key.endswith('num_batches_tracked'):
            hashed[key] = torch.zeros_like(t)
        else:
            hashed[key] = torch.from_numpy(hashed_tensor(key, tuple(t.shape)).copy())
    model.load_state_dict(hashed)
    model.double()
    x = torch.from_numpy(hashed_input(input_nhwc)).double().permute(0, 3, 1, 2).contiguous()
    y = torch.tensor(labels, dtype=torch.long)

    probe = copy.deepcopy(model)
    adjustments = nudge_relu_inputs(probe, x)
    for key, changes in adjustments.items():
        for c, value in changes:
            hashed[key][c] = value
    model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in hashed.items()})
    margin = smallest_preactivation(copy.deepcopy(model), x)
    assert margin >= 0.99 * RELU_MARGIN, f'{name}: a pre-activation is {margin} from zero'

    model.eval()
    with torch.no_grad():
        eval_logits = model(x)

    model.train()
    model.zero_grad()
    train_logits = model(x)
    loss = F.cross_entropy(train_logits, y)
    loss.backward()

    grads = {}
    for key, p in model.named_parameters():
        g = p.grad.detach().reshape(-1).numpy()
        idx = sample_indices(g.size)
        grads[key] = {'norm': float(np.linalg.norm(g)), 'index': idx, 'value': rounded(g[idx])}

    after = model.state_dict()
    running = {}
    for bn in watched_bn:
        running[f'{bn}.running_mean'] = rounded(after[f'{bn}.running_mean'].numpy())
        running[f'{bn}.running_var'] = rounded(after[f'{bn}.running_var'].numpy())

    fixture = {
        'model': name,
        'generated_by': 'scripts/make_model_fixtures.py (PyTorch %s, torchvision %s, float64)' % (torch.__version__, torchvision.__version__),
        'hash_seed': SEED,
        'input_shape': list(input_nhwc),
        'labels': labels,
        'num_classes': int(eval_logits.shape[1]),
        'num_parameters': sum(p.numel() for p in model.parameters()),
        'state_dict': [[k, list(v.shape)] for k, v in state.items()],
        'relu_margin': RELU_MARGIN,
        'smallest_preactivation': margin,
        'bias_adjustments': {k: [[c, float(f'{v:.9g}')] for c, v in changes] for k, changes in adjustments.items()},
        'hash_check': {'key': 'conv1.weight', 'values': rounded(hashed['conv1.weight'].reshape(-1)[:4].numpy())},
        'eval_logits': rounded(eval_logits.numpy()),
        'train_logits': rounded(train_logits.detach().numpy()),
        'loss': float(loss.item()),
        'running_stats_after_train_forward': running,
        'grads': grads,
    }
    path = write_fixture(OUT, f'{name}.json', fixture)
    n_adj = sum(len(c) for c in adjustments.values())
    print(f'{path}: {fixture["num_parameters"]} parameters, loss {fixture["loss"]:.6f}, '
          f'{n_adj} BN shifts nudged, smallest pre-activation {margin:.2e}, {os.path.getsize(path)} bytes')


def n_params(model, skip=None):
    return sum(p.numel() for k, p in model.named_parameters() if skip is None or skip not in k)


def parameter_counts():
    """Every builder's size from these PyTorch definitions and torchvision, default heads."""
    tv = torchvision.models
    params = {}
    for n in [1, 2, 3, 5, 7, 9, 18, 200]:
        params[f'resnet{6 * n + 2}'] = n_params(CifarResNetA(n))
    for n in [3, 5, 7, 9, 18]:
        # Option A shortcuts hold no parameters: the plain twin has the same layers.
        params[f'plain{6 * n + 2}'] = n_params(CifarResNetA(n))
        params[f'preact_resnet{6 * n + 2}'] = n_params(PreActResNet(PreActBasic, [n] * 3, [16, 32, 64], False, 10))
    for n in [18, 111]:
        params[f'preact_resnet{9 * n + 2}'] = n_params(PreActResNet(PreActBottleneck, [n] * 3, [16, 32, 64], False, 10))
    for depth, k in [(16, 8), (28, 10), (40, 4)]:
        n = (depth - 4) // 6
        params[f'wide_resnet{depth}_{k}'] = n_params(
            PreActResNet(PreActBasic, [n] * 3, [16 * k, 32 * k, 64 * k], False, 10, stem=16))
    imagenet = {18: (PreActBasic, [2, 2, 2, 2]), 34: (PreActBasic, [3, 4, 6, 3]), 50: (PreActBottleneck, [3, 4, 6, 3]),
                101: (PreActBottleneck, [3, 4, 23, 3]), 152: (PreActBottleneck, [3, 8, 36, 3])}
    for depth, (block, layers) in imagenet.items():
        params[f'resnet{depth}'] = n_params(getattr(tv, f'resnet{depth}')())
        params[f'preact_resnet{depth}'] = n_params(PreActResNet(block, layers, [64, 128, 256, 512], True, 1000))
    for depth in [18, 34]:
        params[f'plain{depth}'] = n_params(getattr(tv, f'resnet{depth}')(), skip='downsample')
    return params


def count_macs(model, size):
    """Multiply-accumulates of the convolutions and linear layers for one image."""
    total = [0]

    def conv_hook(m, _inp, out):
        total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m, _inp, out):
        total[0] += out.numel() * m.in_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return total[0]


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    tv = torchvision.models
    make_fixture('resnet18', tv.resnet18(), (2, 40, 40, 3), [7, 981], ['bn1', 'layer4.1.bn2'])
    make_fixture('resnet50', tv.resnet50(), (2, 40, 40, 3), [7, 981], ['bn1', 'layer4.2.bn3'])
    make_fixture('resnet20', CifarResNetA(3), (2, 32, 32, 3), [3, 8], ['bn1', 'layer3.2.bn2'])
    make_fixture('preact_resnet18', PreActResNet(PreActBasic, [2, 2, 2, 2], [64, 128, 256, 512], True, 1000),
                 (2, 40, 40, 3), [7, 981], ['layer1.0.bn1', 'bn'])
    make_fixture('preact_resnet164', PreActResNet(PreActBottleneck, [18, 18, 18], [16, 32, 64], False, 10),
                 (2, 16, 16, 3), [3, 8], ['layer1.0.bn1', 'bn'])

    params = parameter_counts()
    counts = {
        'generated_by': 'scripts/make_model_fixtures.py (PyTorch %s, torchvision %s)' % (torch.__version__, torchvision.__version__),
        'params': params,
        'macs': {'resnet50@224': count_macs(tv.resnet50(), 224), 'resnet18@224': count_macs(tv.resnet18(), 224)},
    }
    with open(os.path.join(OUT, 'counts.json'), 'w') as f:
        json.dump(counts, f, indent=1)
        f.write('\n')
    print(counts)


if __name__ == '__main__':
    main()
