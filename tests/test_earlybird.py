"""Early-Bird mask, distance and detector semantics on constructed BN values; the search and the retrain
with an early, a late, a fixed and no ticket."""
import io

import pytest
import torch
from torch import nn

from experiments.earlybird import (EarlyBirdDetector, channel_mask, distance_matrix, load_masks,
                                   mask_distance, save_mask)
from experiments.events import EB_DRAWN, EB_MISSING, EPOCH, OK, last_end
from experiments.phases import EarlyBirdRetrain, lateness
from experiments.sparsity import BNSparsity
from tests.method_runs import live_run, load_model, phase_ends, run_method, small_spec


class TwoBN(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(len(a))
        self.bn2 = nn.BatchNorm2d(len(b))
        self.set(a, b)

    def set(self, a, b):
        with torch.no_grad():
            self.bn1.weight.copy_(torch.tensor(a, dtype=torch.float))
            self.bn2.weight.copy_(torch.tensor(b, dtype=torch.float))


def test_mask_is_global_over_all_bn_layers_by_abs_gamma():
    m = TwoBN([0.9, -0.05, 0.3], [0.01, -0.8, 0.2, 0.5])
    # |gamma| sorted: .01 .05 .2 .3 .5 .8 .9 ; ratio 3/7 -> threshold at index 3 (0.3), keep > 0.3
    mask = channel_mask(m, 3 / 7)
    assert mask.tolist() == [True, False, False, False, True, False, True]


def test_mask_prunes_ties_with_threshold_so_initial_model_keeps_nothing():
    m = TwoBN([0.5] * 4, [0.5] * 4)
    assert channel_mask(m, 0.5).sum().item() == 0
    assert channel_mask(m, 0.0).all()


def test_mask_rejects_bad_ratio():
    with pytest.raises(ValueError, match="ratio"):
        channel_mask(TwoBN([1.0], [1.0]), 1.0)


def test_mask_distance_is_normalised_hamming():
    a = torch.tensor([True, True, False, False])
    b = torch.tensor([True, False, True, False])
    assert mask_distance(a, a) == 0.0
    assert mask_distance(a, b) == 0.5
    assert mask_distance(a, ~a) == 1.0
    with pytest.raises(ValueError, match="differ in size"):
        mask_distance(a, torch.tensor([True]))


def _masks(flips, n=100):
    """Masks where step i differs from a base mask in the first flips[i] positions."""
    base = torch.zeros(n, dtype=torch.bool)
    base[::2] = True
    out = []
    for f in flips:
        m = base.clone()
        m[:f] = ~m[:f]
        out.append(m)
    return out


def test_fifo_rule_needs_full_queue_and_all_distances_below_epsilon():
    det = EarlyBirdDetector(0.5, epsilon=0.1, queue=5, rule="fifo")
    # distances to the newest (flip 0) mask are 0.09 at most once the FIFO holds flips 9,5,3,0,0
    results = [det.step_mask(m) for m in _masks([50, 9, 5, 3, 0, 0])]
    assert results == [False, False, False, False, False, True]
    assert det.drawn_at == 6
    assert det.distances[-1] == pytest.approx(0.09)


def test_fifo_rule_blocked_by_an_old_mask_far_from_newest():
    det = EarlyBirdDetector(0.5, epsilon=0.1, queue=5, rule="fifo")
    results = [det.step_mask(m) for m in _masks([10, 0, 0, 0, 0])]
    assert results == [False] * 5  # 0.10 is not below epsilon
    assert det.step_mask(_masks([0])[0]) is True  # the 10-flip mask left the FIFO


def test_consecutive_rule_needs_queue_distances_all_below_epsilon():
    det = EarlyBirdDetector(0.5, epsilon=0.1, queue=3, rule="consecutive")
    # consecutive distances: -, .5, .05, .05, .05 -> 3 recent below eps at step 5
    results = [det.step_mask(m) for m in _masks([50, 0, 5, 0, 5])]
    assert results == [False, False, False, False, True]
    assert det.distances[0] is None


def test_consecutive_rule_fires_where_fifo_would_not():
    """Slow drift: each step moves 4%, so consecutive distances pass but the FIFO spans 16%."""
    flips = [0, 4, 8, 12, 16, 20]
    fifo = EarlyBirdDetector(0.5, 0.1, 5, "fifo")
    cons = EarlyBirdDetector(0.5, 0.1, 5, "consecutive")
    assert not any(fifo.step_mask(m) for m in _masks(flips))
    assert [cons.step_mask(m) for m in _masks(flips)][-1] is True


def test_detector_state_round_trip_keeps_behaviour():
    det = EarlyBirdDetector(0.3, 0.1, 5)
    masks = _masks([50, 9, 5, 3, 0, 0])
    for m in masks[:3]:
        det.step_mask(m)
    again = EarlyBirdDetector.from_state_dict(det.state_dict())
    assert [again.step_mask(m) for m in masks[3:]] == [False, False, True]


def test_detector_step_reads_model_mask():
    m = TwoBN([0.5] * 4, [0.5] * 4)
    det = EarlyBirdDetector(0.5, 0.1, 2)
    assert det.step(m) is False
    assert det.step(m) is True  # identical masks


def test_masks_file_round_trip_and_distance_matrix(tmp_path):
    masks = _masks([0, 10, 20, 20])
    fh = io.StringIO()
    for e, m in enumerate(masks, 1):
        save_mask(fh, e, 0.5, m)
    save_mask(fh, 2, 0.5, masks[1])  # a resumed run may write an epoch again
    save_mask(fh, 1, 0.7, ~masks[0])
    fh.write('{"epoch": 9, "ratio": 0.5, "n"')  # torn last line
    path = tmp_path / "masks.jsonl"
    path.write_text(fh.getvalue())
    epochs, loaded = load_masks(path, 0.5)
    assert epochs == [1, 2, 3, 4]
    assert (loaded == torch.stack(masks).numpy()).all()
    d = distance_matrix(loaded)
    assert d.shape == (4, 4)
    assert (d == d.T).all()
    for i in range(4):
        for j in range(4):
            assert d[i, j].item() == pytest.approx(mask_distance(masks[i], masks[j]))



# --- the search and the retrain through the runner (tiny runs on the offline digits) ------------------

def _eb_events(events, kind):
    return [e for e in events if e["event"] == kind]


def _retrain_epochs(events):
    return [e for e in events if e["event"] == EPOCH and e["phase"] == "retrain"]


@pytest.mark.slow
def test_ticket_early_enough_is_continued_to_the_budget_and_best_top1_is_the_retrains(tmp_path):
    rc, _, events = run_method(tmp_path, small_spec("ebtrain-ff", epochs=4, eb_draw_epoch=1))
    assert rc == 0
    eb = last_end(events)["eb"]
    assert (eb["epoch"], eb["forced"], eb["late"], eb["note"]) == (1, True, False, None)
    assert (eb["retrain_start"], eb["retrain_epochs"]) == (1, 3)
    assert [e["global_epoch"] for e in _retrain_epochs(events)] == [2, 3, 4]
    drawn = [e for e in _eb_events(events, EB_DRAWN) if e["ratio"] == 0.5]
    assert [(e["epoch"], e["forced"], e["late"]) for e in drawn] == [(1, True, False)]
    # the official best_prec1 is the retrain script's: the dense search's epochs do not count
    assert last_end(events)["accuracy"]["best_top1"] == max(e["top1"] for e in _retrain_epochs(events))


@pytest.mark.slow
def test_ticket_detected_at_the_last_epoch_is_late_and_retrained_over_the_whole_schedule(tmp_path):
    # lr decays at epochs 1 and 2 of 2; a FIFO of 2 masks 0.99 apart at most fires after epoch 2
    spec = small_spec("ebtrain-ff", epochs=2, eb_draw_epoch=None, eb_queue=2, eb_epsilon=0.99)
    rc, _, events = run_method(tmp_path, spec)
    assert rc == 0
    eb = last_end(events)["eb"]
    assert (eb["epoch"], eb["detected"], eb["forced"], eb["late"]) == (2, True, False, True)
    assert "last lr decay (epoch 2)" in eb["note"] and "whole schedule" in eb["note"]
    assert (eb["retrain_start"], eb["retrain_epochs"]) == (0, 2)
    assert [e["global_epoch"] for e in _retrain_epochs(events)] == [1, 2]
    drawn = [e for e in _eb_events(events, EB_DRAWN) if e["ratio"] == 0.5]
    assert [(e["late"], e["note"]) for e in drawn] == [(True, eb["note"])]  # the live log says so too


@pytest.mark.slow
def test_ticket_detected_after_the_last_decay_is_late_but_continued(tmp_path):
    spec = small_spec("ebtrain-ff", epochs=4, eb_draw_epoch=None, eb_queue=3, eb_epsilon=0.99)
    rc, _, events = run_method(tmp_path, spec)
    assert rc == 0
    eb = last_end(events)["eb"]
    assert (eb["epoch"], eb["late"]) == (3, True) and "whole schedule" not in eb["note"]
    assert (eb["retrain_start"], eb["retrain_epochs"]) == (3, 1)


@pytest.mark.slow
def test_no_ticket_is_said_and_the_final_model_is_pruned_and_retrained(tmp_path):
    # a FIFO of 5 masks cannot fill in 3 epochs: the detector never fires
    spec = small_spec("ebtrain-ff", epochs=3, eb_draw_epoch=None, eb_queue=5)
    rc, out, events = run_method(tmp_path, spec)
    assert rc == 0 and last_end(events)["status"] == OK
    eb = last_end(events)["eb"]
    assert (eb["detected"], eb["forced"], eb["epoch"], eb["search_epochs"]) == (False, False, None, 3)
    assert "no Early-Bird ticket at p=0.5 in 3 search epochs" in eb["note"]
    missing = _eb_events(events, EB_MISSING)
    assert [(e["ratio"], e["epochs"]) for e in missing] == [(0.5, 3)]
    assert not (out / "tickets" / "eb-p0.5.pt").exists()
    assert (eb["retrain_start"], eb["retrain_epochs"]) == (0, 3)
    info = phase_ends(events)["prune"]["info"]
    assert info["params_after"] < info["params_before"]  # the search's final model, pruned


@pytest.mark.slow
def test_a_natural_detection_never_replaces_a_ticket_drawn_at_a_fixed_epoch(tmp_path):
    # eb_stop false: the search goes on after the fixed draw at epoch 1 and the detector fires later
    spec = small_spec("ebtrain-ff", epochs=3, eb_draw_epoch=1, eb_stop=False, eb_queue=2, eb_epsilon=0.99)
    rc, out, events = run_method(tmp_path, spec)
    assert rc == 0
    drawn = [e for e in _eb_events(events, EB_DRAWN) if e["ratio"] == 0.5]
    assert [(e["epoch"], e["forced"], e["ticket"] is not None) for e in drawn] == [(1, True, True),
                                                                                   (2, False, False)]
    eb = last_end(events)["eb"]
    assert (eb["epoch"], eb["detected"], eb["search_epochs"]) == (1, True, 3)
    assert load_model(out / "tickets" / "eb-p0.5.pt")[1]["epoch"] == 1


def test_the_retrain_keeps_bn_l1_on_by_default(tmp_path):
    on = live_run(tmp_path, small_spec("ebtrain-ff"))
    off = live_run(tmp_path, small_spec("ebtrain-ff", retrain_sparsity=False))
    retrain = EarlyBirdRetrain(continue_schedule=True)
    assert [type(c) for c in retrain.callbacks(on)] == [BNSparsity]
    assert retrain.callbacks(on)[0].s == on.spec["sparsity"] == 1e-4
    assert retrain.callbacks(off) == []


@pytest.mark.parametrize("epoch,forced,late,whole", [(5, False, False, False), (6, False, True, False),
                                                     (8, False, True, True), (6, True, False, False),
                                                     (8, True, False, True)])
def test_lateness_is_judged_against_the_last_lr_decay_for_detected_tickets(epoch, forced, late, whole):
    spec = small_spec("ebtrain-ff", epochs=8)  # decays at epochs 4 and 6
    is_late, note = lateness(spec, epoch, forced)
    assert is_late is late
    # a fixed draw at the last epoch (Table 1's "final") is not late, but the note says it is retrained whole
    assert (note is not None and "whole schedule" in note) is whole


def test_only_the_ticket_retrain_takes_retrain_batch_size():
    from types import SimpleNamespace

    from experiments import data
    from experiments.methods import METHODS
    from tests.runs import tiny_spec

    spec = tiny_spec(retrain_batch_size=16)
    run = SimpleNamespace(spec=spec)
    sizes = {p.name: p.batch_size(run) for p in METHODS["ebtrain-ff"].phases() if hasattr(p, "batch_size")}
    assert sizes == {"search": None, "retrain": 16}  # None: the spec's batch_size (32 here)
    train_set = data.dataset(spec, True)
    assert data.train_loader(spec, train_set, 0, batch_size=sizes["retrain"]).batch_size == 16
    assert data.train_loader(spec, train_set, 0).batch_size == spec["batch_size"] == 32
