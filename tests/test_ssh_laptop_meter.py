"""A serial meter on the laptop during an SSH run: sampled here, put on the device clock.

Real parts: the `lines` serial meter reads a pseudo-terminal (pyserial on the pty's slave side) that this
test feeds, and the clock offsets are measured over the test sshd.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from experiments import paths
from harness.laptop_meter import LaptopMeter, laptop_meters
from harness.targets.ssh import SSHTarget
from hw.trace import read_meta, read_trace
from meter_standins import pty_meter  # noqa: F401  (a fixture)

pytest.importorskip("serial")


@pytest.mark.slow
def test_laptop_meter_sessions_on_the_device_clock(ssh_device, pty_meter, tmp_path):
    target = SSHTarget(ssh_device.url)
    folder = tmp_path / "results" / "runs" / "r1"
    try:
        for session in range(2):  # the second is what a resumed run adds
            meter = LaptopMeter(pty_meter, target, folder, rate_hz=20)
            meter.start()
            time.sleep(0.6)
            live = meter.latest()
            assert live is not None and live[1] == pytest.approx(5.0)
            block = meter.stop()
    finally:
        target.close()
    assert block["where"] == "laptop" and block["spec"] == pty_meter and block["kind"] == "lines"
    sessions = json.loads(Path(paths.laptop_clock(folder)).read_text())
    assert [s["raw"] for s in sessions] == ["laptop-power/session-0.csv", "laptop-power/session-1.csv"]
    assert all(s["start"] and s["end"] for s in sessions)
    assert block["clock"]["sessions"] == sessions
    # One machine: the offsets are ~0 and the residual uncertainty is the link's half round trip.
    assert 0 < block["clock"]["uncertainty_s"] < 0.1
    for s in sessions:
        assert abs(s["start"]["offset_s"]) <= s["start"]["uncertainty_s"] + 0.005
    lines = (folder / "power.csv").read_text().splitlines()
    assert lines[0].startswith("t,watts")
    raw_rows = sum(len((folder / s["raw"]).read_text().splitlines()) - 1 for s in sessions)
    assert block["samples"] == len(lines) - 1 == raw_rows >= 10
    assert all(float(row.split(",")[1]) == 5.0 for row in lines[1:])


@pytest.mark.slow
def test_secondary_laptop_meter_writes_its_own_trace_and_meta(ssh_device, pty_meter, tmp_path):
    """`--meter jtop --meter lines:PORT` on an SSH target: the primary is on the device, the laptop
    samples the second meter into power-1.csv on the device clock, with its clock entry in the meta."""
    target = SSHTarget(ssh_device.url)
    folder = tmp_path / "results" / "runs" / "r1"
    spec = {"meter": "jtop", "meter_where": "device", "meter_rate_hz": 20.0,
            "meters_extra": [pty_meter], "meters_extra_where": ["laptop"]}
    try:
        meters = laptop_meters(spec, target, folder)
        assert meters is not None and meters.primary is None
        meters.start()
        time.sleep(0.6)
        assert meters.stop() is None  # no primary entry: the primary's is the device's
    finally:
        target.close()
    assert not (folder / paths.POWER_CSV).exists()
    meta = read_meta(paths.secondary_power_csv(folder, 1))
    assert meta["meter"]["spec"] == pty_meter and meta["meter"]["where"] == "laptop"
    assert 0 < meta["clock"]["uncertainty_s"] < 0.1
    trace = read_trace(paths.secondary_power_csv(folder, 1))
    assert len(trace) >= 5 and set(trace.watts) == {5.0}
    assert laptop_meters(dict(spec, meters_extra_where=["device"]), target, folder) is None
