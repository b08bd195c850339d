"""The Slurm target: every run of a sweep is one Slurm batch job on a cluster of boards or GPU nodes.

URL: ``slurm://LOGIN?partition=P[&python=PATH][&root=DIR][&sbatch=ARGS][&exclusive=0][&gres=GRES]
[&time=D-HH:MM:SS][&max_submit=N][&poll=S]``. LOGIN is an SSH destination exactly as for ``ssh://`` (alias
of ~/.ssh/config, ``[user@]host[:port]``, strict host keys): this target IS an SSH target to the login node
(same connection, host-key policy, code shipping), which submits jobs instead of starting the runner
itself. `root` (default ``~/ebt``) must be on the cluster's shared filesystem: the code, each run folder
and its `events.jsonl`, written on a compute node, are read on the login node. `python` is the
interpreter with torch on the compute nodes, `sbatch` extra `sbatch` arguments, shell-split, `gres` the
job's ``--gres`` (``gpu:1``; with ``exclusive=0`` a single-GPU run leaves a multi-GPU node's other GPUs to
other jobs), `time` every job's ``--time`` (default: the partition's MaxTime, else its DefaultTime),
`max_submit` the user's submit limit (default: read from the cluster's accounting), `poll` the seconds
between two status queries (default 30: one query serves every run of the user, as snakemake and
submitit do).

Each job runs ``python3 -m experiments run spec.json --out RUN_DIR`` on its node, with the device-side
meter on that node, and asks for:

- ``--exclusive --mem=0`` (unless ``exclusive=0``): a measured board must not share its power with
  another job, and the run gets all of its memory (``--exclusive`` alone gives only the default share);
- ``--requeue``: a job killed by node failure or preemption is queued again and its runner resumes from
  the last checkpoint (the runner re-runs on the same folder; epochs already in the checkpoint are not
  trained again);
- ``--job-name=ebt-RUN_ID --dependency=singleton``: at most one job of a run runs at a time, and a run
  is looked up by that name before it is submitted (again): a job queued by an sbatch that reported an
  error, or by an earlier `ebt run`, is followed instead of submitted twice;
- ``--output RUN_DIR/runner.log --open-mode=append``: every attempt's output, one after the other;
- ``--signal=B:USR1@GRACE`` (`grace`, default 300 s): near the job's time limit (``--time``, or the
  partition's DefaultTime/MaxTime) the runner stops after its current step at a mid-epoch checkpoint and
  requeues its own job (``scontrol requeue``), at most `requeues` times (default 20); the next attempt
  continues that epoch where it stopped.

Before the first submission the partition is read once (``scontrol show partition``: a misspelt one is
an error, the time limit is checked against `grace` and MaxTime) and the user's submit limit (``sacctmgr``,
or `max_submit`): runs are then submitted in waves that keep the user's queued and running jobs under it.

The job id stands where other targets keep the runner's pid (`Launched.pid`). Slurm's view of a job comes
from one ``squeue`` over all of the user's jobs (slurmctld remembers finished jobs for `MinJobAge`), and
from ``sacct`` after that when the cluster keeps accounting; a job neither knows is over. A Slurm command
that fails is not an answer: it is retried with backoff, then `SlurmUnreachable` (the run is reported
`unreachable`, never lost, and nothing is resubmitted). The formats read are those of Slurm 17.11 on
(`slurm_output`); checks (`ebt doctor`, `ebt run`'s preflight) run on a compute node through ``srun``.

Sources: sbatch(1) (--parsable, --requeue, --exclusive, --open-mode, --chdir, --wrap, --dependency),
squeue(1) (-o letters, JOB STATE and REASON CODES), sacct(1), scontrol(1), scancel(1), srun(1)
(--immediate), all 17.11 to 24.05.
"""
from __future__ import annotations

import logging
import math
import shlex
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence
from urllib.parse import parse_qs, urlencode, urlsplit

from experiments import paths

from ..errors import EbtError
from . import slurm_output as so
from .base import Job, Launched, TargetError
from .ssh import DEFAULT_ROOT, SSHTarget, TargetUnreachable

log = logging.getLogger(__name__)

OPTIONS = ("partition", "python", "root", "sbatch", "exclusive", "gres", "time", "max_submit", "poll", "grace",
           "requeues")
DEFAULT_POLL_S = 30.0
DEFAULT_GRACE_S = 300  # SIGUSR1 this long before the time limit: the runner checkpoints mid-epoch, requeues
DEFAULT_REQUEUES = 20  # how often a job may requeue itself at its time limit
# waits between the tries of a failed Slurm query (controller busy, failover), then SlurmUnreachable
QUERY_BACKOFF_S = (2.0, 5.0, 10.0)
# waits between the tries of an sbatch refused for a passing reason ("Socket timed out", ...)
SUBMIT_BACKOFF_S = (2.0, 5.0, 15.0, 30.0, 60.0)
SCANCEL_BATCH = 100  # job ids per scancel (Nextflow's killBatchSize)
NODE_WAIT_S = 120  # how long a check or a calibration waits for a node of the partition (srun --immediate)
SRUN_MARGIN_S = 30  # the SSH command outlives the login node's `timeout` of srun by this much
TIMED_OUT = 124  # coreutils timeout's exit status
_ME = '"$(id -un)"'  # the login user, as the shell on the login node knows it
_SECTION = "--ebt-section--"  # between two commands' outputs in one round trip


class SlurmUnreachable(TargetUnreachable):
    """A Slurm command kept failing: the controller did not answer (the jobs may well run on)."""


class SubmitFailed(EbtError):
    """sbatch refused one run's job (that run fails; the sweep goes on)."""


USAGE = ("expected slurm://LOGIN?partition=P[&python=PATH][&root=DIR][&sbatch=ARGS][&exclusive=0][&gres=GRES]"
         "[&time=D-HH:MM:SS][&max_submit=N][&poll=SECONDS][&grace=SECONDS][&requeues=N]")
# characters left as they are in the URL's values, so that it reads as typed: ?root=/shared/ebt&time=1-00:00:00
_READABLE = "/:=,@~"


@dataclass(frozen=True)
class SlurmAddress:
    login: str  # the netloc of the URL: [user@]host[:port], exactly as for ssh://
    partition: str
    python: str = "python3"
    root: str = DEFAULT_ROOT
    sbatch: tuple = ()
    exclusive: bool = True
    gres: str = ""  # e.g. gpu:1: with exclusive=0, a single-GPU run leaves a multi-GPU node's other GPUs free
    time: str = ""  # the job's --time; empty: the partition's MaxTime, else its DefaultTime
    max_submit: int = 0  # the user's submit limit; 0: read from the cluster's accounting
    poll: float = DEFAULT_POLL_S
    grace: int = DEFAULT_GRACE_S
    requeues: int = DEFAULT_REQUEUES

    @classmethod
    def parse(cls, url: str) -> SlurmAddress:
        parts = urlsplit(url)
        if parts.scheme != "slurm" or not parts.netloc:
            raise TargetError(f"target {url!r}: {USAGE}")
        options = cls._options(url, parts.query)
        if "partition" not in options:
            raise TargetError(f"target {url!r}: no partition; {USAGE}")
        if options.get("exclusive", "1") not in ("0", "1"):
            raise TargetError(f"target {url!r}: exclusive must be 0 or 1")
        try:
            extra = tuple(shlex.split(options.get("sbatch", "")))
            poll = float(options.get("poll", DEFAULT_POLL_S))
            so.time_s(options.get("time", ""))
        except ValueError as err:
            raise TargetError(f"target {url!r}: sbatch, poll or time does not parse ({err})") from None
        if not poll > 0:
            raise TargetError(f"target {url!r}: poll must be a number of seconds above 0")
        counts = {k: options.get(k, str(d)) for k, d in (("grace", DEFAULT_GRACE_S), ("requeues", DEFAULT_REQUEUES),
                                                         ("max_submit", 0))}
        bad = [k for k, v in counts.items() if not v.isdigit()] + (["max_submit"] if counts["max_submit"] == "0"
                                                                   and "max_submit" in options else [])
        if bad:
            raise TargetError(f"target {url!r}: {', '.join(bad)} must be a whole number (seconds, count; "
                              "max_submit at least 1)")
        return cls(login=parts.netloc, partition=options["partition"], python=options.get("python", "python3"),
                   root=options.get("root", DEFAULT_ROOT), sbatch=extra,
                   exclusive=options.get("exclusive", "1") == "1", gres=options.get("gres", ""),
                   time=options.get("time", ""), max_submit=int(counts["max_submit"]), poll=poll,
                   grace=int(counts["grace"]), requeues=int(counts["requeues"]))

    @staticmethod
    def _options(url: str, query: str) -> dict[str, str]:
        options: dict[str, str] = {}
        for key, values in parse_qs(query, keep_blank_values=True).items():
            if key not in OPTIONS:
                raise TargetError(f"target {url!r}: unknown option {key!r} (allowed: {', '.join(OPTIONS)})")
            if len(values) != 1 or not values[0]:
                raise TargetError(f"target {url!r}: option {key!r} needs exactly one non-empty value")
            options[key] = values[0]
        return options

    def ssh_url(self) -> str:
        """The login node as an ssh:// target (what ships the code and reads the run folders)."""
        options = {"root": self.root, "python": self.python}
        return f"ssh://{self.login}?{urlencode(options)}"

    def __str__(self) -> str:
        """The URL back, defaults left out, readable (`/`, `:`, `=` as typed; a space is `+`): what run.json
        keeps to reopen the target and what the output shows."""
        options = [("partition", self.partition)]
        options += [(k, v) for k, v, default in (("python", self.python, "python3"), ("root", self.root, DEFAULT_ROOT),
                                                 ("sbatch", shlex.join(self.sbatch), ""), ("gres", self.gres, ""),
                                                 ("time", self.time, ""))
                    if v != default]
        if not self.exclusive:
            options.append(("exclusive", "0"))
        options += [(k, "%g" % v) for k, v, default in (("max_submit", self.max_submit, 0),
                                                          ("poll", self.poll, DEFAULT_POLL_S),
                                                          ("grace", self.grace, DEFAULT_GRACE_S),
                                                          ("requeues", self.requeues, DEFAULT_REQUEUES))
                    if v != default]
        return f"slurm://{self.login}?{urlencode(options, safe=_READABLE)}"


@dataclass
class _JobCache:
    """Slurm's last answer per job, reused for `poll_s`: slurmctld serves every user of the cluster."""

    poll_s: float
    jobs: dict[int, Job] = field(default_factory=dict)
    asked_at: dict[int, float] = field(default_factory=dict)

    def fresh(self, key: int) -> bool:
        return time.monotonic() - self.asked_at.get(key, float("-inf")) < self.poll_s

    def put(self, key: int, job: Optional[Job], now: float) -> None:
        self.asked_at[key] = now
        if job is None:
            self.jobs.pop(key, None)
        else:
            self.jobs[key] = job


def _quoted(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


# slurmctld checks time limits every 30 s, so USR1 can come up to grace + 30 s before the limit; a job
# (re)started needs about 20 s more to set its handler, else the signal kills it.
SIGNAL_SLACK_S = 50


def _most_grace(seconds: int) -> int:
    """The largest grace a job of this time limit can take: half of it, and the signal after start-up."""
    return min(seconds // 2, seconds - SIGNAL_SLACK_S)


class SlurmTarget(SSHTarget):
    """An SSH target to a cluster's login node that runs each run as a Slurm batch job."""

    schedules_jobs = True
    handle_word = "job"

    def __init__(self, url: str, trust_new_host: bool = False, **ssh_options):
        self.slurm = SlurmAddress.parse(url)
        super().__init__(self.slurm.ssh_url(), trust_new_host=trust_new_host, **ssh_options)
        self.url = str(self.slurm)
        self._cache = _JobCache(self.slurm.poll)
        self.settle_s = min(self.slurm.poll, 60.0)  # NFS: the log's end may show after the job's end
        self._details = _JobCache(self.slurm.poll)  # scontrol's fuller view (restarts) of single jobs
        self.query_backoff_s: Sequence[float] = QUERY_BACKOFF_S
        self.submit_backoff_s: Sequence[float] = SUBMIT_BACKOFF_S
        self._down_until, self._down_why = float("-inf"), ""
        self._job_time: Optional[str] = self.slurm.time or None  # --time of every job (see _resolve_limits)
        self._partition: Optional[so.Partition] = None  # read once, before the first submission
        self._submit_limit: Optional[int] = None
        self._live: Optional[int] = None  # the user's jobs queued or running, as last counted plus submitted since

    # --- submitting -----------------------------------------------------------------------------

    def sbatch_argv(self, code_dir: str, spec_path: str, run_dir: str, run_id: str,
                    after: Sequence[int] = ()) -> list[str]:
        """The `sbatch` command line of one run (a list; quoted when sent). `after`: jobs that must end
        ok first (`afterok`, e.g. a shared trunk's job), on top of the run's singleton dependency."""
        runner = _quoted((self.slurm.python, "-m", "experiments", "run", spec_path, "--out", run_dir))
        dependency = ",".join((["afterok:" + ":".join(str(int(j)) for j in after)] if after else []) + ["singleton"])
        argv = ["sbatch", "--parsable", "--job-name=" + job_name(run_id), "--dependency=" + dependency,
                "--partition=" + self.slurm.partition, "--requeue", "--output=" + paths.runner_log(run_dir),
                "--open-mode=append", "--chdir=" + code_dir, "--signal=B:USR1@%d" % self.slurm.grace,
                "--export=ALL,EBT_MAX_REQUEUES=%d" % self.slurm.requeues]
        if after:  # a job it waits for failed: cancel this one rather than leave it pending forever
            argv.append("--kill-on-invalid-dep=yes")
        if self._job_time:
            argv.append("--time=" + self._job_time)
        if self.slurm.exclusive:  # all of the node: its CPUs and GPUs, and its memory (--mem=0)
            argv += ["--exclusive"] + ([] if _given(self.slurm.sbatch, "--mem", "--mem-per-cpu", "--mem-per-gpu")
                                       else ["--mem=0"])
        if self.slurm.gres:
            argv.append("--gres=" + self.slurm.gres)
        return argv + list(self.slurm.sbatch) + ["--wrap", "exec " + runner]

    def launch(self, code_dir: str, spec: dict, run_dir: str, after: Sequence[int] = ()) -> Launched:
        """Write spec.json into `run_dir` (shared filesystem) and submit the run's job, unless a job of
        the run is already queued or running (then that one is followed); `pid` is its job id. `after`:
        job ids that must end ok before this one starts. An sbatch refusal raises SubmitFailed; a partition
        the cluster does not have, or a time limit that leaves no room for `grace`, an EbtError (before any
        file is written)."""
        self._resolve_limits()
        spec_path = self.write_spec(spec, run_dir)
        name = job_name(spec["run_id"])
        queued = self.queued(name)
        if queued is not None:
            log.warning("%s: job %d of %s is already queued or running; following it, not submitting again",
                        self.url, queued, spec["run_id"])
            return Launched(run_dir=run_dir, pid=queued)
        self._wait_for_room(name)
        job_id = self._submit(self.sbatch_argv(code_dir, spec_path, run_dir, spec["run_id"], after), name)
        if self._live is not None:
            self._live += 1
        log.info("%s: job %d submitted for %s", self.url, job_id, run_dir)
        return Launched(run_dir=run_dir, pid=job_id)

    def _resolve_limits(self) -> None:
        """Once per target: the partition exists; every job's --time is `time`, else the partition's MaxTime,
        else its DefaultTime (none where `sbatch` gives one), within MaxTime and with room for `grace` (`_most_grace`); the
        user's submit limit."""
        if self._partition is not None:
            return
        part = self.partition()
        given = _given(self.slurm.sbatch, "--time", "-t")
        chosen = self.slurm.time or given or part.job_time()
        try:
            seconds, most = so.time_s(chosen or ""), so.time_s(part.max_time)
        except ValueError as err:
            raise EbtError(f"{self.url}: {err}") from None
        if seconds is not None and most is not None and seconds > most:
            raise EbtError(f"{self.url}: a time of {chosen} is above partition {part.name}'s MaxTime "
                           f"{part.max_time}; ask for at most that (&time=)")
        if seconds is not None and self.slurm.grace > _most_grace(seconds):
            raise EbtError(f"{self.url}: a time limit of {chosen} leaves no room for grace={self.slurm.grace} s "
                           f"(the runner stops that long before the limit): set &grace= to at most "
                           f"{max(0, _most_grace(seconds))}")
        self._job_time = None if given else chosen
        self._partition = part
        self._submit_limit = self.submit_limit()
        if self._submit_limit is not None:
            log.info("%s: your submit limit is %d jobs queued or running; runs are submitted in waves under it",
                     self.url, self._submit_limit)

    def submit_limit(self) -> Optional[int]:
        """How many jobs the user may have queued or running at once: `max_submit`, else the cluster's
        accounting (`sacctmgr`: the association's MaxSubmitJobs, its QOS's and the partition QOS's
        MaxSubmitJobsPerUser); None where none is set or there is no accounting (then the waves follow
        sbatch's refusals)."""
        if self.slurm.max_submit:
            return self.slurm.max_submit
        command = ("sacctmgr -nP show assoc where user=%s format=MaxSubmitJobs,DefaultQOS && echo %s && "
                   "sacctmgr -nP show qos format=Name,MaxSubmitJobsPerUser" % (_ME, _SECTION))
        result = self._call("sacctmgr", lambda conn: self._sh(conn, command))
        if result.exited != 0:  # no accounting, or slurmdbd down: not worth retrying, sbatch will tell
            log.info("%s: no submit limit read (%s)", self.url, (result.stderr.strip().splitlines() or ["-"])[-1])
            return None
        assoc, _, qos = result.stdout.partition(_SECTION)
        return so.parse_submit_limit(assoc, qos, self._partition.qos if self._partition else "N/A")

    def _wait_for_room(self, name: str) -> None:
        """Under a known submit limit, wait until the user's queued and running jobs leave room for one
        more (counted once, then per poll only while full): waves sized up front, not by refusals."""
        limit, said = self._submit_limit, False
        if limit is None:
            return
        while True:
            if self._live is None or self._live >= limit:
                self._live = sum(j.alive for j in self._my_jobs().values())
            if self._live < limit:
                return
            if not said:
                log.info("%s: %s waits: %d of your jobs are queued or running, your submit limit; submitting "
                         "as they end", self.url, name, self._live)
                said = True
            time.sleep(self.slurm.poll)
            self._live = None

    def _submit(self, argv: list[str], name: str) -> int:
        """sbatch, retried on passing errors and, over the user's submit limit, once the user's own jobs
        make room (submission in waves); after any failed try the job is looked up by name first."""
        tries = 0
        while True:
            try:
                result = self._call("sbatch", lambda conn: self._sh(conn, _quoted(argv)), retry_op=False)
            except TargetUnreachable as err:  # the link dropped under sbatch: queued or not, we cannot tell
                result, why = None, str(err)
            if result is not None and result.exited == 0:
                return int(result.stdout.strip().splitlines()[-1].split(";")[0])  # --parsable: `jobid[;cluster]`
            why = result.stderr.strip() if result is not None else why
            kind = "transient" if result is None else so.submit_error_kind(why)
            last = (why.splitlines() or ["no message"])[-1]
            if kind == "refused":
                raise SubmitFailed(f"{name}: sbatch on {self.url} refused the job: {last}")
            queued = self.queued(name)  # sbatch may have queued it before failing (nextflow#970)
            if queued is not None:
                return queued
            tries += 1
            self._wait_to_resubmit(name, kind, tries, last)

    def _wait_to_resubmit(self, name: str, kind: str, tries: int, why: str) -> None:
        if kind == "limit":
            if not any(j.alive for j in self._my_jobs().values()):
                raise SubmitFailed(f"{name}: sbatch on {self.url}: over the submit limit with no job of yours "
                                   f"queued ({why}); ask the admins for the limit")
            log.info("%s: %s waits: over your submit limit (%s); retrying as your jobs end", self.url, name, why)
            time.sleep(self.slurm.poll)
            return
        if tries > len(self.submit_backoff_s):
            raise SubmitFailed(f"{name}: sbatch on {self.url} failed {tries} times: {why}")
        delay = self.submit_backoff_s[tries - 1]
        log.warning("%s: sbatch for %s failed (%s); retrying in %.0f s", self.url, name, why, delay)
        time.sleep(delay)

    def queued(self, name: str) -> Optional[int]:
        """The job id of a live (pending/running) job of the user named `name`, if any."""
        out = self._query("squeue", "squeue -h -u %s --name=%s -o %s"
                          % (_ME, shlex.quote(name), shlex.quote(so.SQUEUE_FORMAT)))
        alive = [j.job_id for j in so.parse_squeue(out).values() if j.alive]
        return max(alive) if alive else None

    # --- Slurm's view -----------------------------------------------------------------------------

    def _query(self, what: str, command: str, none_if: Sequence[str] = ()) -> str:
        """stdout of a Slurm command on the login node, retried with backoff when it fails; '' when its
        error says there is nothing to ask (`none_if`). Still failing: SlurmUnreachable."""
        if time.monotonic() < self._down_until:  # it just kept failing: do not make every caller wait again
            raise SlurmUnreachable(self._down_why)
        for delay in (*self.query_backoff_s, None):
            result = self._call(what, lambda conn: self._sh(conn, command))
            if result.exited == 0:
                return result.stdout
            err = result.stderr.strip()
            if any(s in err + result.stdout for s in none_if):  # scontrol says `not found` on stdout
                return ""
            if delay is None:
                self._down_until = time.monotonic() + self.slurm.poll
                self._down_why = (f"{self.url}: `{command}` kept failing ({err[-300:] or 'exit %s' % result.exited});"
                                  " the jobs may still run: nothing is resubmitted")
                raise SlurmUnreachable(self._down_why)
            log.warning("%s: %s failed (%s); asking again in %.0f s", self.url, what, err[-200:], delay)
            time.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _my_jobs(self) -> dict[int, Job]:
        """Every job of the user slurmctld still knows, in one squeue."""
        return so.parse_squeue(self._query("squeue", "squeue -h -u %s --states=all -o %s"
                                           % (_ME, shlex.quote(so.SQUEUE_FORMAT))))

    def _sacct(self, job_ids: list[int]) -> dict[int, Job]:
        command = _quoted(["sacct", "-X", "-n", "-P", "-o", so.SACCT_FIELDS, "-j", ",".join(map(str, job_ids))])
        return so.parse_sacct(self._query("sacct", command, none_if=so.NO_ACCOUNTING))

    def jobs(self, job_ids: Sequence[int]) -> dict[int, Job]:
        """Slurm's view of each job (one squeue for all the user's jobs; sacct for those slurmctld forgot).
        A job that neither knows is left out; a query that keeps failing raises SlurmUnreachable."""
        ids = [int(j) for j in dict.fromkeys(job_ids)]
        stale = [j for j in ids if not self._cache.fresh(j)]
        if stale:
            found = self._my_jobs()
            missing = [j for j in stale if j not in found]
            if missing:
                found.update({j: job for j, job in self._sacct(missing).items() if j in missing})
            now = time.monotonic()
            for j, job in found.items():
                self._cache.put(j, job, now)
            for j in missing:
                self._cache.put(j, found.get(j), now)
        return {j: self._cache.jobs[j] for j in ids if j in self._cache.jobs}

    def job(self, handle: int) -> Optional[Job]:
        """One job; while slurmctld knows it, with `scontrol show job`'s restart count."""
        job = self.jobs([handle]).get(int(handle))
        if job is None:
            return None
        if not self._details.fresh(job.job_id):
            out = self._query("scontrol", "scontrol show job -o %d" % job.job_id, none_if=so.NO_SUCH_JOB)
            self._details.put(job.job_id, so.parse_scontrol_job(out), time.monotonic())
        return self._details.jobs.get(job.job_id, job)

    def alive(self, pid: int) -> bool:
        job = self.jobs([pid]).get(int(pid))
        return job is not None and job.alive

    def cancel(self, handle: int) -> None:
        self.cancel_jobs([handle])

    def cancel_jobs(self, handles: Sequence[int]) -> None:
        """scancel, SCANCEL_BATCH job ids per call (a job already over is not an error)."""
        ids = [int(h) for h in handles]
        for start in range(0, len(ids), SCANCEL_BATCH):
            batch = ids[start:start + SCANCEL_BATCH]
            command = "scancel " + " ".join(map(str, batch))
            result = self._call("scancel", lambda conn: self._sh(conn, command))
            if result.exited != 0 and "already completing or completed" not in result.stderr:
                raise EbtError(f"scancel {' '.join(map(str, batch))} on {self.url} failed: "
                               f"{result.stderr.strip()[-300:]}")
            for j in batch:
                self._cache.asked_at.pop(j, None)
                self._details.asked_at.pop(j, None)

    # --- the cluster ------------------------------------------------------------------------------

    def version(self) -> Optional[tuple]:
        """Slurm's version on the login node, e.g. (22, 5, 8); None when it does not say."""
        return so.parse_version(self._query("sinfo", "sinfo -V"))

    def partition(self) -> so.Partition:
        """The partition (`scontrol show partition`), with its nodes that can run a job; a partition
        the cluster does not have is an EbtError."""
        p = shlex.quote(self.slurm.partition)
        shown = self._query("scontrol", "scontrol show partition -o %s" % p, none_if=("not found",))
        nodes = self._query("sinfo", "sinfo -h -p %s -o '%%D|%%T'" % p) if shown else ""
        found = so.parse_partition(shown, nodes)
        if found is None:
            raise EbtError(f"{self.url}: the cluster has no partition {self.slurm.partition!r} "
                           f"(`sinfo -s` on {self.slurm.login} lists them)")
        return found

    def partition_nodes(self) -> int:
        """How many of the partition's nodes can run a job (DOWN/DRAIN left out): how many runs go at once
        with --exclusive."""
        return max(1, self.partition().usable_nodes)

    def _srun(self, what: str, command: str, timeout: float, wait_s: Optional[float]) -> tuple[int, str, str]:
        """`command` (a shell line) under one srun task on a node of the partition, bounded: with `wait_s`,
        srun gives up when no node is free within it (--immediate) instead of queueing behind the sweep,
        and `timeout` on the login node stops it (Slurm then ends its job) once `wait_s + timeout` have
        passed. Either way it says so, and nothing is left queued; only a dropped link is a lost link."""
        limit = int(timeout + (wait_s or 0))
        srun = ["timeout", "%d" % limit, "srun", "--quiet", "--nodes=1", "--ntasks=1",
                "--partition=" + self.slurm.partition, "--time=%d" % max(1, math.ceil(timeout / 60))]
        srun += ["--immediate=%d" % wait_s] if wait_s else []
        srun += (["--exclusive"] if self.slurm.exclusive else []) + (["--gres=" + self.slurm.gres] if self.slurm.gres
                                                                     else []) + list(self.slurm.sbatch)
        result = self._call(what, lambda conn: self._sh(conn, "%s %s" % (_quoted(srun), command),
                                                        timeout=limit + SRUN_MARGIN_S), retry_op=False)
        err = result.stderr
        if wait_s and result.exited != 0 and so.node_not_free(err):
            err += "\nno node of partition %s was free within %d s (srun --immediate)" % (self.slurm.partition,
                                                                                          wait_s)
        elif result.exited == TIMED_OUT:
            err += "\nsrun on partition %s did not end within %d s; stopped (its job ends with it)" % (
                self.slurm.partition, limit)
        return result.exited, result.stdout, err

    def run_on_node(self, code_dir: str, argv: list[str], timeout: float,
                    wait_s: Optional[float] = NODE_WAIT_S) -> tuple[int, str, str]:
        """`python -m ARGV` on a compute node of the partition (`srun`), like a run's job, waiting at most
        `wait_s` for a free node (`ebt plan`'s calibration, the checks)."""
        q = shlex.quote
        command = "sh -c %s" % q("cd %s && exec %s -m %s" % (q(code_dir), q(self.slurm.python), _quoted(argv)))
        return self._srun("srun " + argv[0], command, timeout, wait_s)

    def run_module(self, code_dir: str, argv: list[str], timeout: float) -> tuple[int, str, str]:
        """The checks' `python -m ARGV` (hw.probe): on a compute node, where the runs go, waiting at most
        NODE_WAIT_S for one (not on the login node, whose Python, torch and meters are not the boards')."""
        return self.run_on_node(code_dir, argv, timeout)

    def checks(self) -> list:
        """`ebt doctor`'s Slurm lines: the version, the partition, the run root seen from a node."""
        from ..preflight import Check
        found = self.version()
        text = "unknown" if found is None else ".".join("%02d" % v if i == 1 else str(v) for i, v in enumerate(found))
        minimum = "%d.%02d" % so.MIN_VERSION
        checks = [Check("slurm", found is not None and found[:2] >= so.MIN_VERSION,
                        f"{text} (at least {minimum})", f"a Slurm of {minimum} or later on the login node")]
        try:
            part = self.partition()
        except EbtError as err:
            return checks + [Check("partition", False, str(err), "name a partition that `sinfo -s` lists")]
        checks.append(Check("partition", part.usable_nodes > 0,
                            f"{part.name}: {part.usable_nodes} of {part.total_nodes} nodes usable, "
                            f"MaxTime {part.max_time}",
                            "resume the nodes (`scontrol update NodeName=.. State=RESUME`)"))
        return checks + self._root_check()

    def _root_check(self) -> list:
        """The run root seen from a node: there and writable, and on a mount whose locks hold across
        machines (the runner's one-per-folder flock): not NFS with `nolock` or a `local_lock`."""
        from ..preflight import Check
        q = shlex.quote(self.root)
        probe = "test -d %s && test -w %s && echo yes && findmnt -n -o FSTYPE,OPTIONS --target %s" % (q, q, q)
        rc, out, err = self._srun("srun test", "sh -c %s" % shlex.quote(probe), 60, NODE_WAIT_S)
        lines = out.strip().splitlines()
        ok = rc == 0 and lines[:1] == ["yes"]
        why = "visible and writable" if ok else (err.strip().splitlines() or ["not there or not writable"])[-1]
        checks = [Check("run root on a node", ok, f"{self.root}: {why}",
                        "put root= on the filesystem the nodes share (e.g. &root=/shared/ebt)")]
        if ok:
            fstype, _, options = (lines[1:] or ["unknown"])[0].partition(" ")
            local = fstype.startswith("nfs") and any(o in options.split(",") for o in
                                                     ("nolock", "local_lock=all", "local_lock=flock"))
            checks.append(Check("run root locks", not local, f"{fstype} {options.strip()}".strip(),
                                "mount it with locking (NFSv4, or NFSv3 with lockd; not nolock/local_lock): "
                                "two runners on one run folder are kept apart by flock", blocking=False))
        return checks


def _given(argv: Sequence[str], *names: str) -> str:
    """The value of the first of the options `names` in the user's extra sbatch arguments ('' if absent):
    `--time=1:00`, `--time 1:00`, `-t 1:00`, `-t1:00`."""
    for i, arg in enumerate(argv):
        for n in names:
            if arg == n:
                return argv[i + 1] if i + 1 < len(argv) else ""
            if arg.startswith(n + "=") or (len(n) == 2 and arg.startswith(n) and len(arg) > 2):
                return arg[len(n) + (arg[len(n)] == "="):]
    return ""


def job_name(run_id: str) -> str:
    """A run's job name: one name per run makes --dependency=singleton and the lookup by name work."""
    return "ebt-" + run_id
