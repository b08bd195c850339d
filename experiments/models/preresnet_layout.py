"""PreResNet's channel lists (``cfg``) and residual stream widths, without torch: what the planner, the
spec check and the report need. The layout is described in `experiments.models.preresnet`, which builds
the network from them."""
DEPTHS_TEXT = '9n+2 for n >= 1 (20, 56, 101, 164, ...)'

EXPANSION = 4


def valid_depth(depth):
    return depth >= 11 and (depth - 2) % 9 == 0


def stream_widths(stem):
    """Residual stream width entering each stage and leaving the last one."""
    return [stem, 4 * stem, 8 * stem, 16 * stem]


def default_cfg(depth, width):
    n = (depth - 2) // 9
    stem = max(1, int(round(16 * width)))
    streams = stream_widths(stem)
    cfg = [stem]
    for stage in range(3):
        planes = stem * 2 ** stage
        for i in range(n):
            cfg += [streams[stage] if i == 0 else streams[stage + 1], planes, planes]
    return cfg + [streams[3]]


def check_cfg(depth, cfg):
    n = (depth - 2) // 9
    if len(cfg) != 9 * n + 2:
        raise ValueError('preresnet%d cfg needs %d entries ([stem] + 3 per block '
                         '+ [final]), got %d' % (depth, 9 * n + 2, len(cfg)))
    streams = stream_widths(cfg[0])
    for stage in range(3):
        for i in range(n):
            inplanes = streams[stage] if i == 0 else streams[stage + 1]
            selected = cfg[1 + 3 * (stage * n + i)]
            if selected > inplanes:
                raise ValueError('preresnet%d cfg selects %d of the %d stream '
                                 'channels in stage %d block %d'
                                 % (depth, selected, inplanes, stage + 1, i))
    if cfg[-1] > streams[3]:
        raise ValueError('preresnet%d cfg selects %d of the %d final channels'
                         % (depth, cfg[-1], streams[3]))
