"""Shared pytest fixtures, and what keeps them apart when pytest-xdist runs the suite in several worker
processes (`python3 dev.py test` does).

Each worker has its own session fixtures (its own sshd, its own Slurm cluster), each in its own temp folder
on free ports. A stand-in that is heavy to start is shared instead: a test that uses one of the fixtures
in XDIST_GROUPS joins that fixture's `xdist_group`, and `--dist loadgroup` runs a group on one worker, so
the stand-in starts once per run. Define such a fixture HERE (a fixture imported into a second test
module is a second fixture: it would start a second cluster) and name it in XDIST_GROUPS.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import pytest

from tests.slurm import NO_TORCH, PARTITION, missing_reason, slurm_available, start_login_host, start_slurm
from tests.sshd import SSHServer, sshd_available, start_sshd

# session fixture -> the xdist group of every test that uses it (one cluster per run, not per worker)
XDIST_GROUPS = {"slurm_login": "slurm"}

# The cores are shared (xdist workers, the runners they start, the test sshd's sessions): torch on one thread
# in this process and in its runners, as tests/sshd.py does for the device side. A thread pool per process
# that spins on every core makes an epoch many times slower once another process is busy.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    for item in items:  # before xdist reads the groups
        for fixture, group in XDIST_GROUPS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))
    yield
    for item in items:
        # xdist (3.8) puts a test's group into its id by setting `_nodeid`, which pytest >= 9.2 no longer
        # reads (it keeps the id in `_id`): carry the grouped id over, or `--dist loadgroup` groups nothing
        grouped = item.__dict__.get("_nodeid")
        if grouped and grouped != item.nodeid and hasattr(item, "_id"):
            item._id = type(item._id).parse(grouped)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # slow tests first (stable sort, the same order on every worker): the run does not end waiting on a
        # long test that started last
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


# --- Slurm: a real single-node cluster whose login node is a real sshd (see tests/slurm.py) -------------

@pytest.fixture(scope="session")
def slurm_login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """A Slurm cluster and its login node, for the session. Skips without Slurm, unless
    EBT_REQUIRE_SLURM=1 (CI), where a missing Slurm fails."""
    if not (slurm_available() and sshd_available()):
        reason = missing_reason() if not slurm_available() else "OpenSSH server not installed"
        if os.environ.get("EBT_REQUIRE_SLURM") == "1":
            pytest.fail("EBT_REQUIRE_SLURM=1 but: " + reason)
        pytest.skip(reason)
    cluster = start_slurm(tmp_path_factory.mktemp("slurm"))
    server = start_login_host(tmp_path_factory.mktemp("login"), cluster)
    yield cluster, server
    server.stop()
    cluster.stop()


@pytest.fixture
def cluster(slurm_login: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """(cluster, slurm:// URL with a per-test root, that root); the login node's host key is trusted."""
    cluster, server = slurm_login
    server: SSHServer
    monkeypatch.setenv("EBT_SSH_CONFIG", str(server.ssh_config))
    server.known_hosts.write_text(server.known_hosts_line())
    root = tmp_path / "shared-ebt"
    options = {"partition": PARTITION, "root": str(root), "python": sys.executable, "poll": "1"}
    yield cluster, "slurm://%s?%s" % (server.url[len("ssh://"):], urlencode(options)), root
    cluster.fail_squeue_for(0)
    cluster.submit_limit(0)
    for partition in (PARTITION, NO_TORCH):
        cluster.command("scancel", "--partition", partition, check=False)
