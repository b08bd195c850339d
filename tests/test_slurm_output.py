"""The Slurm output parsers (harness/targets/slurm_output.py) on what Slurm 17.11 to 24.x print.

Fixtures, each with its source beside it. Where a report does not state its Slurm version, the version
its fields date it to is given as such. This machine's Debian slurm-wlm 22.05.8 is read live by
tests/test_slurm.py (the same commands the target sends, on the test cluster).
"""
from __future__ import annotations

import pytest

from harness.targets import slurm_output as so
from harness.targets.slurm import SlurmAddress, SlurmTarget

# `sinfo -V` / `squeue --version`: "slurm 17.11.2" (Ubuntu 18.04 slurm-client 17.11.2-1build1, as its man
# pages on manpages.ubuntu.com/bionic name it), 19.05.5 (focal), 21.08.5 (jammy), 23.11.4 (noble),
# 22.05.8 here (Debian 12).
VERSIONS = {"slurm 17.11.2": (17, 11, 2), "slurm 19.05.5": (19, 5, 5), "slurm 20.11.4": (20, 11, 4),
            "slurm-wlm 21.08.5": (21, 8, 5), "slurm 22.05.8": (22, 5, 8), "slurm 23.11.4": (23, 11, 4),
            "slurm 24.05.1": (24, 5, 1)}

# `squeue -h -o '%i|%T|%B|%r'`. %i/%T/%B/%r are in squeue(1) of 17.11.2 (bionic) through 24.05 with the
# same meaning; an -o format prints exactly its literal characters between fields, so the rows are the
# values below joined by `|`. Reasons as users saw them:
# - `launch failed requeued held` (with spaces, squeue's %r): burrmill/burrmill#15 (2020-10; Slurm of
#   that time: 20.02), also c3nl-neuraldynamics/c3nl_cluster#6 (2017-06: 16.05/17.02);
# - `NodeDown` then `BeginTime` for a requeued job, and NF in `squeue -t all`:
#   aws/aws-parallelcluster-node#127 (2019-04: 18.08);
# - `None`, `Resources`, `Priority`, `JobHeldAdmin`: squeue(1) JOB REASON CODES, 17.11 to 24.05.
SQUEUE = "\n".join([
    "80634|PENDING|yea-node-n2-23|launch failed requeued held",
    "2|NODE_FAIL|ip-10-0-2-231|NodeDown",
    "3|PENDING|(null)|BeginTime",
    "4|RUNNING|node7|None",
    "5|PENDING|n/a|Resources",
    "6|PENDING|n/a|JobHeldAdmin",
    "7|PREEMPTED|node3|None",
    "8|OUT_OF_MEMORY|node3|OutOfMemory",
    "9|TIMEOUT|node4|TimeLimit",
    "10|COMPLETING|node4|None",
    "11|REQUEUE_HOLD|n/a|JobHeldAdmin",
])

# `sacct -X -n -P -o JobIDRaw,State,NodeList`: sacct(1) 17.11.2 lists JobIDRaw, State and NodeList (and
# no Reason); `CANCELLED by UID` as in snakemake/snakemake#2167's review (2023-03, Slurm 22.05/23.02).
SACCT = "\n".join([
    "12345|COMPLETED|node1",
    "12346|CANCELLED by 1000|node2",
    "12347|FAILED|node1",
    "12348|NODE_FAIL|node5",
    "12349|PENDING|None assigned",
    "12350|PREEMPTED|node5",
    "12350|REQUEUED|node5",
])

# `scontrol show job ID` (several lines): burrmill/burrmill#15, verbatim up to TRES (2020-10; the fields
# AccrueTime/MCS_label date it to 18.08-20.11). scontrol writes the reason with underscores.
SCONTROL_HELD = """JobId=80634 ArrayJobId=80520 ArrayTaskId=114 JobName=get_phone_alignments.sh
   UserId=[REDACTED] GroupId=[REDACTED] MCS_label=N/A
   Priority=0 Nice=0 Account=(null) QOS=(null)
   JobState=PENDING Reason=launch_failed_requeued_held Dependency=(null)
   Requeue=1 Restarts=1 BatchFlag=1 Reboot=0 ExitCode=0:0
   RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A
   SubmitTime=2020-10-31T20:40:29 EligibleTime=2020-10-31T20:40:35
   AccrueTime=2020-10-31T20:40:35
   StartTime=Unknown EndTime=Unknown Deadline=N/A
   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2020-10-31T20:39:51
   Partition=n2 AllocNode:Sid=yea-login:13180
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=(null)
   BatchHost=yea-node-n2-23
   NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:1
"""

# `scontrol show job -o ID` (one line): codalab/codalab-worksheets#2484 (2020-06; DerivedExitCode and
# PreemptTime without AccrueTime: 19.05), verbatim up to StdErr.
SCONTROL_ONE_LINE = (
    "JobId=1539172 JobName=nfliu-codalab-slurm-worker-main-standard-708acee8 UserId=nfliu(19658) "
    "GroupId=users(100) MCS_label=N/A Priority=4294777008 Nice=0 Account=sail QOS=normal JobState=RUNNING "
    "Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 DerivedExitCode=0:0 "
    "RunTime=1-14:04:26 TimeLimit=10-00:00:00 TimeMin=N/A SubmitTime=2020-06-20T20:39:11 "
    "EligibleTime=2020-06-20T20:39:11 StartTime=2020-06-20T20:49:42 EndTime=2020-06-30T20:49:42 Deadline=N/A "
    "PreemptTime=None SuspendTime=None SecsPreSuspend=0 LastSchedEval=2020-06-20T20:49:42 Partition=jag-standard "
    "AllocNode:Sid=codalab:22480 ReqNodeList= ExcNodeList=(null) NodeList=jagupard12 BatchHost=jagupard12 "
    "NumNodes=1 NumCPUs=4 NumTasks=1 CPUs/Task=4 ReqB:S:C:T=0:0:*:* TRES=cpu=4,mem=32000M,node=1,billing=4,"
    "gres/gpu=1 Socks/Node=* NtasksPerN:B:S:C=1:0:*:* CoreSpec=*   Nodes=jagupard12 CPU_IDs=4-7 Mem=32000 "
    "GRES_IDX=gpu(IDX:2) MinCPUsNode=4 MinMemoryNode=32000M MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 "
    "Gres=gpu:1 Reservation=(null) OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) "
    "Command=/sailhome/nfliu/scr/slurm_output/nfliu-codalab-slurm-worker-main-standard-708acee8/"
    "nfliu-codalab-slurm-worker-main-standard-708acee8.slurm WorkDir=/sailhome/nfliu")

# `scontrol show job ID`: tdegeus/GooseSLURM#32 (2021-08; AccrueTime, no DerivedExitCode: 20.11), verbatim
# up to WorkDir (its value cut there); a path with `=` in Command.
SCONTROL_2021 = """JobId=10804568 JobName=velocity_python_PinAndTrigger.py-00
   UserId=tdegeus(177478) GroupId=pcsl(10532) MCS_label=N/A
   Priority=5487 Nice=0 Account=pcsl QOS=normal
   JobState=RUNNING Reason=None Dependency=(null)
   Requeue=0 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0
   RunTime=20:27:30 TimeLimit=2-00:00:00 TimeMin=N/A
   SubmitTime=2021-08-09T14:30:17 EligibleTime=2021-08-09T14:30:17
   AccrueTime=2021-08-09T14:30:17
   StartTime=2021-08-09T14:30:18 EndTime=2021-08-11T14:30:18 Deadline=N/A
   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2021-08-09T14:30:18
   Partition=serial AllocNode:Sid=fidis:20733
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=f006
   BatchHost=f006
   NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   TRES=cpu=1,mem=4G,node=1,billing=1
   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*
   MinCPUsNode=1 MinMemoryCPU=4G MinTmpDiskNode=0
   Features=(null) DelayBoot=00:00:00
   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)
   Command=/scratch/tdegeus/front-dynamics/Run/sims_A=900/python_PinAndTrigger.py-00.slurm
   WorkDir=/scratch/tdegeus/front-dynamics/Run/sim
"""


@pytest.mark.parametrize("text, version", VERSIONS.items())
def test_versions(text, version):
    assert so.parse_version(text) == version
    assert version[:2] >= so.MIN_VERSION
    assert so.parse_version("slurm 17.02.11")[:2] < so.MIN_VERSION
    assert so.parse_version("command not found") is None


def test_squeue_rows_classified_as_the_peers_do():
    jobs = so.parse_squeue("squeue: warning: something\n" + SQUEUE)
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


def test_sacct_rows_without_reason():
    jobs = so.parse_sacct(SACCT)
    assert jobs[12346].state == "cancelled" and not jobs[12346].alive
    assert jobs[12348].state == "node_fail" and jobs[12349].node is None and jobs[12349].pending
    assert jobs[12350].state == "requeued" and jobs[12350].pending  # the last row of a job wins
    assert so.SACCT_FIELDS.split(",") == ["JobIDRaw", "State", "NodeList"]  # no Reason: 17.11 rejects it


def test_scontrol_jobs_of_several_versions():
    held = so.parse_scontrol_job(SCONTROL_HELD)
    assert (held.job_id, held.state, held.restarts, held.node) == (80634, "pending", 1, "yea-node-n2-23")
    assert held.held == "launch_failed_requeued_held"
    running = so.parse_scontrol_job(SCONTROL_ONE_LINE)
    assert (running.job_id, running.state, running.node, running.reason) == (1539172, "running", "jagupard12",
                                                                            "None")
    kv = so.parse_key_values(" ".join(SCONTROL_2021.split()))
    assert kv["Command"].endswith("sims_A=900/python_PinAndTrigger.py-00.slurm")
    assert kv["TRES"] == "cpu=1,mem=4G,node=1,billing=1" and kv["AllocNode:Sid"] == "fidis:20733"
    assert so.parse_scontrol_job(SCONTROL_2021).node == "f006"
    assert so.parse_scontrol_job("") is None
    reason = so.parse_key_values("JobId=5 JobState=PENDING Reason=launch failed requeued held Dependency=(null)")
    assert reason["Reason"] == "launch failed requeued held"


def test_partition_counts_usable_nodes_only():
    # `scontrol show partition -o` (scontrol(1) PARTITIONS fields; one line) and `sinfo -h -o '%D|%T'`
    shown = ("PartitionName=tx2 AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES "
             "QoS=N/A DefaultTime=01:00:00 DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO "
             "MaxNodes=UNLIMITED MaxTime=1-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=tx2-[1-6] "
             "PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE "
             "PreemptMode=REQUEUE State=UP TotalCPUs=36 TotalNodes=6 SelectTypeParameters=NONE")
    part = so.parse_partition(shown, "2|idle\n1|allocated\n1|down*\n1|drained\n1|mixed\n")
    assert (part.total_nodes, part.usable_nodes, part.max_time, part.default_time) == (6, 4, "1-00:00:00", "01:00:00")
    assert part.preempt_mode == "REQUEUE"
    assert so.parse_partition("", "") is None


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
