"""Clock offset estimation (min-RTT midpoint) and putting a laptop trace on the device clock."""
from __future__ import annotations

import pytest

from harness.clock import ClockAlignment, Probe, measure, offset_from_probes, shift_traces
from harness.targets.base import ClockOffset


def test_min_rtt_probe_wins():
    probes = [
        Probe(sent=10.0, remote=15.30, received=10.4),  # slow, asymmetric: midpoint off by 0.1
        Probe(sent=11.0, remote=16.001, received=11.002),
        Probe(sent=12.0, remote=17.2, received=12.2),
    ]
    o = offset_from_probes(probes)
    assert o.offset_s == pytest.approx(5.0)
    assert o.uncertainty_s == pytest.approx(0.001)
    with pytest.raises(ValueError):
        offset_from_probes([])


def test_measure_bounds_the_true_offset_under_asymmetric_delays():
    """A simulated link: device clock = laptop + 2.5 s, outbound and return delays differ per probe.
    The estimate must lie within its own bound of the truth, and the warm-up probe is dropped."""
    now = [100.0]
    delays = iter([(5.0, 5.0), (0.030, 0.001), (0.002, 0.003), (0.010, 0.040), (0.004, 0.004)])

    def clock():
        return now[0]

    def exchange():
        out, back = next(delays)
        now[0] += out
        remote = now[0] + 2.5
        now[0] += back
        return remote

    o = measure(exchange, rounds=4, warmup=1, clock=clock)
    assert o.uncertainty_s == pytest.approx(0.0025)
    assert abs(o.offset_s - 2.5) <= o.uncertainty_s


def test_alignment_interpolates_drift_and_records_uncertainty():
    a = ClockAlignment(start_t=1000.0, start=ClockOffset(1.0, 0.002), end_t=2000.0, end=ClockOffset(1.1, 0.004))
    assert a.offset_at(1000.0) == pytest.approx(1.0)
    assert a.offset_at(1500.0) == pytest.approx(1.05)
    assert a.offset_at(5000.0) == pytest.approx(1.1)  # held, not extrapolated
    assert a.drift_ppm == pytest.approx(100.0)
    rec = a.to_record()
    assert rec["uncertainty_s"] == pytest.approx(0.004) and rec["end"]["offset_s"] == pytest.approx(1.1)
    only_start = ClockAlignment(start_t=1000.0, start=ClockOffset(1.0, 0.002))
    assert only_start.offset_at(9999.0) == 1.0 and only_start.drift_ppm is None
    assert only_start.to_record()["end"] is None


def test_shift_traces_puts_each_session_on_the_device_clock(tmp_path):
    one, two = tmp_path / "s0.csv", tmp_path / "s1.csv"
    one.write_text("t,watts,VDD_IN\n1000.000000,5.5,\n2000.000000,6.0,1.0\n")
    two.write_text("t,watts,VDD_IN\n5000.000000,7.0,\n5001.0,7")  # torn last row (a crash) is dropped
    a = ClockAlignment(start_t=1000.0, start=ClockOffset(-3.0, 0.001), end_t=2000.0, end=ClockOffset(-2.0, 0.001))
    b = ClockAlignment(start_t=4000.0, start=ClockOffset(10.0, 0.001))
    dst = tmp_path / "out" / "power.csv"
    assert shift_traces([(one, a), (two, b)], dst) == 3
    assert dst.read_text().splitlines() == [
        "t,watts,VDD_IN", "997.000000,5.5000,", "1998.000000,6.0000,1.0000", "5010.000000,7.0000,"]
    assert [p.name for p in dst.parent.iterdir()] == ["power.csv"]  # no temp file left behind
    bad = tmp_path / "bad.csv"
    bad.write_text("t,watts,other\n1.0,2.0,\n")
    with pytest.raises(ValueError, match="header"):
        shift_traces([(one, a), (bad, a)], dst)
    assert dst.read_text().startswith("t,watts,VDD_IN\n997")  # the old file is untouched
