"""Physical pruning: the smaller model computes what the gamma/beta-zeroed original does."""
import pytest
import torch

from experiments.models import bn_layers, build, count_params, default_cfg
from experiments.prune import effective_mask, prune, zero_pruned

from tests.model_helpers import bn_channels, randomise_bn

# (arch, depth, width, input size)
NETS = [('vgg', 11, 0.125, 32), ('vgg', 16, 0.125, 32), ('preresnet', 20, 0.5, 32),
        ('preresnet', 56, 0.125, 32), ('resnet', 18, 0.25, 64), ('resnet', 50, 0.25, 64)]


def make(arch, depth, width, seed=0):
    torch.manual_seed(seed)
    model = build(arch, depth, 10, cfg=default_cfg(arch, depth, width))
    return randomise_bn(model, seed).eval()


def random_mask(model, ratio, seed=0):
    """Exactly ``ratio`` of all BN channels pruned, at random."""
    n = bn_channels(model)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    mask = torch.ones(n, dtype=torch.bool)
    mask[order[:int(n * ratio)]] = False
    return mask


def assert_equivalent(model, mask, size):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned = prune(model, mask)
    reference = zero_pruned(model, mask)
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, ref = pruned(x), reference(x)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5), (out - ref).abs().max()
    # The original is untouched.
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    return pruned


def slices(model, mask):
    """The mask cut into one piece per BN layer."""
    sizes = [bn.num_features for bn in bn_layers(model)]
    return list(torch.split(mask, sizes))


@pytest.mark.parametrize('ratio', [0.3, 0.5, 0.7])
@pytest.mark.parametrize('arch,depth,width,size', NETS)
def test_prune_is_equivalent(arch, depth, width, size, ratio):
    model = make(arch, depth, width)
    mask = random_mask(model, ratio)
    pruned = assert_equivalent(model, mask, size)
    assert count_params(pruned) < count_params(model)
    assert pruned.training == model.training
    # The cfg records the kept counts, and rebuilds the model exactly.
    rebuilt = build(pruned.arch, pruned.depth, pruned.num_classes, cfg=pruned.cfg)
    rebuilt.load_state_dict(pruned.state_dict())
    rebuilt.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), pruned(x))


@pytest.mark.parametrize('arch,depth,width,size', NETS)
def test_fully_masked_layer_keeps_its_largest_gamma(arch, depth, width, size):
    model = make(arch, depth, width, seed=3)
    mask = random_mask(model, 0.5, seed=3)
    parts = slices(model, mask)
    layer = 1  # prunable in every arch (not the ResNet stem)
    parts[layer][:] = False
    mask = torch.cat(parts)
    kept = slices(model, effective_mask(model, mask))[layer]
    gamma = bn_layers(model)[layer].weight.detach().abs()
    assert kept.sum() == 1 and kept[gamma.argmax()]
    assert_equivalent(model, mask, size)


@pytest.mark.parametrize('arch,depth,width,size', NETS)
def test_prune_everything(arch, depth, width, size):
    model = make(arch, depth, width)
    mask = torch.zeros(bn_channels(model), dtype=torch.bool)
    pruned = assert_equivalent(model, mask, size)
    for bn, kept in zip(bn_layers(model), slices(model, effective_mask(model, mask))):
        # Either a prunable layer down to one channel, or a fixed one left whole.
        assert kept.sum() == 1 or (arch == 'resnet' and bool(kept.all()))
    assert count_params(pruned) < count_params(model)


def test_resnet_stream_bns_ignore_the_mask():
    model = make('resnet', 18, 0.25)
    mask = torch.zeros(bn_channels(model), dtype=torch.bool)
    kept = slices(model, effective_mask(model, mask))
    names = {bn: name for name, bn in model.named_modules()}
    for bn, bits in zip(bn_layers(model), kept):
        name = names[bn]
        internal = name.endswith('.bn1') and name.startswith('layer')
        assert int(bits.sum()) == (1 if internal else bn.num_features), name
    pruned = prune(model, mask)
    assert pruned.cfg == [16] + [1] * 8


def test_preresnet_stream_keeps_its_width():
    model = make('preresnet', 20, 0.5)
    mask = random_mask(model, 0.5)
    pruned = prune(model, mask)
    assert [bn.num_features for bn in bn_layers(pruned)][0] == model.layer1[0].bn1.num_features
    assert pruned.layer3[1].conv3.out_channels == model.layer3[1].conv3.out_channels
    kept = slices(model, effective_mask(model, mask))
    assert pruned.cfg[1] == int(kept[0].sum())
    assert torch.equal(pruned.layer1[0].select.mask, kept[0])


def test_pruning_a_pruned_preresnet_again():
    model = make('preresnet', 20, 0.5)
    once = prune(model, random_mask(model, 0.3, seed=1))
    mask = random_mask(once, 0.5, seed=2)
    effective = effective_mask(once, mask)
    # Channels a selection already dropped cannot come back.
    first = slices(once, effective)[0]
    assert not bool((first & ~once.layer1[0].select.mask).any())
    assert_equivalent(once, mask, 32)


def test_vgg_cfg_keeps_pools():
    model = make('vgg', 11, 0.125)
    pruned = prune(model, random_mask(model, 0.5))
    assert [i for i, v in enumerate(pruned.cfg) if v == 'M'] == \
        [i for i, v in enumerate(model.cfg) if v == 'M']


def test_mask_of_wrong_length_is_refused():
    model = make('vgg', 11, 0.125)
    with pytest.raises(ValueError, match='BN channels'):
        prune(model, torch.ones(bn_channels(model) + 1, dtype=torch.bool))
