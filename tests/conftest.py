"""Shared pytest fixtures."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import pytest

from tests.sshd import SSHServer, sshd_available, start_sshd


# --- SSH: a real OpenSSH server on 127.0.0.1 (see tests/sshd.py) -------------------------------

@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """One sshd for the session. Skips when sshd is not installed, unless EBT_REQUIRE_SSHD=1
    (CI), where a missing sshd is a failure rather than a silently skipped suite."""
    if not sshd_available():
        if os.environ.get("EBT_REQUIRE_SSHD") == "1":
            pytest.fail("EBT_REQUIRE_SSHD=1 but /usr/sbin/sshd is missing (apt-get install -y openssh-server)")
        pytest.skip("OpenSSH server not installed (apt-get install -y openssh-server)")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@dataclass
class SSHDevice:
    """The sshd seen as a device: `url` reaches it through the temp ssh config, with run and code
    folders under a per-test `root` instead of the real ~/ebt."""

    server: SSHServer
    root: Path
    url: str


def _device(server: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: bool) -> SSHDevice:
    monkeypatch.setenv("EBT_SSH_CONFIG", str(server.ssh_config))
    server.known_hosts.write_text(server.known_hosts_line() if trusted else "")
    root = tmp_path / "device-ebt"
    # The device needs a python3 that has what the runner imports (torch): this interpreter.
    url = "%s?%s" % (server.url, urlencode({"root": str(root), "python": sys.executable}))
    return SSHDevice(server=server, root=root, url=url)


@pytest.fixture
def ssh_device(sshd_server: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SSHDevice:
    """The test sshd with its host key already in known_hosts."""
    return _device(sshd_server, tmp_path, monkeypatch, trusted=True)


@pytest.fixture
def ssh_untrusted_device(sshd_server: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SSHDevice:
    """The test sshd with an EMPTY known_hosts: its host key is unknown."""
    return _device(sshd_server, tmp_path, monkeypatch, trusted=False)
