"""Energy integration: exact on analytic profiles, counters, coverage and gaps, and within 1% on a
pseudo-terminal meter streaming a known step profile through the real sampler."""
import numpy as np
import pytest

from hw.energy import integrate
from hw.meters import open_meter
from hw.sampler import PowerSampler
from hw.trace import Trace, read_trace
from meter_standins import LineStreamer, PtyPeer

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)


def trace_of(t, w, e=None):
    return Trace(np.asarray(t, float), np.asarray(w, float), energy_j=e)


def test_constant_exact_with_edge_interpolation():
    t = np.arange(0.0, 10.01, 0.1)
    r = integrate(trace_of(t, np.full_like(t, 7.5)), 1.234, 8.765)
    assert r.energy_j == pytest.approx(7.5 * (8.765 - 1.234), rel=1e-12)
    assert r.mean_w == pytest.approx(7.5) and r.coverage == pytest.approx(1.0) and r.gaps == []
    assert r.method == "trapezoid" and r.samples == 75


def test_ramp_exact():
    t = np.arange(0.0, 10.01, 0.25)
    w = 2.0 + 3.0 * t  # W(t) = 2 + 3t
    a, b = 0.9, 7.3
    exact = 2.0 * (b - a) + 1.5 * (b * b - a * a)
    assert integrate(trace_of(t, w), a, b).energy_j == pytest.approx(exact, rel=1e-12)


def test_step_exact_when_both_levels_share_the_instant():
    t = np.array([0.0, 1.0, 2.0, 2.0, 3.0, 4.0])
    w = np.array([3.0, 3.0, 3.0, 9.0, 9.0, 9.0])
    assert integrate(trace_of(t, w), 0.5, 3.5).energy_j == pytest.approx(3.0 * 1.5 + 9.0 * 1.5, rel=1e-12)


def test_step_between_samples_within_half_an_interval():
    dt = 0.1
    t = np.arange(0.0, 4.0001, dt)
    w = np.where(t < 2.05, 3.0, 9.0)  # the step happens between two samples
    r = integrate(trace_of(t, w), 0.0, 4.0)
    assert abs(r.energy_j - (3.0 * 2.05 + 9.0 * 1.95)) <= 6.0 * dt / 2 + 1e-9


def test_counter_is_exact_for_a_step_and_survives_a_restart():
    t = np.arange(0.0, 10.01, 1.0)
    truth = np.where(t <= 4, 2.0 * t, 8.0 + 6.0 * (t - 4))  # 2 W then 6 W from t=4
    r = integrate(trace_of(t, np.zeros_like(t), truth), 2.5, 7.5)
    assert r.method == "counter" and r.energy_j == pytest.approx(2.0 * 1.5 + 6.0 * 3.5, rel=1e-12)
    # A resumed sampler restarts the counter at 0: that one step falls back to the trapezoid of watts.
    e = np.array([0.0, 2.0, 4.0, 0.0, 3.0, 6.0])
    w = np.array([2.0, 2.0, 2.0, 3.0, 3.0, 3.0])
    r = integrate(trace_of(np.arange(6.0), w, e), 0.0, 5.0)
    assert r.energy_j == pytest.approx(4.0 + 2.5 + 6.0)


def test_gaps_are_left_out_not_bridged():
    t = np.array([0.0, 0.1, 0.2, 0.3, 3.0, 3.1, 3.2])
    r = integrate(trace_of(t, np.ones_like(t)), -1.0, 4.0, max_gap_s=0.5)
    assert r.gaps == [[-1.0, 0.0], [0.3, 3.0], [3.2, 4.0]]
    assert r.coverage == pytest.approx(0.5 / 5.0) and r.covered_s == pytest.approx(0.5)
    assert r.uncovered_s == pytest.approx(4.5)
    assert r.energy_j == pytest.approx(0.5)  # only the covered half second; the 4.5 s are not invented
    assert r.uncertainty["gap_j"] == pytest.approx(4.5)  # each uncovered second at the 1 W seen around it
    # a short edge stretch (under max_gap_s) is held, as a short step is bridged
    r = integrate(trace_of(t, np.ones_like(t)), -0.2, 0.3, max_gap_s=0.5)
    assert r.coverage == pytest.approx(1.0) and r.energy_j == pytest.approx(0.5)
    empty = integrate(trace_of([], []), 0.0, 1.0)
    assert empty.energy_j is None and empty.coverage == 0.0 and empty.gaps == [[0.0, 1.0]]


def test_idle_baseline_and_dict_form():
    t = np.arange(0.0, 5.01, 0.5)
    r = integrate(trace_of(t, np.full_like(t, 10.0)), 1.0, 3.0, idle_w=4.0)
    assert r.net_energy_j == pytest.approx(20.0 - 8.0)
    d = r._asdict()
    assert set(d) >= {"energy_j", "net_energy_j", "mean_w", "std_w", "samples", "coverage", "gaps",
                      "uncertainty_j", "covered_s", "uncovered_s"}
    with pytest.raises(ValueError):
        integrate(trace_of(t, t), 3.0, 1.0)


@pytest.mark.slow
def test_pty_meter_step_profile_within_one_percent(tmp_path):
    peer = PtyPeer()
    profile = lambda rel: 2.0 if rel < 2.0 else 8.0  # noqa: E731
    streamer = LineStreamer(peer, profile, hz=100.0)
    meter = open_meter("lines:" + peer.port)
    try:
        streamer.start()
        with PowerSampler(meter, str(tmp_path), rate_hz=100.0) as sampler:
            while streamer.t0 is None or len(streamer.sent) < 400:
                sampler._stop.wait(0.05)
        streamer.stop()
    finally:
        meter.close()
        peer.close()
    a, b = streamer.t0 + 0.25, streamer.t0 + 3.75
    r = integrate(read_trace(str(tmp_path)), a, b)
    truth = 2.0 * 1.75 + 8.0 * 1.75
    assert r.energy_j == pytest.approx(truth, rel=0.01)
    assert r.coverage == pytest.approx(1.0) and r.samples > 300
