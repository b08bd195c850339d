"""Runs belong to the kind of board they ran on (harness.board): an ok record made on another board, or on
a laptop's CPU, is not a `skip` for a run asked of this target; `ebt run --dry-run` reads the target's
board with `python -m hw info` there (the code that writes the record's device block), also over SSH."""
import json
import re
import subprocess
import sys

import pytest

from experiments import paths
from harness.board import Board, Here, made_elsewhere
from harness.cli import main
from harness.config import load_specs
from tests.runs import ROOT

CONFIG = ROOT / "experiments" / "configs" / "quickstart.yaml"
TX2 = {"board": "NVIDIA Jetson TX2 Developer Kit", "jetpack": "4.6.1", "l4t": "32.7.1"}
ORIN = {"board": "NVIDIA Jetson AGX Orin Developer Kit", "jetpack": "6.2", "l4t": "36.4.3"}


def put_record(results, run_id, device, target):
    folder = results / paths.RUNS / run_id
    folder.mkdir(parents=True)
    (folder / paths.RECORD).write_text(json.dumps({"status": "ok", "device": device, "target": target}))


def this_machine():
    out = subprocess.run([sys.executable, "-m", "hw", "info"], cwd=str(ROOT), stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_record_stands_in_only_for_the_same_kind_of_board(tmp_path):
    put_record(tmp_path, "a", TX2, "ssh://nvidia@tx2-1")
    tx2 = Here("ssh://nvidia@tx2-2", Board.of_device(TX2))
    assert made_elsewhere(tmp_path, "a", tx2) is None  # another TX2 of the same JetPack: the same kind
    why = made_elsewhere(tmp_path, "a", Here("ssh://orin", Board.of_device(ORIN)))
    assert "made on NVIDIA Jetson TX2 Developer Kit (JetPack 4.6.1) via ssh://nvidia@tx2-1" in why
    assert "not on ssh://orin, NVIDIA Jetson AGX Orin Developer Kit (JetPack 6.2)" in why
    assert made_elsewhere(tmp_path, "a", Here("ssh://tx2", Board.of_device(dict(TX2, jetpack="5.1")))) is not None
    laptop = {"board": "ThinkPad X1", "jetpack": None}
    put_record(tmp_path, "b", laptop, "local")
    assert "ThinkPad X1 via local" in made_elsewhere(tmp_path, "b", tx2)  # a CPU run never stands in
    # a scheduler target's board is unknown: its URL decides
    assert made_elsewhere(tmp_path, "a", Here("ssh://nvidia@tx2-1", None)) is None
    assert made_elsewhere(tmp_path, "a", Here("slurm://login?partition=tx2", None)) is not None


def _dry_run(results, *target):
    return ["run", str(CONFIG), "--results", str(results), "--dry-run", *target]


def test_dry_run_lists_a_run_made_on_another_board_as_other_board(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    results = tmp_path / "results"
    eb, dense = [s["run_id"] for s in load_specs(CONFIG)]
    put_record(results, eb, TX2, "ssh://nvidia@tx2")
    put_record(results, dense, this_machine(), "local")
    assert main(_dry_run(results)) == 0
    out = capsys.readouterr().out
    assert re.search(r"%s\s.*other-board" % eb, out) and re.search(r"%s\s.*skip" % dense, out), out
    assert "1 done (skipped), 1 done on another kind of board (not run here)" in out
    assert "its ok record was made on NVIDIA Jetson TX2 Developer Kit (JetPack 4.6.1)" in out


@pytest.mark.slow
def test_over_ssh_the_dry_run_reads_the_boards_kind(ssh_device, tmp_path, capsys):
    results = tmp_path / "results"
    eb, dense = [s["run_id"] for s in load_specs(CONFIG)]
    put_record(results, eb, TX2, "ssh://nvidia@tx2")
    put_record(results, dense, this_machine(), "local")  # the test sshd is this machine: the same kind
    assert main(_dry_run(results, "--target", ssh_device.url)) == 0
    out = capsys.readouterr().out
    assert re.search(r"%s\s.*other-board" % eb, out) and re.search(r"%s\s.*skip" % dense, out), out
