"""Channel selection, the layer that lets PreResNet prune the BN on its residual stream.

Follows the official ``models/channel_selection.py`` in purpose: a BN that reads
the residual stream (each block's bn1, the final BN) cannot shrink, since the
stream is shared by the identity shortcuts; instead the selection after it
passes on only the kept channels, and the next conv is sliced to match.

Unlike the official layer (a float ``nn.Parameter`` of 0/1, which the optimiser
and weight decay would touch), the state is a bool buffer of the full stream
width: a stable shape in ``state_dict`` whatever is kept.
"""
import torch
import torch.nn as nn


class ChannelSelection(nn.Module):
    def __init__(self, num_channels, kept=None):
        super().__init__()
        # Building from a pruned cfg knows how many channels are kept, not
        # which: keep the first ``kept`` so the model runs until the real mask
        # arrives with ``load_state_dict``.
        mask = torch.zeros(num_channels, dtype=torch.bool)
        mask[:num_channels if kept is None else kept] = True
        self.register_buffer('mask', mask)
        self._cached = (None, None, None)  # (mask tensor, its version, index)

    def index(self):
        """Kept channel indexes, or None when every channel is kept.

        Computing them needs ``nonzero``, a device sync on a GPU, so the result
        is cached until the mask is replaced (``.to()``) or written in place
        (``load_state_dict``, ``copy_``), which bumps its version counter.  The
        cache holds the mask tensor itself: an identity test, not an address
        that a later tensor could reuse.
        """
        mask, version, index = self._cached
        if mask is not self.mask or version != self.mask._version:
            index = self.mask.nonzero().flatten()
            if len(index) == len(self.mask):
                index = None
            self._cached = (self.mask, self.mask._version, index)
        return index

    def forward(self, x):
        index = self.index()
        return x if index is None else x.index_select(1, index)

    def extra_repr(self):
        return 'channels=%d' % len(self.mask)
