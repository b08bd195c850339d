"""The Slurm output parsers (harness/targets/slurm_output.py) on what Slurm 17.11 to 24.x print.

The outputs are files under tests/fixtures/slurm/, each opening with `# source:` lines that name where it
comes from and its Slurm version. Most are real output of Slurm 17.11, 19.05, 20.11 and 23.11 built from
SchedMD's release tags on the test machine, and of Debian 12's slurm-wlm 22.05: each version ran the same
2-node cluster (slurmctld, two `slurmd -N`, slurmdbd with MariaDB) with the same jobs, and the files hold
what the commands the target sends printed, named `<version>-<command>-<case>.txt`. The others are output
users pasted in issues (their version dated by the fields where they did not state it).
tests/test_slurm.py reads 22.05 live as well.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from harness.targets import slurm_output as so
from harness.targets.slurm import SlurmAddress, SlurmTarget, _given

FIXTURES = Path(__file__).parent / "fixtures" / "slurm"
# the versions captured on the 2-node cluster, and what each one's `sinfo -V` says
BUILT = {"17.11": (17, 11, 13), "19.05": (19, 5, 8), "20.11": (20, 11, 9), "22.05": (22, 5, 8),
         "23.11": (23, 11, 11)}
by_version = pytest.mark.parametrize("v", sorted(BUILT))


def output(name: str) -> str:
    """A fixture's output: the file without its leading `# ` header lines."""
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("# "):
        lines.pop(0)
    return "".join(lines)


def summary(jobs: dict) -> Counter:
    """How the parser classified the jobs: how many of each (state, alive, pending, held)."""
    return Counter((j.state, j.alive, j.pending, j.held) for j in jobs.values())


def with_reason(jobs: dict, reason: str):
    (job,) = [j for j in jobs.values() if j.reason == reason]
    return job


ENDED = {(s, False, False, ""): 1 for s in ("completed", "failed", "timeout")}

# `sinfo -V` / `squeue --version` of distributions' packages: "slurm 17.11.2" (Ubuntu 18.04 slurm-client
# 17.11.2-1build1, as its man pages on manpages.ubuntu.com/bionic name it), 19.05.5 (focal), 21.08.5
# (jammy), 23.11.4 (noble).
VERSIONS = {"slurm 17.11.2": (17, 11, 2), "slurm 19.05.5": (19, 5, 5), "slurm 20.11.4": (20, 11, 4),
            "slurm-wlm 21.08.5": (21, 8, 5), "slurm 23.11.4": (23, 11, 4), "slurm 24.05.1": (24, 5, 1)}


def test_every_fixture_names_its_source_and_version():
    files = sorted(FIXTURES.glob("*.txt"))
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# source: ") and "COMPOSED" not in first, path.name
        assert "github.com/" in first or "real output" in first, path.name
        stated = re.search(r"Slurm (\d{2}\.\d{2})\.\d+", first)
        assert stated or "version not stated" in first, path.name
        if stated and "real output" in first:  # captured here: named by the version that printed it
            assert path.name.startswith(stated.group(1) + "-"), path.name
        assert output(path.name).strip(), path.name
    for v in BUILT:
        assert len(list(FIXTURES.glob(v + "-*.txt"))) >= 35, v


@pytest.mark.parametrize("text, version", VERSIONS.items())
def test_versions(text, version):
    assert so.parse_version(text) == version
    assert version[:2] >= so.MIN_VERSION
    assert so.parse_version("slurm 17.02.11")[:2] < so.MIN_VERSION
    assert so.parse_version("command not found") is None


@by_version
def test_version_of_each_build(v):
    assert so.parse_version(output(v + "-version.txt")) == BUILT[v]  # `slurm 17.11.13-2`, `slurm-wlm 22.05.8`
    assert BUILT[v][:2] >= so.MIN_VERSION


@by_version
def test_squeue_of_jobs_in_every_state(v):
    live = so.parse_squeue("squeue: warning: something\n" + output(v + "-squeue-live.txt"))
    assert summary(live) == Counter({**ENDED, ("running", True, False, ""): 2, ("pending", True, True, ""): 1,
                                     ("pending", True, True, "JobHeldAdmin"): 1,
                                     ("pending", True, True, "JobHeldUser"): 1,
                                     ("pending", True, True, "PartitionTimeLimit"): 1})  # waits for ever
    assert {j.node for j in live.values() if j.state == "running"} == {"n1", "n2"}
    assert with_reason(live, "Resources").node is None
    assert "scontrol release" in with_reason(live, "JobHeldUser").describe()
    (mine,) = so.parse_squeue(output(v + "-squeue-by-name.txt")).values()
    assert (mine.state, mine.node) == ("running", "n1")


@by_version
def test_squeue_of_requeued_cancelled_and_preempted_jobs(v):
    before = so.parse_squeue(output(v + "-squeue-requeued.txt"))
    requeued = with_reason(before, "BeginTime")
    # waits again, not held; 17.11-20.11 still name the node it ran on (%B), 22.05 on `n/a`: not shown
    assert requeued.pending and requeued.alive and not requeued.held
    assert requeued.describe() == "pending (BeginTime)"
    cancelled = so.parse_squeue(output(v + "-squeue-cancelled.txt"))
    just = [j for j, job in cancelled.items() if job.state == "cancelled" and before[j].alive]
    assert len(just) == 2 and not any(cancelled[j].alive for j in just)
    preempted = so.parse_squeue(output(v + "-squeue-preempted.txt"))
    assert summary({j: job for j, job in preempted.items() if job.state != "cancelled"}) == Counter({
        **ENDED, ("preempted", False, False, ""): 1, ("running", True, False, ""): 2})


@by_version
def test_squeue_of_jobs_slurm_holds_or_ends_for_a_node(v):
    jobs = so.parse_squeue(output(v + "-squeue-held-by-slurm.txt"))
    node_fail = with_reason(jobs, "NodeDown")  # --no-requeue: NODE_FAIL in squeue, the job is over
    assert (node_fail.state, node_fail.alive) == ("node_fail", False)
    for reason in ("job requeued in held state", "launch failed requeued held"):  # requeuehold; Prolog failed
        held = with_reason(jobs, reason)
        assert held.pending and held.held == reason and "scontrol release" in held.describe()


@by_version
def test_sacct_of_jobs_in_every_state(v):
    jobs = so.parse_sacct(output(v + "-sacct.txt"))
    assert summary(jobs) == Counter({**ENDED, ("cancelled", False, False, ""): 8,
                                     ("preempted", False, False, ""): 1, ("pending", True, True, ""): 1})
    assert sum(j.node is None for j in jobs.values()) == 5  # `None assigned`: never ran, or requeued
    # one row per attempt: the last row of a job is its state now (17.11 lists the earlier attempts first)
    attempts = output(v + "-sacct-duplicates.txt")
    assert "|REQUEUED|" in attempts and "|NODE_FAIL|" in attempts
    assert {j: a.state for j, a in so.parse_sacct(attempts).items()} == {j: a.state for j, a in jobs.items()}
    more = so.parse_sacct(output(v + "-sacct-node-fail-and-held.txt"))  # sacct cannot tell the held ones
    assert summary(more) == Counter({("node_fail", False, False, ""): 1, ("pending", True, True, ""): 2})
    assert so.parse_sacct(output(v + "-sacct-node-fail-and-held-duplicates.txt")) == more
    assert so.SACCT_FIELDS.split(",") == ["JobIDRaw", "State", "NodeList"]  # no Reason: 17.11 rejects it


def test_sacct_of_a_2024_cluster_by_its_header():
    header, *rows = output("23.x-sacct-parsable.txt").splitlines()
    columns = header.split("|")
    asked = [[row.split("|")[columns.index(f)] for f in ("JobID", "State", "NodeList")] for row in rows]
    jobs = so.parse_sacct("\n".join("|".join(r) for r in asked))
    assert sorted(jobs) == [239023, 239024, 239025, 239026]  # the steps (.batch, .extern, .0) left out
    assert all(j.state == "completed" and not j.alive and j.node == "galvani-cn001" for j in jobs.values())


@by_version
def test_scontrol_jobs_of_each_version(v):
    def job(case):
        return so.parse_scontrol_job(output("%s-scontrol-job-%s.txt" % (v, case)))
    running = job("running")
    assert (running.state, running.node, running.restarts, running.held) == ("running", "n1", 0, "")
    lines = job("lines")  # without -o: the same job over several lines
    assert (lines.job_id, lines.state, lines.node) == (running.job_id, "running", "n1")
    pending = job("pending")  # 17.11 `NodeList=(null)`, 23.11 `NodeList=` (empty)
    assert (pending.reason, pending.held, pending.node) == ("Resources", "", None)
    assert (job("held").held, job("user-held").held) == ("JobHeldAdmin", "JobHeldUser")
    assert job("partition-time-limit").held == "PartitionTimeLimit"
    for case in ("requeued", "node-down"):  # requeued by scontrol, by its node going DOWN: waits again
        again = job(case)
        assert again.pending and not again.held and again.restarts == 1, case
    assert (job("node-fail").state, job("node-fail").alive) == ("node_fail", False)
    for case, reason in (("requeue-hold", "job_requeued_in_held_state"),
                         ("launch-failed-held", "launch_failed_requeued_held")):
        held = job(case)
        assert held.pending and held.held == reason and held.restarts == 1, case
    assert so.parse_scontrol_job("") is None


def test_scontrol_jobs_users_pasted():
    held = so.parse_scontrol_job(output("20.02-scontrol-job-held.txt"))
    assert (held.job_id, held.state, held.restarts, held.node) == (80634, "pending", 1, "yea-node-n2-23")
    assert held.held == "launch_failed_requeued_held"
    running = so.parse_scontrol_job(output("19.05-scontrol-job-oneline.txt"))
    assert (running.job_id, running.state, running.node, running.reason) == (1539172, "running", "jagupard12",
                                                                            "None")
    text = output("20.11-scontrol-job.txt")
    kv = so.parse_key_values(" ".join(text.split()))
    assert kv["Command"].endswith("sims_A=900/python_PinAndTrigger.py-00.slurm")
    assert kv["TRES"] == "cpu=1,mem=4G,node=1,billing=1" and kv["AllocNode:Sid"] == "fidis:20733"
    assert so.parse_scontrol_job(text).node == "f006"
    walled = so.parse_scontrol_job(output("20.x-scontrol-job-wall-limit.txt"))
    assert walled.pending and walled.held == "AssocMaxWallDurationPerJobLimit"  # asks more time than allowed
    reason = so.parse_key_values("JobId=5 JobState=PENDING Reason=launch failed requeued held Dependency=(null)")
    assert reason["Reason"] == "launch failed requeued held"


@pytest.mark.parametrize("state, reason, alive, held", [
    # squeue(1) states and slurmctld's hold texts the capture cluster did not produce (no cgroups for
    # OUT_OF_MEMORY; COMPLETING lasts a moment; a hold after MaxBatchRequeue failed launches)
    ("OUT_OF_MEMORY", "OutOfMemory", False, ""), ("COMPLETING", "None", True, ""), ("BOOT_FAIL", "None", False, ""),
    ("DEADLINE", "DeadLine", False, ""), ("REQUEUE_HOLD", "None", True, "requeue_hold"),
    ("SPECIAL_EXIT", "None", True, "special_exit"), ("PENDING", "JobHoldMaxRequeue", True, "JobHoldMaxRequeue"),
    ("PENDING", "launch failure limit exceeded requeued held", True, "launch failure limit exceeded requeued held"),
])
def test_states_not_captured_classified_as_the_peers_do(state, reason, alive, held):
    job = so.classify(7, state, "n/a", reason)
    assert (job.alive, job.held) == (alive, held)


@by_version
def test_partitions_of_each_version(v):
    idle = output(v + "-sinfo-idle.txt")
    limited = so.parse_partition(output(v + "-scontrol-partition.txt"), idle)
    assert (limited.name, limited.total_nodes, limited.usable_nodes) == ("ebt", 2, 2)
    assert (limited.max_time, limited.default_time, limited.job_time()) == ("00:30:00", "00:10:00", "00:30:00")
    assert (limited.preempt_mode, limited.qos) == ("REQUEUE", "N/A")
    # several lines without -o: the same Key=Value pairs
    assert so.parse_partition(" ".join(output(v + "-scontrol-partition-lines.txt").split()), idle) == limited
    for case, usable in (("allocated", 2), ("draining", 1), ("drained", 1), ("down", 1)):
        nodes = output("%s-sinfo-%s.txt" % (v, case))
        assert so.parse_partition(output(v + "-scontrol-partition.txt"), nodes).usable_nodes == usable, case
    open_ended = so.parse_partition(output(v + "-scontrol-partition-unlimited.txt"), idle)
    assert (open_ended.max_time, open_ended.default_time, open_ended.job_time()) == ("UNLIMITED", "NONE", None)
    assert so.parse_partition(output(v + "-scontrol-partition-not-found.txt"), "") is None


def test_partition_users_pasted():
    stat = so.parse_partition(" ".join(output("20.11-scontrol-partition-stat.txt").split()), "")
    assert (stat.name, stat.total_nodes, stat.default_time, stat.job_time()) == ("stat", 18, "00:30:00", "14-00:00:00")


def test_node_states_that_run_no_job():
    # sinfo -h -o '%D|%T' rows (states and marks of sinfo(1) NODE STATE CODES; composed)
    rows = "2|idle\n1|allocated\n1|down*\n1|drained\n1|mixed\n1|idle*\n1|idle~\n1|allocated$\n1|draining\n"
    part = so.parse_partition(output("22.05-scontrol-partition.txt"), rows)
    assert part.usable_nodes == 6  # idle x2, allocated, mixed, idle~ (powered down, starts), allocated$


@pytest.mark.parametrize("text, seconds", [("30", 1800), ("5:30", 330), ("12:00:00", 43200), ("2-12", 216000),
                                           ("1-00:00:00", 86400), ("1-02:03", 93780), ("UNLIMITED", None),
                                           ("INFINITE", None), ("NONE", None)])
def test_slurm_times(text, seconds):
    assert so.time_s(text) == seconds


@by_version
def test_submit_limit_from_sacctmgr(v):
    qos = output(v + "-sacctmgr-qos.txt")  # normal: 5 per user, long: 3
    # root's two associations (MaxSubmitJobs=4, no DefaultQOS: normal) -> the least of 4 and 5
    assert so.parse_submit_limit(output(v + "-sacctmgr-assoc.txt"), qos) == 4
    assert so.parse_submit_limit(output(v + "-sacctmgr-assoc.txt"), qos, partition_qos="long") == 3
    assert so.parse_submit_limit(output(v + "-sacctmgr-assoc-no-limit.txt"), qos) == 5  # normal's
    assert so.parse_submit_limit(output(v + "-sacctmgr-assoc-no-limit.txt"), "normal|\n") is None
    assert so.submit_error_kind(output(v + "-sbatch-submit-limit.txt")) == "limit"  # 17.11: one line only
    assert so.parse_submit_limit("", "") is None  # no association: no accounting on this cluster


def test_submit_limit_of_a_qos_per_user():
    # nobody: MaxSubmitJobs=2, QOS normal 1 per user: the QOS limit is the one sbatch then enforced
    assert so.parse_submit_limit(output("22.05-sacctmgr-assoc-user.txt"), output("22.05-sacctmgr-qos-user.txt")) == 1
    assert so.submit_error_kind(output("22.05-sbatch-submit-limit-qos.txt")) == "limit"


@by_version
def test_sbatch_srun_and_no_accounting_of_each_version(v):
    assert output(v + "-sbatch-parsable.txt").strip().isdigit()  # the target's whole sbatch line, accepted
    assert so.submit_error_kind(output(v + "-sbatch-invalid-partition.txt")) == "refused"
    assert so.node_not_free(output(v + "-srun-immediate-busy.txt"))
    for name in ("sacct-no-accounting", "sacctmgr-no-accounting"):  # 17.11: `SLURM accounting storage ...`
        assert any(s in output("%s-%s.txt" % (v, name)) for s in so.NO_ACCOUNTING), name
    assert any(s in output(v + "-scontrol-job-unknown.txt") for s in so.NO_SUCH_JOB)
    # slurmctld down: sbatch is retried; squeue fails (the target asks again, then says unreachable)
    assert so.submit_error_kind(output(v + "-sbatch-controller-down.txt")) == "transient"
    assert "Unable to contact slurm controller" in output(v + "-squeue-controller-down.txt")


def test_srun_without_a_free_node_says_so():
    assert so.node_not_free(output("unknown-salloc-immediate-expired.txt"))
    assert not so.node_not_free("srun: error: python3: task 0: Exited with exit code 1")


@pytest.mark.parametrize("stderr, kind", [
    ("sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: Job violates "
     "accounting/QOS policy (job submit limit, user's size and/or time limits)", "limit"),
    ("sbatch: error: AssocMaxSubmitJobLimit", "limit"),
    ("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation", "transient"),
    ("sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying", "transient"),
    ("sbatch: error: Batch job submission failed: Invalid partition name specified", "refused"),
])
def test_sbatch_errors(stderr, kind):
    assert so.submit_error_kind(stderr) == kind


def test_sbatch_line_is_idempotent_and_takes_dependencies():
    target = SlurmTarget("slurm://login?partition=tx2")
    argv = target.sbatch_argv("/c", "/r/spec.json", "/r", "run-1")
    assert "--job-name=ebt-run-1" in argv and "--dependency=singleton" in argv
    after = target.sbatch_argv("/c", "/r/spec.json", "/r", "run-1", after=[41, 42])
    assert "--dependency=afterok:41:42,singleton" in after
    assert {"--signal=B:USR1@300", "--export=ALL,EBT_MAX_REQUEUES=20"} <= set(argv)
    short = SlurmTarget("slurm://login?partition=tx2&grace=60&requeues=3").sbatch_argv("/c", "/s", "/r", "x")
    assert {"--signal=B:USR1@60", "--export=ALL,EBT_MAX_REQUEUES=3"} <= set(short)


def test_poll_option_round_trips():
    address = SlurmAddress.parse("slurm://login?partition=tx2&poll=5")
    assert address.poll == 5 and SlurmAddress.parse(str(address)) == address
    assert "poll" not in str(SlurmAddress.parse("slurm://login?partition=tx2"))
    for bad in ("slurm://login?partition=tx2&poll=0", "slurm://login?partition=tx2&poll=soon"):
        with pytest.raises(Exception, match="poll"):
            SlurmAddress.parse(bad)
    with pytest.raises(Exception, match="grace"):
        SlurmAddress.parse("slurm://login?partition=tx2&grace=-5")
    custom = SlurmAddress.parse("slurm://login?partition=tx2&grace=60&requeues=3")
    assert SlurmAddress.parse(str(custom)) == custom and "grace=60" in str(custom)


def test_whole_node_memory_gres_and_time_on_the_sbatch_line():
    argv = SlurmTarget("slurm://login?partition=tx2").sbatch_argv("/c", "/s", "/r", "x")
    assert {"--exclusive", "--mem=0"} <= set(argv) and not any(a.startswith(("--time", "--gres")) for a in argv)
    gpu = SlurmTarget("slurm://login?partition=a100&exclusive=0&gres=gpu:1&time=1-00:00:00")
    argv = gpu.sbatch_argv("/c", "/s", "/r", "x")
    assert {"--gres=gpu:1", "--time=1-00:00:00"} <= set(argv) and not {"--exclusive", "--mem=0"} & set(argv)
    own = SlurmTarget("slurm://login?partition=tx2&sbatch=--mem-per-cpu%3D2G").sbatch_argv("/c", "/s", "/r", "x")
    assert "--exclusive" in own and "--mem=0" not in own  # sbatch refuses --mem with --mem-per-cpu


def test_options_given_in_sbatch_arguments():
    assert _given(("--time=1:00:00",), "--time", "-t") == "1:00:00"
    assert _given(("-t", "30"), "--time", "-t") == "30" and _given(("-t30",), "--time", "-t") == "30"
    assert _given(("--mem-per-cpu=2G",), "--mem", "--mem-per-cpu") == "2G"
    assert _given(("--tmp=1G", "--mem-bind=local"), "--time", "-t", "--mem") == ""


def test_new_options_parse_round_trip_and_read_as_typed():
    url = "slurm://me@login?partition=tx2&root=%2Fshared%2Febt&gres=gpu%3A1&time=2-00:00:00&max_submit=90"
    address = SlurmAddress.parse(url)
    assert (address.root, address.gres, address.time, address.max_submit) == ("/shared/ebt", "gpu:1", "2-00:00:00", 90)
    assert str(address) == "slurm://me@login?partition=tx2&root=/shared/ebt&gres=gpu:1&time=2-00:00:00&max_submit=90"
    assert SlurmAddress.parse(str(address)) == address
    spaced = SlurmAddress.parse("slurm://login?partition=tx2&sbatch=--qos%3Dlong+--comment%3D%22a%26b%22")
    assert spaced.sbatch == ("--qos=long", "--comment=a&b") and SlurmAddress.parse(str(spaced)) == spaced
    for bad, word in (("time=soon", "time"), ("time=1:2:3:4", "time"), ("max_submit=0", "max_submit"),
                      ("max_submit=many", "max_submit")):
        with pytest.raises(Exception, match=word):
            SlurmAddress.parse("slurm://login?partition=tx2&" + bad)
