"""The Slurm target: every run of a sweep is one Slurm batch job on a cluster of boards or GPU nodes.

URL: ``slurm://LOGIN?partition=P[&python=PATH][&root=DIR][&sbatch=ARGS][&exclusive=0]``. LOGIN is an SSH
destination exactly as for ``ssh://`` (alias of ~/.ssh/config, ``[user@]host[:port]``, strict host keys):
this target IS an SSH target to the login node (same connection, host-key policy, code shipping), which
submits jobs instead of starting the runner itself. `root` (default ``~/ebt``) must be on the cluster's
shared filesystem: the code, each run folder and its `events.jsonl`, written on a compute node, are read on
the login node. `python` is the interpreter with torch on the compute nodes, `sbatch` extra `sbatch`
arguments (e.g. ``--gres=gpu:1 --time=12:00:00``), shell-split.

Each job runs ``python3 -m experiments run spec.json --out RUN_DIR`` on its node, with the device-side
meter on that node, and asks for:

- ``--exclusive`` (unless ``exclusive=0``): a measured board must not share its power with another job;
- ``--requeue``: a job killed by node failure or preemption is queued again and its runner resumes from
  the last checkpoint (the runner re-runs on the same folder; epochs already in the checkpoint are not
  trained again);
- ``--output RUN_DIR/runner.log --open-mode=append``: every attempt's output, one after the other.

The job id stands where other targets keep the runner's pid (`Launched.pid`): `alive(job_id)` asks Slurm
whether the job may still run the runner (pending, requeued, running), `job(job_id)` gives Slurm's whole
view. States come from ``squeue --states=all`` (slurmctld remembers finished jobs for `MinJobAge`), and
from ``sacct`` after that when the cluster keeps accounting; a job neither knows is over.

Sources: sbatch(1) (--parsable, --requeue, --exclusive, --open-mode, --chdir, --wrap), squeue(1) (-O
fields JobID, State, BatchHost, RestartCnt, Requeue, Reason), sacct(1) (-X -n -P -o), scancel(1), and
the JOB STATE CODES of squeue(1).
"""
from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from experiments import paths

from ..errors import EbtError
from .base import Job, Launched, TargetError
from .ssh import DEFAULT_ROOT, SSHTarget

log = logging.getLogger(__name__)

OPTIONS = ("partition", "python", "root", "sbatch", "exclusive")
# Slurm's job states (squeue(1) JOB STATE CODES), lower case: waiting for a node, or holding one.
PENDING_STATES = {"pending", "requeued", "requeue_hold", "requeue_fed", "resv_del_hold", "special_exit"}
HOLDING_STATES = {"running", "configuring", "completing", "suspended", "stopped", "stage_out", "signaling",
                  "resizing"}
# ended states that Slurm turns into a new attempt when the job may be requeued
REQUEUED_AFTER = {"node_fail", "preempted"}
# How long a job state is reused: a follower polls often, and slurmctld serves every user of the cluster.
JOB_POLL_S = 2.0


@dataclass(frozen=True)
class SlurmAddress:
    login: str  # the netloc of the URL: [user@]host[:port], exactly as for ssh://
    partition: str
    python: str = "python3"
    root: str = DEFAULT_ROOT
    sbatch: tuple = ()
    exclusive: bool = True

    @classmethod
    def parse(cls, url: str) -> SlurmAddress:
        usage = "expected slurm://LOGIN?partition=P[&python=PATH][&root=DIR][&sbatch=ARGS][&exclusive=0]"
        parts = urlsplit(url)
        if parts.scheme != "slurm" or not parts.netloc:
            raise TargetError(f"target {url!r}: {usage}")
        options: dict[str, str] = {}
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            if key not in OPTIONS:
                raise TargetError(f"target {url!r}: unknown option {key!r} (allowed: {', '.join(OPTIONS)})")
            if len(values) != 1 or not values[0]:
                raise TargetError(f"target {url!r}: option {key!r} needs exactly one non-empty value")
            options[key] = values[0]
        if "partition" not in options:
            raise TargetError(f"target {url!r}: no partition; {usage}")
        if options.get("exclusive", "1") not in ("0", "1"):
            raise TargetError(f"target {url!r}: exclusive must be 0 or 1")
        try:
            extra = tuple(shlex.split(options.get("sbatch", "")))
        except ValueError as err:
            raise TargetError(f"target {url!r}: sbatch arguments do not parse ({err})") from None
        return cls(login=parts.netloc, partition=options["partition"], python=options.get("python", "python3"),
                   root=options.get("root", DEFAULT_ROOT), sbatch=extra,
                   exclusive=options.get("exclusive", "1") == "1")

    def ssh_url(self) -> str:
        """The login node as an ssh:// target (what ships the code and reads the run folders)."""
        options = {"root": self.root, "python": self.python}
        return f"ssh://{self.login}?{urlencode(options)}"

    def __str__(self) -> str:
        """The URL back, defaults left out: what run.json keeps to reopen the target."""
        options = [("partition", self.partition)]
        options += [(k, v) for k, v, default in (("python", self.python, "python3"), ("root", self.root, DEFAULT_ROOT),
                                                 ("sbatch", shlex.join(self.sbatch), ""))
                    if v != default]
        if not self.exclusive:
            options.append(("exclusive", "0"))
        return f"slurm://{self.login}?{urlencode(options)}"


def _job(fields: list[str]) -> Job:
    """A Job from squeue's `JobID|State|BatchHost|RestartCnt|Requeue|Reason` columns."""
    job_id, state, host, restarts, requeue, reason = fields[:6]
    word = state.lower()
    if word in REQUEUED_AFTER and requeue == "1":
        word = "requeued"
    pending = word in PENDING_STATES
    return Job(job_id=int(job_id), state=word, alive=pending or word in HOLDING_STATES, pending=pending,
               node=host if host not in ("", "n/a", "(null)") else None,
               restarts=int(restarts) if restarts.isdigit() else 0, reason=reason)


@dataclass
class _JobCache:
    jobs: dict[int, Job] = field(default_factory=dict)
    asked_at: dict[int, float] = field(default_factory=dict)

    def fresh(self, job_id: int) -> bool:
        return time.monotonic() - self.asked_at.get(job_id, float("-inf")) < JOB_POLL_S


class SlurmTarget(SSHTarget):
    """An SSH target to a cluster's login node that runs each run as a Slurm batch job."""

    schedules_jobs = True
    handle_word = "job"

    def __init__(self, url: str, trust_new_host: bool = False, **ssh_options):
        self.slurm = SlurmAddress.parse(url)
        super().__init__(self.slurm.ssh_url(), trust_new_host=trust_new_host, **ssh_options)
        self.url = str(self.slurm)
        self._cache = _JobCache()

    # --- submitting -----------------------------------------------------------------------------

    def sbatch_argv(self, code_dir: str, spec_path: str, run_dir: str, run_id: str) -> list[str]:
        """The `sbatch` command line of one run (a list; quoted when sent)."""
        runner = " ".join(shlex.quote(a) for a in (self.slurm.python, "-m", "experiments", "run", spec_path,
                                                   "--out", run_dir))
        argv = ["sbatch", "--parsable", "--job-name=ebt-" + run_id, "--partition=" + self.slurm.partition,
                "--requeue", "--output=" + paths.runner_log(run_dir), "--open-mode=append", "--chdir=" + code_dir]
        if self.slurm.exclusive:
            argv.append("--exclusive")
        return argv + list(self.slurm.sbatch) + ["--wrap", "exec " + runner]

    def launch(self, code_dir: str, spec: dict, run_dir: str) -> Launched:
        """Write spec.json into `run_dir` (shared filesystem) and submit the run's job; `pid` is its job id."""
        q = shlex.quote
        spec_path = self.write_spec(spec, run_dir)

        def submit(conn) -> int:
            argv = self.sbatch_argv(code_dir, spec_path, run_dir, spec["run_id"])
            out = self._check(self._sh(conn, " ".join(q(a) for a in argv)), "sbatch")
            return int(out.strip().splitlines()[-1].split(";")[0])  # --parsable: `jobid[;cluster]`

        # Not retried: a link lost just after sbatch must not queue the run twice.
        job_id = self._call("submitting the job", submit, retry_op=False)
        log.info("%s: job %d submitted for %s", self.url, job_id, run_dir)
        return Launched(run_dir=run_dir, pid=job_id)

    # --- Slurm's view -----------------------------------------------------------------------------

    def jobs(self, job_ids: list[int]) -> dict[int, Job]:
        """Slurm's view of each job (one squeue for all; sacct for those slurmctld forgot). A job that
        neither knows is left out."""
        wanted = [j for j in dict.fromkeys(int(j) for j in job_ids) if not self._cache.fresh(j)]
        if wanted:
            found = self._squeue(wanted)
            missing = [j for j in wanted if j not in found]
            if missing:
                found.update(self._sacct(missing))
            now = time.monotonic()
            for j in wanted:
                self._cache.asked_at[j] = now
                if j in found:
                    self._cache.jobs[j] = found[j]
                else:
                    self._cache.jobs.pop(j, None)
        return {int(j): self._cache.jobs[int(j)] for j in job_ids if int(j) in self._cache.jobs}

    def _query(self, argv: list[str]) -> str | None:
        """stdout of a Slurm query on the login node, None when it failed (unknown job, no accounting)."""
        command = " ".join(shlex.quote(a) for a in argv)
        result = self._call(argv[0], lambda conn: self._sh(conn, command))
        if result.exited != 0:
            log.debug("%s: %s: %s", self.url, command, result.stderr.strip())
            return None
        return result.stdout

    def _squeue(self, job_ids: list[int]) -> dict[int, Job]:
        out = self._query(["squeue", "--noheader", "--states=all", "--jobs=" + ",".join(map(str, job_ids)),
                           "--Format=JobID:|,State:|,BatchHost:|,RestartCnt:|,Requeue:|,Reason:|"]) or ""
        rows = [line.split("|") for line in out.splitlines() if line.count("|") >= 6]
        return {job.job_id: job for job in map(_job, rows)}

    def _sacct(self, job_ids: list[int]) -> dict[int, Job]:
        out = self._query(["sacct", "--allocations", "--noheader", "--parsable2",
                           "--jobs=" + ",".join(map(str, job_ids)), "--format=JobID,State,NodeList,Reason"]) or ""
        jobs = {}
        for line in out.splitlines():
            fields = line.split("|")
            if len(fields) == 4 and fields[0].isdigit():
                # sacct writes `CANCELLED by UID`; it knows no restart count or requeue flag
                jobs[int(fields[0])] = _job([fields[0], fields[1].split()[0], fields[2], "0", "0", fields[3]])
        return jobs

    def job(self, handle: int) -> Job | None:
        return self.jobs([handle]).get(int(handle))

    def alive(self, pid: int) -> bool:
        job = self.job(pid)
        return job is not None and job.alive

    def cancel(self, handle: int) -> None:
        command = "scancel %d" % int(handle)
        result = self._call("scancel", lambda conn: self._sh(conn, command))
        if result.exited != 0:
            raise EbtError(f"scancel {int(handle)} on {self.url} failed: {result.stderr.strip()[-300:]}")
        self._cache.asked_at.pop(int(handle), None)

    def partition_nodes(self) -> int:
        """How many nodes the partition has (`sinfo`): how many runs go at once with --exclusive."""
        out = self._query(["sinfo", "--noheader", "--partition=" + self.slurm.partition, "--format=%D"]) or ""
        return max(1, sum(int(n) for n in out.split() if n.isdigit()))

    def run_on_node(self, code_dir: str, argv: list[str], timeout: float) -> tuple[int, str, str]:
        """`python -m ARGV` on a compute node of the partition (`srun`, waits for one), like a run's job."""
        q = shlex.quote
        srun = ["srun", "--quiet", "--nodes=1", "--ntasks=1", "--partition=" + self.slurm.partition]
        srun += (["--exclusive"] if self.slurm.exclusive else []) + list(self.slurm.sbatch)
        command = "cd %s && %s %s -m %s" % (q(code_dir), " ".join(q(a) for a in srun), q(self.slurm.python),
                                            " ".join(q(a) for a in argv))
        result = self._call("srun " + argv[0], lambda conn: self._sh(conn, command, timeout=timeout),
                            retry_op=False)
        return result.exited, result.stdout, result.stderr
