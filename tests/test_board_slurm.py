"""The power mode on the test Slurm cluster (tests/slurm.py): the runner in the batch job finds the stand-in
board's tools on its PATH (the target's `?python=` is a wrapper that puts them first), holds MAXN for the
run and puts the board back, exactly as over SSH. Shares test_slurm's cluster (the `cluster` fixture of conftest.py)."""
import json
import os
import stat
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from board_standins import MODES, StandinBoard
from harness.cli import main as ebt
from tests.test_slurm import config

pytestmark = pytest.mark.slow


def test_power_mode_in_a_slurm_job(cluster, tmp_path):
    _, url, _ = cluster
    board = StandinBoard(tmp_path / "board", mode=2)
    wrapper = os.path.join(board.bin, "python3")
    with open(wrapper, "w") as fh:
        fh.write("#!/bin/sh\nPATH=%s:$PATH exec %s \"$@\"\n" % (board.bin, sys.executable))
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "python"] + [("python", wrapper)]
    url = urlunsplit(parts._replace(query=urlencode(query, safe="/")))
    results = tmp_path / "results"
    cfg = config(tmp_path, epochs=1, meter=board.meter, power_mode=0)
    assert ebt(["run", str(cfg), "--target", url, "--results", str(results)]) == 0
    (record,) = [json.loads(p.read_text()) for p in results.glob("runs/*/record.json")]
    cond = record["conditions"]
    assert record["status"] == "ok" and cond["power_mode"]["during"] == ["MAXN (0)"]
    assert cond["power_mode"]["after"] == "MAXP_CORE_ALL (2)" and board.load()["mode"] == 2
    covered = record["totals"]["seconds"] - record["totals"]["uncovered_s"]
    assert record["totals"]["energy_j"] / covered == pytest.approx(MODES[0][1] / 1000.0, rel=0.02)
