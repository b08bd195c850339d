"""The official code's weight initialisation, shared by every architecture."""
import math

import torch.nn as nn


def official_init(model, bn_gamma, linear_std=None):
    """He-normal over fan-out for convolutions, BN gamma = `bn_gamma` and beta = 0, and for the
    classifier either N(0, linear_std) with zero bias or PyTorch's default (`linear_std=None`)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, bn_gamma)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is None:
                m.reset_parameters()
            else:
                nn.init.normal_(m.weight, 0, linear_std)
                nn.init.zeros_(m.bias)
