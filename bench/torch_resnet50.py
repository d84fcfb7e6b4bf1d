#!/usr/bin/env python3
"""ResNet-50 (He et al. 2015, Table 1; torchvision's v1.5 layout, stride 2 in the 3x3
convolution of a bottleneck) eval-mode inference in PyTorch: the baseline of the
ResNet-50 rows of `npm run bench`. Prints one JSON line: the median milliseconds per
batch over the timed steps and the process's peak RSS.

  python3 bench/torch_resnet50.py --threads 2 --batch 16 --layout channels_last --steps 5
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = (nn.Sequential(nn.Conv2d(in_planes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
                           if stride != 1 or in_planes != out else nn.Identity())

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + self.downsample(x))


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, in_planes = [], 64
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes * Bottleneck.expansion
            layers.append(nn.Sequential(*stage))
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layers(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: VmHWM, the high-water mark of its own address space. Not
    getrusage's ru_maxrss: on Linux a child started by fork + exec inherits in it its parent's RSS."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('/proc/self/status has no VmHWM line (peak RSS needs Linux)')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--layout', choices=('nchw', 'channels_last'), default='nchw')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                   help="cpu: this process's CPU time, robust to other load with --threads 1")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ResNet50().eval()
    x = torch.randn(a.batch, 3, 224, 224)
    if a.layout == 'channels_last':
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    clock = time.process_time if a.clock == 'cpu' else time.perf_counter
    times = []
    with torch.no_grad():
        for i in range(a.warmup + a.steps):
            t0 = clock()
            model(x)
            if i >= a.warmup:
                times.append((clock() - t0) * 1000)
    ms = statistics.median(times)
    print(json.dumps({'kind': 'inference', 'torch': torch.__version__, 'layout': a.layout, 'ms_per_step': ms,
                      'img_per_s': a.batch * 1000 / ms,
                      'peak_rss_mb': peak_rss_mb()}))


if __name__ == '__main__':
    main()
