"""The CIFAR-style ResNet (He et al. 2015, sec. 4.2) in PyTorch, the twin of resnet-ts's
resnet20/32/44/56/110 for the Python baselines under bench/: a 3x3 stem of 16 planes,
three stages of 16/32/64 planes with n basic blocks each (depth 6n+2), global average
pooling and a linear layer. Where a block changes shape its shortcut is option A
(strided identity, new channels zero) or option B (1x1 convolution + BN)."""
import torch.nn as nn
import torch.nn.functional as F


class ZeroPadShortcut(nn.Module):
    """Option A: x[:, :, ::s, ::s] with the new channels zero, half before and half after."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.stride = stride
        self.front = (planes - in_planes) // 2
        self.back = planes - in_planes - self.front

    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.front, self.back))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride == 1 and in_planes == planes:
            self.downsample = nn.Identity()
        elif shortcut == 'A':
            self.downsample = ZeroPadShortcut(in_planes, planes, stride)
        else:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.downsample(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int = 20, in_channels: int = 3, num_classes: int = 10, shortcut: str = 'A',
                 kaiming_init: bool = False):
        super().__init__()
        n = (depth - 2) // 6
        if 6 * n + 2 != depth:
            raise ValueError(f'depth {depth} is not 6n+2')
        if shortcut not in ('A', 'B'):
            raise ValueError(f'shortcut {shortcut!r} is not A or B')
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, shortcut))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)
        if kaiming_init:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
