"""Helpers for the tests of models and of pruning: BN channel counts and non-trivial BN parameters."""
import torch

from experiments.models import bn_layers


def bn_channels(model):
    return sum(bn.num_features for bn in bn_layers(model))


def randomise_bn(model, seed=0):
    """Non-trivial BN parameters and statistics, so equalities test something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in bn_layers(model):
            n = bn.num_features
            bn.weight.copy_(torch.rand(n, generator=g) * 2 - 1)
            bn.bias.copy_(torch.rand(n, generator=g) - 0.5)
            bn.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return model
