"""The power mode over the real test sshd: the runner on the far side finds the stand-in board's nvpmodel,
jetson_clocks and sudo on its PATH (the target's `?python=` is a wrapper that puts them first, as a board's
login PATH holds the real ones), sets the mode for the run and puts the board back."""
import json
import os
import stat
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from board_standins import MODES, StandinBoard
from harness.cli import main as ebt
from tests.runs import TINY

pytestmark = pytest.mark.slow


def _with_python(url, python):
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "python"] + [("python", python)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


def test_power_mode_over_ssh(ssh_device, tmp_path):
    import yaml
    board = StandinBoard(tmp_path / "board", mode=2)
    wrapper = os.path.join(board.bin, "python3")
    with open(wrapper, "w") as fh:
        fh.write("#!/bin/sh\nPATH=%s:$PATH exec %s \"$@\"\n" % (board.bin, sys.executable))
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    config = tmp_path / "mode.yaml"
    config.write_text(yaml.safe_dump(dict(TINY, method="dense", prune_ratio=0.0, epochs=1, train_subset=128,
                                          test_subset=64, meter=board.meter, power_mode="MAXQ", clocks="max")))
    results = tmp_path / "results"
    assert ebt(["run", str(config), "--target", _with_python(ssh_device.url, wrapper),
                "--results", str(results)]) == 0
    (record,) = [json.loads(p.read_text()) for p in results.glob("runs/*/record.json")]
    cond = record["conditions"]
    assert record["status"] == "ok" and cond["power_mode"]["during"] == ["MAXQ (1)"]
    assert cond["power_mode"]["before"] == cond["power_mode"]["after"] == "MAXP_CORE_ALL (2)"
    assert cond["clocks"]["requested"] == "max"
    covered = record["totals"]["seconds"] - record["totals"]["uncovered_s"]
    assert record["totals"]["energy_j"] / covered == pytest.approx(MODES[1][1] / 1000.0, rel=0.02)
    state = board.load()
    assert state["mode"] == 2 and state["locked"] is False and state["stored"] is False
    assert ["jetson_clocks", "--restore"] in state["calls"]
