"""Shared trunks on remote targets: over SSH (the test sshd) and on Slurm (the single-node test cluster),
where a trunk is one job and its branches are jobs that wait for it (`--dependency=afterok`), submitted
at once. Each gives the results of the runs alone (`--no-share`, here on this machine)."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import pytest

from experiments import events as ev
from experiments import paths
from harness.cli import main as ebt
from tests.slurm import PARTITION, wait_until
from tests.test_trunks import FIG1, search_epochs, write_config

pytestmark = pytest.mark.slow

# one ratio, tickets drawn at epochs 2 and 3 of 4: a trunk of 3 search epochs and two branches
SMALL = dict(FIG1, epochs=4, eb_ratios=[0.5], sweep={"prune_ratio": [0.5], "eb_draw_epoch": [2, 3]})


def outcomes(results: Path) -> dict[str, dict]:
    """Per run id, what its record reports."""
    out = {}
    for path in sorted(Path(results, paths.RUNS).glob("*/" + paths.RECORD)):
        record = json.loads(path.read_text())
        out[record["run_id"]] = {k: record[k] for k in ("status", "accuracy", "params", "channels", "eb")}
    return out


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The sweep's runs alone on this machine (`--no-share`)."""
    tmp = tmp_path_factory.mktemp("alone")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EBT_HOME", str(tmp / "home"))
        assert ebt(["run", str(write_config(tmp, SMALL)), "--no-share", "--results", str(tmp / "res")]) == 0
    found = outcomes(tmp / "res")
    assert len(found) == 2
    return found


def trunk_and_branches(root: Path, results: Path) -> tuple[Path, list[Path]]:
    (trunk,) = Path(root, paths.TRUNKS).iterdir()
    return trunk, [Path(root, paths.RUNS, rid) for rid in outcomes(results)]


def test_a_sweep_over_ssh_shares_its_trunk(ssh_device, alone, tmp_path):
    results = tmp_path / "res"
    assert ebt(["run", str(write_config(tmp_path, SMALL)), "--target", ssh_device.url, "--results", str(results)]) == 0
    assert outcomes(results) == alone
    trunk, branches = trunk_and_branches(ssh_device.root, results)
    assert search_epochs(trunk) == 3 and not any(search_epochs(b) for b in branches)
    for rid in alone:
        record = json.loads(Path(paths.results_run(results, rid), paths.RECORD).read_text())
        assert record["shared"]["trunk"] == trunk.name and record["shared"]["epochs"] == record["eb"]["epoch"]
    assert ev.last_end(ev.read_events(paths.events(paths.results_trunk(results, trunk.name))))["status"] == ev.OK


# --- Slurm ---------------------------------------------------------------------------------------

@pytest.fixture
def slurm_url(slurm_login: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """(cluster, slurm:// URL, run root) on the session's cluster: jobs not exclusive, so the node's CPUs
    run branches side by side."""
    cluster, server = slurm_login
    monkeypatch.setenv("EBT_SSH_CONFIG", str(server.ssh_config))
    server.known_hosts.write_text(server.known_hosts_line())
    root = tmp_path / "shared-ebt"
    options = {"partition": PARTITION, "root": str(root), "python": sys.executable, "poll": "1", "exclusive": "0"}
    yield cluster, "slurm://%s?%s" % (server.url[len("ssh://"):], urlencode(options)), root
    cluster.command("scancel", "--partition", PARTITION, check=False)


class Queue:
    """What squeue says of the ebt jobs while a sweep runs: {job name: (job id, dependency)} as first seen
    pending on a dependency."""

    def __init__(self, cluster):
        self.cluster, self.seen, self.stop = cluster, {}, threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.wait(0.1):
            for line in self.cluster.command("squeue", "-h", "-o", "%j|%i|%E|%T", check=False).splitlines():
                name, job, dependency, state = line.split("|")
                if name.startswith("ebt-") and (name not in self.seen or state == "PENDING" and "after" in dependency):
                    self.seen[name] = (int(job), dependency if state == "PENDING" else "")

    def trunk_job(self) -> int:
        (job,) = [j for name, (j, _) in self.seen.items() if name.startswith("ebt-trunk-")]
        return job

    def close(self) -> dict:
        self.stop.set()
        self.thread.join()
        return self.seen


def sweep_in_thread(*argv: str) -> tuple:
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(rc=ebt(list(argv))), daemon=True)
    thread.start()
    return thread, box


def test_on_slurm_a_trunk_is_a_job_its_branches_wait_for(slurm_url, alone, tmp_path, caplog):
    """The trunk's job is cancelled as soon as it is queued: its branches' jobs, which waited for it, are
    cancelled too (never left pending) and the sweep says why. Run again, the trunk and its branches run
    as dependent jobs submitted at once, and every run gives its result alone."""
    cluster, url, root = slurm_url
    results, config = tmp_path / "res", write_config(tmp_path, SMALL)
    argv = ("run", str(config), "--target", url, "--results", str(results))
    queue = Queue(cluster)
    thread, box = sweep_in_thread(*argv)
    wait_until("the trunk's and its branches' jobs", lambda: len(queue.seen) == 3, 120, 0.05)
    cluster.command("scancel", str(queue.trunk_job()))
    thread.join(300)
    seen = queue.close()
    assert not thread.is_alive() and box["rc"] == 1
    assert caplog.text.count("did not start: its trunk trunk-") == 2, caplog.text
    branch_jobs = [job for name, (job, _) in seen.items() if not name.startswith("ebt-trunk-")]
    assert len(branch_jobs) == 2
    assert all(cluster.wait_job(j, ("CANCELLED",), 60) for j in branch_jobs)  # not pending forever

    queue = Queue(cluster)
    assert ebt(list(argv)) == 0
    seen = queue.close()
    assert outcomes(results) == alone
    (trunk_name,) = [n for n in seen if n.startswith("ebt-trunk-")]
    trunk_job = seen[trunk_name][0]
    assert len(seen) == 3 and not set(branch_jobs) & {j for j, _ in seen.values()}  # new jobs
    trunk = cluster.wait_job(trunk_job, ("COMPLETED",), 30)
    for name, (job, dependency) in seen.items():
        if name == trunk_name:
            continue
        assert dependency.startswith("afterok:%d" % trunk_job), (name, dependency)
        branch = cluster.wait_job(job, ("COMPLETED",), 30)  # the job ends a moment after its run_end
        assert branch["SubmitTime"] < trunk["EndTime"]  # queued at once, not once the trunk had ended
        assert branch["StartTime"] >= trunk["EndTime"]
    trunk_dir, branches = trunk_and_branches(root, results)
    assert search_epochs(trunk_dir) >= 3 and not any(search_epochs(b) for b in branches)
