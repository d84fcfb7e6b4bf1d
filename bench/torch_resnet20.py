#!/usr/bin/env python3
"""ResNet-20 training and inference throughput in PyTorch: the baseline of `npm run bench`.

The network matches the bench's own: 3x32x32 input, 16/32/64 planes, 3 basic blocks per
stage, projection shortcuts (1x1 conv + BN, He et al. 2015 option B) where the shape
changes, global average pooling and a 10-way linear layer; SGD with momentum, batch 128.
Each measurement is printed on stdout as one JSON object per line.

  python3 bench/torch_resnet20.py --threads 2 --layouts nchw,channels_last
  python3 bench/torch_resnet20.py --threads 1 --layouts channels_last --autocast bf16
  python3 bench/torch_resnet20.py --export-onnx /tmp/resnet20.onnx
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from torch_cifar_resnet import CifarResNet


def ResNet20():
    """The bench's network: option-B shortcuts, 3 input channels, 10 classes."""
    return CifarResNet(20, in_channels=3, num_classes=10, shortcut='B')


CLOCK = time.perf_counter


def timed(fn, warmup: int, steps: int) -> float:
    """Seconds per step after `warmup` untimed steps."""
    for _ in range(warmup):
        fn()
    start = CLOCK()
    for _ in range(steps):
        fn()
    return (CLOCK() - start) / steps


def measure(layout: str, batch: int, train_steps: int, infer_steps: int, warmup: int, autocast: str) -> None:
    """`autocast` 'bf16': the forward pass (and so the convolutions of the backward) under CPU autocast to bfloat16."""
    def precision():
        return torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast == 'bf16')

    torch.manual_seed(0)
    memory_format = torch.channels_last if layout == 'channels_last' else torch.contiguous_format
    model = ResNet20().to(memory_format=memory_format)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    model.train()

    def train_step():
        opt.zero_grad(set_to_none=True)
        with precision():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    sec = timed(train_step, warmup, train_steps)
    emit(kind='train', layout=layout, autocast=autocast, batch=batch, ms_per_step=sec * 1e3, img_per_s=batch / sec)

    model.eval()

    def infer():
        with torch.no_grad(), precision():
            model(x)

    sec = timed(infer, warmup, infer_steps)
    emit(kind='inference', layout=layout, autocast=autocast, batch=batch, ms_per_step=sec * 1e3, img_per_s=batch / sec)


def export_onnx(path: str, batch: int) -> None:
    torch.manual_seed(0)
    model = ResNet20().eval()
    x = torch.randn(batch, 3, 32, 32)
    torch.onnx.export(model, x, path, input_names=['input'], output_names=['logits'], opset_version=13)
    emit(kind='onnx', path=path, batch=batch)


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=0, help='intra-op threads (0: all cores)')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--train-steps', type=int, default=10)
    p.add_argument('--infer-steps', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--layouts', default='nchw,channels_last')
    p.add_argument('--autocast', choices=('none', 'bf16'), default='none',
                   help="'bf16': torch.autocast('cpu', dtype=torch.bfloat16) around the forward passes")
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                   help="'cpu': process CPU time, robust to other load (meaningful with one thread)")
    p.add_argument('--export-onnx', metavar='PATH', help='write the network (eval mode) as ONNX and exit')
    a = p.parse_args()
    global CLOCK
    CLOCK = time.process_time if a.clock == 'cpu' else time.perf_counter
    # This build of PyTorch starts with one thread whatever the core count, so set it always.
    threads = a.threads if a.threads > 0 else (torch.multiprocessing.cpu_count() or 1)
    torch.set_num_threads(threads)
    emit(kind='info', torch=torch.__version__, threads=torch.get_num_threads(),
         onednn=torch.backends.mkldnn.is_available())
    if a.export_onnx:
        export_onnx(a.export_onnx, a.batch)
        return 0
    for layout in a.layouts.split(','):
        if layout not in ('nchw', 'channels_last'):
            print(f'unknown layout {layout!r}: expected nchw or channels_last', file=sys.stderr)
            return 2
        measure(layout, a.batch, a.train_steps, a.infer_steps, a.warmup, a.autocast)
    return 0


if __name__ == '__main__':
    sys.exit(main())
