"""Readings are checked before they count and gaps are never filled: a pty meter that interleaves
impossible values with good lines, one that is unplugged for most of a run, and the uncertainty terms
of `hw.energy` on analytic traces."""
import time

import numpy as np
import pytest

from hw.energy import DEFAULT_ACCURACY, RunningEnergy, integrate
from hw.meters import open_meter
from hw.sampler import PowerSampler
from hw.trace import Trace, read_trace
from meter_standins import LineStreamer, PtyPeer

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)


def trace_of(t, w, e=None):
    return Trace(np.asarray(t, float), np.asarray(w, float), energy_j=e)


@pytest.mark.slow
def test_impossible_readings_are_counted_never_written_and_energy_stays_right(tmp_path):
    peer = PtyPeer()
    meter = open_meter("lines:%s?max_w=100" % peer.port)
    bad = ["1e308", "-5", "inf", "nan", "junk!", "1e307"]
    k = [0]

    def line(rel):
        k[0] += 1
        return bad[k[0] % len(bad)] if k[0] % 2 else "8.0"

    streamer = LineStreamer(peer, line, hz=100.0, fmt="%s\n")
    try:
        streamer.start()
        with PowerSampler(meter, str(tmp_path), rate_hz=100.0) as sampler:
            time.sleep(2.5)
        streamer.stop()
        stats = sampler.stats()
    finally:
        meter.close()
        peer.close()
    tr = read_trace(str(tmp_path))
    assert set(tr.watts) == {8.0}  # not one impossible value reached power.csv
    assert stats["malformed"] >= 0.8 * stats["samples"] and stats["samples"] >= 50
    a, b = tr.t[0] + 0.2, tr.t[-1] - 0.2
    r = integrate(tr, a, b)
    assert np.isfinite(r.energy_j) and r.energy_j == pytest.approx(8.0 * (b - a), rel=0.03)
    assert r.coverage == pytest.approx(1.0)


@pytest.mark.slow
def test_unplugged_meter_leaves_the_span_uncovered_not_billed(tmp_path):
    """12.5 W for 1 s, unplugged for 5 s, back for the last moment of a 6 s window."""
    link = tmp_path / "ttyMETER"
    first = PtyPeer(link=str(link))
    meter = open_meter("lines:%s?timeout_s=0.5" % link)
    streamer = LineStreamer(first, lambda rel: 12.5, hz=20.0)
    streamer.start()
    sampler = PowerSampler(meter, str(tmp_path / "run"), rate_hz=20.0).start()
    try:
        t0 = time.time()
        time.sleep(1.0)
        streamer.stop()
        first.close()
        time.sleep(5.0)
        second = PtyPeer(link=str(link))
        streamer = LineStreamer(second, lambda rel: 12.5, hz=20.0)
        streamer.start()
        while time.time() < t0 + 6.0 or sampler.latest()[0] < t0 + 6.0:
            time.sleep(0.05)
    finally:
        sampler.stop()
        streamer.stop()
        meter.close()
    second.close()
    r = integrate(read_trace(str(tmp_path / "run")), t0, t0 + 6.0)
    assert r.energy_j == pytest.approx(12.5 * r.covered_s, rel=0.02)
    assert r.energy_j < 12.5 * 2.0  # not the 75 J of a held reading
    assert r.uncovered_s >= 4.0 and r.coverage <= 0.35
    assert r.energy_j + r.uncertainty_j >= 12.5 * 6.0  # the stated uncertainty reaches the truth


def test_uncertainty_terms_on_an_analytic_trace():
    t = np.arange(0.0, 100.01, 0.5)
    w = np.where(t < 50, 10.0, 30.0)
    meter = {"accuracy_rel": 0.01, "accuracy_abs_w": 0.5, "update_period_s": 1.0,
             "sampling": {"kind": "average", "window_s": 0.5}}
    r = integrate(trace_of(t, w), 10.0, 90.0, meter=meter, clock_s=0.002)
    # samples at 49.5 s (10 W) and 50 s (30 W): the trapezoid bills that half second at 20 W
    assert r.energy_j == pytest.approx(10 * 39.5 + 20 * 0.5 + 30 * 40, rel=1e-9)
    u = r.uncertainty
    assert u["instrument_j"] == pytest.approx(0.01 * r.energy_j + 0.5 * 80.0)
    # the one 10->30 W step: 20 W x 0.5 s / 2, plus each edge at the meter's 1 s update period
    assert u["sampling_j"] == pytest.approx(20 * 0.5 / 2 + (10 + 30) * 1.0 / 2)
    assert u["gap_j"] == 0.0 and u["clock_j"] == pytest.approx(0.002 * 40)
    assert r.uncertainty_j == pytest.approx(sum(u.values()))
    plain = integrate(trace_of(t, w), 10.0, 90.0)
    assert plain.uncertainty["instrument_j"] == pytest.approx(DEFAULT_ACCURACY["accuracy_rel"] * plain.energy_j)


def test_a_short_window_shows_its_rate_limit():
    """The same 1 Hz meter over 1000 s and over 2 s: the sampling term is a tiny share of the first
    and a large one of the second."""
    t = np.arange(0.0, 2000.0, 1.0)
    long = integrate(trace_of(t, np.full_like(t, 10.0)), 100.0, 1100.0)
    short = integrate(trace_of(t, np.full_like(t, 10.0)), 100.3, 102.3)
    assert long.uncertainty["sampling_j"] / long.energy_j < 0.002
    assert short.uncertainty["sampling_j"] / short.energy_j > 0.4


def test_counter_covers_a_long_step_exactly():
    t = np.array([0.0, 1.0, 10.0, 11.0])
    e = np.array([0.0, 5.0, 50.0, 55.0])  # 5 W throughout, a 9 s step between samples
    r = integrate(trace_of(t, np.full_like(t, 5.0), e), 0.0, 11.0, max_gap_s=0.5)
    assert r.energy_j == pytest.approx(55.0) and r.coverage == pytest.approx(1.0) and r.gaps == []


def test_idle_spread_is_the_std_of_the_readings():
    t = np.arange(0.0, 10.0, 0.1)
    w = 4.0 + 0.2 * np.sin(t * 7.0)
    r = integrate(trace_of(t, w), 0.0, 9.9)
    assert r.std_w == pytest.approx(float(np.std(w)), rel=1e-9) and r.mean_w == pytest.approx(4.0, abs=0.02)


def test_running_energy_stops_counting_while_the_meter_is_lost():
    live = RunningEnergy(max_gap_s=0.3)
    for k in range(11):
        live.add(100.0 + 0.1 * k, 10.0)
    assert live.energy_j == pytest.approx(10.0) and not live.lost(101.2)
    assert live.lost(101.5)
    live.add(106.0, 10.0)  # back after 5 s: nothing billed for the gap
    assert live.energy_j == pytest.approx(10.0) and live.uncovered_s == pytest.approx(5.0)


def test_running_energy_learns_the_gap_threshold_from_the_spacing():
    live = RunningEnergy()
    for k in range(20):
        live.add(10.0 + 1.0 * k, 5.0)  # a 1 Hz meter: three spacings are 3 s
    assert live.gap_s == pytest.approx(3.0) and not live.lost(31.5) and live.lost(32.5)
    live.add(40.0, 5.0)
    assert live.energy_j == pytest.approx(95.0) and live.uncovered_s == pytest.approx(11.0)
