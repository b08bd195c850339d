"""VGG's channel lists (``cfg``), without torch: what the planner, the spec check and the report need.

The network built from them is `experiments.models.vgg`."""
DEPTHS_TEXT = '11, 13, 16, 19'

_DEFAULT = {
    11: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512],
    13: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512],
    16: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M',
         512, 512, 512],
    19: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512,
         512, 'M', 512, 512, 512, 512],
}


def valid_depth(depth):
    return depth in _DEFAULT


def default_cfg(depth, width):
    return [v if v == 'M' else max(1, int(round(v * width)))
            for v in _DEFAULT[depth]]


def check_cfg(depth, cfg):
    """Same layout as the dense cfg of ``depth``: widths may change, pools may not."""
    dense = _DEFAULT[depth]
    if len(cfg) != len(dense) or any((a == 'M') != (b == 'M')
                                     for a, b in zip(cfg, dense)):
        raise ValueError('vgg%d cfg must follow the layout %r (any positive '
                         'widths), got %r' % (depth, dense, cfg))
