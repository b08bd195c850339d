"""Early-Bird mask, distance and detector semantics on constructed BN values."""
import io

import pytest
import torch
from torch import nn

from experiments.earlybird import (EarlyBirdDetector, channel_mask, distance_matrix, load_masks,
                                   mask_distance, save_mask)


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
    assert torch.equal(loaded, torch.stack(masks))
    d = distance_matrix(loaded)
    assert d.shape == (4, 4)
    assert torch.allclose(d, d.t())
    for i in range(4):
        for j in range(4):
            assert d[i, j].item() == pytest.approx(mask_distance(masks[i], masks[j]))

