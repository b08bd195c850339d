"""The tensor ops of emulated low-precision training (`experiments.low_precision` says what is quantised
and why): block floating point with stochastic rounding, the straight-through activation quantiser, the
train-loop callback that quantises weights, gradients and momentum, and SWA's BN update.

Apart from `experiments.low_precision` because they need torch at import (`torch.autograd.Function`) and
the phases there are declared without it.
"""
import torch
import torch.nn as nn

from .models import bn_layers


def block_quantise(x, bits, stochastic=True):
    """Block floating point of `bits` bits, one exponent per slice along dim 0.

    Each block's exponent e = floor(log2(max |x|)); values become integers in [-2^(bits-1), 2^(bits-1) - 1]
    times 2^(e - bits + 2), so a block takes at most 2^bits distinct values. Stochastic rounding
    (floor(v + u), u ~ U[0, 1)) keeps the quantised value unbiased. All-zero blocks stay zero.
    """
    if x.numel() == 0:
        return x
    flat = x.reshape(x.size(0), -1) if x.dim() > 0 else x.reshape(1, 1)
    # The floor on the block maximum keeps the step a normal float (no subnormal or zero division).
    top = flat.abs().max(dim=1, keepdim=True)[0].clamp_min(torch.finfo(flat.dtype).tiny * 2.0 ** bits)
    step = torch.pow(2.0, torch.floor(torch.log2(top)) - (bits - 2))
    scaled = flat / step
    scaled = torch.floor(scaled + torch.rand_like(scaled)) if stochastic else torch.round(scaled)
    limit = 2.0 ** (bits - 1)
    return (scaled.clamp(-limit, limit - 1) * step).view_as(x)


class _QuantiseActivation(torch.autograd.Function):
    """Identity-shaped quantiser: activations on the way forward, errors on the way back."""

    @staticmethod
    def forward(ctx, x, bits):
        ctx.bits = bits
        return block_quantise(x, bits)

    @staticmethod
    def backward(ctx, grad):
        return block_quantise(grad, ctx.bits), None


def quantise_activation(x, bits):
    return _QuantiseActivation.apply(x, bits)


class Quantiser:
    """Puts a model and its optimiser in emulated low precision: hooks on the layers, a train-loop
    callback for gradients, momentum and weights. `attach` before training, `detach` after."""

    def __init__(self, bits, optimizer):
        self.bits = bits
        self.optimizer = optimizer
        self._handles = []

    def attach(self, model):
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        # The classifier (the last layer) is left unquantised, as in the official low-precision scripts.
        for layer in layers[:-1]:
            self._handles.append(layer.register_forward_hook(self._hook))
        self.quantise_weights(model)

    def detach(self):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, module, inputs, output):
        return quantise_activation(output, self.bits)

    def quantise_weights(self, model):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(block_quantise(p, self.bits))

    def after_backward(self, model):
        for p in model.parameters():
            if p.grad is not None:
                p.grad.copy_(block_quantise(p.grad, self.bits))

    def after_step(self, model):
        for p in model.parameters():
            buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                buf.copy_(block_quantise(buf, self.bits))
        self.quantise_weights(model)


def update_bn(model, loader, device):
    """Recompute BN running statistics as a plain average over one pass of `loader` (SWA's bn_update)."""
    momenta = {}
    for bn in bn_layers(model):
        bn.reset_running_stats()
        momenta[bn] = bn.momentum
        bn.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for x, _ in loader:
            model(x.to(device))
    for bn, momentum in momenta.items():
        bn.momentum = momentum
