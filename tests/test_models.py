"""Model registry: shapes, BN layouts, cfg round trips, fresh copies."""
import pytest
import torch
import torchvision

from experiments import models
from experiments.models import bn_layers, build, count_params, default_cfg, fresh_copy
from experiments.models.channel_selection import ChannelSelection

from tests.model_helpers import bn_channels, randomise_bn

# (arch, depth, width, input size): tiny widths keep a forward pass cheap.
SMALL = [('vgg', 11, 0.125, 32), ('vgg', 13, 0.125, 32), ('vgg', 16, 0.125, 32),
         ('vgg', 19, 0.125, 32), ('preresnet', 20, 0.25, 32),
         ('preresnet', 56, 0.25, 32), ('preresnet', 101, 0.125, 32),
         ('preresnet', 164, 0.125, 32), ('resnet', 18, 0.25, 64),
         ('resnet', 50, 0.25, 64)]


@pytest.mark.parametrize('arch,depth,width,size', SMALL)
def test_forward_shape(arch, depth, width, size):
    torch.manual_seed(0)
    model = build(arch, depth, 7, cfg=default_cfg(arch, depth, width)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7)
    assert (model.arch, model.depth, model.num_classes) == (arch, depth, 7)
    assert model.cfg == default_cfg(arch, depth, width)


@pytest.mark.parametrize('arch,depth,layers,channels', [
    ('vgg', 11, 8, 2752), ('vgg', 16, 13, 4224), ('vgg', 19, 16, 5504),
    ('preresnet', 101, 100, 7408), ('preresnet', 164, 163, 12112),
    ('resnet', 18, 20, 4800), ('resnet', 50, 53, 26560)])
def test_full_width_bn_layout(arch, depth, layers, channels):
    model = build(arch, depth, 10)
    assert len(bn_layers(model)) == layers
    assert bn_channels(model) == channels


def test_preresnet_cfg_is_official_layout_behind_the_stem():
    cfg = default_cfg('preresnet', 101)
    n = 11
    official = ([16, 16, 16] + [64, 16, 16] * (n - 1) + [64, 32, 32]
                + [128, 32, 32] * (n - 1) + [128, 64, 64] + [256, 64, 64] * (n - 1)
                + [256])
    assert cfg == [16] + official
    assert len(cfg) == 101


def test_width_scaling():
    assert default_cfg('vgg', 11, 0.125) == [8, 'M', 16, 'M', 32, 32, 'M', 64, 64,
                                             'M', 64, 64]
    assert default_cfg('vgg', 16, 0.001)[0] == 1  # never below one channel
    assert default_cfg('preresnet', 20, 0.5)[:4] == [8, 8, 8, 8]
    assert default_cfg('resnet', 50, 0.25) == [16] + [16] * 6 + [32] * 8 + [64] * 12 + [128] * 6


@pytest.mark.parametrize('depth', [18, 50])
def test_resnet_matches_torchvision(depth):
    ours = build('resnet', depth, 10)
    theirs = getattr(torchvision.models, 'resnet%d' % depth)(num_classes=10)
    assert count_params(ours) == sum(p.numel() for p in theirs.parameters())
    assert [bn.num_features for bn in bn_layers(ours)] == \
        [m.num_features for m in theirs.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def test_initialisation():
    vgg = build('vgg', 11, 10, cfg=default_cfg('vgg', 11, 0.25))
    assert all(bool((bn.weight == 0.5).all()) and bool((bn.bias == 0).all())
               for bn in bn_layers(vgg))
    assert bool((vgg.classifier.bias == 0).all())
    pre = build('preresnet', 20, 10, cfg=default_cfg('preresnet', 20, 0.25))
    assert all(bool((bn.weight == 0.5).all()) for bn in bn_layers(pre))
    res = build('resnet', 18, 10, cfg=default_cfg('resnet', 18, 0.25))
    assert all(bool((bn.weight == 1).all()) for bn in bn_layers(res))


def test_check_lists_allowed_values():
    models.check('preresnet', 164)
    with pytest.raises(ValueError, match='11, 13, 16, 19'):
        models.check('vgg', 17)
    with pytest.raises(ValueError, match='9n\\+2'):
        models.check('preresnet', 100)
    with pytest.raises(ValueError, match='vgg, preresnet, resnet'):
        models.check('densenet', 40)
    with pytest.raises(ValueError, match='18, 50'):
        build('resnet', 34, 10)
    assert set(models.ARCHS) == {'vgg', 'preresnet', 'resnet'}


@pytest.mark.parametrize('arch,depth,cfg', [
    ('vgg', 11, [8, 8, 'M']), ('vgg', 11, [8, 8, 'M', 16, 'M', 32, 32, 'M', 64, 64, 'M', 64]),
    ('preresnet', 20, [16] * 5), ('resnet', 18, [64] * 10), ('vgg', 11, [0] + [8] * 11)])
def test_bad_cfg_is_refused(arch, depth, cfg):
    with pytest.raises(ValueError):
        build(arch, depth, 10, cfg=cfg)


@pytest.mark.parametrize('arch,depth,width,size', [c for c in SMALL if c[1] in (16, 20, 18)])
def test_rebuild_from_cfg(arch, depth, width, size):
    torch.manual_seed(0)
    cfg = default_cfg(arch, depth, width)
    if arch == 'preresnet':
        cfg[1] -= 1  # the first block selects all but one stream channel
    model = randomise_bn(build(arch, depth, 10, cfg=cfg)).eval()
    if arch == 'preresnet':
        # ...not the default first ones: the selection state must travel too.
        model.layer1[0].select.mask.fill_(True)
        model.layer1[0].select.mask[0] = False
    rebuilt = build(model.arch, model.depth, model.num_classes, cfg=model.cfg)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


def test_fresh_copy_keeps_structure_not_weights():
    torch.manual_seed(0)
    model = build('preresnet', 20, 10, cfg=default_cfg('preresnet', 20, 0.25))
    model.layer2[1].select.mask[:3] = False
    copy = fresh_copy(model)
    assert copy.cfg == model.cfg and copy is not model
    old, new = model.state_dict(), copy.state_dict()
    assert {k: v.shape for k, v in old.items()} == {k: v.shape for k, v in new.items()}
    assert torch.equal(new['layer2.1.select.mask'], old['layer2.1.select.mask'])
    assert not torch.equal(new['conv1.weight'], old['conv1.weight'])
    assert not torch.equal(new['fc.weight'], old['fc.weight'])


def test_channel_selection_follows_loaded_mask():
    sel = ChannelSelection(4)
    x = torch.arange(8.0).view(1, 4, 1, 2)
    assert torch.equal(sel(x), x)
    sel.load_state_dict({'mask': torch.tensor([True, False, True, False])})
    assert torch.equal(sel(x), x[:, [0, 2]])
    sel.mask[3] = True  # written in place: the cached indexes must follow
    assert torch.equal(sel(x), x[:, [0, 2, 3]])
    assert torch.equal(ChannelSelection(4, kept=1)(x), x[:, :1])
