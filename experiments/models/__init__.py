"""Model registry: every network of the suite is built from a channel list ``cfg``.

``build(arch, depth, num_classes, cfg)`` returns a model carrying ``.arch``,
``.depth``, ``.num_classes`` and ``.cfg``, so a pruned model is rebuilt exactly
by ``build(m.arch, m.depth, m.num_classes, cfg=m.cfg)`` followed by
``load_state_dict(m.state_dict())``.

``cfg`` layouts (each arch module documents its own):

- ``vgg``: the official list of widths and ``'M'`` pools, e.g. VGG16
  ``[64, 64, 'M', 128, ..., 512]``.
- ``preresnet``: ``[stem] + [selected, conv1, conv2] per block + [final
  selected]`` -- the official layout (one entry per BN) with the stem width in
  front, because the residual stream, which pruning never shrinks, is sized
  from it.  101 entries for depth 101.
- ``resnet``: ``[stem] + internal widths per block`` (one per BasicBlock, two
  per Bottleneck).

The global BN-channel order used by every channel mask is ``bn_layers(model)``:
the BatchNorm2d layers in ``model.modules()`` order, channels concatenated.

The cfg layouts (``<arch>_layout``) import no torch, so checking and planning
shapes (`check`, `default_cfg`) does not load it; the networks (``<arch>``)
are imported when one is built.
"""
import collections
import importlib

from . import preresnet_layout, resnet_layout, vgg_layout

# arch -> its cfg layout module; the network module of the same name builds it
_MODULES = collections.OrderedDict(
    [('vgg', vgg_layout), ('preresnet', preresnet_layout), ('resnet', resnet_layout)])

# arch -> the allowed depths, in words, for validators and error messages.
ARCHS = collections.OrderedDict(
    (name, module.DEPTHS_TEXT) for name, module in _MODULES.items())


def check(arch, depth):
    """Raise ValueError unless ``arch``/``depth`` name a supported network."""
    if arch not in _MODULES:
        raise ValueError('unknown arch %r: allowed archs are %s'
                         % (arch, ', '.join(_MODULES)))
    if isinstance(depth, bool) or not isinstance(depth, int) \
            or not _MODULES[arch].valid_depth(depth):
        raise ValueError('%s has no depth %r: allowed depths are %s'
                         % (arch, depth, ARCHS[arch]))


def default_cfg(arch, depth, width=1.0):
    """The dense cfg with every channel count scaled by ``width`` (rounded, >= 1)."""
    check(arch, depth)
    if not width > 0:
        raise ValueError('width must be positive, got %r' % (width,))
    return _MODULES[arch].default_cfg(depth, width)


def build(arch, depth, num_classes, cfg=None):
    """A freshly initialised ``arch``-``depth`` with ``num_classes`` outputs."""
    check(arch, depth)
    cfg = default_cfg(arch, depth) if cfg is None else list(cfg)
    for v in cfg:
        if v != 'M' and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError('cfg entries must be positive ints (or \'M\' for '
                             'vgg), got %r in %r' % (v, cfg))
    model = importlib.import_module('.' + arch, __name__).build(depth, num_classes, cfg)
    model.arch, model.depth, model.num_classes = arch, depth, num_classes
    model.cfg = cfg
    return model


def bn_layers(model):
    """The BatchNorm2d layers in ``model.modules()`` order: the global channel order."""
    import torch.nn as nn

    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def fresh_copy(model):
    """Same structure (cfg and channel selections), new random weights, same device."""
    import torch

    from .channel_selection import ChannelSelection

    copy = build(model.arch, model.depth, model.num_classes, cfg=model.cfg)
    # A pruned PreResNet's selections are structure, not weights: keep them.
    selections = [m for m in model.modules() if isinstance(m, ChannelSelection)]
    new_selections = [m for m in copy.modules() if isinstance(m, ChannelSelection)]
    with torch.no_grad():
        for new, old in zip(new_selections, selections):
            new.mask.copy_(old.mask)
    first = next(model.parameters())
    return copy.to(device=first.device)


def count_params(model):
    return int(sum(p.numel() for p in model.parameters()))
