"""The slurm:// target against a real single-node Slurm cluster (tests/slurm.py) whose login node is the
real sshd of the SSH tests: a two-run sweep to two records with Slurm's states in `ebt status`, a job
whose runner dies mid-run and is requeued (every epoch exactly once), and `ebt cancel`. The checks on a
compute node, and faults on a cluster with several nodes, accounting and limits, are in
test_slurm_cluster.py.

The cluster's "shared filesystem" is this machine's: the run folders under a temp `root` are what the
compute node writes and the login node reads.
"""
from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml

from experiments import paths
from experiments import events as ev
from experiments.events import CHECKPOINT, EPOCH, OK, RESUME, RUN_END, STOPPED, read_events
from harness.cli import main as ebt
from harness.targets.slurm import SlurmAddress, SlurmTarget
from tests.slurm import PARTITION, wait_until
from tests.waiting import start_in_thread

pytestmark = pytest.mark.slow

# A tiny but real run on the offline digits set.
TINY = dict(arch="vgg", depth=11, width=0.125, dataset="digits", train_subset=256, test_subset=64,
            batch_size=32, lr=0.1, epochs=3, device="cpu", workers=0, eb_ratios=[0.5], eb_queue=2,
            eb_epsilon=0.3, prune_ratio=0.5, meter="none", method="dense")


def config(tmp_path: Path, **changes) -> Path:
    raw = dict(TINY, **changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def status_table(capsys: pytest.CaptureFixture, results: Path) -> str:
    capsys.readouterr()
    assert ebt(["status", "--results", str(results)]) == 0
    return capsys.readouterr().out


def run_info(results: Path, run_id: str) -> dict:
    return json.loads((results / "runs" / run_id / paths.RUN_INFO).read_text())


def test_url_round_trip_and_bad_urls():
    address = SlurmAddress.parse("slurm://me@login:2222?partition=tx2&sbatch=--gres%3Dgpu%3A1+--time%3D1:00:00"
                                 "&exclusive=0")
    assert address.login == "me@login:2222" and address.sbatch == ("--gres=gpu:1", "--time=1:00:00")
    assert not address.exclusive and SlurmAddress.parse(str(address)) == address
    assert address.ssh_url().startswith("ssh://me@login:2222?")
    for bad, word in (("slurm://login", "partition"), ("slurm://login?partition=a&color=red", "color"),
                      ("slurm://login?partition=a&exclusive=maybe", "exclusive"), ("slurm://?partition=a", "LOGIN")):
        with pytest.raises(Exception, match=word):
            SlurmAddress.parse(bad)


def test_sbatch_line_is_exclusive_and_requeueable():
    target = SlurmTarget("slurm://login?partition=tx2&sbatch=--time%3D2:00:00")
    argv = target.sbatch_argv("/c", "/r/spec.json", "/r", "run-1")
    assert {"--exclusive", "--requeue", "--partition=tx2", "--open-mode=append", "--time=2:00:00"} <= set(argv)
    assert argv[-1].endswith("-m experiments run /r/spec.json --out /r")
    shared = SlurmTarget("slurm://login?partition=tx2&exclusive=0").sbatch_argv("/c", "/r/spec.json", "/r", "x")
    assert "--exclusive" not in shared


def test_two_run_sweep_to_two_records(cluster, tmp_path, capsys):
    slurm, url, root = cluster
    results = tmp_path / "results"
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text() + "sweep:\n  seed: [0, 1]\n")
    assert ebt(["run", str(cfg), "--target", url, "--results", str(results)]) == 0
    records = [json.loads(p.read_text()) for p in sorted(results.glob("runs/*/" + paths.RECORD))]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    jobs = set()
    for record in records:
        info = run_info(results, record["run_id"])
        # the job id stands where a pid would; the job ends a moment after the runner's run_end
        job = slurm.wait_job(info["pid"], ("COMPLETED",), 30)
        assert job["NodeList"] == "ebtnode"
        assert job["Partition"] == PARTITION and job["OverSubscribe"] == "NO"  # --exclusive
        assert job["Requeue"] == "1"
        epochs = [e for e in read_events(results / "runs" / record["run_id"] / paths.EVENTS) if e["event"] == EPOCH]
        assert [e["epoch"] for e in epochs] == [1, 2, 3]
        jobs.add(info["pid"])
    assert len(jobs) == 2
    table = status_table(capsys, results)
    assert table.count("completed on ebtnode") == 2, table


def the_run(results: Path) -> str:
    return wait_until("run.json", lambda: list(results.glob("runs/*/" + paths.RUN_INFO)), 120)[0].parent.name


def events_of(root: Path, run_id: str) -> list:
    return read_events(paths.events(root / "runs" / run_id))


def test_runner_killed_then_requeued_finishes_every_epoch_once(cluster, tmp_path, capsys):
    """The runner dies mid-run without a word (SIGKILL, as on a node that loses power): the job fails,
    the run is lost; `scontrol requeue` queues the same job again, its runner resumes from the checkpoint,
    and `ebt attach` follows it to a record with the configured epochs, none twice."""
    slurm, url, root = cluster
    results = tmp_path / "results"
    thread, box = start_in_thread("run", str(config(tmp_path, epochs=6)), "--target", url, "--results", str(results))
    run_id = the_run(results)
    wait_until("a checkpoint", lambda: any(e["event"] == CHECKPOINT for e in events_of(root, run_id)), 300)
    job_id = run_info(results, run_id)["pid"]
    os.kill(int(Path(paths.runner_pid(root / "runs" / run_id)).read_text()), signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive() and box["rc"] == 1
    assert slurm.wait_job(job_id, ("FAILED",), 30)["NodeList"] == "ebtnode"
    table = status_table(capsys, results)
    assert "lost" in table and "failed on ebtnode" in table, table
    slurm.command("scontrol", "requeue", str(job_id))
    table = status_table(capsys, results)
    assert ev.PENDING in table and "requeued 1x" in table, table
    assert ebt(["attach", run_id, "--results", str(results)]) == 0
    record = json.loads((results / "runs" / run_id / paths.RECORD).read_text())
    assert record["status"] == "ok" and sum(p["epochs"] for p in record["phases"]) == 6
    log = events_of(root, run_id)
    assert any(e["event"] == RESUME for e in log)
    done = [e["epoch"] for e in log if e["event"] == EPOCH]
    killed_at = max(e["phase_epoch"] for e in log[:[e["event"] for e in log].index(RESUME)]
                    if e["event"] == CHECKPOINT)
    # every epoch once, except one that the kill cut between its event and its checkpoint
    assert sorted(set(done)) == list(range(1, 7)) and len(done) - 6 <= 1 and killed_at >= 1


def test_preempted_job_is_followed_through_its_requeue(cluster, tmp_path):
    """`scontrol requeue` of a RUNNING job (what preemption does): Slurm stops the runner (SIGTERM: a
    `stopped` run_end at a checkpoint) and queues the job again; the follower of `ebt run` keeps following
    the requeued job to the end instead of stopping at the first run_end."""
    slurm, url, root = cluster
    results = tmp_path / "results"
    thread, box = start_in_thread("run", str(config(tmp_path, epochs=5)), "--target", url, "--results", str(results))
    run_id = the_run(results)
    wait_until("a checkpoint", lambda: any(e["event"] == CHECKPOINT for e in events_of(root, run_id)), 300)
    slurm.command("scontrol", "requeue", str(run_info(results, run_id)["pid"]))
    thread.join(300)
    assert not thread.is_alive() and box["rc"] == 0
    log = events_of(root, run_id)
    assert [e["status"] for e in log if e["event"] == RUN_END] == [STOPPED, OK]
    record = json.loads((results / "runs" / run_id / paths.RECORD).read_text())
    assert record["status"] == "ok" and sum(p["epochs"] for p in record["phases"]) == 5


def test_cancel_a_sweep_then_resume_it(cluster, tmp_path, capsys):
    """`ebt cancel CONFIG` scancels the sweep's job: the runner stops at a checkpoint, Slurm says
    cancelled, the run is stopped; a second cancel finds nothing to cancel; `ebt resume` submits a new
    job that continues from the checkpoint to the configured epochs."""
    slurm, url, root = cluster
    results = tmp_path / "results"
    cfg = config(tmp_path, epochs=10)
    thread, box = start_in_thread("run", str(cfg), "--target", url, "--results", str(results))
    run_id = the_run(results)
    wait_until("an epoch", lambda: any(e["event"] == EPOCH for e in events_of(root, run_id)), 300, every_s=0.05)
    assert ebt(["cancel", str(cfg), "--results", str(results)]) == 0
    thread.join(120)
    assert not thread.is_alive() and box["rc"] == 1
    first_job = run_info(results, run_id)["pid"]
    assert slurm.wait_job(first_job, ("CANCELLED",), 30)
    table = status_table(capsys, results)
    assert STOPPED in table and "cancelled on ebtnode" in table, table
    assert ebt(["cancel", run_id, "--results", str(results)]) == 0
    assert "already cancelled" in capsys.readouterr().out
    assert ebt(["cancel", "no-such-run", "--results", str(results)]) == 2
    assert ebt(["resume", run_id, "--results", str(results)]) == 0
    assert run_info(results, run_id)["pid"] != first_job
    record = json.loads((results / "runs" / run_id / paths.RECORD).read_text())
    assert record["status"] == "ok" and sum(p["epochs"] for p in record["phases"]) == 10


def test_plan_calibrates_on_a_compute_node(cluster, tmp_path, capsys):
    """`ebt plan` on slurm:// calibrates through srun on a node of the partition and prints the wall time
    on the partition's nodes (sinfo: one here)."""
    _, url, _ = cluster
    results = tmp_path / "results"
    capsys.readouterr()
    assert ebt(["plan", str(config(tmp_path)), "--target", url, "--results", str(results), "--budget", "3"]) == 0
    out = capsys.readouterr().out
    assert "wall time alone on 1 node:" in out and "dense" in out, out
    (cached,) = (results / "calibrations").iterdir()
    assert json.loads(cached.read_text())["target"] == str(SlurmAddress.parse(url))


def test_time_limit_signal_makes_the_job_requeue_itself(cluster, tmp_path):
    """What `--signal=B:USR1@GRACE` delivers near the time limit (to the batch shell, which is the runner:
    `scancel --batch --signal=USR1`): the runner stops at a mid-epoch checkpoint and requeues its own job;
    the next attempt continues that epoch and finishes the run, every epoch logged once."""
    slurm, url, root = cluster
    results = tmp_path / "results"
    cfg = config(tmp_path, epochs=4, train_subset=1024)
    thread, box = start_in_thread("run", str(cfg), "--target", url, "--results", str(results))
    run_id = the_run(results)
    wait_until("an epoch", lambda: any(e["event"] == EPOCH for e in events_of(root, run_id)), 300, every_s=0.05)
    job_id = run_info(results, run_id)["pid"]
    slurm.command("scancel", "--batch", "--signal=USR1", str(job_id))
    thread.join(600)
    run_dir = root / "runs" / run_id
    assert not thread.is_alive() and box["rc"] == 0, "%s\n%s\n%s\n%s" % (
        [(e["event"], e.get("status"), e.get("error")) for e in events_of(root, run_id)],
        Path(paths.runner_log(run_dir)).read_text()[-3000:], slurm.job(job_id), slurm.logs()[-3000:])
    log = events_of(root, run_id)
    ends = [e for e in log if e["event"] == RUN_END]
    assert [e["status"] for e in ends] == [STOPPED, OK] and "time limit near" in ends[0]["error"]
    assert [e["epoch"] for e in log if e["event"] == EPOCH] == [1, 2, 3, 4]
    assert slurm.job(job_id)["Restarts"] == "1"
    record = json.loads((results / "runs" / run_id / paths.RECORD).read_text())
    assert record["status"] == "ok" and sum(p["epochs"] for p in record["phases"]) == 4


def test_a_held_job_is_reported_not_waited_for(cluster, tmp_path, capsys, caplog):
    """A queued job that an admin holds (`scontrol hold`: JobHeldAdmin) will not start by itself: the
    follower stops with a line saying how to release or cancel it, `ebt status` shows it held, and
    `ebt cancel` ends it. (Submitted through the lifecycle: the job's --begin would hold preflight's srun.)"""
    from harness import CODE_ROOT, lifecycle
    from harness.config import load_specs
    slurm, url, root = cluster
    results = tmp_path / "results"
    spec = dict(load_specs(config(tmp_path), {})[0], meter_where="device")
    target = SlurmTarget(url + "&" + urlencode({"sbatch": "--begin=now+600"}))
    try:
        info = lifecycle.launch(spec, target, results, CODE_ROOT)
    finally:
        target.close()
    slurm.command("scontrol", "hold", str(info.pid))
    assert ebt(["attach", info.run_id, "--results", str(results)]) == 1
    assert "will not start by itself (JobHeldAdmin)" in caplog.text, caplog.text
    assert "scontrol release %d" % info.pid in caplog.text
    table = status_table(capsys, results)
    assert "pending (JobHeldAdmin)" in table, table
    assert ebt(["cancel", info.run_id, "--results", str(results)]) == 0
    assert slurm.wait_job(info.pid, ("CANCELLED",), 30)


def test_partition_limits_and_waves_sized_up_front(cluster, tmp_path, caplog):
    """The partition's MaxTime becomes every job's --time; a time above it, one that leaves no room for
    the grace, or a misspelt partition is one clear error before any file is written. Under a submit
    limit of 1 (`max_submit=1`, and sbatch refusing past it) a 2-run sweep is submitted in waves sized up
    front: the second job waits for the first to end, sbatch never refuses one, both end ok."""
    from harness import CODE_ROOT
    from harness.errors import EbtError
    slurm, url, root = cluster
    slurm.command("scontrol", "update", "PartitionName=%s" % PARTITION, "MaxTime=1-00:00:00")
    try:
        for bad, said in (("time=2-00:00:00", "above partition ebt's MaxTime 1-00:00:00"),
                          ("time=00:05:00", "leaves no room for grace=300 s"), ("partition=nosuch", "no partition")):
            target = SlurmTarget(url.replace("partition=" + PARTITION, bad) if bad.startswith("partition")
                                 else url + "&" + bad)
            try:
                with pytest.raises(EbtError, match=said):
                    target.launch(target.prepare(CODE_ROOT), {"run_id": "never"}, target.run_dir("never"))
            finally:
                target.close()
        assert not (root / "runs" / "never").exists()
        results = tmp_path / "results"
        cfg = config(tmp_path, epochs=2)
        cfg.write_text(cfg.read_text() + "sweep:\n  seed: [0, 1]\n")
        slurm.submit_limit(1)
        caplog.set_level(logging.INFO, logger="harness.targets.slurm")
        assert ebt(["run", str(cfg), "--target", url + "&max_submit=1", "--results", str(results)]) == 0
    finally:
        slurm.command("scontrol", "update", "PartitionName=%s" % PARTITION, "MaxTime=INFINITE")
    assert "your submit limit is 1 jobs" in caplog.text and "waits: 1 of your jobs" in caplog.text, caplog.text
    assert "over your submit limit" not in caplog.text and "refused" not in caplog.text
    records = [json.loads(p.read_text()) for p in sorted(results.glob("runs/*/" + paths.RECORD))]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    for record in records:
        assert slurm.job(run_info(results, record["run_id"])["pid"])["TimeLimit"] == "1-00:00:00"
    assert "max_submit=1" in run_info(results, records[0]["run_id"])["target"]  # kept readable
    assert "%2F" not in run_info(results, records[0]["run_id"])["target"]


def test_cancel_many_runs_with_one_scancel(cluster, tmp_path, capsys, monkeypatch):
    """`ebt cancel CONFIG` on three queued jobs asks Slurm once for all of them and cancels them with one
    scancel; a second cancel finds them all cancelled without any scancel."""
    from harness import CODE_ROOT, lifecycle
    from harness.config import load_specs
    slurm, url, root = cluster
    results = tmp_path / "results"
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text() + "sweep:\n  seed: [0, 1, 2]\n")
    target = SlurmTarget(url + "&" + urlencode({"sbatch": "--begin=now+600"}))
    try:
        jobs = [lifecycle.launch(dict(s, meter_where="device"), target, results, CODE_ROOT).pid
                for s in load_specs(cfg, {})]
    finally:
        target.close()
    sent = []
    real_sh = SlurmTarget._sh
    monkeypatch.setattr(SlurmTarget, "_sh", lambda self, conn, command, timeout=None: (
        sent.append(command), real_sh(self, conn, command, timeout))[1])
    capsys.readouterr()
    assert ebt(["cancel", str(cfg), "--results", str(results)]) == 0
    scancels = [c for c in sent if c.startswith("scancel")]
    assert scancels == ["scancel " + " ".join(map(str, jobs))], sent
    assert len([c for c in sent if c.startswith("squeue")]) == 1, sent
    assert capsys.readouterr().out.count("cancelled; `ebt resume") == 3
    for job in jobs:
        slurm.wait_job(job, ("CANCELLED",), 30)
    sent.clear()
    assert ebt(["cancel", str(cfg), "--results", str(results)]) == 0
    assert capsys.readouterr().out.count("already cancelled") == 3 and not [c for c in sent if "scancel" in c]


def test_srun_waits_a_bounded_time_and_says_so(cluster, tmp_path):
    """`ebt plan`'s and the checks' srun: with the partition's only node held, it gives up after its
    --immediate wait, saying no node was free (not a lost link), and leaves nothing queued; a command
    that outlasts its time is stopped on the login node and its job ends with it."""
    slurm, url, _ = cluster
    blocker = int(slurm.command("sbatch", "--parsable", "--exclusive", "-p", PARTITION, "-o", "/dev/null",
                                "--wrap", "sleep 120").strip())
    slurm.wait_job(blocker, ("RUNNING",), 30)
    target = SlurmTarget(url)
    try:
        rc, _, err = target.run_on_node("/nowhere", ["hw.probe"], timeout=30, wait_s=2)
        assert rc != 0 and "no node of partition ebt was free within 2 s (srun --immediate)" in err, err
        live = slurm.command("squeue", "-h", "-o", "%i")
        assert live.split() == [str(blocker)], live  # the srun's own job did not stay queued
        slurm.command("scancel", str(blocker))
        slurm.wait_job(blocker, ("CANCELLED",), 30)
        rc, _, err = target._srun("srun sleep", "sleep 60", timeout=3, wait_s=None)
        assert rc == 124 and "did not end within 3 s; stopped" in err, (rc, err)
        wait_until("the srun's job ended", lambda: not slurm.command("squeue", "-h", "-o", "%i").split(), 30)
    finally:
        target.close()
