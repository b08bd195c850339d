"""The follower's boundary: only a target's failures count as a dropped link; a bug is a bug."""
import json
import time

import pytest

from experiments import events as ev
from experiments import paths
from harness import lifecycle
from harness.errors import EbtError
from harness.lifecycle import RunInfo, finalize, follow
from harness.targets import LocalTarget, TargetUnreachable


class _Failing(LocalTarget):
    """The local target whose reads fail with `error` (a dropped link, or a bug in its own code)."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def read_from(self, path, offset):
        raise self.error


def _info(tmp_path):
    run_dir = tmp_path / "home" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / paths.EVENTS).write_text(json.dumps({"event": ev.RUN_START, "t": time.time()}) + "\n")
    return RunInfo(run_id="r1", target="local", run_dir=str(run_dir), pid=2 ** 22 + 7, code_dir=".",
                   meter="none", meter_where="device", started=time.time())


def test_a_target_that_stays_unreachable_leaves_the_run_detached(tmp_path, monkeypatch):
    monkeypatch.setattr(lifecycle, "RECONNECT_GIVE_UP_S", 0.0)
    monkeypatch.setattr(lifecycle, "RECONNECT_BACKOFF_S", (0,))
    info = _info(tmp_path)
    assert follow(info, _Failing(TargetUnreachable("link down")), tmp_path / "results") == ev.DETACHED
    assert RunInfo.load(tmp_path / "results", "r1").state == ev.DETACHED


def test_a_bug_under_the_target_is_not_taken_for_a_dropped_link(tmp_path):
    info = _info(tmp_path)
    with pytest.raises(KeyError):
        follow(info, _Failing(KeyError("a bug")), tmp_path / "results")
    assert not RunInfo.path(tmp_path / "results", "r1").exists()  # never saved as detached


def test_a_bug_in_the_record_builder_is_one_line_naming_the_run(tmp_path, monkeypatch):
    from harness import record

    def broken(*args, **kwargs):
        raise KeyError("injected")

    monkeypatch.setattr(record, "build_record", broken)
    info = _info(tmp_path)
    with pytest.raises(EbtError, match=r"r1: its record could not be built: KeyError: 'injected' \(a bug; run "
                                       r"with -v"):
        finalize(info, LocalTarget(), tmp_path / "results", tmp_path)
    assert not (tmp_path / "results" / "runs" / "r1" / paths.RECORD).exists()
