"""8-bit low-precision training as SWALP does it (Yang et al., ICML 2019), for EB Train LF and LL.

What is quantised, as in the Early-Bird repo's `main_lp.py` / `main_c_lp.py` (built on QPyTorch's SWALP
example; read for facts, no code copied): block floating point of `lp_bits` (8) bits with stochastic
rounding for

- weights, gradients and SGD momentum of every parameter (the role of QPyTorch's `OptimLP`): gradients
  after backward, with the BN L1 term already added, so they enter the step quantised; momentum and
  weights after the step (`experiments.quantise.Quantiser`);
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
from .phases import STATE_SWA, EarlyBirdRetrain, EarlyBirdSearch


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
        from . import data
        from .quantise import Quantiser, update_bn

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
