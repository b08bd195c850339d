"""ThiNet's tensor work (`experiments.thinet` describes the method): per-channel contributions to the next
layer's outputs, the greedy channel choice, least-squares rescaling and the pruning of one layer.

Apart from the phase because it needs torch, and the method registry declares the phase without it.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import bn_layers
from .phases import sample_batches
from .prune import channel_ports, prune

LOCATIONS = 10  # (location, filter) samples per image, ThiNet Sec 4.1


def cuttable_ports(model):
    """Indexes (into `prune`'s port table) of the BNs whose channels ThiNet prunes, in forward order."""
    return [i for i, port in enumerate(channel_ports(model)) if port.producer is not None]


def _reader(model, index):
    readers = channel_ports(model)[index].readers
    if len(readers) != 1:
        raise ValueError("ThiNet needs exactly one layer reading the pruned channels, found %d" % len(readers))
    return readers[0]


def contributions(reader, inputs, generator):
    """(X [S, C], y [S]): per-channel contributions to LOCATIONS random outputs of `reader` per input.

    `inputs` is what `reader` receives: [N, C, H, W] for a conv, [N, C] for a linear layer.
    """
    n = inputs.size(0)
    count = n * LOCATIONS
    image = torch.arange(n).repeat_interleave(LOCATIONS)
    weight = reader.weight.detach()
    if isinstance(reader, nn.Linear):
        filt = torch.randint(weight.size(0), (count,), generator=generator)
        x = inputs[image.to(inputs.device)] * weight[filt.to(weight.device)]
        return x, x.sum(1)
    kh, kw = reader.kernel_size
    sh, sw = reader.stride
    ph, pw = reader.padding
    padded = F.pad(inputs, (pw, pw, ph, ph))
    out_h = (padded.size(2) - kh) // sh + 1
    out_w = (padded.size(3) - kw) // sw + 1
    filt = torch.randint(weight.size(0), (count,), generator=generator)
    row = torch.randint(out_h, (count,), generator=generator) * sh
    col = torch.randint(out_w, (count,), generator=generator) * sw
    rows = (row.view(-1, 1) + torch.arange(kh)).view(count, 1, kh, 1)
    cols = (col.view(-1, 1) + torch.arange(kw)).view(count, 1, 1, kw)
    chans = torch.arange(inputs.size(1)).view(1, -1, 1, 1)
    dev = inputs.device
    patches = padded[image.view(-1, 1, 1, 1).to(dev), chans.to(dev), rows.to(dev), cols.to(dev)]
    x = (patches * weight[filt.to(weight.device)]).sum(dim=(2, 3))
    return x, x.sum(1)


def greedy_keep(x, keep):
    """ThiNet's greedy selection: the sorted indexes of the `keep` channels left after removing, one at a
    time, the channel that least increases the squared norm of the removed channels' summed contribution."""
    removed_sum = torch.zeros_like(x[:, 0])
    alive = torch.ones(x.size(1), dtype=torch.bool, device=x.device)
    for _ in range(x.size(1) - keep):
        cost = ((removed_sum.unsqueeze(1) + x) ** 2).sum(0)
        cost[~alive] = float("inf")
        worst = int(cost.argmin())
        alive[worst] = False
        removed_sum += x[:, worst]
    return alive.nonzero().flatten()


def _lstsq(a, b):
    # torch.linalg.lstsq is torch >= 1.9; a TX2's torch 1.8 has only torch.lstsq (removed in torch 2).
    if hasattr(torch, "linalg") and hasattr(torch.linalg, "lstsq"):
        return torch.linalg.lstsq(a, b.unsqueeze(1)).solution.flatten()
    return torch.lstsq(b.unsqueeze(1), a)[0][:a.size(1)].flatten()


def rescale(x, y, kept):
    """Least-squares scales of the kept channels: argmin_w ||y - X[:, kept] w||^2 (ThiNet Sec 3.3)."""
    a = x[:, kept].double().cpu()
    return _lstsq(a, y.double().cpu()).float()


def reconstruction_error(x, y, kept, scale=None):
    """Relative squared error of rebuilding y from the kept channels (scaled by `scale` when given)."""
    part = x[:, kept]
    if scale is not None:
        part = part * scale.to(part.device)
    return float(((y - part.sum(1)) ** 2).sum() / (y ** 2).sum().clamp_min(1e-12))


def reader_inputs(model, reader, images, batch_size):
    """What `reader` receives when `images` go through `model` in eval mode."""
    captured = []
    handle = reader.register_forward_hook(lambda m, inp, out: captured.append(inp[0].detach()))
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, images.size(0), batch_size):
                model(images[start:start + batch_size])
    finally:
        handle.remove()
    return torch.cat(captured).flatten(1) if isinstance(reader, nn.Linear) else torch.cat(captured)


def layer_samples(model, reader, images, generator, batch_size):
    """(X, y) of `contributions` over all `images`, a batch at a time: a whole layer input of a thousand
    images (CIFAR-100's 10 per class) would not fit a TX2's memory next to the model."""
    parts = [contributions(reader, reader_inputs(model, reader, images[start:start + batch_size], batch_size),
                           generator)
             for start in range(0, images.size(0), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def prune_layer(model, index, images, ratio, generator, batch_size=256):
    """ThiNet on the BN at port `index`: a new, pruned and rescaled model, and the layer's statistics."""
    reader = _reader(model, index)
    x, y = layer_samples(model, reader, images, generator, batch_size)
    channels = x.size(1)
    keep = max(1, channels - int(channels * ratio))
    kept = greedy_keep(x, keep)
    scale = rescale(x, y, kept)
    stats = {"channels": channels, "kept": keep,
             "error_greedy": reconstruction_error(x, y, kept),
             "error_rescaled": reconstruction_error(x, y, kept, scale)}
    bns = bn_layers(model)
    target = channel_ports(model)[index].bn
    mask = torch.ones(sum(bn.num_features for bn in bns), dtype=torch.bool)
    start = sum(bn.num_features for bn in bns[:bns.index(target)])
    mask[start:start + channels] = False
    mask[start + kept.cpu()] = True
    pruned = prune(model, mask)
    new_reader = _reader(pruned, index)
    with torch.no_grad():
        shape = [1, -1] + [1] * (new_reader.weight.dim() - 2)
        new_reader.weight.mul_(scale.to(new_reader.weight.device).view(shape))
    return pruned, stats


def sample_images(run, count):
    """`count` training images (deterministic for the run's seed), on the run's device."""
    images, seen = [], 0
    for x, _ in sample_batches(run):
        images.append(x)
        seen += x.size(0)
        if seen >= count:
            break
    return torch.cat(images)[:count].to(run.loop.device)
