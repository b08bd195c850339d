"""Network slimming (Liu et al., ICCV 2017), the Table 2 baseline "NS".

Train the dense network for the whole schedule with an L1 penalty on every BN gamma
(`experiments.sparsity.BNSparsity`), prune the channels with the globally smallest |gamma| at ratio p
physically (`experiments.phases.ChannelPrune` on the trained model, no ticket), then fine-tune the pruned
network (`experiments.phases.FineTune`; by default the whole schedule again, as the official
network-slimming README's `--refine` step does).

The L1 strength is the slimming paper's per architecture (Sec 4.2 of Liu et al. 2017: 1e-4 for VGGNet,
1e-5 for ResNet and DenseNet on CIFAR), unless the spec's `ns_sparsity` sets one. The Early-Bird scripts'
1e-4 for every arch is the EB search's strength (`sparsity`), not NS's.
"""
from .phases import Train
from .sparsity import BNSparsity

STRENGTH = {"vgg": 1e-4, "preresnet": 1e-5, "resnet": 1e-5}


def strength(spec):
    """The BN-gamma L1 strength network slimming trains with under `spec`."""
    if spec["ns_sparsity"] is not None:
        return spec["ns_sparsity"]
    return STRENGTH[spec["arch"]]


def _full(run):
    return run.spec["epochs"]


def _slimming_sparsity(run):
    return [BNSparsity(strength(run.spec))]


class SlimmingTrain(Train):
    """The dense training of network slimming: the whole schedule under BN-gamma L1 at `strength`."""

    own_keys = ("ns_sparsity",)

    def __init__(self):
        super().__init__("train", epochs=_full, callbacks=_slimming_sparsity)

    def execute(self, run, done):
        run.phase_info["l1_strength"] = strength(run.spec)
        super().execute(run, done)
