"""8-bit low-precision training as SWALP does it (Yang et al., ICML 2019), for EB Train LF and LL.

What is quantised, as in the Early-Bird repo's `main_lp.py` / `main_c_lp.py` (built on QPyTorch's SWALP
example; read for facts, no code copied): block floating point of `lp_bits` (8) bits with stochastic
rounding for

- weights, gradients and SGD momentum of every parameter (the role of QPyTorch's `OptimLP`): gradients
  after backward, with the BN L1 term already added, so they enter the step quantised; momentum and
  weights after the step (`Quantiser.after_backward` / `after_step`);
- activations after every conv and linear layer and the errors flowing back into them (forward hooks
  with a straight-through quantiser whose backward quantises the gradient), except after the classifier,
  as the official scripts remove that quantiser; BN, ReLU and the input stay FP32.

Blocks share one exponent along dim 0: per output filter for weights, gradients and momentum, per sample
for activations and errors. SWA (stochastic weight averaging) in FP32 starts at `swa_start` of the
schedule (official: epoch 140 of 160): after each such epoch the weights are added to a running average
kept in `run.state`; at the end of the phase the average replaces the weights and the BN statistics are
recomputed over the training set in FP32 (one extra forward pass, not in the FLOPs). An Early-Bird search
stops long before epoch 140, so in practice SWA acts in LL's retrain. Per-epoch test accuracies inside a
low-precision phase are those of the 8-bit model; the run's final accuracy is that of the FP32 average,
the model SWALP reports.

Why not qtorch: it JIT-compiles a C++/CUDA extension at import (a TX2 at JetPack 4.6 would need a working
ninja + nvcc toolchain and minutes per start) and still computes in FP32: it is an emulation too. The same
emulation in plain tensor ops runs on any torch >= 1.8. Either way the arithmetic is FP32 on the GPU, so
the MEASURED energy of an emulated 8-bit phase is not 8-bit energy; `analysis.energy_estimate` adds the
paper's kind of estimate, labelled as such. FLOPs are counted as FP32 FLOPs (Sohoni et al. 2019), as the
paper does.
"""
import torch
import torch.nn as nn

from . import data
from .models import bn_layers
from .phases import STATE_SWA, EarlyBirdRetrain, EarlyBirdSearch


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


def precision_label(bits):
    """The record's name of block floating point of `bits` bits (a phase's `precision`)."""
    return "bfp%d" % bits


class LowPrecision:
    """Mixin for a `Train` phase: run it in emulated `lp_bits` precision with SWA near the end."""

    low_precision = True

    def keys(self):
        return super().keys() + ("lp_bits", "swa_start")

    def precision(self, spec):
        return precision_label(spec["lp_bits"])

    def callbacks(self, run):
        return super().callbacks(run) + [self._quantiser]

    def execute(self, run, done):
        self._quantiser = Quantiser(run.spec["lp_bits"], run.optimizer)
        self._quantiser.attach(run.model)
        try:
            super().execute(run, done)
        finally:
            self._quantiser.detach()
        swa = run.state.pop(STATE_SWA, None)
        if swa is not None:
            run.model.load_state_dict(swa["weights"], strict=False)
            loader = data.train_loader(run.spec, run.loop.train_set, run.epoch_seed(run.spec["epochs"]),
                                       run.loop.pin)
            update_bn(run.model, loader, run.loop.device)
        # What the run's accuracies evaluate: each epoch's (best_top1) the live model with its quantisers
        # on; the final one the SWA average in FP32, or without SWA the last weights, quantisers off.
        label = precision_label(run.spec["lp_bits"])
        run.phase_info.update({"bits": run.spec["lp_bits"], "rounding": "stochastic",
                               "swa_epochs": 0 if swa is None else swa["n"],
                               "best_model": "%s live" % label,
                               "final_model": "fp32 swa" if swa is not None else "%s weights, fp32 eval" % label})

    def after_epoch(self, run, epoch):
        extra = super().after_epoch(run, epoch)
        global_epoch = self.start_epoch(run) + epoch - 1
        if global_epoch >= int(round(run.spec["swa_start"] * run.spec["epochs"])):
            self._average(run)
        return extra

    @staticmethod
    def _average(run):
        # Kept on the CPU: checkpoints load onto the CPU, and a resumed average must meet the same device.
        current = {n: p.detach().cpu() for n, p in run.model.named_parameters()}
        swa = run.state.get(STATE_SWA)
        if swa is None:
            run.state[STATE_SWA] = {"n": 1, "weights": {n: t.clone() for n, t in current.items()}}
            return
        swa["n"] += 1
        for name, avg in swa["weights"].items():
            avg.add_((current[name] - avg) / swa["n"])


class LowPrecisionSearch(LowPrecision, EarlyBirdSearch):
    """The Early-Bird search (BN L1 and detectors unchanged) in emulated 8-bit precision."""


class LowPrecisionRetrain(LowPrecision, EarlyBirdRetrain):
    """EB Train LL's retrain of the ticket in emulated 8-bit precision."""
