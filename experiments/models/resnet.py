"""ResNet18/50 for ImageNet (224x224 input), post-activation as in torchvision.

Stem: 7x7 stride-2 conv -> BN -> ReLU -> 3x3 stride-2 max-pool; four stages
(strides 1, 2, 2, 2) of BasicBlocks (ResNet18: 2, 2, 2, 2) or Bottlenecks
(ResNet50: 3, 4, 6, 3, stride on the 3x3 conv); global average pool; Linear.
Init as the official ``models/resnet_imagenet.py``: He-normal over fan-out for
convs, BN gamma 1 (not 0.5 as in the CIFAR models), default Linear init.

Pruning design (a deliberate simplification of the official ResNet18, which
puts a channel selection on each block's input): only the channels INSIDE a
block are pruned -- bn1 of a BasicBlock, bn1 and bn2 of a Bottleneck -- by
slicing the conv before and the conv after.  The BNs that write the residual
stream (the stem BN, each block's last BN, the downsample BNs) are never
pruned, so no selection layer is needed and the stream keeps its width; their
mask bits are ignored by ``experiments.prune``.

``cfg`` = ``[s] + internal widths per block`` (one per BasicBlock, two per
Bottleneck), 9 entries for ResNet18 and 33 for ResNet50.  The stream is sized
from the stem width ``s`` alone (standard s = 64): stage outputs s, 2s, 4s, 8s
for ResNet18 and 4s, 8s, 16s, 32s for ResNet50.
"""
import torch.nn as nn

from .init import official_init
from . import resnet_layout
from .resnet_layout import check_cfg


class BasicBlock(nn.Module):
    expansion = 1
    internal = resnet_layout.BASIC_INTERNAL  # prunable BNs, hence cfg entries, per block

    def __init__(self, inplanes, outplanes, cfg, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, cfg[0], kernel_size=3, stride=stride,
                               padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg[0])
        self.conv2 = nn.Conv2d(cfg[0], outplanes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(inplanes, outplanes, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    expansion = 4
    internal = resnet_layout.BOTTLENECK_INTERNAL

    def __init__(self, inplanes, outplanes, cfg, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, cfg[0], kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg[0])
        self.conv2 = nn.Conv2d(cfg[0], cfg[1], kernel_size=3, stride=stride,
                               padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cfg[1])
        self.conv3 = nn.Conv2d(cfg[1], outplanes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(inplanes, outplanes, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _downsample(inplanes, outplanes, stride):
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(
        nn.Conv2d(inplanes, outplanes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(outplanes))


_BLOCK = {18: BasicBlock, 50: Bottleneck}  # the block each depth is made of (`resnet_layout`)


class ResNet(nn.Module):
    def __init__(self, depth, num_classes, cfg):
        super().__init__()
        block = _BLOCK[depth]
        internal, counts = resnet_layout.blocks(depth)
        stem = cfg[0]
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes, at = stem, 1
        stages = []
        for stage, count in enumerate(counts):
            outplanes = stem * 2 ** stage * block.expansion
            blocks = []
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(block(inplanes, outplanes,
                                    cfg[at:at + internal], stride))
                inplanes, at = outplanes, at + internal
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        # BN gamma 1 and PyTorch's default classifier, as the official resnet_imagenet.py.
        official_init(self, bn_gamma=1.0)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def build(depth, num_classes, cfg):
    check_cfg(depth, cfg)
    return ResNet(depth, num_classes, cfg)
