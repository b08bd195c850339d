"""The SSH target: run experiments on a device (a Jetson, any Linux box with torch) over SSH.

URL: ``ssh://[user@]host[:port][?root=DIR&python=PATH]``. `host` may be an alias of ~/.ssh/config
(HostName, User, Port, IdentityFile, ProxyJump/ProxyCommand are honoured through fabric); the
environment variable ``EBT_SSH_CONFIG`` names another ssh config to read instead. `root` is the
folder on the device (default ``~/ebt``), `python` the interpreter that has torch (default
``python3``; e.g. a venv's python).

Layout on the device::

    ROOT/code/<digest>/{experiments,hw}   one folder per version of the code, shipped only once
    ROOT/runs/<run_id>/                   spec.json, runner.log, runner.pid, events.jsonl, ...

Host keys are checked strictly, like OpenSSH with ``StrictHostKeyChecking yes``: known_hosts files
are those of the ssh config (``UserKnownHostsFile``/``GlobalKnownHostsFile``, default
~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts); an unknown key is refused (paramiko
`RejectPolicy`) unless the user trusts a new host, which appends the key to the first user
known_hosts file. A CHANGED key is always refused: paramiko raises `BadHostKeyException` before any
policy runs, and accepting it would defeat the check (remove the old line with ``ssh-keygen -R``).

Every remote command is built from `shlex.quote`d parts; file contents (the spec) travel over
SFTP, never through a command line. Every operation reconnects on a dropped link with exponential
backoff (the runner on the device is detached and does not care), so a follower polling
`read_from(events, offset)` just continues from its offset.

Sources: fabric 3 `Connection` (config/ssh_config loading, `client`, `transport`, `sftp()`,
`run(hide, warn, in_stream, timeout)`); paramiko `SSHClient.load_system_host_keys`,
`MissingHostKeyPolicy`/`RejectPolicy`, `BadHostKeyException`, `Transport.set_keepalive`,
`SFTPClient.normalize/posix_rename/putfo`; ssh_config(5) for the known_hosts keywords and the
``[host]:port`` known_hosts name of a non-22 port.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import logging
import os
import re
import shlex
import socket
import stat
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut

from experiments import paths
from harness import clock
from harness.targets.base import (
    ClockOffset,
    Launched,
    RemoteCommandError,
    Target,
    TargetError,
    TargetFailure,
    TargetUnreachable,
)
from hw.fileio import atomic_path, json_text

log = logging.getLogger(__name__)

T = TypeVar("T")

ENV_SSH_CONFIG = "EBT_SSH_CONFIG"
DEFAULT_ROOT = "~/ebt"
CODE_PACKAGES = ("experiments", "hw")
_CODE_MARKER = ".ebt-code"  # written last into a code folder: its presence means "complete"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class HostKeyError(TargetFailure, ConnectionError):
    """The device's host key is unknown or changed: refused, connection closed (never retried)."""


class SFTPUnavailable(TargetFailure):
    """The device's sshd offers no SFTP subsystem (files travel over SFTP): a server setting, never retried."""


class LoginRefused(TargetFailure, paramiko.AuthenticationException):
    """The device answered but refused the login (no usable key): never retried."""


class _LinkDropped(Exception):
    """Internal: the SSH link died under an operation; the caller reconnects."""


@dataclass(frozen=True)
class SSHAddress:
    host: str
    user: Optional[str] = None
    port: Optional[int] = None
    root: str = DEFAULT_ROOT
    python: str = "python3"

    @classmethod
    def parse(cls, url: str) -> "SSHAddress":
        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise TargetError("target %r: expected ssh://[user@]host[:port][?root=DIR&python=PATH]" % url)
        if parts.password is not None:
            raise TargetError("target %r: passwords do not belong in a URL; use a key (ssh-copy-id)" % url)
        if parts.path not in ("", "/"):
            raise TargetError("target %r: unexpected path %r (use ?root=DIR for the device folder)" % (url, parts.path))
        try:
            port = parts.port
        except ValueError:
            raise TargetError("target %r: bad port" % url) from None
        options = {}
        for key, values in parse_qs(parts.query, keep_blank_values=True, strict_parsing=False).items():
            if key not in ("root", "python"):
                raise TargetError("target %r: unknown option %r (allowed: root, python)" % (url, key))
            if len(values) != 1 or not values[0]:
                raise TargetError("target %r: option %r needs exactly one non-empty value" % (url, key))
            options[key] = values[0]
        return cls(
            host=parts.hostname,
            user=unquote(parts.username) if parts.username else None,
            port=port,
            root=options.get("root", DEFAULT_ROOT),
            python=options.get("python", "python3"),
        )

    def __str__(self) -> str:
        """The URL back (options only when not the defaults): what run.json keeps to reopen the target."""
        user = "%s@" % quote(self.user, safe="") if self.user else ""
        port = ":%d" % self.port if self.port else ""
        options = [(k, v) for k, v, default in (("root", self.root, DEFAULT_ROOT), ("python", self.python, "python3"))
                   if v != default]
        host = "[%s]" % self.host if ":" in self.host else self.host  # IPv6 literal
        # paths stay readable (`root=/home/me/ebt`, not `%2Fhome%2Fme%2Febt`): this is what people see
        return "ssh://%s%s%s%s" % (user, host, port, "?" + urlencode(options, safe="/") if options else "")


def code_tarball(code_root: Path) -> Tuple[bytes, str]:
    """A reproducible .tar.gz of `experiments/` and `hw/` and its version (a content digest).

    Same sources -> same bytes and digest, whatever the file times: entries are sorted, owners and
    times zeroed, and the gzip header carries no time. Caches and hidden files (editor swap files,
    half-written temp files) are left out, they are not code."""
    files: List[Path] = []
    for package in CODE_PACKAGES:
        top = code_root / package
        if not top.is_dir():
            raise FileNotFoundError("%s: no %s/ to ship" % (code_root, package))
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
            files.extend(Path(dirpath) / f for f in sorted(filenames)
                         if not f.startswith(".") and not f.endswith((".pyc", ".pyo")))
    digest = hashlib.sha256()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            name = path.relative_to(code_root).as_posix()
            data = path.read_bytes()
            executable = os.access(path, os.X_OK)
            digest.update(b"%s\0%d\0%d\0" % (name.encode(), executable, len(data)))
            digest.update(data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if executable else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue(), digest.hexdigest()[:16]


def _fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint format (what `ssh-keygen -lf` prints)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _known_hosts_files(ssh_config: dict) -> Tuple[List[Path], List[Path]]:
    """(user files, global files) named by the ssh config, with OpenSSH's defaults."""
    def paths(key: str, default: List[str]) -> List[Path]:
        value = ssh_config.get(key)
        names = value.split() if isinstance(value, str) else (value or default)
        return [Path(os.path.expanduser(n)) for n in names if n.lower() != "none"]

    return (
        paths("userknownhostsfile", ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"]),
        paths("globalknownhostsfile", ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]),
    )


class _RefuseUnknownHost(paramiko.RejectPolicy):
    def __init__(self, files: List[Path]):
        self.files = files

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyError(
            "host key of %s is unknown (not in %s); it offers %s %s. Check that fingerprint on the "
            "device (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then re-run with --trust-new-host "
            "to record it." % (hostname, ", ".join(map(str, self.files)) or "any known_hosts",
                                key.get_name(), _fingerprint(key))
        )


class _RecordNewHost(paramiko.MissingHostKeyPolicy):
    """--trust-new-host: accept an unknown key and append it to known_hosts (one line, like ssh
    does; paramiko's own save would rewrite the whole file and drop its comments)."""

    def __init__(self, path: Path):
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write("%s %s %s\n" % (hostname, key.get_name(), key.get_base64()))
        log.warning("trusted new host %s: recorded its %s key %s in %s",
                    hostname, key.get_name(), _fingerprint(key), self.path)


class SSHTarget(Target):
    def __init__(
        self,
        url: str,
        trust_new_host: bool = False,
        connect_timeout_s: int = 15,
        keepalive_s: int = 15,
        op_timeout_s: float = 60.0,
        reconnect_give_up_s: float = 120.0,
        backoff_first_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ):
        self.address = SSHAddress.parse(url)
        self.url = str(self.address)
        self.trust_new_host = trust_new_host
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s
        self.op_timeout_s = op_timeout_s
        self.reconnect_give_up_s = reconnect_give_up_s
        self.backoff_first_s = backoff_first_s
        self.backoff_max_s = backoff_max_s
        self._conn: Optional[Connection] = None
        self._root: Optional[str] = None  # `address.root` made absolute on the device
        # One connection, used by the follower and the meter's clock probes alike: serialise.
        self._lock = threading.RLock()

    # --- connection -------------------------------------------------------------------------

    def _open(self) -> Connection:
        config_path = os.environ.get(ENV_SSH_CONFIG)
        config = Config(runtime_ssh_path=config_path) if config_path else Config()
        conn = Connection(self.address.host, user=self.address.user, port=self.address.port,
                          config=config, connect_timeout=self.connect_timeout_s)
        self._check_host_keys(conn)
        try:
            conn.open()
        except paramiko.BadHostKeyException as exc:
            conn.close()
            raise HostKeyError(
                "host key of %s CHANGED: it now offers %s %s, known_hosts expects %s. This may be "
                "an attack (or a reinstalled device). If you know why, remove the old entry with "
                "`ssh-keygen -R %s` and connect again." % (
                    exc.hostname, exc.key.get_name(), _fingerprint(exc.key),
                    _fingerprint(exc.expected_key), exc.hostname)
            ) from None
        except paramiko.SSHException as exc:
            transport = conn.client.get_transport()
            link_up = transport is not None and transport.is_active()
            conn.close()
            if link_up and not isinstance(exc, paramiko.AuthenticationException):
                # The device answered and the handshake failed (no usable key, ...): retrying
                # cannot help, so fail now instead of backing off.
                raise paramiko.AuthenticationException("%s: %s" % (self.url, exc)) from exc
            raise
        except BaseException:
            conn.close()
            raise
        conn.transport.set_keepalive(self.keepalive_s)
        if self._root is None:
            try:
                self._root = self._absolute(conn, self.address.root)
            except paramiko.SSHException as exc:
                if not conn.transport.is_active():
                    raise
                conn.close()
                # sshd closes the channel at once when no `Subsystem sftp` is configured
                raise SFTPUnavailable(
                    "%s: the SSH server refused the SFTP subsystem (%s); the device's /etc/ssh/sshd_config "
                    "needs the line `Subsystem sftp internal-sftp` (or `Subsystem sftp "
                    "/usr/lib/openssh/sftp-server`), then `sudo systemctl reload ssh`" % (self.url, exc)
                ) from None
        log.debug("connected to %s (%s@%s:%s)", self.url, conn.user, conn.host, conn.port)
        return conn

    def _check_host_keys(self, conn: Connection) -> None:
        """Replace fabric's AutoAddPolicy by strict known_hosts checking, on the jump hosts of a
        ProxyJump too (fabric gives each its own client, each with AutoAddPolicy)."""
        user_files, global_files = _known_hosts_files(conn.ssh_config)
        client = conn.client
        for path in user_files + global_files:
            if path.is_file():
                # "system" host keys: paramiko never writes those back (we append ourselves).
                client.load_system_host_keys(str(path))
        if self.trust_new_host:
            if not user_files:
                raise HostKeyError("--trust-new-host: the ssh config names no UserKnownHostsFile to record into")
            client.set_missing_host_key_policy(_RecordNewHost(user_files[0]))
        else:
            client.set_missing_host_key_policy(_RefuseUnknownHost(user_files + global_files))
        if isinstance(conn.gateway, Connection):
            self._check_host_keys(conn.gateway)

    def _absolute(self, conn: Connection, path: str) -> str:
        """`path` on the device made absolute (SFTP starts in the login folder: `~`)."""
        sftp = conn.sftp()
        sftp.get_channel().settimeout(self.op_timeout_s)
        home = sftp.normalize(".")
        if path == "~":
            return home
        if path.startswith("~/"):
            return home.rstrip("/") + path[1:]
        if path.startswith("/"):
            return path
        return home.rstrip("/") + "/" + path

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a dead link may fail in many ways; it is gone either way
                pass
            self._conn = None

    def _call(self, what: str, op: Callable[[Connection], T], retry_op: bool = True) -> T:
        """Run `op` on a live connection; on a dropped link (or one that cannot be opened),
        reconnect with exponential backoff for up to `reconnect_give_up_s`, then give up.
        With `retry_op` False only opening the link is retried: an `op` that is not idempotent
        and lost its link midway raises TargetUnreachable."""
        with self._lock:
            delay = self.backoff_first_s
            deadline: Optional[float] = None
            while True:
                started = False
                try:
                    if self._conn is not None and not self._conn.is_connected:
                        log.warning("%s: link lost while idle; reconnecting", self.url)
                        self._drop()
                    if self._conn is None:
                        self._conn = self._open()
                    started = True
                    return op(self._conn)
                except (HostKeyError, SFTPUnavailable, LoginRefused):
                    self._drop()
                    raise
                except paramiko.AuthenticationException as exc:
                    self._drop()
                    raise LoginRefused("%s: login refused: %s" % (self.url, exc)) from exc
                except (_LinkDropped, socket.timeout, EOFError, OSError, paramiko.SSHException) as exc:
                    healthy = self._conn is not None and self._conn.is_connected
                    if healthy and not isinstance(exc, (_LinkDropped, socket.timeout)):
                        # a real error (e.g. permission denied) on a working link
                        raise RemoteCommandError("%s: %s failed: %s" % (self.url, what, exc)) from exc
                    self._drop()
                    if started and not retry_op:
                        raise TargetUnreachable("%s: %s: link lost midway (%s); not retried, check the "
                                                "device" % (self.url, what, exc)) from exc
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.reconnect_give_up_s
                    if now + delay > deadline:
                        raise TargetUnreachable("%s: %s: link lost and not back within %.0f s (%s)"
                                                % (self.url, what, self.reconnect_give_up_s, exc)) from exc
                    log.warning("%s: %s: link lost (%s); reconnecting in %.1f s",
                                self.url, what, exc or type(exc).__name__, delay)
                    time.sleep(delay)
                    delay = min(delay * 2, self.backoff_max_s)

    def _sh(self, conn: Connection, command: str, timeout: Optional[float] = None):
        """Run a (fully quoted) shell command; a link that died under it raises _LinkDropped."""
        try:
            result = conn.run(command, hide=True, warn=True, in_stream=False,
                              timeout=timeout or self.op_timeout_s)
        except CommandTimedOut as exc:
            # A command this small only hangs when the link is silently dead (no FIN, e.g. Wi-Fi gone).
            raise _LinkDropped("no answer to a remote command within %s s" % exc.timeout) from None
        if result.exited == -1 and not conn.is_connected:
            raise _LinkDropped("connection closed during a remote command")
        return result

    def _check(self, result, what: str) -> str:
        if result.exited != 0:
            raise RemoteCommandError("%s on %s failed (exit %s): %s"
                                     % (what, self.url, result.exited, result.stderr.strip()[-2000:]))
        return result.stdout

    def _sftp(self, conn: Connection) -> paramiko.SFTPClient:
        sftp = conn.sftp()
        # Without a timeout a silently dead link blocks an SFTP read for the TCP retransmit time.
        sftp.get_channel().settimeout(self.op_timeout_s)
        return sftp

    @property
    def root(self) -> str:
        if self._root is None:
            self._call("connect", lambda conn: None)
        assert self._root is not None
        return self._root

    # --- Target -------------------------------------------------------------------------------

    def run_dir(self, run_id: str) -> str:
        """The run folder of `run_id` on the device."""
        if not _RUN_ID.match(run_id):
            raise ValueError("run_id %r is not a plain folder name" % run_id)
        return paths.run_dir(self.root, run_id)

    def prepare(self, code_root: Path) -> str:
        data, digest = code_tarball(Path(code_root))
        code_parent = paths.code_root(self.root)
        code_dir = "%s/%s" % (code_parent, digest)
        q = shlex.quote

        def op(conn: Connection) -> None:
            if self._sh(conn, "test -f %s" % q(code_dir + "/" + _CODE_MARKER)).exited == 0:
                log.debug("%s: code %s already on the device", self.url, digest)
                return
            log.info("%s: shipping code version %s (%d kB)", self.url, digest, len(data) // 1024)
            self._check(self._sh(conn, "mkdir -p %s" % q(code_parent)), "mkdir")
            # Unpack into a private staging folder and rename it into place: a half-shipped
            # version (dropped link, two laptops at once) is never visible under its digest.
            staging = "%s/.%s.%s" % (code_parent, digest, uuid.uuid4().hex[:8])
            tarball = staging + ".tar.gz"
            self._sftp(conn).putfo(io.BytesIO(data), tarball)
            self._check(self._sh(conn, " && ".join([
                "mkdir %s" % q(staging),
                "tar -xzf %s -C %s" % (q(tarball), q(staging)),
                "printf '%%s\\n' %s > %s" % (q(digest), q(staging + "/" + _CODE_MARKER)),
                "rm -f %s" % q(tarball),
                # another laptop may have won the race: then keep its copy
                "{ mv -T %s %s 2>/dev/null || rm -rf %s; }" % (q(staging), q(code_dir), q(staging)),
            ]), timeout=max(self.op_timeout_s, 300)), "unpacking the code")

        self._call("prepare", op)
        return code_dir

    def write_spec(self, spec: dict, run_dir: str) -> str:
        """Write `spec.json` into `run_dir` on the device atomically (temp file + rename); its path."""
        spec_path = paths.spec(run_dir)
        body = json_text(spec).encode()

        def op(conn: Connection) -> None:
            self._check(self._sh(conn, "mkdir -p %s" % shlex.quote(run_dir)), "mkdir")
            sftp = self._sftp(conn)
            tmp = "%s.%s%s" % (spec_path, uuid.uuid4().hex[:8], paths.TMP_SUFFIX)
            sftp.putfo(io.BytesIO(body), tmp)
            sftp.posix_rename(tmp, spec_path)

        self._call("writing the spec", op)
        return spec_path

    def launch(self, code_dir: str, spec: dict, run_dir: str) -> Launched:
        q = shlex.quote
        spec_path = self.write_spec(spec, run_dir)

        def start(conn: Connection) -> int:
            # setsid: own session, so the SSH session's end (hangup) never reaches the runner;
            # nohup for good measure; all three standard streams off the channel so the channel
            # closes at once. `>>`: a resumed run keeps the log of the attempt before it.
            # The background job is one simple command (not a list, which would run in a subshell
            # whose pid $! would be); in a non-interactive shell it is no process-group leader, so
            # setsid does not fork and $! is the runner's own pid (setsid, nohup and python exec).
            command = (
                "cd %s || exit 1; setsid nohup %s -m experiments run %s --out %s >> %s 2>&1 < /dev/null & "
                "echo $! > %s && echo $!"
                % (q(code_dir), q(self.address.python), q(spec_path), q(run_dir),
                   q(paths.runner_log(run_dir)), q(paths.runner_pid(run_dir)))
            )
            return int(self._check(self._sh(conn, command), "starting the runner").split()[-1])

        # Not retried: a link lost just after the start must not start a second runner.
        pid = self._call("starting the runner", start, retry_op=False)
        log.info("%s: runner started in %s (pid %d)", self.url, run_dir, pid)
        return Launched(run_dir=run_dir, pid=pid)

    def read_from(self, path: str, offset: int) -> bytes:
        def op(conn: Connection) -> bytes:
            sftp = self._sftp(conn)
            try:
                with sftp.open(path, "rb") as f:
                    size = f.stat().st_size
                    if size <= offset:
                        return b""
                    f.seek(offset)
                    f.prefetch(size - offset)
                    return f.read(size - offset)
            except FileNotFoundError:
                return b""

        return self._call("read " + path, op)

    def alive(self, pid: int) -> bool:
        # /proc/PID/cmdline: empty for a zombie, absent for a dead process; and checking that it is
        # our runner guards against a reused pid after a device reboot. Read over the open SFTP
        # session rather than with a command: the follower asks every poll, and a shell started on
        # the device each time would be load (and power) the measurement does not want.
        def op(conn: Connection) -> bool:
            try:
                with self._sftp(conn).open("/proc/%d/cmdline" % int(pid), "rb") as f:
                    return b"experiments" in f.read()
            except FileNotFoundError:
                return False

        return self._call("alive", op)

    def cancel(self, handle: int) -> str:
        # only our runner: after a device reboot the pid may belong to another process
        pid = int(handle)
        command = "grep -q experiments /proc/%d/cmdline 2>/dev/null && kill -TERM %d" % (pid, pid)
        result = self._call("stopping the runner", lambda conn: self._sh(conn, command))
        if result.exited != 0:
            return f"runner pid {pid} on {self.url} had already ended"
        return f"runner pid {pid} on {self.url} sent SIGTERM"

    def remove(self, run_dir: str) -> None:
        if not run_dir.startswith(paths.runs_root(self.root) + "/"):
            raise ValueError("refusing to delete %r: not a run folder under %s" % (run_dir, self.root))
        self._call("removing the run folder",
                   lambda conn: self._check(self._sh(conn, "rm -rf %s" % shlex.quote(run_dir)), "rm"))

    def fetch(self, run_dir: str, dest: Path, checkpoints: bool = False) -> None:
        dest = Path(dest)

        def walk(sftp: paramiko.SFTPClient, remote: str, local: Path, top: bool) -> None:
            local.mkdir(parents=True, exist_ok=True)
            for entry in sftp.listdir_attr(remote):
                name = entry.filename
                if top and not paths.fetched(name, checkpoints):
                    continue
                if name.endswith(paths.TMP_SUFFIX):  # half-written files deeper down
                    continue
                if stat.S_ISDIR(entry.st_mode):
                    walk(sftp, remote + "/" + name, local / name, False)
                elif stat.S_ISREG(entry.st_mode):
                    # Through hw.fileio: a fetch cut by a dropped link (retried whole) never leaves a
                    # truncated file under the real name, nor its temporary file.
                    with atomic_path(local / name) as tmp:
                        sftp.get(remote + "/" + name, tmp)
                        os.utime(tmp, (entry.st_mtime, entry.st_mtime))

        def op(conn: Connection) -> None:
            walk(self._sftp(conn), run_dir, dest, True)

        self._call("fetch " + run_dir, op)

    def clock_offset(self, rounds: int = 8) -> ClockOffset:
        # One channel with a python loop on the device: the probe then costs one line each way,
        # not a process start per sample (which would skew the midpoint).
        program = "import sys,time\nfor _ in sys.stdin:\n sys.stdout.write(repr(time.time())+'\\n');sys.stdout.flush()"
        command = "%s -u -c %s" % (shlex.quote(self.address.python), shlex.quote(program))

        def op(conn: Connection) -> ClockOffset:
            channel = conn.transport.open_session(timeout=self.op_timeout_s)
            try:
                channel.settimeout(self.op_timeout_s)
                channel.exec_command(command)
                answers = channel.makefile("rb")

                def exchange() -> float:
                    channel.sendall(b"\n")
                    line = answers.readline()
                    if not line:
                        if not conn.is_connected:
                            raise _LinkDropped("connection closed during a clock probe")
                        raise RemoteCommandError("clock probe on %s failed: %s" % (
                            self.url, channel.recv_stderr(4096).decode(errors="replace").strip()))
                    return float(line)

                return clock.measure(exchange, rounds=rounds)
            finally:
                channel.close()

        return self._call("clock offset", op)

    def run_module(self, code_dir: str, argv: List[str], timeout: float) -> Tuple[int, str, str]:
        """`python -m ARGV` from `code_dir` with the target's interpreter: (exit code, stdout, stderr).
        Not retried on a lost link (the module may have side effects, e.g. an idle measurement)."""
        q = shlex.quote
        command = "cd %s && %s -m %s" % (q(code_dir), q(self.address.python), " ".join(q(a) for a in argv))
        result = self._call("python -m " + argv[0], lambda conn: self._sh(conn, command, timeout=timeout),
                            retry_op=False)
        return result.exited, result.stdout, result.stderr

    def close(self) -> None:
        with self._lock:
            self._drop()
