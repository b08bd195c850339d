"""Pre-activation bottleneck ResNet for CIFAR, as in the official ``models/preresnet.py``.

Depth 9n+2: three stages of n bottleneck blocks.  A block is
``bn1 -> select -> relu -> conv1 1x1 -> bn2 -> relu -> conv2 3x3 (stride) ->
bn3 -> relu -> conv3 1x1 (x4)`` plus the shortcut (identity, or a strided 1x1
conv without BN in each stage's first block).  Stem: 3x3 conv 3->s, no BN.
Head: ``bn -> select -> relu -> global average pool -> Linear``.

Every BN is prunable.  bn1 and the final BN read the residual stream, which
the identity shortcuts share, so they keep their full width and their
``ChannelSelection`` carries the mask; bn2 and bn3 are sliced.  The residual
stream never shrinks (official ``resprune.py``).

``cfg`` = ``[s] + [selected, conv1 out, conv2 out] for each block + [final
selected]``: the official 100-entry layout for depth 101 with the stem width
``s`` in front.  The stream is sized from ``s`` alone (stage widths 4s, 8s,
16s; official s = 16), since a pruned cfg no longer tells it.
"""
import torch.nn as nn

from .channel_selection import ChannelSelection
from .init import official_init
from .preresnet_layout import check_cfg, stream_widths


class Bottleneck(nn.Module):
    def __init__(self, inplanes, outplanes, cfg, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.select = ChannelSelection(inplanes, cfg[0])
        self.conv1 = nn.Conv2d(cfg[0], cfg[1], kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cfg[1])
        self.conv2 = nn.Conv2d(cfg[1], cfg[2], kernel_size=3, stride=stride,
                               padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cfg[2])
        self.conv3 = nn.Conv2d(cfg[2], outplanes, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != outplanes:
            self.downsample = nn.Conv2d(inplanes, outplanes, kernel_size=1,
                                        stride=stride, bias=False)

    def forward(self, x):
        out = self.relu(self.select(self.bn1(x)))
        out = self.relu(self.bn2(self.conv1(out)))
        out = self.relu(self.bn3(self.conv2(out)))
        out = self.conv3(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class PreResNet(nn.Module):
    def __init__(self, depth, num_classes, cfg):
        super().__init__()
        n = (depth - 2) // 9
        streams = stream_widths(cfg[0])
        self.conv1 = nn.Conv2d(3, cfg[0], kernel_size=3, padding=1, bias=False)
        stages = []
        for stage in range(3):
            blocks = []
            for i in range(n):
                first = 1 + 3 * (stage * n + i)
                inplanes = streams[stage] if i == 0 else streams[stage + 1]
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(Bottleneck(inplanes, streams[stage + 1],
                                         cfg[first:first + 3], stride))
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(streams[3])
        self.select = ChannelSelection(streams[3], cfg[-1])
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cfg[-1], num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        # BN gamma 0.5; the Linear layer keeps PyTorch's default init, as in the official code.
        official_init(self, bn_gamma=0.5)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = self.relu(self.select(self.bn(x)))
        return self.fc(self.avgpool(x).flatten(1))


def build(depth, num_classes, cfg):
    check_cfg(depth, cfg)
    return PreResNet(depth, num_classes, cfg)
