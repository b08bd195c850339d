"""Early-Bird ticket detection (You et al., ICLR 2020, Sec 3.3 and Algorithm 1).

The channel mask is what network slimming would keep: every BatchNorm channel of the model, one global
threshold on |gamma|, the `ratio` smallest pruned. Two masks are compared by their normalised Hamming
distance. An Early-Bird ticket is drawn once the masks stop changing, judged over a FIFO of the most
recent masks. Two rules are offered (see `EarlyBirdDetector`):

- ``fifo`` (default, the official code `main.py` class `EarlyBird`): keep the last `queue` masks; once
  full, the NEWEST mask is compared with each of the `queue - 1` older ones and all distances must be
  below epsilon.
- ``consecutive`` (the paper's text, "the last five recorded mask distances"): distances between
  consecutive masks are recorded and the last `queue` of them must all be below epsilon (so `queue + 1`
  masks are needed).

Every epoch's mask can be stored as packed bits in an append-only `masks.jsonl` so that the pairwise
distance matrix of Fig 3 can be rebuilt afterwards (`save_mask`, `load_masks`, `distance_matrix`). Reading
them back needs numpy only: the report draws Fig 3 without loading torch, which the functions that take a
model import themselves.
"""
import base64
import collections
import json

import numpy as np

from hw.fileio import read_jsonl

from .models import bn_layers

RULES = ("fifo", "consecutive")


def bn_gammas(model):
    """|gamma| of every BN channel, concatenated in `bn_layers` order (a 1-D float tensor on the CPU)."""
    import torch

    return torch.cat([bn.weight.detach().abs().flatten().cpu() for bn in bn_layers(model)])


def channel_mask(model, ratio):
    """1-D bool tensor over all BN channels: False for the `ratio` fraction with the smallest |gamma|.

    The threshold is the value at index int(total * ratio) of the sorted |gamma| and kept channels are
    strictly above it, as in the official code: ties with the threshold are pruned, so a model whose
    gammas are all equal (at initialisation) keeps nothing.
    """
    import torch

    if not 0.0 <= ratio < 1.0:
        raise ValueError("prune ratio must be in [0, 1), got %r" % (ratio,))
    gammas = bn_gammas(model)
    if ratio == 0.0:
        return torch.ones_like(gammas, dtype=torch.bool)
    threshold = torch.sort(gammas)[0][int(gammas.numel() * ratio)]
    return gammas > threshold


def mask_distance(a, b):
    """Normalised Hamming distance between two channel masks, in [0, 1]."""
    if a.shape != b.shape:
        raise ValueError("masks differ in size (%d vs %d channels): they come from different "
                         "architectures" % (a.numel(), b.numel()))
    return float((a != b).sum().item()) / max(1, a.numel())


class EarlyBirdDetector:
    """Feed one mask per epoch with `step(model)`; it returns True once the ticket has emerged.

    `distances` holds, per step, the value the rule compares with epsilon: for ``fifo`` the largest
    distance between the newest mask and the older masks in the FIFO, for ``consecutive`` the distance to
    the previous mask (None until defined). `drawn_at` is the 1-based step at which the ticket was
    first detected.
    """

    def __init__(self, ratio, epsilon=0.1, queue=5, rule="fifo"):
        if rule not in RULES:
            raise ValueError("early-bird rule %r unknown; use one of %s" % (rule, ", ".join(RULES)))
        if queue < 2:
            raise ValueError("early-bird queue must be >= 2, got %r" % (queue,))
        self.ratio = ratio
        self.epsilon = epsilon
        self.queue = queue
        self.rule = rule
        maxlen = queue if rule == "fifo" else queue + 1
        self.masks = collections.deque(maxlen=maxlen)
        self.distances = []
        self.steps = 0
        self.drawn_at = None

    @property
    def drawn(self):
        return self.drawn_at is not None

    def step(self, model):
        """Record the current mask of `model`; True when the EB criterion holds now."""
        return self.step_mask(channel_mask(model, self.ratio))

    def step_mask(self, mask):
        self.steps += 1
        self.masks.append(mask.clone())
        emerged = False
        if self.rule == "fifo":
            newest = self.masks[-1]
            dists = [mask_distance(newest, m) for m in list(self.masks)[:-1]]
            self.distances.append(max(dists) if dists else None)
            emerged = len(self.masks) == self.masks.maxlen and max(dists) < self.epsilon
        else:
            prev = self.masks[-2] if len(self.masks) > 1 else None
            self.distances.append(None if prev is None else mask_distance(prev, mask))
            recent = self.distances[-self.queue:]
            emerged = len(recent) == self.queue and all(d is not None and d < self.epsilon for d in recent)
        if emerged and self.drawn_at is None:
            self.drawn_at = self.steps
        return emerged

    def state_dict(self):
        return {"ratio": self.ratio, "epsilon": self.epsilon, "queue": self.queue, "rule": self.rule,
                "masks": list(self.masks), "distances": [(-1.0 if d is None else d) for d in self.distances],
                "steps": self.steps, "drawn_at": -1 if self.drawn_at is None else self.drawn_at}

    @classmethod
    def from_state_dict(cls, state):
        det = cls(state["ratio"], state["epsilon"], state["queue"], state["rule"])
        det.masks.extend(state["masks"])
        det.distances = [None if d < 0 else d for d in state["distances"]]
        det.steps = state["steps"]
        det.drawn_at = None if state["drawn_at"] < 0 else state["drawn_at"]
        return det


def pack_mask(mask):
    """Base64 text of the mask's packed bits (1/8 of a byte per channel)."""
    bits = np.packbits(mask.cpu().numpy().astype(np.uint8))
    return base64.b64encode(bits.tobytes()).decode("ascii")


def unpack_mask(text, n):
    """The 1-D numpy bool array of `n` channels packed by `pack_mask`."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:n]
    return bits.astype(bool)


def save_mask(fh, epoch, ratio, mask):
    """Append one epoch's mask as a JSON line to the open file `fh` (append-only, flushed)."""
    fh.write(json.dumps({"epoch": epoch, "ratio": ratio, "n": int(mask.numel()),
                         "bits": pack_mask(mask)}) + "\n")
    fh.flush()


def load_masks(path, ratio):
    """(epochs, masks) for one ratio from `masks.jsonl`: a sorted list of epochs and a [E, N] numpy bool
    array. A resumed run may have written an epoch twice: the last line wins. A torn last line
    (crash while writing) is ignored."""
    by_epoch = {row["epoch"]: unpack_mask(row["bits"], row["n"])
                for row in read_jsonl(path) if abs(row["ratio"] - ratio) < 1e-9}
    epochs = sorted(by_epoch)
    if not epochs:
        return [], np.zeros((0, 0), dtype=bool)
    return epochs, np.stack([by_epoch[e] for e in epochs])


def distance_matrix(masks):
    """Pairwise normalised Hamming distances of a [E, N] bool array of masks -> [E, E] float32 array.

    Computed as a matrix product of the masks as 0/1 floats, so a 160 x 160 matrix over thousands of
    channels takes milliseconds.
    """
    m = np.asarray(masks, dtype=np.float32)
    n = max(1, m.shape[1])
    ones = m.sum(axis=1, keepdims=True)
    both = m @ m.T
    return (ones + ones.T - 2.0 * both) / n
