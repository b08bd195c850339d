"""ThiNet: greedy next-layer reconstruction picks channels that rebuild the next layer's output better
than random channels; least squares rescaling improves it further; pruning is per layer at ratio p."""
import torch
import torch.nn as nn

from experiments.phases import Train
from experiments.prune import channel_ports
from experiments.thinet_ops import (LOCATIONS, contributions, cuttable_ports, greedy_keep, reader_inputs,
                                    reconstruction_error, rescale, sample_images)
from tests.method_runs import live_run, phase_ends, run_method, small_spec


def test_contributions_sum_to_the_next_layers_output():
    torch.manual_seed(0)
    # kernel 3, stride 2, padding 1 on a 2x2 map: one output location, so each sample's target is known
    conv = nn.Conv2d(4, 1, 3, stride=2, padding=1, bias=False)
    inputs = torch.randn(5, 4, 2, 2)
    x, y = contributions(conv, inputs, torch.Generator().manual_seed(0))
    assert x.shape == (5 * LOCATIONS, 4)
    expected = conv(inputs).detach().flatten().repeat_interleave(LOCATIONS)
    assert torch.allclose(y, expected, atol=1e-5)
    linear = nn.Linear(6, 1)  # one output: each sample's target is known
    feats = torch.randn(4, 6)
    x, y = contributions(linear, feats, torch.Generator().manual_seed(0))
    expected = (linear(feats) - linear.bias).detach().flatten().repeat_interleave(LOCATIONS)
    assert torch.allclose(y, expected, atol=1e-5)


def test_greedy_channels_rebuild_held_out_outputs_better_than_random(tmp_path):
    run = live_run(tmp_path, small_spec("thinet"))
    Train("train", epochs=lambda r: 1).run(run, 0)
    model = run.model
    images = sample_images(run, 60)
    index = cuttable_ports(model)[2]
    reader = channel_ports(model)[index].readers[0]
    x, y = contributions(reader, reader_inputs(model, reader, images[:30], 32), torch.Generator().manual_seed(1))
    xh, yh = contributions(reader, reader_inputs(model, reader, images[30:], 32), torch.Generator().manual_seed(2))
    channels = x.size(1)
    keep = channels // 2
    kept = greedy_keep(x, keep)
    assert len(kept) == keep
    greedy = reconstruction_error(xh, yh, kept)
    gen = torch.Generator().manual_seed(3)
    random = [reconstruction_error(xh, yh, torch.randperm(channels, generator=gen)[:keep].sort()[0])
              for _ in range(30)]
    assert greedy < sum(random) / len(random)
    assert greedy <= sorted(random)[len(random) // 4]
    # least squares can only lower the error on the samples it was fitted to
    assert reconstruction_error(x, y, kept, rescale(x, y, kept)) <= reconstruction_error(x, y, kept) + 1e-6


def test_thinet_prunes_every_cuttable_layer_at_the_ratio_then_fine_tunes(tmp_path):
    rc, out, events = run_method(tmp_path, small_spec("thinet", prune_ratio=0.5))
    assert rc == 0
    info = phase_ends(events)["prune"]["info"]
    dense = events[0]["channels_dense"]
    assert [layer["channels"] for layer in info["layers"]] == dense
    assert [layer["kept"] for layer in info["layers"]] == [c - int(c * 0.5) for c in dense]
    assert all(layer["error_rescaled"] <= layer["error_greedy"] + 1e-6 for layer in info["layers"])
    assert [c for c in info["cfg"] if c != "M"] == [c - int(c * 0.5) for c in dense]
    assert info["images"] == 20 and info["samples_per_layer"] == 20 * LOCATIONS
    assert events[-1]["channels"]["final"] == [c - int(c * 0.5) for c in dense]
