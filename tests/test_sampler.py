"""The sampler thread on real stand-ins: a sysfs INA3221 tree, RAPL counters, and pty serial meters
that send garbage, vanish mid-run and come back on another pty behind the same port name."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hw.meters import open_meter
from hw.sampler import PowerSampler
from hw.trace import read_trace
from meter_standins import LineStreamer, PtyPeer, make_rapl_tree, make_tx2_tree, set_uj

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_polled_sysfs_meter_rate_files_and_resume(tmp_path):
    root = make_tx2_tree(str(tmp_path / "sys"))
    run = tmp_path / "run"
    meter = open_meter("ina3221?root=" + root)
    try:
        sampler = PowerSampler(meter, str(run), rate_hz=50.0)
        assert sampler.start() is sampler and sampler.latest()[1] == pytest.approx(5.112)
        time.sleep(1.0)
        stats = sampler.stop()
    finally:
        meter.close()
    assert 40 <= stats["samples"] <= 60 and stats["achieved_hz"] == pytest.approx(50, rel=0.1)
    assert stats["malformed"] == 0 and stats["gaps"] == [] and stats["rate_hz"] == 50.0
    header = (run / "power.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["t", "watts"] and "VDD_IN" in header and "energy_j" not in header
    meta = json.loads((run / "power.meta.json").read_text())
    assert meta["meter"]["kind"] == "ina3221" and meta["samples"] == stats["samples"]
    assert meta["sessions"][0]["stopped"] is not None

    meter = open_meter("ina3221?root=" + root)  # a resumed run appends a second session
    try:
        with PowerSampler(meter, str(run), rate_hz=20.0):
            time.sleep(0.3)
    finally:
        meter.close()
    meta = json.loads((run / "power.meta.json").read_text())
    assert len(meta["sessions"]) == 2 and meta["samples"] == len(read_trace(str(run)).t)


def test_counter_meter_writes_energy_column(tmp_path):
    root = make_rapl_tree(str(tmp_path / "sys"))
    meter = open_meter("rapl?root=" + root)
    try:
        with PowerSampler(meter, str(tmp_path / "run"), rate_hz=20.0) as sampler:
            set_uj(root, "0", 5001000)
            time.sleep(0.3)
            stats = sampler.stats()
    finally:
        meter.close()
    tr = read_trace(str(tmp_path / "run"))
    assert tr.counter and tr.energy_j[-1] == pytest.approx(5.0) and stats["samples"] >= 3


def test_garbage_is_counted_and_skipped(tmp_path):
    peer = PtyPeer()
    meter = open_meter("lines:" + peer.port)
    k = [0]

    def watts(rel):
        k[0] += 1
        return 4.0

    streamer = LineStreamer(peer, watts, hz=50.0, fmt="%.1f\nnoise!\n")
    try:
        streamer.start()
        with PowerSampler(meter, str(tmp_path)) as sampler:
            time.sleep(0.5)
        streamer.stop()
        stats = sampler.stats()
    finally:
        meter.close()
        peer.close()
    assert stats["samples"] >= 10 and abs(stats["malformed"] - stats["samples"]) <= 3
    assert set(read_trace(str(tmp_path)).watts) == {4.0}


@pytest.mark.slow
def test_vanishing_meter_is_reopened_and_the_gap_recorded(tmp_path):
    link = tmp_path / "ttyMETER"  # like a udev symlink: the name stays, the device behind it changes
    first = PtyPeer(link=str(link))
    meter = open_meter("lines:%s?timeout_s=1" % link)
    streamer = LineStreamer(first, lambda rel: 3.0, hz=50.0)
    streamer.start()
    sampler = PowerSampler(meter, str(tmp_path / "run")).start()
    try:
        time.sleep(0.4)
        streamer.stop()
        first.close()  # unplugged
        t_lost = time.time()
        time.sleep(0.8)
        second = PtyPeer(link=str(link))  # plugged back in, on another pty
        streamer = LineStreamer(second, lambda rel: 5.0, hz=50.0)
        streamer.start()
        deadline = time.time() + 8
        while time.time() < deadline and (sampler.latest() is None or sampler.latest()[1] != 5.0):
            time.sleep(0.1)
        time.sleep(0.2)
    finally:
        stats = sampler.stop()
        streamer.stop()
        meter.close()
    second.close()
    assert stats["reconnects"] >= 1
    assert len(stats["gaps"]) == 1
    g0, g1 = stats["gaps"][0]
    assert g0 <= t_lost and g1 >= t_lost + 0.8
    meta = json.loads((tmp_path / "run" / "power.meta.json").read_text())
    assert meta["gaps"] == stats["gaps"] and meta["reconnects"] == stats["reconnects"]
    tr = read_trace(str(tmp_path / "run"))
    assert set(tr.watts) == {3.0, 5.0}


@pytest.mark.slow
def test_a_killed_process_leaves_a_readable_trace(tmp_path):
    root = make_tx2_tree(str(tmp_path / "sys"))
    run = tmp_path / "run"
    code = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, %r)
        from hw.meters import open_meter
        from hw.sampler import PowerSampler
        PowerSampler(open_meter("ina3221?root=%s"), %r, rate_hz=100.0).start()
        print("started", flush=True)
        time.sleep(60)
    """ % (ROOT, root, str(run)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"started"
    t_start = time.time()
    time.sleep(2.2)
    os.kill(proc.pid, signal.SIGKILL)
    t_kill = time.time()
    proc.wait()
    proc.stdout.close()
    tr = read_trace(str(run))
    # Flushed at least once a second: at most ~1 s of samples is lost.
    assert tr.t[-1] >= t_kill - 1.3 and len(tr.t) >= 80 and tr.t[0] <= t_start
    assert json.loads((run / "power.meta.json").read_text())["sessions"][0]["stopped"] is None
