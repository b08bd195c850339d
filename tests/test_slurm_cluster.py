"""The slurm:// target's faults on a test cluster that looks like a real one (tests/slurm.py `start_cluster`):
two compute nodes (two slurmd on this host) and a third whose Python has no torch, accounting through
slurmdbd + MariaDB with limits enforced, partitions with MaxTime and memory as a resource, preemption by
partition priority, and a user that is not root logging in on the login node (a real sshd) to submit.

Each test is one fault the target must survive without a duplicate job: a sweep past the submit limit
the controller enforces, squeue failing for 30 s, a run longer than its partition's MaxTime, a node going
down mid-run; and the pre-run checks on a compute node whose Python is not the login node's.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import pytest
import yaml

from experiments import paths
from experiments import events as ev
from experiments.events import CHECKPOINT, EPOCH, OK, RUN_END, STOPPED, read_events
from harness.cli import main as ebt
from harness.targets.slurm import SlurmTarget
from tests.slurm import NO_TORCH, NODES, PARTITION, SCAVENGER, SHORT, URGENT, USER, cluster_available, \
    cluster_missing_reason, start_cluster, start_login_host, wait_until
from tests.sshd import HOST_ALIAS, sshd_available
from tests.waiting import start_in_thread

# one cluster for the module, on one xdist worker (beside the single-node cluster's group on another)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm-cluster")]

# A tiny but real run on the offline digits set.
TINY = dict(arch="vgg", depth=11, width=0.125, dataset="digits", train_subset=256, test_subset=64,
            batch_size=32, lr=0.1, epochs=3, device="cpu", workers=0, eb_ratios=[0.5], eb_queue=2,
            eb_epsilon=0.3, prune_ratio=0.5, meter="none", method="dense")


@pytest.fixture(scope="module")
def real_cluster() -> Iterator[tuple]:
    """The cluster and its login node, for this module. Skips without Slurm's accounting packages,
    unless EBT_REQUIRE_SLURM=1 (CI), where they must be there. Its folder is not under pytest's
    (mode 0700): the cluster's user reads and writes there."""
    if not (cluster_available() and sshd_available()):
        reason = cluster_missing_reason() if not cluster_available() else "OpenSSH server not installed"
        if os.environ.get("EBT_REQUIRE_SLURM") == "1":
            pytest.fail("EBT_REQUIRE_SLURM=1 but: " + reason)
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="ebt-cluster-"))
    cluster = start_cluster(root)
    try:
        server = start_login_host(root / "login", cluster)
    except BaseException:
        cluster.stop()
        raise
    yield cluster, server
    server.stop()
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cluster(real_cluster: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """(cluster, url(partition, **options) -> slurm:// URL with a per-test root on the shared folder, that
    root); the login node's host key is trusted. Afterwards: no limit, squeue answers, every node up."""
    slurm, server = real_cluster
    monkeypatch.setenv("EBT_SSH_CONFIG", str(server.ssh_config))
    server.known_hosts.write_text(server.known_hosts_line())
    root = slurm.shared / tmp_path.name

    def url(partition: str = PARTITION, **options) -> str:
        query = dict(partition=partition, root=str(root), python=sys.executable, poll="1", **options)
        return "slurm://%s?%s" % (HOST_ALIAS, urlencode(query))
    yield slurm, url, root
    slurm.submit_limit(0)
    slurm.fail_squeue_for(0)
    for partition in slurm.partitions:
        slurm.command("scancel", "--partition", partition, check=False)
    slurm.command("scontrol", "update", "NodeName=" + ",".join(NODES), "State=RESUME", check=False)


def config(tmp_path: Path, sweep: dict = None, **changes) -> Path:
    raw = dict(TINY, **changes)
    if sweep:
        raw["sweep"] = sweep
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def records(results: Path) -> list:
    return [json.loads(p.read_text()) for p in sorted(results.glob("runs/*/" + paths.RECORD))]


def run_info(results: Path, run_id: str) -> dict:
    return json.loads((results / "runs" / run_id / paths.RUN_INFO).read_text())


def events_of(root: Path, run_id: str) -> list:
    return read_events(paths.events(root / "runs" / run_id))


def epochs_of(root: Path, run_id: str) -> list:
    return [e["epoch"] for e in events_of(root, run_id) if e["event"] == EPOCH]


def run_ids(results: Path) -> list:
    return sorted(p.parent.name for p in results.glob("runs/*/" + paths.RUN_INFO))


def one_job_per_run(slurm, run_ids_: list) -> dict:
    """{run_id: its one job} from the accounting database; fails if a run has no job or more than one."""
    jobs = {}
    for job in slurm.accounted("JobID", "JobName"):
        jobs.setdefault(job["JobName"], []).append(job["JobID"])
    assert all(len(jobs.get("ebt-" + r, [])) == 1 for r in run_ids_), jobs
    return {r: int(jobs["ebt-" + r][0]) for r in run_ids_}


def attempts_of(slurm, job: int, *fields: str) -> list:
    """(State, *fields) of each attempt of `job` in the accounting database, once its last attempt's end
    is there (slurmctld sends it to slurmdbd a moment after the job ends)."""
    def ended() -> list:
        rows = [a for a in slurm.accounted("JobID", "State", *fields, duplicates=True) if int(a["JobID"]) == job]
        return rows if rows and rows[-1]["State"] not in ("RUNNING", "COMPLETING", "PENDING") else []
    return [(a["State"], *(a[f] for f in fields)) for a in wait_until("job %d's end in sacct" % job, ended, 60, 1)]


def test_sweep_past_the_submit_limit_runs_each_once(cluster, tmp_path, caplog):
    """The user's MaxSubmitJobs is 2 (sacctmgr), which the target reads from the accounting database. A
    3-run sweep told a larger limit (`max_submit=3`, as when accounting is not readable) meets slurmctld's
    refusal of the third job (AssocMaxSubmitJobLimit) and goes on in waves: every run ends ok on one of the
    two nodes, and the accounting database has exactly one job per run, submitted by the user."""
    slurm, url, root = cluster
    results = tmp_path / "results"
    slurm.submit_limit(2)
    target = SlurmTarget(url())
    try:
        assert target.submit_limit() == 2
    finally:
        target.close()
    caplog.set_level(logging.INFO, logger="harness.targets.slurm")
    assert ebt(["run", str(config(tmp_path, epochs=2, sweep={"seed": [0, 1, 2]})), "--target",
                url(max_submit="3"), "--results", str(results)]) == 0
    # sbatch's own words (22.05): "Batch job submission failed: Job violates accounting/QOS policy (job
    # submit limit, user's size and/or time limits)"
    assert "over your submit limit" in caplog.text and "(job submit limit" in caplog.text, caplog.text
    done = records(results)
    assert len(done) == 3 and all(r["status"] == OK for r in done)
    jobs = one_job_per_run(slurm, [r["run_id"] for r in done])
    ended = [attempts_of(slurm, j, "User", "NodeList") for j in jobs.values()]
    assert all(len(a) == 1 and a[0][:2] == ("COMPLETED", USER) for a in ended), ended
    # the first two jobs ran side by side, one per node (--exclusive)
    assert {a[0][2] for a in ended} == set(NODES), ended


def test_squeue_failing_for_30_s_loses_no_run(cluster, tmp_path, capsys):
    """Two runs go on, one per node, when squeue on the login node starts failing ("Socket timed out")
    for 30 s: `ebt status` says unreachable meanwhile, never lost; both runs stay followed to their end,
    each with its one job (nothing resubmitted)."""
    slurm, url, root = cluster
    results = tmp_path / "results"
    thread, box = start_in_thread("run", str(config(tmp_path, epochs=4, sweep={"seed": [0, 1]})), "--target",
                                  url(), "--results", str(results))
    ids = wait_until("two runs", lambda: len(run_ids(results)) == 2 and run_ids(results), 120)
    wait_until("both training", lambda: all(epochs_of(root, r) for r in ids), 300, every_s=0.1)
    slurm.fail_squeue_for(30)
    capsys.readouterr()
    assert ebt(["status", "--results", str(results)]) == 0
    table = capsys.readouterr().out
    assert table.count(ev.UNREACHABLE) == 2 and ev.LOST not in table, table
    thread.join(300)
    assert not thread.is_alive() and box["rc"] == 0
    assert all(run_info(results, r)["launches"] == 1 for r in ids)
    one_job_per_run(slurm, ids)
    assert all(r["status"] == OK for r in records(results)) and len(records(results)) == 2


def outlast_the_minute(url: str, tmp_path: Path, root: Path) -> tuple:
    """Run on SHORT until a run needs a requeue: (results, run_id, its log). The first run's size suits a
    2-core host; a faster host finishes it inside the minute, and the next run is sized from its epochs."""
    epochs = 20
    for attempt in range(3):
        results = tmp_path / ("results-%d" % attempt)
        assert ebt(["run", str(config(tmp_path, epochs=epochs, train_subset=768)), "--target", url,
                    "--results", str(results)]) == 0
        (run_id,) = run_ids(results)
        log = events_of(root, run_id)
        if sum(e["event"] == RUN_END for e in log) > 1:
            return results, run_id, log
        times = [e["t"] for e in log if e["event"] == EPOCH]
        epoch_s = (times[-1] - times[0]) / (len(times) - 1)
        logging.getLogger(__name__).warning("%d epochs of %.1f s each ended inside SHORT's minute: a longer run",
                                            epochs, epoch_s)
        epochs = max(2 * epochs, math.ceil(65.0 / epoch_s))  # a signal comes by 55 s in
    raise AssertionError("no run of up to %d epochs outlasted SHORT's minute" % epochs)


def test_a_run_longer_than_max_time_requeues_itself_to_the_end(cluster, tmp_path):
    """Partition SHORT's MaxTime is 1 minute (Slurm's smallest) and the run needs more: near the limit
    Slurm sends USR1 (`--signal=B:USR1@5`, the batch shell being the runner; slurmctld looks every 30 s,
    and signals when at most grace + 30 s are left), the runner checkpoints mid-epoch and requeues its
    job, and the next attempt goes on from there, until the run is done. Every epoch is logged once; no
    attempt ends TIMEOUT."""
    slurm, url, root = cluster
    results, run_id, log = outlast_the_minute(url(SHORT, grace="5"), tmp_path, root)
    ends = [e for e in log if e["event"] == RUN_END]
    assert ends[-1]["status"] == OK, ends
    assert all(e["status"] == STOPPED and "time limit near" in e["error"] for e in ends[:-1]), ends
    record = json.loads((results / "runs" / run_id / paths.RECORD).read_text())
    epochs = json.loads((root / "runs" / run_id / paths.SPEC).read_text())["epochs"]
    assert epochs_of(root, run_id) == list(range(1, epochs + 1))
    job = one_job_per_run(slurm, [run_id])[run_id]
    assert attempts_of(slurm, job) == [("REQUEUED",)] * (len(ends) - 1) + [("COMPLETED",)]
    assert record["status"] == OK and sum(p["epochs"] for p in record["phases"]) == epochs


def test_a_node_going_down_mid_run_requeues_the_job_to_the_other(cluster, tmp_path):
    """An admin (or slurmctld, for a node that stopped answering) marks the run's node DOWN while it
    trains: Slurm kills the job there and requeues it (NODE_FAIL in accounting); it starts again on the
    other node, resumes from its checkpoint, and the run ends ok with every epoch, once but for one that
    the kill may have cut between its event and its checkpoint."""
    slurm, url, root = cluster
    results = tmp_path / "results"
    epochs = 5
    thread, box = start_in_thread("run", str(config(tmp_path, epochs=epochs)), "--target", url(),
                                  "--results", str(results))
    run_id = wait_until("the run", lambda: run_ids(results), 120)[0]
    wait_until("a checkpoint", lambda: any(e["event"] == CHECKPOINT for e in events_of(root, run_id)), 300,
               every_s=0.1)
    job = run_info(results, run_id)["pid"]
    first = slurm.job(job)["NodeList"]
    slurm.command("scontrol", "update", "NodeName=" + first, "State=DOWN", "Reason=ebt-test")
    thread.join(300)
    assert not thread.is_alive() and box["rc"] == 0
    (other,) = set(NODES) - {first}
    assert attempts_of(slurm, job, "NodeList") == [("NODE_FAIL", first), ("COMPLETED", other)]
    done = epochs_of(root, run_id)
    assert sorted(set(done)) == list(range(1, epochs + 1)) and len(done) - epochs <= 1, done
    record = json.loads((results / "runs" / run_id / paths.RECORD).read_text())
    assert record["status"] == OK and sum(p["epochs"] for p in record["phases"]) == epochs


def test_a_run_preempted_on_a_cancel_partition_ends_with_slurms_word(cluster, tmp_path, capsys):
    """A run in SCAVENGER (PreemptMode=CANCEL) while a job of URGENT (a higher PriorityTier) wants its
    node: Slurm cancels it (PREEMPTED, not requeued); the follower ends the run stopped at its checkpoint
    instead of waiting for a requeue that will not come, and `ebt status` says preempted."""
    slurm, url, root = cluster
    results = tmp_path / "results"
    thread, box = start_in_thread("run", str(config(tmp_path, epochs=20)), "--target", url(SCAVENGER),
                                  "--results", str(results))
    run_id = wait_until("the run", lambda: run_ids(results), 120)[0]
    wait_until("an epoch", lambda: epochs_of(root, run_id), 300, every_s=0.1)
    node = slurm.job(run_info(results, run_id)["pid"])["NodeList"]
    slurm.command("sbatch", "--partition=" + URGENT, "--nodelist=" + node, "--exclusive", "--output=/dev/null",
                  "--wrap", "sleep 2")
    thread.join(120)
    assert not thread.is_alive() and box["rc"] == 1
    assert [e["status"] for e in events_of(root, run_id) if e["event"] == RUN_END] == [STOPPED]
    capsys.readouterr()
    assert ebt(["status", "--results", str(results)]) == 0
    table = capsys.readouterr().out
    assert "preempted on " + node in table and STOPPED in table, table


def test_checks_run_on_a_compute_node(real_cluster, cluster, tmp_path, capsys, caplog):
    """`ebt doctor` names Slurm's version, the partition's usable nodes and the run root seen from a
    node; `ebt run`'s preflight probes a compute node: on NO_TORCH, whose node has no torch while the
    login node has it, it fails before any run folder exists."""
    slurm, url, root = cluster
    _, server = real_cluster
    login_torch = subprocess.run(["ssh", "-F", str(server.ssh_config), HOST_ALIAS, sys.executable, "-c",
                                  "'import torch'"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert login_torch.returncode == 0, login_torch.stdout
    capsys.readouterr()
    assert ebt(["doctor", "--target", url()]) == 0
    out = capsys.readouterr().out
    assert "ok    slurm: 22.05" in out and "(at least 17.11)" in out, out
    assert "ok    partition: %s: 2 of 2 nodes usable" % PARTITION in out, out
    assert "ok    run root on a node: %s" % root in out, out
    results = tmp_path / "results"
    assert ebt(["run", str(config(tmp_path)), "--target", url(NO_TORCH), "--results", str(results)]) != 0
    assert "cannot import torch" in caplog.text and "not on this node" in caplog.text, caplog.text
    assert not list(results.glob("runs/*"))
    assert ebt(["doctor", "--target", url("nosuch")]) != 0
    assert "no partition 'nosuch'" in capsys.readouterr().out
