"""hw.board on the stand-in board (tests/board_standins.py: nvpmodel, jetson_clocks and sudo first on PATH),
the runner's check before a run folder exists, the record's conditions block and `order: interleaved`."""
import os
import subprocess
import sys

import pytest

from board_standins import StandinBoard
from experiments import events as ev
from experiments import spec as specs
from harness.conditions import conditions_block
from harness.config import ConfigError, expand
from hw import board
from tests.runs import ROOT, tiny_spec, write_spec


@pytest.fixture
def standin(tmp_path, monkeypatch):
    b = StandinBoard(tmp_path / "board", mode=2)
    monkeypatch.setenv("PATH", b.path())
    return b


@pytest.mark.slow
def test_take_sets_verifies_and_release_restores(standin, tmp_path):
    folder = str(tmp_path / "boards")
    got = board.take(folder, "maxn", "max", owner="r1")  # a name, any case, through the board's own list
    assert got["before"] == "MAXP_CORE_ALL (2)" and got["set"] == "MAXN (0)" and got["requested"] == "maxn"
    state = standin.load()
    assert state["mode"] == 0 and state["locked"] is True and state["stored"] is False
    assert ["nvpmodel", "-q"] in state["calls"]  # verified, not assumed
    assert os.path.exists(board.state_path(folder))  # written before anything changed
    assert board.release(folder, only_pid=os.getpid() + 1) is None  # not this process's hold
    back = board.release(folder, only_pid=os.getpid())
    assert back["mode"] == "MAXP_CORE_ALL (2)" and back["error"] is None
    state = standin.load()
    assert state["mode"] == 2 and state["locked"] is False
    assert not os.path.exists(board.state_path(folder))


@pytest.mark.slow
def test_a_mode_that_needs_a_reboot_is_refused_and_nothing_changes(standin, tmp_path):
    folder = str(tmp_path / "boards")
    with pytest.raises(board.BoardError, match="needs a reboot"):
        board.take(folder, "3", None)
    state = standin.load()
    assert state["mode"] == 2 and not state.get("rebooted")  # the prompt was never answered
    assert board.release(folder)["mode"] == "MAXP_CORE_ALL (2)"


@pytest.mark.parametrize("change, requested, message", [
    ({"sudo": False}, "1", "NOPASSWD: "),
    ({}, "7", "not a mode of this board; its modes: MAXN (0), MAXQ (1)"),
    ({}, "fastest", "not a mode of this board"),
])
def test_not_settable_says_why_and_the_fix(standin, change, requested, message):
    standin.set(**change)
    with pytest.raises(board.BoardError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        board.check(requested, None)
    assert "\n" not in str(err.value)
    if change:
        assert "%s, %s" % (os.path.join(standin.bin, "nvpmodel"), os.path.join(standin.bin, "jetson_clocks")) \
            in str(err.value)
    assert standin.load()["mode"] == 2


def test_no_tools_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(board.BoardError, match="sudo, nvpmodel not found on PATH"):
        board.check("0", None)
    assert board.check(None, None)["mode"] is None  # nothing asked: nothing needed


@pytest.mark.slow
def test_recover_restores_only_what_a_dead_runner_left(standin, tmp_path):
    folder = str(tmp_path / "boards")
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=subprocess.PIPE)
    dead = int(child.stdout)
    board.take(folder, "1", None, owner="killed-run")
    assert board.recover(folder) is not None  # our own hold (this process) counts as recoverable
    board.take(folder, "1", None, owner="killed-run")
    from hw.fileio import atomic_write_json
    import json
    held = json.load(open(board.state_path(folder)))
    held["pid"] = 1  # alive (init): another runner's hold is left alone
    atomic_write_json(board.state_path(folder), held)
    assert board.recover(folder) is None and standin.load()["mode"] == 1
    held["boot"] = "another-boot"  # saved before a reboot: pid 1 is now someone else
    atomic_write_json(board.state_path(folder), held)
    assert board.recover(folder)["owner"] == "killed-run" and standin.load()["mode"] == 2
    board.take(folder, "1", None, owner="killed-run")
    held = json.load(open(board.state_path(folder)))
    held["pid"] = dead
    atomic_write_json(board.state_path(folder), held)
    assert board.recover(folder)["owner"] == "killed-run"
    assert standin.load()["mode"] == 2


@pytest.mark.slow
def test_runner_without_sudo_fails_in_seconds_before_the_run_folder(standin, tmp_path):
    standin.set(sudo=False)
    spec = tiny_spec(method="dense", prune_ratio=0.0, power_mode=0)
    spec_path = write_spec(tmp_path, spec)
    out = tmp_path / "runs" / spec["run_id"]
    proc = subprocess.run([sys.executable, "-m", "experiments", "run", str(spec_path), "--out", str(out)],
                          cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "NOPASSWD: " in lines[0] and "sudoers.d" in lines[0]
    assert not out.exists()


def test_cooldown_waits_until_near_idle_and_records_it(tmp_path):
    readings = iter([70.0, 60.0, 52.0, 51.0])
    folder = str(tmp_path / "boards")
    first = board.cool_down(folder, None, 0, read=lambda: {"GPU-therm": 50.0, "PMIC-Die": 100.0})
    assert first["idle_c"] == 50.0 and first["zone"] == "GPU-therm" and first["reached"]
    slept = []
    got = board.cool_down(folder, 3.0, 60, read=lambda: {"GPU-therm": next(readings)}, sleep=slept.append)
    assert got["idle_c"] == 50.0 and got["start_c"] == 70.0 and got["end_c"] == 52.0 and got["reached"]
    assert len(slept) == 2 and "2 run(s)" in got["idle_source"]
    late = board.cool_down(folder, 1.0, 0, read=lambda: {"GPU-therm": 65.0})
    assert not late["reached"] and late["end_c"] == 65.0  # bounded: max_s 0 does not wait


def test_residency_counts_time_below_the_mode_cap(tmp_path):
    gpu = tmp_path / "sys/class/devfreq/17000000.gp10b"
    gpu.mkdir(parents=True)
    (gpu / "max_freq").write_text("1300500000\n")
    (gpu / "trans_stat").write_text(
        "     From  :   To\n           :  114750000 1300500000   time(ms)\n"
        "   114750000:         0         3      2500\n*1300500000:         2         0     10000\n"
        "Total transition : 5\n")
    cpu = tmp_path / "sys/devices/system/cpu/cpufreq/policy0"
    (cpu / "stats").mkdir(parents=True)
    (cpu / "scaling_max_freq").write_text("2035200\n")
    (cpu / "stats" / "time_in_state").write_text("345600 150\n2035200 900\n")
    assert board.residency(str(tmp_path)) == {"gpu": [2.5, 12.5], "cpu": [1.5, 10.5]}


def _snap(mode, temp, below, locked=True):
    return {"power_mode": mode, "temperatures_c": {"GPU-therm": temp}, "residency": {"gpu": [below, 100.0]},
            "clocks_locked": locked}


def test_conditions_block_from_events():
    events = [
        {"event": ev.RUN_START, "t": 0},
        {"event": ev.BOARD_SET, "t": 1, "requested": "0", "before": "MAXP_CORE_ALL (2)", "set": "MAXN (0)",
         "clocks": "max", "locked_before": False, "cooldown": None, "error": None},
        {"event": ev.PHASE_START, "t": 2, "phase": "train", "index": 0, "board": _snap("MAXN (0)", 40.0, 5.0)},
        {"event": ev.PHASE_END, "t": 3, "phase": "train", "index": 0, "board": _snap("MAXN (0)", 55.0, 9.0)},
        {"event": ev.RUN_END, "t": 4, "status": "ok"},
        {"event": ev.BOARD_RESTORED, "t": 5, "mode": "MAXP_CORE_ALL (2)", "locked": False, "error": None},
    ]
    block = conditions_block(events)
    assert block["power_mode"] == {"requested": "0", "before": "MAXP_CORE_ALL (2)", "during": ["MAXN (0)"],
                                   "after": "MAXP_CORE_ALL (2)"}
    assert block["clocks"] == {"requested": "max", "locked_before": False, "locked_during": True,
                               "locked_after": False}
    assert block["phases"] == [{"name": "train", "temperatures_start_c": {"GPU-therm": 40.0},
                                "temperatures_end_c": {"GPU-therm": 55.0}, "gpu_below_max_s": 4.0,
                                "cpu_below_max_s": None}]
    assert block["throttled"] is True
    events[3]["board"] = _snap("MAXN (0)", 55.0, 5.5)
    assert conditions_block(events)["throttled"] is False
    for e in events[2:4]:
        e["board"]["clocks_locked"] = False
    events[1]["clocks"] = None
    assert conditions_block(events)["throttled"] is None  # the governor scales unpinned clocks on its own
    assert conditions_block([{"event": ev.RUN_START, "t": 0}]) is None


def test_spec_keys_default_to_leaving_the_board():
    spec = specs.resolve({})
    assert (spec["power_mode"], spec["clocks"], spec["cooldown_c"]) == (None, None, None)
    assert specs.resolve({"power_mode": 0})["power_mode"] == "0"
    assert specs.resolve({"power_mode": "MAXN"})["power_mode"] == "MAXN"
    with pytest.raises(specs.SpecError, match="clocks"):
        specs.resolve({"clocks": "min"})


def test_interleaved_order_runs_methods_round_robin():
    raw = {"dataset": "digits", "prune_ratio": 0.5, "order": "interleaved",
           "sweep": {"method": ["ebtrain-ff", "snip"], "power_mode": [0, 1, 2]}}
    got = [(s["method"], s["power_mode"]) for s in expand(raw)]
    assert got == [("ebtrain-ff", "0"), ("snip", "0"), ("ebtrain-ff", "1"), ("snip", "1"),
                   ("ebtrain-ff", "2"), ("snip", "2")]
    raw["order"] = "given"
    assert [s["method"] for s in expand(raw)] == ["ebtrain-ff"] * 3 + ["snip"] * 3
    raw["order"] = "random"
    with pytest.raises(ConfigError, match="interleaved"):
        expand(raw)


# --- end to end: `ebt run` / `ebt report` / `ebt doctor` on the stand-in board --------------------------
def _config(tmp_path, board, **keys):
    import yaml
    from tests.runs import TINY
    raw = dict(TINY, method="dense", prune_ratio=0.0, epochs=1, train_subset=128, test_subset=64,
               meter=board.meter, meter_rate_hz=20.0, **keys)
    path = tmp_path / "modes.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_dense_swept_over_two_modes_records_each_and_puts_the_board_back(standin, tmp_path, monkeypatch):
    import json
    from board_standins import MODES
    from harness.cli import main
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    results = tmp_path / "results"
    config = _config(tmp_path, standin, sweep={"power_mode": [0, "MAXQ"]})
    assert main(["run", str(config), "--results", str(results)]) == 0
    records = [json.loads(p.read_text()) for p in sorted(results.glob("runs/*/record.json"))]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    by_mode = {r["conditions"]["power_mode"]["during"][0]: r for r in records}
    assert set(by_mode) == {"MAXN (0)", "MAXQ (1)"}
    for label, ident in (("MAXN (0)", 0), ("MAXQ (1)", 1)):
        rec = by_mode[label]
        cond = rec["conditions"]
        assert cond["power_mode"]["before"] == "MAXP_CORE_ALL (2)" and cond["power_mode"]["after"] == \
            "MAXP_CORE_ALL (2)"
        assert [p["name"] for p in cond["phases"]] == [p["name"] for p in rec["phases"]]
        # the stand-in's VDD_IN draws what nvpmodel set: the record's mean power follows the mode
        covered = rec["totals"]["seconds"] - rec["totals"]["uncovered_s"]  # a loaded machine's sampler gaps
        assert rec["totals"]["energy_j"] / covered == pytest.approx(MODES[ident][1] / 1000.0, rel=0.02)
    assert standin.load()["mode"] == 2
    left = os.listdir(str(tmp_path / "home" / "boards"))
    assert all(n.endswith(".idle.json") for n in left)  # no saved state: nothing left to restore
    assert main(["report", "--results", str(results)]) == 0
    table = (results / "tables" / "power_modes.md").read_text()
    assert all(r["run_id"] in table for r in records)
    row = (results / "tables" / "power_mode_optimal.md").read_text().strip().splitlines()[-1].split("|")
    cheapest = min(by_mode, key=lambda m: by_mode[m]["totals"]["energy_j"])
    assert row[4].strip() == "2" and row[5].strip().startswith(cheapest + " (")  # modes, least energy


@pytest.mark.slow
def test_after_kill_9_doctor_and_the_next_run_put_the_board_back(standin, tmp_path, monkeypatch, capsys):
    import signal
    import time
    from harness.cli import main
    from tests.runs import start_runner
    home = tmp_path / "home"
    monkeypatch.setenv("EBT_HOME", str(home))
    spec = tiny_spec(method="dense", prune_ratio=0.0, epochs=50, power_mode="0")
    out = home / "runs" / spec["run_id"]
    out.mkdir(parents=True)
    for recover_with in ("doctor", "next run"):
        proc = start_runner(write_spec(tmp_path, spec), out)
        deadline = time.time() + 60
        while standin.load()["mode"] != 0 and time.time() < deadline:
            time.sleep(0.1)
        assert standin.load()["mode"] == 0
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert standin.load()["mode"] == 0  # nobody put it back
        if recover_with == "doctor":
            assert main(["doctor", "--target", "local"]) == 0
            assert "ok    board restored: the interrupted run %s had changed it: now MAXP_CORE_ALL (2)" \
                % spec["run_id"] in capsys.readouterr().out
        else:
            bad = tiny_spec(method="dense", prune_ratio=0.0, power_mode="7", run_id="next")
            proc = subprocess.run([sys.executable, "-m", "experiments", "run", str(write_spec(tmp_path, bad, "n.json")),
                                   "--out", str(home / "runs" / "next")], cwd=str(ROOT), stderr=subprocess.PIPE)
            assert proc.returncode == 2 and b"not a mode of this board" in proc.stderr
            assert b"restored the board after the interrupted run" in proc.stderr
        assert standin.load()["mode"] == 2


@pytest.mark.slow
def test_ebt_run_without_sudo_rights_fails_its_preflight_with_the_sudoers_line(standin, tmp_path, monkeypatch,
                                                                              caplog):
    import time
    from harness.cli import main
    standin.set(sudo=False)
    home, results = tmp_path / "home", tmp_path / "results"
    monkeypatch.setenv("EBT_HOME", str(home))
    t0 = time.time()
    assert main(["run", str(_config(tmp_path, standin, power_mode=1)), "--results", str(results)]) != 0
    assert time.time() - t0 < 60  # the probe's torch import, no training
    assert "sudo -n refuses" in caplog.text and "NOPASSWD: " in caplog.text and "sudoers.d/ebt" in caplog.text
    assert not (home / "runs").exists() or not list((home / "runs").iterdir())
    assert not (results / "runs").exists() and standin.load()["mode"] == 2
