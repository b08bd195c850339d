"""Network slimming's sparsity: an L1 penalty on every BatchNorm gamma (Liu et al. 2017).

Applied as a subgradient after `loss.backward()` and before `optimizer.step()`: gamma.grad += s * sign(gamma),
as the official Early-Bird and network-slimming code do (s = 1e-4 by default). It drives unimportant
channels' gammas towards zero so that the |gamma| ranking, and with it the channel mask, settles early.
"""
from .models import bn_layers


class BNSparsity:
    """Train-loop callback adding the L1 subgradient of strength `s` to every BN gamma."""

    def __init__(self, s):
        self.s = s

    def after_backward(self, model):
        for bn in bn_layers(model):
            if bn.weight.grad is not None:
                bn.weight.grad.add_(self.s * bn.weight.detach().sign())
