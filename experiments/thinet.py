"""ThiNet (Luo et al., ICCV 2017), the Table 2 baseline: prune a layer's channels by how little the NEXT
layer's output needs them, then fine-tune.

Phases (see `experiments.methods`): `train` the dense network for the whole schedule, `prune` with ThiNet
layer by layer, `finetune` (`experiments.phases.FineTune`).

Pruning one layer (ThiNet Sec 3.2-3.3, official Caffe code Roll920/ThiNet_Code, read for facts):

1. Sample: run images through the network (eval mode) and capture the input of the layer that reads the
   pruned channels (the next conv, or the classifier). For each image, 10 random (output location, output
   filter) pairs; for each pair the contribution of every input channel c to that output is
   x_c = sum over the kernel window of W[f, c] * input[c]. The output (pre-BN, no bias) is y = sum_c x_c.
2. Greedy selection: starting from nothing removed, repeatedly remove the channel whose addition to the
   removed set T least increases sum over samples of (sum_{c in T} x_c)^2, until p of the channels are gone.
3. Rescale: least squares w = argmin ||y - X_S w||^2 over the kept channels S; w is folded into the
   reading layer's weights, channel by channel.

The ratio is per layer (ThiNet compresses each layer by the same rate), every layer whose channels can be
cut is pruned in forward order, and each layer is sampled from the network already pruned above it. Which
channels can be cut is `experiments.prune`'s table: every VGG BN, the two internal BNs of each PreResNet
bottleneck (ThiNet's ResNet rule: the residual stream is never pruned), ResNet's block-internal BNs. With
BN, the pruned BN and the conv writing it are sliced (`prune.prune`), which reconstructs the next conv's
pre-BN output.

Fine-tune budget: the whole schedule (`finetune_epochs: null`). Table 2's ThiNet FLOPs are exactly 160
dense epochs plus 160 epochs of a network pruned uniformly per layer: for VGG16 CIFAR-10 a kept fraction
k = 1 - p leaves about k^2 of the dense FLOPs (`benchmarks/flops_rule.py` prints this rule's FLOPs beside
Table 2's). ThiNet's own ImageNet
recipe (1-2 epochs between layers, then a short fine-tune) is not what Table 2 paid for.

The tensor work is `experiments.thinet_ops`, imported when the phase runs.
"""
from .models import count_params
from .phases import OneShot, pruned_cfg


class ThiNetPrune(OneShot):
    name = "prune"
    own_keys = ("prune_ratio", "thinet_images")

    def planned_cfg(self, spec, cfg):
        return pruned_cfg(spec)  # ThiNet cuts every layer by the same rate

    def transform(self, run):
        import torch

        from .thinet_ops import LOCATIONS, cuttable_ports, prune_layer, sample_images

        spec = run.spec
        count = spec["thinet_images"] or 10 * run.num_classes
        images = sample_images(run, count)
        generator = torch.Generator()
        generator.manual_seed(run.epoch_seed(0))
        before = run.params()
        layers = []
        model = run.model
        for index in cuttable_ports(model):
            model, stats = prune_layer(model, index, images, spec["prune_ratio"], generator, spec["batch_size"])
            layers.append(stats)
        model.train()
        run.phase_info.update({"ratio": spec["prune_ratio"], "images": int(images.size(0)),
                               "samples_per_layer": int(images.size(0)) * LOCATIONS, "layers": layers,
                               "params_before": before, "params_after": count_params(model), "cfg": model.cfg})
        return model
