"""Physical channel pruning: a channel mask in, a smaller dense model out.

The mask is a 1-D bool tensor over every BN channel in the global order of
``experiments.models.bn_layers`` (True = keep).  ``prune(model, mask)``
returns a NEW model, built from the kept counts, whose eval-mode outputs equal
those of ``zero_pruned(model, mask)`` -- the original with the pruned
channels' BN gamma and beta zeroed (a zero BN output stays zero through ReLU,
so the next layer's weights on that channel contribute nothing and can go).

How each arch is cut, as in the official ``vggprune.py`` and ``resprune.py``:

- a "sliced" BN (every VGG BN, PreResNet bn2/bn3, ResNet block-internal BNs):
  its weight, bias and running statistics, the conv that writes it (output
  channels) and the layer that reads it (input channels) keep the kept indexes;
- a BN read through a ``ChannelSelection`` (PreResNet bn1 and final BN): the BN
  keeps its full width, the selection takes the mask and the reader's input
  channels are sliced -- the residual stream never shrinks;
- a "fixed" BN (ResNet stem, last BN of each block, downsample BNs: they write
  the residual stream): never pruned, its mask bits are ignored.

Every prunable layer keeps at least one channel (the official code has no
guard for a layer pruned to 0): the one with the largest |gamma|.
``effective_mask`` gives the channels that really survive.
"""
import collections
import copy

import torch
import torch.nn as nn

from experiments.models import bn_layers, build

# One prunable (or fixed) BN and the layers tied to its channels.
# producer: conv whose output channels are the BN's (sliced BNs only);
# selection: ChannelSelection reading the BN (selected BNs only);
# readers: layers whose input channels (dim 1) are the BN's kept channels;
# cfg_index: the cfg entry holding the kept count, None for a fixed BN.
_Port = collections.namedtuple('_Port', 'bn producer selection readers cfg_index')


def _fixed(bn):
    return _Port(bn, None, None, [], None)


def _vgg_ports(model):
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.features if isinstance(m, nn.BatchNorm2d)]
    slots = [i for i, v in enumerate(model.cfg) if v != 'M']
    readers = convs[1:] + [model.classifier]
    return [_Port(bn, conv, None, [reader], slot)
            for bn, conv, reader, slot in zip(bns, convs, readers, slots)]


def _preresnet_ports(model):
    ports, slot = [], 1  # cfg[0] is the stem width
    for block in list(model.layer1) + list(model.layer2) + list(model.layer3):
        ports += [_Port(block.bn1, None, block.select, [block.conv1], slot),
                  _Port(block.bn2, block.conv1, None, [block.conv2], slot + 1),
                  _Port(block.bn3, block.conv2, None, [block.conv3], slot + 2)]
        slot += 3
    return ports + [_Port(model.bn, None, model.select, [model.fc], slot)]


def _resnet_ports(model):
    ports, slot = [_fixed(model.bn1)], 1
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in stage:
            ports.append(_Port(block.bn1, block.conv1, None, [block.conv2], slot))
            if hasattr(block, 'bn3'):  # Bottleneck: bn2 is internal too
                ports += [_Port(block.bn2, block.conv2, None, [block.conv3], slot + 1),
                          _fixed(block.bn3)]
            else:
                ports.append(_fixed(block.bn2))
            slot += block.internal
            if block.downsample is not None:
                ports.append(_fixed(block.downsample[1]))
    return ports


_PORTS = {'vgg': _vgg_ports, 'preresnet': _preresnet_ports, 'resnet': _resnet_ports}


def channel_ports(model):
    """One port per BN layer, in `bn_layers` order: the BN and the layers its channels feed."""
    ports = _PORTS[model.arch](model)
    # The mask is laid out in bn_layers order: the ports must follow it exactly.
    assert [p.bn for p in ports] == bn_layers(model), 'port order != bn_layers order'
    return ports


def _kept(ports, mask):
    """Per port, a bool tensor (CPU) of the BN channels that survive."""
    mask = torch.as_tensor(mask).detach().flatten().to('cpu', torch.bool)
    total = sum(p.bn.num_features for p in ports)
    if len(mask) != total:
        raise ValueError('mask has %d entries, the model has %d BN channels'
                         % (len(mask), total))
    kept, start = [], 0
    for port in ports:
        n = port.bn.num_features
        bits = mask[start:start + n].clone()
        start += n
        if port.cfg_index is None:
            kept.append(torch.ones(n, dtype=torch.bool))
            continue
        # A selected BN's channels outside its selection are already gone.
        usable = (port.selection.mask.detach().cpu() if port.selection is not None
                  else torch.ones(n, dtype=torch.bool))
        bits &= usable
        if not bits.any():
            gamma = port.bn.weight.detach().abs().cpu().float()
            gamma[~usable] = -1.0
            bits[int(gamma.argmax())] = True
        kept.append(bits)
    return kept


def effective_mask(model, mask):
    """The bool mask of channels that survive ``prune`` (same order and device as ``mask``)."""
    kept = torch.cat(_kept(channel_ports(model), mask))
    return kept.to(torch.as_tensor(mask).device)


def zero_pruned(model, mask):
    """A copy of ``model`` with gamma and beta zeroed where ``effective_mask`` is False."""
    zeroed = copy.deepcopy(model)
    ports = channel_ports(zeroed)
    with torch.no_grad():
        for port, bits in zip(ports, _kept(ports, mask)):
            dropped = (~bits).to(port.bn.weight.device)
            port.bn.weight[dropped] = 0
            port.bn.bias[dropped] = 0
    return zeroed


def prune(model, mask):
    """A new, physically smaller model equivalent to ``zero_pruned(model, mask)``.

    Its ``.cfg`` holds the kept counts, so ``build(arch, depth, num_classes,
    cfg)`` + ``load_state_dict`` restores it from a checkpoint.
    """
    ports = channel_ports(model)
    kept = _kept(ports, mask)
    cfg = list(model.cfg)
    for port, bits in zip(ports, kept):
        if port.cfg_index is not None:
            cfg[port.cfg_index] = int(bits.sum())

    names = {module: name for name, module in model.named_modules()}
    cuts = collections.defaultdict(list)  # module name -> [(dim, index)]
    masks = {}  # selection buffer name -> new mask
    for port, bits in zip(ports, kept):
        if port.cfg_index is None:
            continue
        index = bits.nonzero().flatten()
        if port.selection is not None:
            masks[names[port.selection] + '.mask'] = bits
            # The reader's input columns follow the OLD selection's order.
            old = port.selection.mask.detach().cpu()
            index = (old.long().cumsum(0) - 1)[bits]
        else:
            cuts[names[port.bn]].append((0, index))
            cuts[names[port.producer]].append((0, index))
        for reader in port.readers:
            cuts[names[reader]].append((1, index))

    state = collections.OrderedDict()
    for name, tensor in model.state_dict().items():
        if name in masks:
            tensor = masks[name]
        owner = name.rsplit('.', 1)[0]
        for dim, index in cuts.get(owner, []):
            # dim 1 of a Linear is its weight's input; its bias is untouched,
            # and num_batches_tracked (0-d) is kept whole.
            if tensor.dim() > dim:
                tensor = tensor.index_select(dim, index.to(tensor.device))
        state[name] = tensor.clone()

    device = next(model.parameters()).device
    pruned = build(model.arch, model.depth, model.num_classes, cfg=cfg).to(device)
    pruned.load_state_dict(state)
    pruned.train(model.training)
    return pruned
