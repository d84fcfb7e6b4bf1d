#!/usr/bin/env python3
"""Time to accuracy on Fashion-MNIST in PyTorch, with a resnet-ts recipe file.

The PyTorch twin of `resnet train --config RECIPE`: the same network (the CIFAR ResNet of
He et al. 2015 sec. 4.2, 6n+2 layers, 16/32/64 planes, option-A zero-padding shortcuts,
on 1x28x28 input), the same augmentation (zero-pad + random crop, horizontal flip,
random erasing when the recipe asks), normalisation with the training set's mean and
std, SGD with (Nesterov) momentum and weight decay on the convolution and linear weights
only, a linear warmup from a third of the lr then cosine to zero (stepped per
iteration), label smoothing, and the same test-time augmentation at evaluation. The
clock runs from the start of the process (data reading included) to the end of the last
evaluation, as `resnet train` counts it. One JSON object per line on stdout.

`precision` bf16 (or auto on a CPU with avx512_bf16 / amx_bf16) runs the forward pass and
the loss under PyTorch's CPU autocast to bfloat16, PyTorch's mixed precision. `replicas`
is how resnet-ts spreads a batch over the cores; PyTorch runs one model on --threads
intra-op threads, its own way of using them.

  /usr/bin/python3 bench/torch_fashion_fast.py --config recipes/fashion-mnist-fast.json --threads 2

Fields a recipe may hold that this script does not implement are refused by name.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_cifar_resnet import CifarResNet  # noqa: E402

SUPPORTED = {
    'model', 'dataset', 'epochs', 'batchSize', 'evalBatchSize', 'lr', 'momentum', 'nesterov', 'weightDecay',
    'schedule', 'warmup', 'labelSmoothing', 'cropPadding', 'flip', 'randomErasing', 'evalEvery', 'tta', 'seed',
    'precision', 'replicas',
}


def cpu_has_bf16() -> bool:
    try:
        with open('/proc/cpuinfo') as f:
            flags = f.read()
    except OSError:
        return False
    return ' avx512_bf16' in flags or ' amx_bf16' in flags


def read_idx(path: str) -> np.ndarray:
    with gzip.open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def augment(x: torch.Tensor, pad: int, flip: bool, erasing: float, gen: torch.Generator) -> torch.Tensor:
    """Per-image random crop of the zero-padded batch, mirror with p 0.5, random erasing with p `erasing`."""
    n, c, h, w = x.shape
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        tops = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        lefts = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        rows = (tops[:, None] + torch.arange(h)[None, :])  # n x h
        cols = (lefts[:, None] + torch.arange(w)[None, :])  # n x w
        idx = torch.arange(n)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    if erasing > 0:
        # torchvision RandomErasing defaults: area 2-33 %, log-uniform aspect 0.3-3.3, value 0.
        for i in range(n):
            if torch.rand(1, generator=gen).item() >= erasing:
                continue
            for _ in range(10):
                area = h * w * (0.02 + torch.rand(1, generator=gen).item() * 0.31)
                aspect = math.exp(math.log(0.3) + torch.rand(1, generator=gen).item() * (math.log(3.3) - math.log(0.3)))
                eh, ew = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
                if eh < h and ew < w:
                    top = int(torch.randint(0, h - eh + 1, (1,), generator=gen))
                    left = int(torch.randint(0, w - ew + 1, (1,), generator=gen))
                    x[i, :, top:top + eh, left:left + ew] = 0
                    break
    return x


def tta_logits(model, x: torch.Tensor, mode: str) -> torch.Tensor:
    """The views and weights of src/train/tta.ts (airbench94's infer_mirror_translate)."""
    def mirror(v):
        return 0.5 * (model(v) + model(v.flip(3)))
    if mode == 'none':
        return model(x)
    if mode == 'flip':
        return mirror(x)
    padded = F.pad(x, (1, 1, 1, 1), mode='reflect')
    h, w = x.shape[2], x.shape[3]
    shifted = [padded[:, :, 0:h, 0:w], padded[:, :, 2:h + 2, 2:w + 2]]
    return 0.5 * mirror(x) + 0.5 * torch.stack([mirror(s) for s in shifted]).mean(0)


def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch: int, tta: str, bf16: bool) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
                logits = tta_logits(model, x[i:i + batch], tta).float()
            correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    model.train()
    return correct / len(x)


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True, help='resnet-ts recipe JSON')
    p.add_argument('--threads', type=int, default=2, help='intra-op threads')
    p.add_argument('--seed', type=int, default=None, help='override the recipe seed')
    p.add_argument('--epochs', type=int, default=None, help='override the recipe epochs (as resnet train --epochs)')
    p.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
    p.add_argument('--subset', type=int, default=None, help='train on the first n images and test on the first n (a smoke test)')
    a = p.parse_args()
    if a.epochs is not None and a.epochs < 1:
        print(f'--epochs must be at least 1, got {a.epochs}', file=sys.stderr)
        return 2
    with open(a.config) as f:
        r = json.load(f)
    unknown = sorted(set(r) - SUPPORTED)
    if unknown:
        print(f'{a.config}: fields {", ".join(unknown)} are not implemented by this script', file=sys.stderr)
        return 2
    if r.get('dataset', 'fashion-mnist') != 'fashion-mnist' or r.get('schedule', 'cosine') != 'cosine':
        print(f'{a.config}: this script runs Fashion-MNIST with the cosine schedule only', file=sys.stderr)
        return 2
    model_name = r.get('model', 'resnet20')
    if not (model_name.startswith('resnet') and model_name[6:].isdigit()):
        print(f'{a.config}: model {model_name}: this script builds the CIFAR resnet<6n+2> models only', file=sys.stderr)
        return 2
    precision = r.get('precision', 'fp32')
    if precision == 'auto':
        precision = 'bf16' if cpu_has_bf16() else 'fp32'
    if precision not in ('fp32', 'bf16'):
        print(f'{a.config}: precision {precision}: expected fp32, bf16 or auto', file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    seed = a.seed if a.seed is not None else r.get('seed', 0)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    xtr = torch.from_numpy(read_idx(os.path.join(a.data, 'train-images-idx3-ubyte.gz')).astype(np.float32) / 255)[:, None]
    ytr = torch.from_numpy(read_idx(os.path.join(a.data, 'train-labels-idx1-ubyte.gz')).astype(np.int64))
    xte = torch.from_numpy(read_idx(os.path.join(a.data, 't10k-images-idx3-ubyte.gz')).astype(np.float32) / 255)[:, None]
    yte = torch.from_numpy(read_idx(os.path.join(a.data, 't10k-labels-idx1-ubyte.gz')).astype(np.int64))
    if a.subset is not None:
        xtr, ytr, xte, yte = xtr[:a.subset], ytr[:a.subset], xte[:a.subset], yte[:a.subset]
    mean, std = float(xtr.mean()), float(xtr.std(unbiased=False))
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    # Padding is applied to the normalised image in this script; resnet-ts pads the [0, 1] image with zeros
    # before normalising. Pad with the value that normalises to the same thing: (0 - mean) / std.
    pad_value = (0 - mean) / std

    model = CifarResNet(int(model_name[6:]), in_channels=1, num_classes=10, shortcut='A', kaiming_init=True)
    decay = [q for n_, q in model.named_parameters() if q.ndim > 1]
    no_decay = [q for n_, q in model.named_parameters() if q.ndim <= 1]
    lr = r.get('lr', 0.1)
    opt = torch.optim.SGD([{'params': decay, 'weight_decay': r.get('weightDecay', 5e-4)},
                           {'params': no_decay, 'weight_decay': 0}],
                          lr=lr, momentum=r.get('momentum', 0.9), nesterov=r.get('nesterov', True))
    epochs = a.epochs if a.epochs is not None else r.get('epochs', 30)
    batch = r.get('batchSize', 128)
    steps_per_epoch = math.ceil(len(xtr) / batch)
    total = epochs * steps_per_epoch
    warmup = min(round(r.get('warmup', 1) * steps_per_epoch), total // 5)

    def lr_at(t: int) -> float:
        if t < warmup:
            return lr * (1 / 3 + (2 / 3) * t / warmup)
        tmax = total - warmup
        return lr * (1 + math.cos(math.pi * min(t - warmup, tmax) / tmax)) / 2

    pad, flip = r.get('cropPadding', 2) or 0, r.get('flip', True)
    erasing, smoothing = r.get('randomErasing', 0), r.get('labelSmoothing', 0.1)
    every, tta = r.get('evalEvery', 1), r.get('tta', 'none')
    emit(kind='start', config=a.config, seed=seed, threads=a.threads, torch=torch.__version__, precision=precision,
         params=sum(q.numel() for q in model.parameters()), setup_s=time.perf_counter() - START)
    step = 0
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(xtr), generator=gen)
        t0 = time.perf_counter()
        for i in range(0, len(xtr), batch):
            idx = order[i:i + batch]
            xb = augment(xtr[idx] - pad_value, pad, flip, 0, gen) + pad_value
            if erasing > 0:
                xb = augment(xb, 0, False, erasing, gen)
            for g in opt.param_groups:
                g['lr'] = lr_at(step)
            opt.zero_grad(set_to_none=True)
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=precision == 'bf16'):
                loss = F.cross_entropy(model(xb), ytr[idx], label_smoothing=smoothing)
            loss.backward()
            opt.step()
            step += 1
        train_s = time.perf_counter() - t0
        last = epoch + 1 == epochs
        acc = evaluate(model, xte, yte, r.get('evalBatchSize', 500), tta, precision == 'bf16') if last or (every > 0 and (epoch + 1) % every == 0) else None
        emit(kind='epoch', epoch=epoch + 1, test_top1=acc, epoch_train_s=train_s,
             img_per_s=len(xtr) / train_s, wall_s=time.perf_counter() - START)
    emit(kind='done', test_top1=acc, wall_s=time.perf_counter() - START)
    return 0


if __name__ == '__main__':
    sys.exit(main())
