"""What Slurm's commands print, read the same from Slurm 17.11 to 24.x (no I/O here: the parsers).

Only formats every supported version prints are asked for:

- ``squeue -h -o '%i|%T|%B|%r'`` (job id, long state, batch host, reason). The ``-o`` letters are
  the same in squeue(1) of 17.11 to 24.05; ``--Format=Field:|`` (a per-field suffix) is understood only
  from 20.02 on, and older squeue then prints no ``|`` at all.
- ``sacct -X -n -P -o JobIDRaw,State,NodeList`` (no ``Reason``: sacct 17.11/18.08 reject it with
  "Invalid field requested"). ``State`` reads ``CANCELLED by UID`` for a cancelled job.
- ``scontrol show job -o ID`` (one line of ``Key=Value``; values may hold spaces, e.g.
  ``Reason=launch failed requeued held``): ``Restarts``, ``BatchHost``, ``Requeue``.
- ``scontrol show partition -o P`` and ``sinfo -h -p P -o '%D|%T'`` (nodes per state).
- the version: ``slurm 17.11.2`` (``sinfo -V``; Debian/Ubuntu's package prints the same).
- the submit limit: ``sacctmgr -nP show assoc where user=U format=MaxSubmitJobs,DefaultQOS`` and
  ``sacctmgr -nP show qos format=Name,MaxSubmitJobsPerUser`` (field names of sacctmgr(1) 17.11 to 24.05).
- times as Slurm writes them (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``;
  ``UNLIMITED``/``INFINITE``/``NONE`` for none), in `--time` and in ``scontrol show partition``.

A job state is classified as submitit/snakemake/reframe do: pending or holding a node is alive; any
ended state (COMPLETED, FAILED, NODE_FAIL, OUT_OF_MEMORY, TIMEOUT, PREEMPTED, CANCELLED, BOOT_FAIL,
DEADLINE) is over. squeue never shows NODE_FAIL or PREEMPTED for a job that Slurm requeues (slurmctld
records them for accounting and turns the job PENDING at once), so seen there they mean the job ended.
A pending job held by an admin, by the user, or by Slurm after too many launch failures, or waiting on
a reason that cannot clear by itself (reframe's list), is `held`: it will not start unless someone acts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .base import Job

MIN_VERSION = (17, 11)
SQUEUE_FORMAT = "%i|%T|%B|%r"
SACCT_FIELDS = "JobIDRaw,State,NodeList"

# Slurm's job states (squeue(1) JOB STATE CODES), lower case: waiting for a node, or holding one.
PENDING_STATES = {"pending", "requeued", "requeue_hold", "requeue_fed", "resv_del_hold", "special_exit"}
HOLDING_STATES = {"running", "configuring", "completing", "suspended", "stopped", "stage_out", "signaling",
                  "resizing"}
# pending states that only a person ends (`scontrol release`), and pending reasons that cannot clear
# by themselves (squeue(1) JOB REASON CODES; reframe's slurm scheduler cancels on the same)
HELD_STATES = {"requeue_hold", "special_exit", "resv_del_hold"}
# (the last three are the texts slurmctld gives a job it requeues held: `scontrol requeuehold`, a failed
# launch or Prolog, more launch failures than MaxBatchRequeue; squeue's %r and scontrol's Reason= show them)
HELD_REASONS = {"JobHeldAdmin", "JobHeldUser", "JobHoldMaxRequeue", "job requeued in held state",
                "launch failed requeued held", "launch failure limit exceeded requeued held"}
HOPELESS_REASONS = {"DependencyNeverSatisfied", "PartitionNodeLimit", "PartitionTimeLimit", "InvalidAccount",
                    "InvalidQOS", "BadConstraints", "AssocMaxWallDurationPerJobLimit",
                    "QOSMaxWallDurationPerJobLimit"}
# node states (sinfo %T, lower case, `*`/`~`/`#` suffixes stripped) that run no job
UNUSABLE_NODE_STATES = {"down", "drained", "draining", "drain", "fail", "failing", "future", "maint",
                        "unknown", "no_respond", "power_down", "powered_down", "powering_down", "inval",
                        "reboot_issued", "reboot_requested"}
_NO_HOST = ("", "n/a", "(null)", "None assigned")


def parse_version(text: str) -> Optional[tuple]:
    """(major, minor, micro) from `slurm 17.11.2` / `slurm-wlm 21.08.5` / `slurm 23.11.4-1`."""
    found = re.search(r"\b(\d{2})\.(\d{2})(?:\.(\d+))?", text)
    return tuple(int(g or 0) for g in found.groups()) if found else None


def classify(job_id: int, state: str, host: str = "", reason: str = "", restarts: int = 0) -> Job:
    """A Job from Slurm's words for it (any of squeue, sacct, scontrol)."""
    word = state.split()[0].rstrip("+").lower() if state.strip() else "unknown"  # `CANCELLED by 0`
    pending = word in PENDING_STATES
    held = ""
    # scontrol writes `launch_failed_requeued_held` where squeue writes it with spaces
    if pending and (word in HELD_STATES or reason.replace("_", " ") in HOPELESS_REASONS | HELD_REASONS):
        held = reason if reason not in ("", "None") else word
    return Job(job_id=job_id, state=word, alive=pending or word in HOLDING_STATES, pending=pending,
               node=None if host in _NO_HOST else host, restarts=restarts, reason=reason, held=held)


def parse_squeue(out: str) -> dict[int, Job]:
    """Jobs from `squeue -h -o '%i|%T|%B|%r'`; lines that are not such rows (warnings) are skipped."""
    jobs = {}
    for line in out.splitlines():
        fields = line.strip().split("|", 3)
        if len(fields) == 4 and fields[0].isdigit():
            jobs[int(fields[0])] = classify(int(fields[0]), fields[1], fields[2], fields[3])
    return jobs


def parse_sacct(out: str) -> dict[int, Job]:
    """Jobs from `sacct -X -n -P -o JobIDRaw,State,NodeList`; the last row of a job id wins (a requeued
    job may be listed once per attempt with --duplicates)."""
    jobs = {}
    for line in out.splitlines():
        fields = line.strip().split("|")
        if len(fields) >= 3 and fields[0].isdigit():
            jobs[int(fields[0])] = classify(int(fields[0]), fields[1], fields[2])
    return jobs


def parse_key_values(line: str) -> dict[str, str]:
    """`scontrol show ... -o`: `Key=Value Key=Value ...`; a value runs to the next ` Key=`, so values with
    spaces (Reason=launch failed requeued held) and with `=` (TRES=cpu=1,mem=1G) stay whole."""
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=(.*?)(?=\s+[A-Za-z][A-Za-z0-9_:/]*=|$)",
                                 line.strip())}


def parse_scontrol_job(out: str) -> Optional[Job]:
    """The job of `scontrol show job [-o] ID` (None when it printed no job); without -o one job spans
    several lines, with -o one line."""
    kv = parse_key_values(" ".join(out.split()))
    if not (kv.get("JobId", "").isdigit() and "JobState" in kv):
        return None
    restarts = kv.get("Restarts", "0")
    return classify(int(kv["JobId"]), kv["JobState"], kv.get("BatchHost", ""), kv.get("Reason", ""),
                    int(restarts) if restarts.isdigit() else 0)


@dataclass(frozen=True)
class Partition:
    """A partition as `scontrol show partition -o` and `sinfo` give it."""

    name: str
    state: str
    total_nodes: int
    usable_nodes: int
    max_time: str  # `UNLIMITED` or Slurm's time, e.g. `1-00:00:00`
    default_time: str  # `NONE` or a time
    preempt_mode: str
    qos: str = "N/A"  # the partition's QOS, whose limits apply on top of the user's own

    def job_time(self) -> Optional[str]:
        """The longest time a job may ask for here (MaxTime), else the DefaultTime; None: no limit."""
        for time in (self.max_time, self.default_time):
            if time_s(time) is not None:
                return time
        return None


def parse_partition(scontrol_out: str, sinfo_out: str) -> Optional[Partition]:
    """The partition from `scontrol show partition -o P` and `sinfo -h -p P -o '%D|%T'` (nodes per
    state); None when scontrol printed none (a misspelt name)."""
    kv = next((parse_key_values(line) for line in scontrol_out.splitlines() if "PartitionName=" in line), None)
    if kv is None:
        return None
    usable = 0
    for line in sinfo_out.splitlines():
        count, _, state = line.strip().partition("|")
        # a trailing `*`: the node does not respond (sinfo(1) NODE STATE CODES); other marks (`~` powered
        # down, `#` powering up, `$` maintenance ahead, ...) leave it able to run a job
        if count.isdigit() and not state.endswith("*") and state.rstrip("~#!%$@^-").lower() not in UNUSABLE_NODE_STATES:
            usable += int(count)
    total = kv.get("TotalNodes", "0")
    return Partition(name=kv["PartitionName"], state=kv.get("State", "UP"),
                     total_nodes=int(total) if total.isdigit() else 0, usable_nodes=usable,
                     max_time=kv.get("MaxTime", "UNLIMITED"), default_time=kv.get("DefaultTime", "NONE"),
                     preempt_mode=kv.get("PreemptMode", "OFF"), qos=kv.get("QoS", "N/A"))


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def time_s(text: str) -> Optional[int]:
    """Seconds of a Slurm time (sbatch(1) --time formats); None for UNLIMITED/INFINITE/NONE/N/A. A
    text that is no Slurm time raises ValueError."""
    if text.strip().upper() in ("UNLIMITED", "INFINITE", "NONE", "N/A", ""):
        return None
    found = _TIME.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
    days, first, second, third = (int(g) if g else None for g in found.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        return days * 86400 + first * 3600 + (second or 0) * 60 + (third or 0)
    if third is not None:  # HH:MM:SS
        return first * 3600 + second * 60 + third
    return first * 60 + (second or 0)  # MM[:SS]


def parse_submit_limit(assoc_out: str, qos_out: str, partition_qos: str = "N/A") -> Optional[int]:
    """The user's submit limit (jobs pending or running at once) from `sacctmgr -nP show assoc ...
    format=MaxSubmitJobs,DefaultQOS` and `sacctmgr -nP show qos format=Name,MaxSubmitJobsPerUser`: the
    least of the associations' MaxSubmitJobs and of MaxSubmitJobsPerUser of their default QOS (`normal`
    where none is named) and the partition's QOS; None when none is set."""
    limits, qos_names = [], {partition_qos} - {"N/A", "", "(null)"}
    for line in assoc_out.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 2:
            continue
        if fields[0].isdigit():
            limits.append(int(fields[0]))
        qos_names.add(fields[1] or "normal")
    for line in qos_out.splitlines():
        name, _, limit = line.strip().partition("|")
        if name in qos_names and limit.isdigit():
            limits.append(int(limit))
    return min(limits) if limits else None


# sbatch's messages for a refusal that passes (sbatch(1) exit 1; src/common/slurm_errno.c texts)
TRANSIENT_SUBMIT = ("Socket timed out", "Unable to contact slurm controller", "temporarily unable",
                    "Resource temporarily unavailable", "Connection refused", "Transport endpoint")
SUBMIT_LIMIT = ("MaxSubmitJob", "job submit limit", "AssocMaxSubmitJobLimit", "QOSMaxSubmitJobPerUserLimit")


# what `scontrol show job ID` says of a job slurmctld does not know (any version: `slurm_load_jobs error:
# Invalid job id specified`): no job, not a failure
NO_SUCH_JOB = ("Invalid job id",)
# what sacct and sacctmgr say on a cluster without accounting (slurmdbd): not an error, nothing to ask
NO_ACCOUNTING = ("accounting storage is disabled", "not running a supported accounting_storage plugin")
# srun's/salloc's words when --immediate ran out without a free node (22.05: `Requested nodes are busy`;
# after a wait: `Connection timed out`; older: `Immediate execution impossible`)
NO_NODE_FREE = ("Unable to allocate resources", "Immediate execution impossible")


def node_not_free(stderr: str) -> bool:
    """Whether srun's error says no node was free within its --immediate wait."""
    return any(s in stderr for s in NO_NODE_FREE)


def submit_error_kind(stderr: str) -> str:
    """`limit` (over the user's submit limit: wait for own jobs to end), `transient` (retry), or
    `refused` (a real error: this run fails, the sweep goes on)."""
    if any(s.lower() in stderr.lower() for s in SUBMIT_LIMIT):
        return "limit"
    if any(s.lower() in stderr.lower() for s in TRANSIENT_SUBMIT):
        return "transient"
    return "refused"
