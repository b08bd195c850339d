"""`ebt measure`, `ebt meters`, `ebt meters idle` through the real CLI, on a RAPL sysfs tree whose
counters a thread advances at a known power, on a pseudo-terminal `lines` meter, and on a fake SCPI
analyser on 127.0.0.1 (tests/fake_scpi.py)."""
import json
import os
import sys

import pytest

from harness.cli import main
from meter_standins import WATTS, LineStreamer, PtyPeer, make_tx2_tree, rapl  # noqa: F401  (rapl: a fixture)


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.slow
def test_measure_counter_meter_json_and_exit_code(rapl, capfd, tmp_path):
    cmd = [sys.executable, "-c", "import time, sys; time.sleep(1.0); print('hi'); sys.exit(3)"]
    rc = main(["measure", "--meter", rapl, "--rate", "20", "--json", "--trace", str(tmp_path / "m"), "--"] + cmd)
    out, err = capfd.readouterr()
    assert rc == 3
    assert out.startswith("hi\n")
    res = last_json(out)
    assert res["exit_code"] == 3 and res["seconds"] >= 1.0
    assert res["energy_j"] == pytest.approx(WATTS * res["seconds"], rel=0.01)
    assert res["mean_w"] == pytest.approx(WATTS, rel=0.01)
    assert res["coverage"] == pytest.approx(1.0) and res["samples"] >= 15
    assert res["t_end"] - res["t_start"] == pytest.approx(res["seconds"])
    assert res["meter"]["kind"] == "rapl" and res["meter"]["counter"] and res["method"] == "counter"
    assert os.path.exists(res["trace"]) and "J, mean" in err


def test_measure_pty_meter_human_output(capfd):
    peer = PtyPeer()
    streamer = LineStreamer(peer, lambda rel: 6.0, hz=50.0)
    streamer.start()
    try:
        rc = main(["measure", "--meter", "lines:" + peer.port, "--idle-w", "1.5", "--", "sleep", "0.6"])
    finally:
        streamer.stop()
        peer.close()
    out, err = capfd.readouterr()
    assert rc == 0 and out == ""
    seconds = float(err.split(" s,")[0])
    joules = float(err.split(", ")[1].split(" J")[0])
    assert " J +- " in err and "scope wall" in err  # every joule with its uncertainty and scope
    assert joules == pytest.approx(6.0 * seconds, rel=0.02) and "coverage 100.0%" in err and "net of idle" in err


def test_measure_without_meter_and_with_failing_command(capfd, caplog):
    rc = main(["measure", "--meter", "none", "--json", "--", sys.executable, "-c", "import sys; sys.exit(5)"])
    res = last_json(capfd.readouterr()[0])
    assert rc == 5 and res["energy_j"] is None and res["meter"] is None
    rc = main(["measure", "--meter", "none", "--", "/nonexistent/cmd"])
    assert rc == 127
    assert main(["measure", "--meter", "wattmeter:/dev/x", "--", "true"]) == 2
    assert main(["measure", "--meter", "wattsup:/dev/x?interval=2", "--", "true"]) == 2
    assert main(["measure", "--meter", "none"]) == 2
    assert main(["meters", "idle", "--meter", "none"]) == 1
    err = caplog.text  # the CLI's one error line goes through logging
    assert "allowed kinds" in err and "interval_s" in err and "after --" in err and "no meter" in err


def test_meters_idle_and_list(rapl, capfd, tmp_path):
    rc = main(["meters", "idle", "--meter", rapl, "--seconds", "0.6", "--rate", "20", "--json"])
    res = last_json(capfd.readouterr()[0])
    assert rc == 0 and res["idle_w"] == pytest.approx(WATTS, rel=0.02) and res["samples"] >= 10
    assert 0 <= res["idle_std_w"] < 0.1 * WATTS  # the spread of a steady load is small, and recorded
    assert main(["meters"]) == 0
    out = capfd.readouterr()[0]
    assert "ina3221" in out and "rapl" in out and "auto picks" in out
    assert main(["meters", "--json"]) == 0
    listed = last_json(capfd.readouterr()[0])
    assert [m["meter"] for m in listed["meters"]] == ["ina3221", "jtop", "tegrastats", "nvml", "rapl"]


@pytest.mark.slow
def test_meters_watch_prints_live_watts(tmp_path, capfd):
    root = make_tx2_tree(str(tmp_path))
    assert main(["meters", "watch", "--meter", "ina3221?root=" + root, "--seconds", "0.8"]) == 0
    assert "5.112 W" in capfd.readouterr()[0]


def test_board_side_idle_without_ebt(tmp_path):
    """`python3 -m hw idle` is what the board has instead of `ebt meters idle`."""
    import subprocess
    root = make_tx2_tree(str(tmp_path))
    out = subprocess.check_output([sys.executable, "-m", "hw", "idle", "--meter", "ina3221?root=" + root,
                                   "--seconds", "0.5", "--rate", "20"], cwd=os.path.dirname(os.path.dirname(
                                       os.path.abspath(__file__))))
    res = last_json(out.decode())
    assert res["idle_w"] == pytest.approx(5.112) and res["samples"] >= 8 and res["meter"]["kind"] == "ina3221"


@pytest.mark.slow
def test_measure_fake_scpi_analyser_power_step(capfd):
    """A fake WT310 on 127.0.0.1 steps from 10 W to 12 W mid-command: the energy is within 1 %."""
    pytest.importorskip("pyvisa_py")
    from fake_scpi import FakeAnalyser
    first = []

    def watts(t):  # 10 W for 0.9 s from the first reading on, then 12 W
        first.append(t)
        return 10.0 if t < first[0] + 0.9 else 12.0

    fake = FakeAnalyser(watts, update_s=0.05)
    port = fake.start()
    try:
        rc = main(["measure", "--meter", "scpi:tcp://127.0.0.1:%d" % port, "--rate", "20", "--json", "--",
                   sys.executable, "-c", "import time; time.sleep(1.8)"])
    finally:
        fake.stop()
    res = last_json(capfd.readouterr()[0])
    t0, t1, t_step = res["t_start"], res["t_end"], first[0] + 0.9
    assert t0 < t_step < t1
    expected = 10.0 * (min(t_step, t1) - t0) + 12.0 * max(0.0, t1 - t_step)
    assert rc == 0 and res["meter"]["kind"] == "scpi" and res["meter"]["scope"] == "wall"
    assert res["energy_j"] == pytest.approx(expected, rel=0.01)
    assert ":NUM:NORM:ITEM1 P,1" in fake.commands
