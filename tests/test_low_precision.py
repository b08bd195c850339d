"""SWALP-style 8-bit block floating point: at most 2^bits values per block, unbiased stochastic rounding,
activations/errors/weights/gradients/momentum all quantised, SWA at the end, and the estimate of LF/LL
energy kept apart from the measured one."""
import pytest
import torch
import torch.nn as nn

from analysis.energy_estimate import MAC, estimate
from experiments import checkpoint
from experiments.models import build
from experiments.quantise import Quantiser, block_quantise, quantise_activation
from experiments.train import TrainLoop
from harness.record import build_record
from tests.method_runs import load_model, phase_ends, run_method, small_spec


def _max_distinct_per_block(t):
    return max(len(torch.unique(row)) for row in t.detach().reshape(t.size(0), -1))


def test_blocks_take_at_most_256_values_and_keep_their_scale():
    torch.manual_seed(0)
    # rows of very different magnitudes: each row (block) gets its own exponent
    x = torch.randn(16, 3, 9, 9) * torch.logspace(-6, 3, 16).view(-1, 1, 1, 1)
    q = block_quantise(x, 8)
    assert _max_distinct_per_block(q) <= 256
    step = 2.0 ** (torch.floor(torch.log2(x.abs().reshape(16, -1).max(1)[0])) - 6)
    assert ((q - x).abs().reshape(16, -1).max(1)[0] <= step * (1 + 1e-6)).all()
    assert torch.equal(block_quantise(q, 8), q)  # values on the grid stay put
    assert (block_quantise(torch.zeros(3, 4), 8) == 0).all()
    assert _max_distinct_per_block(block_quantise(torch.randn(4, 1000), 4)) <= 16


def test_stochastic_rounding_is_unbiased():
    torch.manual_seed(0)
    x = torch.full((1, 20000), 1.0 + 1.0 / 3.0)
    x[0, 0] = 1.9  # sets the block exponent: step 2^-6
    q = block_quantise(x, 8)
    assert len(torch.unique(q[0, 1:])) == 2  # the two neighbours on the 8-bit grid
    assert abs(float(q[0, 1:].mean()) - 4.0 / 3.0) < 1e-3


def test_errors_are_quantised_on_the_way_back():
    torch.manual_seed(0)
    x = torch.randn(4, 300, requires_grad=True)
    quantise_activation(x, 8).backward(torch.randn(4, 300))
    assert _max_distinct_per_block(x.grad) <= 256


def test_quantiser_covers_activations_weights_gradients_and_momentum():
    torch.manual_seed(0)
    model = build("vgg", 11, 10, cfg=[8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    q = Quantiser(8, opt)
    q.attach(model)
    seen = {}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    handle = convs[2].register_forward_hook(lambda m, i, o: seen.update(conv=o))
    out = model(torch.randn(8, 3, 32, 32))
    assert _max_distinct_per_block(seen["conv"]) <= 256
    # the classifier's output is left in FP32, off the 8-bit grid
    assert not torch.equal(block_quantise(out, 8, stochastic=False), out)
    out.sum().backward()
    q.after_backward(model)
    assert all(_max_distinct_per_block(p.grad) <= 256 for p in model.parameters())
    opt.step()
    q.after_step(model)
    for p in model.parameters():
        assert _max_distinct_per_block(p) <= 256
        assert _max_distinct_per_block(opt.state[p]["momentum_buffer"]) <= 256
    q.detach()
    model(torch.randn(8, 3, 32, 32))
    assert _max_distinct_per_block(seen["conv"]) > 256  # detached: FP32 again
    handle.remove()


def test_ebtrain_ll_runs_8bit_search_and_retrain_with_swa(tmp_path):
    spec = small_spec("ebtrain-ll", epochs=3, swa_start=0.5)
    rc, out, events = run_method(tmp_path, spec)
    assert rc == 0
    ends = phase_ends(events)
    assert ends["search"]["info"]["precision"] == "bfp8" and ends["retrain"]["info"]["precision"] == "bfp8"
    # SWA from 0-based global epoch round(0.5 x 3) = 2: the last retrain epoch is averaged
    assert ends["retrain"]["info"]["swa_epochs"] == 1
    ticket, _ = load_model(out / "tickets" / "eb-p0.5.pt")
    for name, p in ticket.named_parameters():
        assert _max_distinct_per_block(p) <= 256, name


@pytest.mark.slow
def test_swa_average_survives_a_resume(tmp_path, monkeypatch):
    spec = small_spec("ebtrain-ll", epochs=4, swa_start=0.5)
    real = TrainLoop.train_epoch
    calls = []

    def crash_on_fourth_epoch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # search 1, retrain 1-2 (the second one averaged), crash in retrain 3
            raise RuntimeError("power cut")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TrainLoop, "train_epoch", crash_on_fourth_epoch)
    assert run_method(tmp_path, spec)[0] == 1
    assert checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")["state"]["swa"]["n"] == 1
    monkeypatch.setattr(TrainLoop, "train_epoch", real)
    rc, out, events = run_method(tmp_path, spec)
    assert rc == 0 and any(e["event"] == "resume" for e in events)
    assert phase_ends(events)["retrain"]["info"]["swa_epochs"] == 2


def test_lf_retrains_in_fp32(tmp_path):
    rc, out, events = run_method(tmp_path, small_spec("ebtrain-lf"))
    assert rc == 0
    ends = phase_ends(events)
    assert ends["search"]["info"]["precision"] == "bfp8"
    assert ends["retrain"]["info"]["precision"] == "fp32"
    model, _ = load_model(out / "checkpoints" / "last.pt")
    # the FP32 retrain moved the weights off the 8-bit grid the search left them on
    assert any(not torch.equal(block_quantise(p, 8, stochastic=False), p) for p in model.parameters())


def test_estimate_scales_only_low_precision_phases_of_a_measured_run(tmp_path):
    rc, out, events = run_method(tmp_path, small_spec("ebtrain-ll"))
    assert rc == 0
    # a constant 10 W trace over the run stands in for a meter
    t0, t1 = events[0]["t"] - 0.1, events[-1]["t"] + 0.1
    rows = ["%.3f,10.0" % (t0 + i * 0.01) for i in range(int((t1 - t0) / 0.01) + 1)]
    (out / "power.csv").write_text("t,watts\n" + "\n".join(rows) + "\n")
    record = build_record(out)
    totals, phases = record["totals"], record["phases"]
    assert totals["energy_source"] == "measured" and totals["energy_j"] > 0
    assert [p["precision"] for p in phases] == ["bfp8", "fp32", "bfp8"]  # search, prune, retrain
    low = sum(p["energy_j"] for p in phases if p["precision"] == "bfp8")
    assert low > 0
    value, rule = estimate(phases, MAC)
    assert value == pytest.approx(totals["energy_j"] - low + MAC.factor * low)
    assert rule.startswith("estimated")


def test_estimate_is_never_made_without_a_measurement_or_for_fp32_runs():
    assert estimate([{"energy_j": None, "precision": "bfp8"}]) == (None, None)
    assert estimate([{"energy_j": 5.0, "precision": "fp32"}]) == (None, None)
    assert estimate([{"energy_j": 5.0, "precision": None}]) == (None, None)
