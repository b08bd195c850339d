"""VGG for CIFAR with batch norm, as in the official ``models/vgg.py``.

Each integer of ``cfg`` is a 3x3 convolution (padding 1, no bias) followed by
BatchNorm2d and ReLU; ``'M'`` is a 2x2 max-pool.  After the last block an
AvgPool2d(2) turns the 2x2 map of a 32x32 input into 1x1 and ONE Linear layer
classifies -- the CIFAR variant of the official code, not torchvision's
three-layer ImageNet head.  Every BN is prunable: a pruned model is the same
class built from the kept channel counts.
"""
import torch.nn as nn

from .init import official_init
from .vgg_layout import check_cfg


class VGG(nn.Module):
    def __init__(self, cfg, num_classes):
        super().__init__()
        layers = []
        in_channels = 3
        for v in cfg:
            if v == 'M':
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1, bias=False),
                       nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            in_channels = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(2)
        self.classifier = nn.Linear(in_channels, num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        # BN gamma 0.5, so the Early-Bird mask starts from equal gammas; a small-normal classifier.
        official_init(self, bn_gamma=0.5, linear_std=0.01)

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.classifier(x.flatten(1))


def build(depth, num_classes, cfg):
    check_cfg(depth, cfg)
    return VGG(cfg, num_classes)
