"""A throwaway single-node Slurm cluster on this machine for the slurm:// target tests.

Real Debian `slurm-wlm` and `munge` (not a mock): a fresh munge key, `munged`, `slurmctld` and one
`slurmd` (node `ebtnode`, this machine, all its CPUs), all as root, every file (config, state, spool,
logs, sockets, pid files) in a temp folder, controller and node on free ports of 127.0.0.1. Nothing
under /etc or /run is read or written.

Configuration choices: `proctrack/linuxproc` and `task/none` (no cgroups: containers rarely allow them),
`select/cons_tres`, no accounting daemon: a finished job stays visible to `scontrol show job` for
`MinJobAge` seconds, which is all a test needs (the target falls back to `sacct` after that). The client
commands find the cluster through `SLURM_CONF`, which the login host (the test sshd) sets for every SSH
session with `SetEnv`, with a PATH whose first folder holds fault stand-ins for `squeue` (fails with
"Socket timed out" for a while) and `sbatch` (refuses past a submit limit with MaxSubmitJobs' message);
both run the real command unless a test switches them on. A second partition, NO_TORCH, on the same node
gives its jobs an environment (TaskProlog) where torch does not import: a compute node whose Python is not
the login node's.

Facts used: slurm.conf(5) keywords, `slurmctld -D -i -f`, `slurmd -D -N -f`, `munged -F --key-file
--socket --pid-file --log-file --seed-file`, `AuthInfo=socket=` to point Slurm at that munge socket.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List

from tests.sshd import SSHServer, start_sshd

NODE = "ebtnode"
PARTITION = "ebt"
NO_TORCH = "notorch"
DAEMONS = ("munged", "slurmctld", "slurmd")


def slurm_available() -> bool:
    """Whether the Debian packages are installed (and we may run their daemons: root)."""
    return all(shutil.which(d) or Path("/usr/sbin", d).exists() for d in DAEMONS) and os.geteuid() == 0


def missing_reason() -> str:
    if os.geteuid() != 0:
        return "the single-node Slurm cluster needs root (slurmd runs jobs as their user)"
    return "Slurm not installed (apt-get install -y slurm-wlm munge)"


def _free_ports(n: int) -> List[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    procs: List[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict:
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def command(self, *argv: str, check: bool = True) -> str:
        """Run a Slurm client command (scontrol, squeue, ...) against this cluster; its stdout."""
        done = subprocess.run(list(argv), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError("%s failed: %s" % (" ".join(argv), done.stderr.strip()))
        return done.stdout

    def job(self, job_id: int) -> dict:
        """`scontrol show job` of one job as a dict (JobState, NodeList, Restarts, ...)."""
        line = self.command("scontrol", "show", "job", "-o", str(job_id))
        return dict(item.split("=", 1) for item in line.split() if "=" in item)

    def wait_job(self, job_id: int, states: tuple, timeout_s: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job.get("JobState") in states:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError("job %d still %s after %.0f s (wanted %s)\n%s"
                                   % (job_id, job.get("JobState"), timeout_s, states, self.logs()))
            time.sleep(0.3)

    def fail_squeue_for(self, seconds: float) -> None:
        """squeue on the login node fails ("Socket timed out") for the next `seconds`."""
        (self.root / "squeue-fails-until").write_text("%d" % (time.time() + seconds))

    def submit_limit(self, jobs: int = 0) -> None:
        """sbatch on the login node refuses a job while the user has `jobs` queued or running
        (MaxSubmitJobs' message); 0: no limit."""
        path = self.root / "submit-limit"
        path.write_text(str(jobs)) if jobs else path.unlink(missing_ok=True)

    def logs(self) -> str:
        return "\n".join("--- %s\n%s" % (p.name, p.read_text()[-3000:])
                         for p in sorted(self.root.glob("*.log")))

    def stop(self) -> None:
        """Cancel what is left, then stop the daemons (last started, first stopped)."""
        self.command("scancel", "--partition", PARTITION, check=False)
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _slurm_conf(root: Path, ctld_port: int, node_port: int) -> str:
    cpus = os.cpu_count() or 1
    return "\n".join([
        "ClusterName=ebttest",
        "SlurmctldHost=localhost(127.0.0.1)",
        "SlurmctldPort=%d" % ctld_port,
        "SlurmdPort=%d" % node_port,
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        # cred_expire: also how long a requeued job waits before it may start again (default 120 s)
        "AuthInfo=socket=%s,cred_expire=10" % (root / "munge.socket"),
        "StateSaveLocation=%s" % (root / "state"),
        "SlurmdSpoolDir=%s" % (root / "spool"),
        "SlurmctldPidFile=%s" % (root / "slurmctld.pid"),
        "SlurmdPidFile=%s" % (root / "slurmd.pid"),
        "SlurmctldLogFile=%s" % (root / "slurmctld.log"),
        "SlurmdLogFile=%s" % (root / "slurmd.log"),
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill",
        "MpiDefault=none",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MinJobAge=3600",
        "KillWait=5",
        "SlurmdTimeout=30",
        "NodeName=%s NodeHostname=%s NodeAddr=127.0.0.1 CPUs=%d State=UNKNOWN"
        % (NODE, socket.gethostname(), cpus),
        "PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE State=UP" % (PARTITION, NODE),
        # the same node seen through a partition whose jobs find no torch (TaskProlog): a compute node
        # whose Python is not the login node's
        "PartitionName=%s Nodes=%s MaxTime=INFINITE State=UP" % (NO_TORCH, NODE),
        "TaskProlog=%s" % _task_prolog(root),
        "",
    ])


def _task_prolog(root: Path) -> Path:
    """slurm.conf(5) TaskProlog: its `export NAME=VALUE` lines set the task's environment. In partition
    NO_TORCH, `import torch` fails on the node."""
    shadow = root / "no-torch" / "torch"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named torch (not on this node)')\n")
    prolog = root / "task_prolog"
    prolog.write_text('#!/bin/sh\n[ "$SLURM_JOB_PARTITION" = %s ] && echo "export PYTHONPATH=%s"\nexit 0\n'
                      % (NO_TORCH, shadow.parent))
    prolog.chmod(0o755)
    return prolog


def _start(cluster: SlurmCluster, name: str, argv: List[str]) -> None:
    log = (cluster.root / ("%s.out" % name)).open("ab")
    cluster.procs.append(subprocess.Popen(argv, env=cluster.env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL))


def _wait_for(cluster: SlurmCluster, what: str, ready, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        dead = [p.args[0] for p in cluster.procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            cluster.stop()
            raise RuntimeError("%s: %s\n%s" % (what, "exited: %s" % dead if dead else "timed out",
                                               cluster.logs() + _outs(cluster.root)))
        time.sleep(0.2)


def _outs(root: Path) -> str:
    return "\n".join("--- %s\n%s" % (p.name, p.read_text()[-2000:]) for p in sorted(root.glob("*.out")))


def _node_idle(cluster: SlurmCluster) -> bool:
    out = cluster.command("sinfo", "-h", "-n", NODE, "-o", "%t", check=False).strip()
    return out in ("idle", "mix", "alloc")


def start_slurm(root: Path) -> SlurmCluster:
    """munged, slurmctld, slurmd in `root`; returns once the node accepts jobs."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (root / sub).mkdir(exist_ok=True)
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    ctld_port, node_port = _free_ports(2)
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, ctld_port, node_port))
    cluster = SlurmCluster(root=root, conf=conf)
    _start(cluster, "munged", ["munged", "-F", "--force", "--key-file=%s" % key,
                               "--socket=%s" % (root / "munge.socket"), "--pid-file=%s" % (root / "munged.pid"),
                               "--log-file=%s" % (root / "munged.log"), "--seed-file=%s" % (root / "munge.seed")])
    _wait_for(cluster, "munged did not start", (root / "munge.socket").exists)
    _start(cluster, "slurmctld", ["slurmctld", "-D", "-i", "-f", str(conf)])
    _wait_for(cluster, "slurmctld did not start",
              lambda: cluster.command("scontrol", "ping", check=False).find("UP") >= 0)
    _start(cluster, "slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(conf)])
    _wait_for(cluster, "slurmd did not register", lambda: _node_idle(cluster), timeout_s=60)
    return cluster


def wait_until(what: str, ready: Callable[[], object], timeout_s: float = 120.0, every_s: float = 0.2):
    """Poll `ready` until it returns something true (returned) or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = ready()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("%s: not within %.0f s" % (what, timeout_s))
        time.sleep(every_s)


def _sshd_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


# Stand-ins first on the login node's PATH: each runs the real command unless a control file in the
# cluster's folder says otherwise (`fail_squeue_for`, `submit_limit`), with Slurm's own messages.
_SQUEUE = """#!/bin/sh
until=$(cat %(ctl)s/squeue-fails-until 2>/dev/null || echo 0)
if [ "$(date +%%s)" -lt "$until" ]; then
  echo "squeue: error: slurm_load_jobs error: Socket timed out on send/recv operation" >&2
  exit 1
fi
exec %(real)s/squeue "$@"
"""
_SBATCH = """#!/bin/sh
limit=$(cat %(ctl)s/submit-limit 2>/dev/null)
if [ -n "$limit" ] && [ "$(%(real)s/squeue -h -u "$(id -un)" -o %%i | wc -l)" -ge "$limit" ]; then
  echo "sbatch: error: QOSMaxSubmitJobPerUserLimit" >&2
  echo "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, \
user's size and/or time limits)" >&2
  exit 1
fi
exec %(real)s/sbatch "$@"
"""


def _standins(cluster: SlurmCluster) -> Path:
    bin_dir = cluster.root / "standin-bin"
    bin_dir.mkdir(exist_ok=True)
    real = str(Path(shutil.which("squeue") or "/usr/bin/squeue").parent)
    for name, text in (("squeue", _SQUEUE), ("sbatch", _SBATCH)):
        (bin_dir / name).write_text(text % {"ctl": cluster.root, "real": real})
        (bin_dir / name).chmod(0o755)
    return bin_dir


def start_login_host(root: Path, cluster: SlurmCluster) -> SSHServer:
    """The cluster's login node: the SSH tests' real sshd, whose sessions get `SLURM_CONF` (sshd_config
    `SetEnv`, read again on SIGHUP), as /etc/slurm/slurm.conf gives it on a real login node, and a PATH
    with the fault stand-ins first."""
    server = start_sshd(root)
    config = root / "sshd_config"
    path = "%s:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" % _standins(cluster)
    config.write_text(config.read_text() + "SetEnv SLURM_CONF=%s PATH=%s\n" % (cluster.conf, path))
    server.proc.send_signal(signal.SIGHUP)  # sshd re-executes itself with the new config, same pid
    time.sleep(0.5)
    wait_until("sshd back after SIGHUP", lambda: _sshd_ready(server.port), 10)
    return server
