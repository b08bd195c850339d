"""The Slurm output parsers (harness/targets/slurm_output.py) on what Slurm 17.11 to 24.x print.

The outputs are files under tests/fixtures/slurm/, each opening with `# source:` lines that name where it
comes from and its Slurm version: real output of this machine's Debian slurm-wlm 22.05.8 (the commands
the target sends, on the tests/slurm.py cluster), output users pasted in issues (their version dated by
the fields where they did not state it), and, where no real output of a version was found (squeue and
sacct of 17.11 and 23.11), rows composed from the man pages, marked COMPOSED.
tests/test_slurm.py reads 22.05 live as well.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.targets import slurm_output as so
from harness.targets.slurm import SlurmAddress, SlurmTarget, _given

FIXTURES = Path(__file__).parent / "fixtures" / "slurm"


def output(name: str) -> str:
    """A fixture's output: the file without its leading `# ` header lines."""
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("# "):
        lines.pop(0)
    return "".join(lines)


# `sinfo -V` / `squeue --version`: "slurm 17.11.2" (Ubuntu 18.04 slurm-client 17.11.2-1build1, as its man
# pages on manpages.ubuntu.com/bionic name it), 19.05.5 (focal), 21.08.5 (jammy), 23.11.4 (noble),
# 22.05.8 here (Debian 12).
VERSIONS = {"slurm 17.11.2": (17, 11, 2), "slurm 19.05.5": (19, 5, 5), "slurm 20.11.4": (20, 11, 4),
            "slurm-wlm 21.08.5": (21, 8, 5), output("22.05-version.txt").strip(): (22, 5, 8),
            "slurm 23.11.4": (23, 11, 4), "slurm 24.05.1": (24, 5, 1)}


def test_every_fixture_names_its_source_and_version():
    files = sorted(FIXTURES.glob("*.txt"))
    assert len(files) >= 20
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# source: "), path.name
        real = "COMPOSED" not in first
        assert ("github.com/" in first or "real output" in first) if real else "not real output" in first, path.name
        assert "Slurm 22.05.8" in first or "version not stated" in first or "COMPOSED" in first, path.name
        assert output(path.name).strip(), path.name


@pytest.mark.parametrize("text, version", VERSIONS.items())
def test_versions(text, version):
    assert so.parse_version(text) == version
    assert version[:2] >= so.MIN_VERSION
    assert so.parse_version("slurm 17.02.11")[:2] < so.MIN_VERSION
    assert so.parse_version("command not found") is None


def test_squeue_rows_classified_as_the_peers_do():
    jobs = so.parse_squeue("squeue: warning: something\n" + output("manpage-squeue-17.11-to-23.11.txt"))
    assert len(jobs) == 11
    held = jobs[80634]
    assert held.pending and held.alive and held.held == "launch failed requeued held"
    # squeue shows NODE_FAIL/PREEMPTED only for a job Slurm did not requeue: it is over
    for j in (2, 7, 8, 9):
        assert not jobs[j].alive and not jobs[j].held, jobs[j]
    assert [jobs[j].state for j in (2, 7, 8, 9)] == ["node_fail", "preempted", "out_of_memory", "timeout"]
    assert jobs[3].pending and not jobs[3].held and jobs[3].node is None  # a requeued job waits: BeginTime
    assert jobs[4].alive and not jobs[4].pending and jobs[4].node == "node7"
    assert jobs[5].pending and not jobs[5].held and jobs[5].describe() == "pending (Resources)"
    assert jobs[6].held == "JobHeldAdmin" and "scontrol release 6" in jobs[6].describe()
    assert jobs[10].alive and jobs[11].held


def test_squeue_of_22_05():
    live = so.parse_squeue(output("22.05-squeue-live.txt"))
    assert sorted(live) == [1, 2, 3, 4]
    assert (live[1].state, live[1].node, live[1].alive, live[1].pending) == ("running", "ebtnode", True, False)
    assert live[2].pending and not live[2].held and live[2].node is None and live[2].reason == "Resources"
    assert live[3].held == "JobHeldAdmin" and live[3].alive
    assert live[4].state == "cancelled" and not live[4].alive
    cancelled = so.parse_squeue(output("22.05-squeue-cancelled.txt"))
    assert sorted(cancelled) == [1, 2, 3, 4, 5] and not any(j.alive for j in cancelled.values())
    assert cancelled[2].reason.startswith("Nodes required for job are DOWN, DRAINED")  # `|`-split, spaces kept
    (over,) = so.parse_squeue(output("22.05-squeue-partition-time-limit.txt")).values()
    assert over.pending and over.held == "PartitionTimeLimit"  # asked more than MaxTime: waits for ever


def test_sacct_rows_without_reason():
    jobs = so.parse_sacct(output("manpage-sacct-17.11.txt"))
    assert jobs[12346].state == "cancelled" and not jobs[12346].alive
    assert jobs[12348].state == "node_fail" and jobs[12349].node is None and jobs[12349].pending
    assert jobs[12350].state == "requeued" and jobs[12350].pending  # the last row of a job wins
    assert so.SACCT_FIELDS.split(",") == ["JobIDRaw", "State", "NodeList"]  # no Reason: 17.11 rejects it


def test_sacct_and_squeue_of_22_05_with_accounting():
    jobs = so.parse_sacct(output("22.05-sacct.txt"))
    assert [(j, jobs[j].state, jobs[j].alive) for j in (1, 2, 9, 10)] == [
        (1, "cancelled", False), (2, "cancelled", False), (9, "failed", False), (10, "failed", False)]
    assert jobs[2].node is None and jobs[1].node == "ebtnode"  # `None assigned`: it never ran
    assert jobs[11].pending and jobs[11].alive  # requeued: waiting again
    attempts = so.parse_sacct(output("22.05-sacct-duplicates.txt"))
    assert attempts[11].pending  # REQUEUED then PENDING: the last row of the job wins
    queue = so.parse_squeue(output("22.05-squeue-requeued.txt"))
    assert queue[11].pending and not queue[11].held and queue[11].reason == "BeginTime"
    assert queue[9].state == "failed" and queue[10].reason == "JobLaunchFailure" and not queue[10].alive


def test_sacct_of_a_2024_cluster_by_its_header():
    header, *rows = output("23.x-sacct-parsable.txt").splitlines()
    columns = header.split("|")
    asked = [[row.split("|")[columns.index(f)] for f in ("JobID", "State", "NodeList")] for row in rows]
    jobs = so.parse_sacct("\n".join("|".join(r) for r in asked))
    assert sorted(jobs) == [239023, 239024, 239025, 239026]  # the steps (.batch, .extern, .0) left out
    assert all(j.state == "completed" and not j.alive and j.node == "galvani-cn001" for j in jobs.values())


def test_no_accounting_is_an_answer_not_a_failure():
    for name in ("22.05-sacct-no-accounting.txt", "22.05-sacctmgr-no-accounting.txt"):
        assert any(s in output(name) for s in so.NO_ACCOUNTING), name


def test_scontrol_jobs_of_several_versions():
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
    here = so.parse_scontrol_job(output("22.05-scontrol-job-oneline.txt"))
    assert (here.job_id, here.state, here.node, here.restarts) == (1, "running", "ebtnode", 0)
    admin = so.parse_scontrol_job(output("22.05-scontrol-job-held.txt"))
    assert admin.held == "JobHeldAdmin" and admin.node is None  # `NodeList=` empty, no BatchHost
    walled = so.parse_scontrol_job(output("20.x-scontrol-job-wall-limit.txt"))
    assert walled.pending and walled.held == "AssocMaxWallDurationPerJobLimit"  # asks more time than allowed
    assert so.parse_scontrol_job("") is None
    reason = so.parse_key_values("JobId=5 JobState=PENDING Reason=launch failed requeued held Dependency=(null)")
    assert reason["Reason"] == "launch failed requeued held"


def test_partitions_of_22_05_and_20_11():
    limited = so.parse_partition(output("22.05-scontrol-partition.txt"), output("22.05-sinfo-draining.txt"))
    assert (limited.total_nodes, limited.usable_nodes) == (1, 0)  # its only node drains
    assert (limited.max_time, limited.default_time, limited.job_time()) == ("1-00:00:00", "02:00:00", "1-00:00:00")
    open_ended = so.parse_partition(output("22.05-scontrol-partition-unlimited.txt"), output("22.05-sinfo-idle.txt"))
    assert (open_ended.usable_nodes, open_ended.max_time, open_ended.job_time()) == (1, "UNLIMITED", None)
    assert open_ended.qos == "N/A"
    # several lines without -o: the same Key=Value pairs
    stat = so.parse_partition(" ".join(output("20.11-scontrol-partition.txt").split()), "")
    assert (stat.name, stat.total_nodes, stat.default_time, stat.job_time()) == ("stat", 18, "00:30:00", "14-00:00:00")
    assert so.parse_partition(output("22.05-scontrol-partition-not-found.txt"), "") is None


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


def test_submit_limit_from_sacctmgr():
    qos = output("22.05-sacctmgr-qos.txt")  # normal: 5 per user, long: 3
    # root's two associations (MaxSubmitJobs=4, no DefaultQOS: normal) -> the least of 4 and 5
    assert so.parse_submit_limit(output("22.05-sacctmgr-assoc.txt"), qos) == 4
    assert so.parse_submit_limit(output("22.05-sacctmgr-assoc.txt"), qos, partition_qos="long") == 3
    assert so.parse_submit_limit(output("22.05-sacctmgr-assoc-no-limit.txt"), qos) == 5  # normal's
    assert so.parse_submit_limit(output("22.05-sacctmgr-assoc-no-limit.txt"), "normal|\n") is None
    # nobody: MaxSubmitJobs=2, QOS normal 1 per user: the QOS limit is the one sbatch then enforced
    assert so.parse_submit_limit(output("22.05-sacctmgr-assoc-user.txt"), output("22.05-sacctmgr-qos-user.txt")) == 1
    assert so.submit_error_kind(output("22.05-sbatch-submit-limit.txt")) == "limit"
    assert so.parse_submit_limit("", "") is None  # no association: no accounting on this cluster


def test_srun_without_a_free_node_says_so():
    for name in ("22.05-srun-immediate-busy.txt", "unknown-salloc-immediate-expired.txt"):
        assert so.node_not_free(output(name)), name
    assert not so.node_not_free("srun: error: python3: task 0: Exited with exit code 1")
    assert so.submit_error_kind(output("22.05-sbatch-invalid-partition.txt")) == "refused"


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
