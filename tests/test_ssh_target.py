"""SSHTarget against a real OpenSSH server (tests/sshd.py), with a tiny stand-in runner.

The stand-in is a real `experiments` package shipped by `prepare` and started by `launch` exactly
like the real runner (`python3 -m experiments run spec.json --out RUN_DIR`); it appends JSON lines
to events.jsonl slowly, so connection drops can land mid-run. The real runner's end-to-end cases
are in test_ssh_e2e.py.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import paramiko
import pytest

from harness.targets.ssh import HostKeyError, SSHAddress, SSHTarget, code_tarball
from harness.targets.base import TargetError
from tests.standin_runner import STAND_IN_RUNNER, make_code
from tests.waiting import wait_for

def events_of(data: bytes) -> list:
    return [json.loads(line) for line in data.splitlines()]


# --- no server needed -----------------------------------------------------------------------

def test_address_parsing():
    a = SSHAddress.parse("ssh://nvidia@tx2.local:2222?root=/data/ebt&python=/usr/bin/python3.6")
    assert (a.user, a.host, a.port, a.root, a.python) == ("nvidia", "tx2.local", 2222, "/data/ebt", "/usr/bin/python3.6")
    assert SSHAddress.parse(str(a)) == a
    assert str(SSHAddress.parse("ssh://[::1]:22")) == "ssh://[::1]:22"
    assert str(SSHAddress.parse("ssh://nvidia@tx2.local:2222")) == "ssh://nvidia@tx2.local:2222"
    b = SSHAddress.parse("ssh://tx2")
    assert (b.user, b.port, b.root, b.python) == (None, None, "~/ebt", "python3")
    for bad in ("tx2", "ssh://", "ssh://u:pw@tx2", "ssh://tx2/some/path", "ssh://tx2?colour=red", "ssh://tx2:99999"):
        with pytest.raises(TargetError):
            SSHAddress.parse(bad)


def test_code_tarball_is_reproducible_and_skips_caches(tmp_path):
    code = make_code(tmp_path / "code")
    data1, v1 = code_tarball(code)
    (code / "experiments" / "__pycache__").mkdir()
    (code / "experiments" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (code / "experiments" / ".runner.py.swp").write_text("junk")
    os.utime(code / "hw" / "__init__.py", (1, 1))
    data2, v2 = code_tarball(code)
    assert (data1, v1) == (data2, v2)
    make_code(code, version="2")
    assert code_tarball(code)[1] != v1


# --- host keys -------------------------------------------------------------------------------

def test_unknown_host_key_is_refused(ssh_untrusted_device):
    target = SSHTarget(ssh_untrusted_device.url, reconnect_give_up_s=1)
    with pytest.raises(HostKeyError, match="unknown.*--trust-new-host"):
        target.root
    assert ssh_untrusted_device.server.known_hosts.read_text() == ""


def test_trust_new_host_records_the_key(ssh_untrusted_device):
    server = ssh_untrusted_device.server
    target = SSHTarget(ssh_untrusted_device.url, trust_new_host=True)
    assert target.root == str(ssh_untrusted_device.root)
    target.close()
    recorded = server.known_hosts.read_text()
    assert recorded.split() == server.known_hosts_line().split()
    # From now on the host is known: a plain (strict) connection works.
    again = SSHTarget(ssh_untrusted_device.url)
    assert again.root == str(ssh_untrusted_device.root)
    again.close()


def test_changed_host_key_is_refused_even_with_trust(ssh_untrusted_device, tmp_path):
    server = ssh_untrusted_device.server
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    keytype, b64 = (tmp_path / "other.pub").read_text().split()[:2]
    server.known_hosts.write_text("[127.0.0.1]:%d %s %s\n" % (server.port, keytype, b64))
    for trust in (False, True):
        with pytest.raises(HostKeyError, match="CHANGED"):
            SSHTarget(ssh_untrusted_device.url, trust_new_host=trust).root


# --- running things ----------------------------------------------------------------------------

@pytest.mark.slow
def test_prepare_ships_the_code_once_per_version(ssh_device, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="harness.targets.ssh")
    code = make_code(tmp_path / "code")
    target = SSHTarget(ssh_device.url)
    try:
        first = target.prepare(code)
        assert Path(first, "experiments", "__main__.py").read_text() == STAND_IN_RUNNER
        assert Path(first, "hw", "__init__.py").exists()
        assert Path(first).parent == ssh_device.root / "code"
        shipped = [r for r in caplog.records if "shipping code" in r.getMessage()]
        assert target.prepare(code) == first
        assert [r for r in caplog.records if "shipping code" in r.getMessage()] == shipped
        make_code(code, version="2")
        second = target.prepare(code)
        assert second != first and "VERSION = '2'" in Path(second, "experiments", "__init__.py").read_text()
    finally:
        target.close()


@pytest.mark.slow
def test_injection_strings_never_run(ssh_device, tmp_path):
    """A config value (and even a run folder name) made to break out of shell quoting stays data."""
    owned = tmp_path / "owned"
    issue_path = Path("/tmp/owned")
    issue_path_existed = issue_path.exists()
    evil = "x'; touch %s; '" % owned
    code = make_code(tmp_path / "code")
    target = SSHTarget(ssh_device.url)
    try:
        code_dir = target.prepare(code)
        spec = {"run_id": "inj", "events": 2, "interval": 0.01, "note": "x'; touch /tmp/owned; '" + evil}
        run_dir = "%s/runs/%s" % (target.root, evil.replace("/", "_"))
        launched = target.launch(code_dir, spec, run_dir)
        wait_for(lambda: b"run_end" in target.read_from(run_dir + "/events.jsonl", 0))
        assert not owned.exists()
        assert issue_path.exists() == issue_path_existed
        got = json.loads(target.read_from(run_dir + "/spec.json", 0))
        assert got == spec
        assert events_of(target.read_from(run_dir + "/events.jsonl", 0))[0]["note"] == spec["note"]
        assert launched.run_dir == run_dir
        assert not target.alive(launched.pid) or wait_for(lambda: not target.alive(launched.pid))
    finally:
        target.close()


@pytest.mark.slow
def test_launch_read_from_alive_fetch_clock(ssh_device, tmp_path):
    code = make_code(tmp_path / "code")
    target = SSHTarget(ssh_device.url)
    try:
        code_dir = target.prepare(code)
        run_dir = target.run_dir("r1")
        launched = target.launch(code_dir, {"run_id": "r1", "events": 10, "interval": 0.1, "note": ""}, run_dir)
        assert target.alive(launched.pid)
        assert Path(run_dir, "runner.pid").read_text().strip() == str(launched.pid)
        events = run_dir + "/events.jsonl"
        first = wait_for(lambda: target.read_from(events, 0))
        # Reading from an offset returns exactly the rest.
        offset = first.index(b"\n") + 1
        rest = target.read_from(events, offset)
        assert target.read_from(events, 0).startswith(first[:offset] + rest)
        assert target.read_from(run_dir + "/absent", 0) == b""
        assert target.read_from(events, 10 ** 9) == b""
        wait_for(lambda: not target.alive(launched.pid))
        rows = events_of(target.read_from(events, 0))
        assert [r["epoch"] for r in rows[:-1]] == list(range(10)) and rows[-1]["event"] == "run_end"

        dest = tmp_path / "fetched"
        target.fetch(run_dir, dest)
        assert sorted(p.name for p in dest.iterdir()) == ["events.jsonl", "runner.log", "spec.json"]  # runner.pid is never fetched
        assert (dest / "events.jsonl").read_bytes() == Path(events).read_bytes()
        target.fetch(run_dir, dest, checkpoints=True)
        assert (dest / "checkpoints" / "last.pt").read_text() == "weights"

        offset = target.clock_offset()
        # Same machine, same clock: the true offset is 0, within the measured bound (+ slack for
        # scheduling noise on a loaded CI box).
        assert abs(offset.offset_s) <= offset.uncertainty_s + 0.005
        assert 0 < offset.uncertainty_s < 0.1
    finally:
        target.close()


@pytest.mark.slow
def test_dropped_connection_reconnects_and_continues_from_offset(ssh_device, tmp_path, caplog):
    """Kill the per-connection sshd mid-run: the detached runner goes on, the next read reconnects
    (with backoff) and the follower continues from its byte offset: every event once, in order."""
    caplog.set_level(logging.WARNING, logger="harness.targets.ssh")
    server = ssh_device.server
    code = make_code(tmp_path / "code")
    target = SSHTarget(ssh_device.url, backoff_first_s=0.2)
    try:
        code_dir = target.prepare(code)
        run_dir = target.run_dir("drop")
        launched = target.launch(code_dir, {"run_id": "drop", "events": 30, "interval": 0.1, "note": ""}, run_dir)
        events = run_dir + "/events.jsonl"
        got, offset, killed = b"", 0, 0
        deadline = time.monotonic() + 30
        while b"run_end" not in got and time.monotonic() < deadline:
            chunk = target.read_from(events, offset)
            complete = chunk[: chunk.rfind(b"\n") + 1]
            got += complete
            offset += len(complete)
            if not killed and got.count(b"\n") >= 5:
                killed = server.kill_sessions()
                time.sleep(0.3)
                # the runner did not notice
                assert Path("/proc/%d" % launched.pid).exists()
            time.sleep(0.05)
        assert killed >= 1
        assert any("reconnecting" in r.getMessage() for r in caplog.records)
        rows = events_of(got)
        assert [r["epoch"] for r in rows[:-1]] == list(range(30))
        assert rows[-1] == dict(rows[-1], event="run_end", status="ok")
        assert target.alive(launched.pid) is False or wait_for(lambda: not target.alive(launched.pid))
    finally:
        target.close()


def test_jump_host_key_is_checked_too(ssh_device, tmp_path, monkeypatch):
    """ProxyJump: fabric opens the jump host with its own client (AutoAddPolicy by default); its key
    must be checked as strictly. Here the jump host is the same sshd named `localhost`, a name
    known_hosts does not have, while the final hop (127.0.0.1) is known."""
    server = ssh_device.server
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host via-jump\n  HostName 127.0.0.1\n  Port %d\n  ProxyJump %s@localhost:%d\n"
        "Host via-jump localhost\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n"
        "  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n"
        % (server.port, server.user, server.port, server.user, server.root / "id_ed25519", server.known_hosts)
    )
    monkeypatch.setenv("EBT_SSH_CONFIG", str(config))
    with pytest.raises(HostKeyError, match=r"\[localhost\]:%d.*unknown" % server.port):
        SSHTarget("ssh://via-jump?root=%s" % ssh_device.root, reconnect_give_up_s=1).root
    trusted = SSHTarget("ssh://via-jump?root=%s" % ssh_device.root, trust_new_host=True)
    assert trusted.root == str(ssh_device.root)
    trusted.close()
    assert "[localhost]:%d" % server.port in server.known_hosts.read_text()


def test_no_usable_key_fails_at_once(ssh_device, tmp_path, monkeypatch):
    """An authentication problem is not a dropped link: no backing off for minutes."""
    config = tmp_path / "ssh_config"
    config.write_text(ssh_device.server.ssh_config.read_text().replace("IdentityFile", "# IdentityFile"))
    monkeypatch.setenv("EBT_SSH_CONFIG", str(config))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* to fall back on
    started = time.monotonic()
    with pytest.raises(paramiko.AuthenticationException):
        SSHTarget(ssh_device.url, reconnect_give_up_s=30).root
    assert time.monotonic() - started < 5
