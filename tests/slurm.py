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

`start_cluster` builds one that looks like a real cluster, for the fault tests: three nodes, each its own
`slurmd -N NAME` on this host with its own port, spool, pid and log (`%n` in slurm.conf; Debian's 22.05
runs several side by side, no namespaces needed); accounting through slurmdbd and a MariaDB in the same
temp folder (`AccountingStorageEnforce=limits`: a MaxSubmitJobs set with sacctmgr is refused by the real
controller); partitions with MaxTime and memory as a consumable resource (CR_Core_Memory, RealMemory per
node); preemption by partition PriorityTier (REQUEUE, and CANCEL in SCAVENGER); a compute node without
torch (NO_TORCH_NODE); and a user that is not root (useradd once) logging in on the login node and
owning the run roots. The only change outside the temp folder is that user account. Where this Python
lives under a folder others cannot enter (a pyenv under /root), the slurmd and the login sshd run in a
private mount namespace that opens only the way to it (`_reveal`).

Facts used: slurm.conf(5) keywords, `slurmctld -D -i -f`, `slurmd -D -N -f`, `munged -F --key-file
--socket --pid-file --log-file --seed-file`, `AuthInfo=socket=` to point Slurm at that munge socket
(`AccountingStoragePass=` for the talk to slurmdbd), slurmdbd.conf(5) (read next to $SLURM_CONF, mode
0600), `mariadb-install-db`, sacctmgr(1); slurmctld checks time limits and sends `--signal` every 30 s.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

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
    user: str = ""  # the account that logs in and submits ("": this process's, root)
    shared: Optional[Path] = None  # the "shared filesystem" folder that `user` owns (run roots go here)
    wrap: List[str] = field(default_factory=list)  # what the user's processes run under (see _reveal)
    partitions: tuple = (PARTITION, NO_TORCH)
    accounting: bool = False  # slurmdbd keeps accounting and the controller enforces its limits

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
        (MaxSubmitJobs' message); 0: no limit. With accounting, the real one: the user's MaxSubmitJobs
        (sacctmgr), which slurmctld enforces; else the sbatch stand-in."""
        if self.accounting:
            self.command("sacctmgr", "-i", "modify", "user", "where", "name=" + self.user, "set",
                          "MaxSubmitJobs=%d" % (jobs or -1))
            return
        path = self.root / "submit-limit"
        path.write_text(str(jobs)) if jobs else path.unlink(missing_ok=True)

    def accounted(self, *fields: str, duplicates: bool = False) -> List[dict]:
        """The user's jobs in the accounting database (`sacct -X`: one line per job, or per attempt of a
        requeued job with `duplicates`), each a dict of `fields` (JobID, JobName, State, NodeList, ...)."""
        out = self.command("sacct", "-X", "-n", "-P", "-u", self.user, "-S", "2000-01-01", "-o", ",".join(fields),
                           *(["--duplicates"] if duplicates else []))
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        return "\n".join("--- %s\n%s" % (p.name, p.read_text()[-3000:])
                         for p in sorted(self.root.glob("*.log")))

    def stop(self) -> None:
        """Cancel what is left, then stop the daemons (last started, first stopped)."""
        for partition in self.partitions:
            self.command("scancel", "--partition", partition, check=False)
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _base_conf(root: Path, ctld_port: int) -> List[str]:
    """What both clusters' slurm.conf say: the controller, munge, where state and logs go, no cgroups."""
    return [
        "SlurmctldHost=localhost(127.0.0.1)",
        "SlurmctldPort=%d" % ctld_port,
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        # cred_expire: also how long a requeued job waits before it may start again (default 120 s)
        "AuthInfo=socket=%s,cred_expire=10" % (root / "munge.socket"),
        "StateSaveLocation=%s" % (root / "state"),
        "SlurmctldPidFile=%s" % (root / "slurmctld.pid"),
        "SlurmctldLogFile=%s" % (root / "slurmctld.log"),
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SchedulerType=sched/backfill",
        "MpiDefault=none",
        "JobCompType=jobcomp/none",
        "KillWait=5",
        "SlurmdTimeout=30",
    ]


def _slurm_conf(root: Path, ctld_port: int, node_port: int) -> str:
    cpus = os.cpu_count() or 1
    return "\n".join(["ClusterName=ebttest"] + _base_conf(root, ctld_port) + [
        "SlurmdPort=%d" % node_port,
        "ReturnToService=2",
        "SlurmdSpoolDir=%s" % (root / "spool"),
        "SlurmdPidFile=%s" % (root / "slurmd.pid"),
        "SlurmdLogFile=%s" % (root / "slurmd.log"),
        "SelectTypeParameters=CR_Core",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "MinJobAge=3600",
        "NodeName=%s NodeHostname=%s NodeAddr=127.0.0.1 CPUs=%d State=UNKNOWN"
        % (NODE, socket.gethostname(), cpus),
        "PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE State=UP" % (PARTITION, NODE),
        # the same node seen through a partition whose jobs find no torch (TaskProlog): a compute node
        # whose Python is not the login node's
        "PartitionName=%s Nodes=%s MaxTime=INFINITE State=UP" % (NO_TORCH, NODE),
        "TaskProlog=%s" % _task_prolog(root, "SLURM_JOB_PARTITION", NO_TORCH),
        "",
    ])


def _task_prolog(root: Path, variable: str, value: str, extra: str = "") -> Path:
    """slurm.conf(5) TaskProlog: its `export NAME=VALUE` lines set the task's environment. Where the task's
    `variable` is `value` (partition NO_TORCH, or a node), `import torch` fails. `extra`: more shell lines."""
    shadow = root / "no-torch" / "torch"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named torch (not on this node)')\n")
    prolog = root / "task_prolog"
    prolog.write_text('#!/bin/sh\n[ "$%s" = %s ] && echo "export PYTHONPATH=%s"\n%sexit 0\n'
                      % (variable, value, shadow.parent, extra))
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


def _node_idle(cluster: SlurmCluster, node: str = NODE) -> bool:
    out = cluster.command("sinfo", "-h", "-n", node, "-o", "%t", check=False).strip()
    return out in ("idle", "mix", "alloc")


def _start_munged(cluster: SlurmCluster) -> None:
    root = cluster.root
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    _start(cluster, "munged", ["munged", "-F", "--force", "--key-file=%s" % key,
                               "--socket=%s" % (root / "munge.socket"), "--pid-file=%s" % (root / "munged.pid"),
                               "--log-file=%s" % (root / "munged.log"), "--seed-file=%s" % (root / "munge.seed")])
    _wait_for(cluster, "munged did not start", (root / "munge.socket").exists)


def _start_slurmctld(cluster: SlurmCluster) -> None:
    _start(cluster, "slurmctld", ["slurmctld", "-D", "-i", "-f", str(cluster.conf)])
    _wait_for(cluster, "slurmctld did not start",
              lambda: cluster.command("scontrol", "ping", check=False).find("UP") >= 0)


def start_slurm(root: Path) -> SlurmCluster:
    """munged, slurmctld, slurmd in `root`; returns once the node accepts jobs."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (root / sub).mkdir(exist_ok=True)
    ctld_port, node_port = _free_ports(2)
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, ctld_port, node_port))
    cluster = SlurmCluster(root=root, conf=conf)
    _start_munged(cluster)
    _start_slurmctld(cluster)
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
    server = start_sshd(root, user=cluster.user, wrap=cluster.wrap)
    config = root / "sshd_config"
    path = "%s:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" % _standins(cluster)
    config.write_text(config.read_text() + "SetEnv SLURM_CONF=%s PATH=%s\n" % (cluster.conf, path))
    server.proc.send_signal(signal.SIGHUP)  # sshd re-executes itself with the new config, same pid
    time.sleep(0.5)
    wait_until("sshd back after SIGHUP", lambda: _sshd_ready(server.port), 10)
    return server


# --- a test cluster that looks like a real one ------------------------------------------------------------

USER = "ebtuser"  # the cluster's user: not root, logs in on the login node and submits
NODES = ("ebt1", "ebt2")  # the nodes of PARTITION, SHORT, SCAVENGER and URGENT
NO_TORCH_NODE = "ebt3"  # NO_TORCH's one node, whose Python has no torch
SHORT = "short"  # MaxTime=1 (minute): a longer run has to requeue itself
SCAVENGER = "scavenger"  # PreemptMode=CANCEL: a preempted job ends PREEMPTED
URGENT = "urgent"  # PriorityTier=10: its jobs preempt those of the other partitions
NODE_MEMORY_MB = 2048  # each node's RealMemory (memory is a consumable resource: CR_Core_Memory)
MAX_TIME_MIN = 30  # MaxTime of every partition but SHORT
CLUSTER = "ebtcluster"
ACCOUNT = "ebt"
_CLUSTER_TOOLS = ("slurmdbd", "mariadbd", "mariadb-install-db", "mariadb", "useradd", "unshare", "sacctmgr")


def cluster_available() -> bool:
    """Whether `start_cluster` can run here: Slurm, its accounting daemon, MariaDB, root."""
    return slurm_available() and all(shutil.which(t) or Path("/usr/sbin", t).exists() for t in _CLUSTER_TOOLS)


def cluster_missing_reason() -> str:
    if not slurm_available():
        return missing_reason()
    return "Slurm accounting not installed (apt-get install -y slurmdbd mariadb-server)"


def _cluster_conf(root: Path, ctld_port: int, dbd_port: int, node_ports: dict) -> str:
    host, cpus = socket.gethostname(), os.cpu_count() or 1
    both = ",".join(NODES)
    return "\n".join(["ClusterName=" + CLUSTER] + _base_conf(root, ctld_port) + [
        # several slurmd on one host: each node its own port, spool folder, pid and log (%n: node name)
        "SlurmdSpoolDir=%s" % (root / "spool" / "%n"),
        "SlurmdPidFile=%s" % (root / "slurmd-%n.pid"),
        "SlurmdLogFile=%s" % (root / "slurmd-%n.log"),
        "SelectTypeParameters=CR_Core_Memory",
        "ReturnToService=1",  # Slurm's default: a node an admin set DOWN stays down until resumed
        # a requeued job starts once its BeginTime (cred_expire later) has passed, at the next backfill pass
        # (default every 30 s)
        "SchedulerParameters=bf_interval=5",
        "PreemptType=preempt/partition_prio",
        "PreemptMode=REQUEUE",
        "AccountingStorageType=accounting_storage/slurmdbd",
        "AccountingStorageHost=127.0.0.1",
        "AccountingStoragePort=%d" % dbd_port,
        # slurm.conf(5): with slurmdbd and munge, the munge socket for talking to slurmdbd
        "AccountingStoragePass=%s" % (root / "munge.socket"),
        "AccountingStorageEnforce=limits",  # associations required, MaxSubmitJobs & co enforced
        "JobAcctGatherType=jobacct_gather/linux",
        "MinJobAge=60",  # then only sacct knows a finished job
        *["NodeName=%s NodeHostname=%s NodeAddr=127.0.0.1 Port=%d CPUs=%d RealMemory=%d State=UNKNOWN"
          % (name, host, port, cpus, NODE_MEMORY_MB) for name, port in node_ports.items()],
        "PartitionName=%s Nodes=%s Default=YES MaxTime=%d PriorityTier=1 PreemptMode=REQUEUE State=UP"
        % (PARTITION, both, MAX_TIME_MIN),
        "PartitionName=%s Nodes=%s MaxTime=1 PriorityTier=1 PreemptMode=REQUEUE State=UP" % (SHORT, both),
        "PartitionName=%s Nodes=%s MaxTime=%d PriorityTier=1 PreemptMode=CANCEL State=UP"
        % (SCAVENGER, both, MAX_TIME_MIN),
        "PartitionName=%s Nodes=%s MaxTime=%d PriorityTier=10 PreemptMode=OFF State=UP" % (URGENT, both, MAX_TIME_MIN),
        "PartitionName=%s Nodes=%s MaxTime=%d State=UP" % (NO_TORCH, NO_TORCH_NODE, MAX_TIME_MIN),
        # SHORT's jobs train on one thread, a board's pace on any host: a run outlasts the minute everywhere
        "TaskProlog=%s" % _task_prolog(root, "SLURMD_NODENAME", NO_TORCH_NODE,
                                       '[ "$SLURM_JOB_PARTITION" = %s ] && echo "export OMP_NUM_THREADS=1"\n' % SHORT),
        "",
    ])


def _dbd_conf(root: Path, dbd_port: int, db_port: int) -> str:
    return "\n".join([
        "AuthType=auth/munge",
        "AuthInfo=socket=%s" % (root / "munge.socket"),
        "DbdAddr=127.0.0.1",
        "DbdHost=localhost",
        "DbdPort=%d" % dbd_port,
        "SlurmUser=root",
        "PidFile=%s" % (root / "slurmdbd.pid"),
        "LogFile=%s" % (root / "slurmdbd.log"),
        "StorageType=accounting_storage/mysql",
        "StorageHost=127.0.0.1",
        "StoragePort=%d" % db_port,
        "StorageUser=slurm",
        "StoragePass=ebt-test",
        "StorageLoc=slurm_acct_db",
        "",
    ])


def _ensure_user(name: str) -> pwd.struct_passwd:
    """The cluster's user account (useradd once; '*': no password, yet not locked for sshd's key login)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        # another test process may be making it at the same time: look again rather than check useradd's exit
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return pwd.getpwnam(name)


def _reveal(stage: Path, paths: Sequence[str]) -> List[str]:
    """A command prefix under which any user can reach `paths` (this Python, its venv): where a folder on
    the way is closed to others (a pyenv under /root, mode 0700), a private mount namespace puts a tmpfs of
    mode 0711 over that folder and binds back only the entries on the way. Nothing outside that namespace
    changes; [] when nothing is closed."""
    closed: dict = {}
    for path in paths:
        parts = Path(os.path.realpath(path)).parts
        for depth in range(1, len(parts)):
            folder = Path(*parts[:depth])
            if not folder.stat().st_mode & 0o001:
                closed.setdefault(folder, set()).add(parts[depth])
                break
    lines = []
    for i, (folder, entries) in enumerate(sorted(closed.items())):
        keep = stage / str(i)
        keep.mkdir(parents=True, exist_ok=True)
        lines += ["mount --bind %s %s" % (folder, keep), "mount -t tmpfs -o mode=0711 ebt-reveal %s" % folder]
        for entry in sorted(entries):
            make = "mkdir" if (folder / entry).is_dir() else "touch"
            lines += ["%s %s" % (make, folder / entry), "mount --bind %s %s" % (keep / entry, folder / entry)]
    if not lines:
        return []
    return ["unshare", "--mount", "--propagation", "private", "sh", "-ec", "\n".join(lines + ['exec "$@"']), "sh"]


def _start_database(cluster: SlurmCluster, db_port: int) -> None:
    """MariaDB in the cluster's folder, on 127.0.0.1:`db_port`, with a user for slurmdbd."""
    root = cluster.root
    small = ["--innodb-log-file-size=8M"]
    subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=%s" % (root / "mysql"), "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db", *small],
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True, timeout=120)
    socket_path = root / "mysql.sock"
    _start(cluster, "mariadbd", ["mariadbd", "--no-defaults", "--datadir=%s" % (root / "mysql"), "--user=root",
                                 "--socket=%s" % socket_path, "--port=%d" % db_port, "--bind-address=127.0.0.1",
                                 "--skip-name-resolve", "--pid-file=%s" % (root / "mariadb.pid"),
                                 "--log-error=%s" % (root / "mariadb.log"), "--innodb-buffer-pool-size=32M", *small])

    def sql(statement: str) -> bool:
        return subprocess.run(["mariadb", "--no-defaults", "--socket=%s" % socket_path, "-uroot", "-e", statement],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    _wait_for(cluster, "mariadbd did not start", lambda: sql("SELECT 1"), timeout_s=60)
    assert sql("CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'ebt-test'; "
               "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'")


def _start_accounting(cluster: SlurmCluster, dbd_port: int, db_port: int) -> None:
    """MariaDB, slurmdbd, and the cluster, an account and the user in its database."""
    _start_database(cluster, db_port)
    dbd = cluster.root / "slurmdbd.conf"  # slurmdbd reads it next to $SLURM_CONF; must be 0600
    dbd.write_text(_dbd_conf(cluster.root, dbd_port, db_port))
    dbd.chmod(0o600)
    _start(cluster, "slurmdbd", ["slurmdbd", "-D"])
    _wait_for(cluster, "slurmdbd did not start", lambda: _dbd_answers(cluster), timeout_s=60)
    cluster.command("sacctmgr", "-i", "add", "cluster", CLUSTER)
    cluster.command("sacctmgr", "-i", "add", "account", ACCOUNT, "Description=ebt", "Organization=ebt",
                    "Cluster=" + CLUSTER)
    cluster.command("sacctmgr", "-i", "add", "user", cluster.user, "Account=" + ACCOUNT, "Cluster=" + CLUSTER)


def _dbd_answers(cluster: SlurmCluster) -> bool:
    done = subprocess.run(["sacctmgr", "-n", "list", "cluster"], env=cluster.env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=30)
    return done.returncode == 0


def start_cluster(root: Path) -> SlurmCluster:
    """A cluster that looks like a real one, in `root` (whose parents any user can enter: the user reads
    the TaskProlog and the login node's key there): munged; MariaDB and slurmdbd (accounting, limits
    enforced); slurmctld; one slurmd per node of NODES + NO_TORCH_NODE, several on this host, each on its
    own port; partitions with MaxTime and memory as a resource, preemption by partition priority (REQUEUE,
    and CANCEL in SCAVENGER); USER owns `shared` (the run roots) and submits. Returns once every node
    accepts jobs."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for sub in ("state", "spool"):
        (root / sub).mkdir(exist_ok=True)
    names = NODES + (NO_TORCH_NODE,)
    for name in names:
        (root / "spool" / name).mkdir(exist_ok=True)
    ctld_port, dbd_port, db_port, *node_ports = _free_ports(3 + len(names))
    conf = root / "slurm.conf"
    conf.write_text(_cluster_conf(root, ctld_port, dbd_port, dict(zip(names, node_ports))))
    account = _ensure_user(USER)
    shared = root / "shared"
    shared.mkdir(exist_ok=True)
    os.chown(shared, account.pw_uid, account.pw_gid)
    wrap = _reveal(root / "reveal", [sys.executable, sys.prefix, sys.base_prefix])
    cluster = SlurmCluster(root=root, conf=conf, user=USER, shared=shared, wrap=wrap, accounting=True,
                           partitions=(PARTITION, SHORT, SCAVENGER, URGENT, NO_TORCH))
    _start_munged(cluster)
    _start_accounting(cluster, dbd_port, db_port)
    _start_slurmctld(cluster)
    for name in names:  # the user's jobs run under `wrap`: they see this Python
        _start(cluster, "slurmd-" + name, [*wrap, "slurmd", "-D", "-N", name, "-f", str(conf)])
    _wait_for(cluster, "slurmd did not register", lambda: all(_node_idle(cluster, n) for n in names), timeout_s=60)
    return cluster
