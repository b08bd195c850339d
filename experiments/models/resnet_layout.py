"""ResNet's channel lists (``cfg``), without torch: what the planner, the spec check and the report need.
The layout is described in `experiments.models.resnet`, which builds the network from them."""
DEPTHS_TEXT = '18, 50'

# prunable BNs, hence cfg entries, per block
BASIC_INTERNAL = 1
BOTTLENECK_INTERNAL = 2

# depth -> (cfg entries per block, blocks per stage)
_LAYOUT = {18: (BASIC_INTERNAL, [2, 2, 2, 2]), 50: (BOTTLENECK_INTERNAL, [3, 4, 6, 3])}


def valid_depth(depth):
    return depth in _LAYOUT


def blocks(depth):
    """(cfg entries per block, blocks per stage) of ResNet-``depth``."""
    return _LAYOUT[depth]


def default_cfg(depth, width):
    internal, counts = _LAYOUT[depth]
    stem = max(1, int(round(64 * width)))
    cfg = [stem]
    for stage, count in enumerate(counts):
        cfg += [stem * 2 ** stage] * (internal * count)
    return cfg


def check_cfg(depth, cfg):
    internal, counts = _LAYOUT[depth]
    need = 1 + internal * sum(counts)
    if len(cfg) != need:
        raise ValueError('resnet%d cfg needs %d entries ([stem] + %d per block), '
                         'got %d' % (depth, need, internal, len(cfg)))
