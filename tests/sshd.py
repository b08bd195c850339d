"""A throwaway OpenSSH server on 127.0.0.1 for the SSH target tests.

Real Debian `sshd` (not a mock): a fresh host key and user key in a temp folder, public-key login
only, `StrictModes no` (the temp folder is not 0700 all the way up), `UsePAM no` (no system
accounts touched), SFTP through `internal-sftp` (no dependency on the sftp-server path), every session with
`OMP_NUM_THREADS=1` (authorized_keys `environment=`, allowed by `PermitUserEnvironment`).

The client side is a temp ssh config (pointed to by `EBT_SSH_CONFIG`) whose `UserKnownHostsFile`
is a temp known_hosts that starts EMPTY: the host is unknown until a test trusts it. Nothing under
the real ~/.ssh is read or written.

Facts used: sshd(8) `-D -e -f`, sshd_config(5) keywords; `/run/sshd` is the privilege-separation
directory sshd insists on; each accepted connection is served by a forked sshd child of the
listener, so killing those children drops sessions while the listener keeps accepting.
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

SSHD = Path("/usr/sbin/sshd")
HOST_ALIAS = "ebt-test-device"
# Process names of per-connection sshd processes (OpenSSH >= 9.8 execs `sshd-session`).
_SESSION_NAMES = {"sshd", "sshd-session", "sshd-auth"}
SESSION_ENV = "OMP_NUM_THREADS=1"  # set in every session (authorized_keys `environment=`)


def sshd_available() -> bool:
    return SSHD.exists() and shutil.which("ssh-keygen") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ebt-test", "-f", str(path)], check=True)


def _children(pid: int) -> List[int]:
    """Direct children of `pid` (from /proc, no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: parse after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _comm(pid: int) -> str:
    try:
        return Path("/proc/%d/comm" % pid).read_text().strip()
    except OSError:
        return ""


@dataclass
class SSHServer:
    root: Path
    port: int
    user: str
    proc: subprocess.Popen
    ssh_config: Path
    known_hosts: Path
    host_pub: Path
    log: Path

    @property
    def url(self) -> str:
        """A target URL that goes through the ssh config (identity, known_hosts)."""
        return "ssh://%s" % HOST_ALIAS

    @property
    def direct_url(self) -> str:
        return "ssh://%s@127.0.0.1:%d" % (self.user, self.port)

    def known_hosts_line(self) -> str:
        keytype, b64 = self.host_pub.read_text().split()[:2]
        return "[127.0.0.1]:%d %s %s\n" % (self.port, keytype, b64)

    def trust(self) -> None:
        """Put the real host key into the client's known_hosts (what a user does out of band)."""
        with self.known_hosts.open("a") as f:
            f.write(self.known_hosts_line())

    def session_pids(self) -> List[int]:
        """Every per-connection sshd process (descendants of the listener that are sshd)."""
        out, todo = [], [self.proc.pid]
        while todo:
            for child in _children(todo.pop()):
                if _comm(child) in _SESSION_NAMES:
                    out.append(child)
                    todo.append(child)
        return out

    def kill_sessions(self) -> int:
        """Drop every open SSH connection the hard way (SIGKILL, as a dying link would look like to
        the client: the socket just closes). The listener stays up."""
        pids = self.session_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    def stop(self) -> None:
        self.kill_sessions()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_sshd(root: Path, sftp: bool = True, user: str = "", wrap: Sequence[str] = ()) -> SSHServer:
    """A running sshd under `root`; `sftp=False` leaves out the `Subsystem sftp` line (a server that
    refuses SFTP, as some minimal images ship). `user`: the one account that may log in (default: this
    process's; another needs read access to `root`); `wrap`: a command line sshd runs under (e.g. a mount
    namespace)."""
    root.mkdir(parents=True, exist_ok=True)
    user = user or getpass.getuser()
    _keygen(root / "host_ed25519")
    _keygen(root / "id_ed25519")
    # The device is this machine, whose cores the laptop side (and other test workers) share: its sessions
    # run torch on one thread, as the tests' local runners do (OMP_NUM_THREADS=1); several processes that
    # each spin a thread per core slow each other down many times over.
    (root / "authorized_keys").write_text('environment="%s" %s' % (SESSION_ENV, (root / "id_ed25519.pub").read_text()))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    known_hosts = root / "known_hosts"
    known_hosts.write_text("")
    log = root / "sshd.log"
    last_error = ""
    for _ in range(5):  # the free port may be taken between probing and binding: retry
        port = _free_port()
        config = root / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    "Port %d" % port,
                    "ListenAddress 127.0.0.1",
                    "HostKey %s" % (root / "host_ed25519"),
                    "PidFile %s" % (root / "sshd.pid"),
                    "AuthorizedKeysFile %s" % (root / "authorized_keys"),
                    "AllowUsers %s" % user,
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitUserEnvironment %s" % SESSION_ENV.split("=")[0],
                    "Subsystem sftp internal-sftp" if sftp else "",
                    "ClientAliveInterval 0",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        proc = subprocess.Popen(
            [*wrap, str(SSHD), "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
        last_error = log.read_text()[-2000:]
    else:
        raise RuntimeError("sshd did not start:\n" + last_error)
    ssh_config = root / "ssh_config"
    ssh_config.write_text(
        "\n".join(
            [
                "Host %s 127.0.0.1" % HOST_ALIAS,
                "  HostName 127.0.0.1",
                "  Port %d" % port,
                "  User %s" % user,
                "  IdentityFile %s" % (root / "id_ed25519"),
                "  IdentitiesOnly yes",
                "  UserKnownHostsFile %s" % known_hosts,
                "  GlobalKnownHostsFile /dev/null",
                "  StrictHostKeyChecking yes",
                "",
            ]
        )
    )
    return SSHServer(
        root=root,
        port=port,
        user=user,
        proc=proc,
        ssh_config=ssh_config,
        known_hosts=known_hosts,
        host_pub=root / "host_ed25519.pub",
        log=log,
    )
