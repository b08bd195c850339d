"""`ebt doctor` and the preflight of `ebt run` against the real test sshd, and the bad-input cases that
must end in one line, a non-zero exit and no folder anywhere (laptop results, local run root, board)."""
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from harness.cli import main
from tests.sshd import start_sshd

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "experiments" / "configs" / "quickstart.yaml")
PY36 = Path.home() / ".pyenv/versions/3.6.15/bin/python3.6"


def _no_torch_python() -> str:
    """An interpreter without torch: pyenv's bare 3.6 (the board's version), else the system python3."""
    for candidate in (str(PY36), "/usr/bin/python3"):
        if os.path.exists(candidate) and subprocess.run([candidate, "-c", "import torch"],
                                                        stderr=subprocess.DEVNULL).returncode != 0:
            return candidate
    pytest.skip("no interpreter without torch on this machine")


def _ebt(*args, env=None):
    """`ebt ARGS` as a user runs it (a new process): (exit code, output, seconds)."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())",
                           *args], cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, **(env or {})), timeout=120)
    return proc.returncode, proc.stdout, time.monotonic() - started


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Laptop results and the local run root in tmp_path; `nothing_made()` says none got a run folder."""
    home, results = tmp_path / "home", tmp_path / "results"
    monkeypatch.setenv("EBT_HOME", str(home))

    class Places:
        env = {"EBT_HOME": str(home)}
        results_arg = ["--results", str(results)]

        @staticmethod
        def nothing_made(*device_roots):
            folders = [results / "runs", home / "runs"] + [Path(r) / "runs" for r in device_roots]
            return [str(f) for f in folders if f.exists()]

    return Places


def _url(device, python):
    return "%s?%s" % (device.server.url, urlencode({"root": str(device.root), "python": python}))


@pytest.mark.slow
def test_healthy_ssh_target_passes_every_line(ssh_device, capsys):
    assert main(["doctor", "--target", ssh_device.url, CONFIG]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    checks = lines[:-1]
    assert all(line.startswith("ok ") for line in checks), "\n".join(lines)
    names = [line.split(":")[0].split(None, 1)[1] for line in checks]
    for name in ("ssh reachable", "host key known", "key login", "sftp subsystem", "python", "torch", "numpy",
                 "dataset digits", "run root", "free disk", "clock offset"):
        assert name in names
    assert lines[-1].endswith("ready (%d checks)" % len(checks))


@pytest.mark.slow
def test_target_python_without_torch_fails_fast_naming_torch_and_python_option(ssh_device, places):
    url = _url(ssh_device, _no_torch_python())
    rc, out, seconds = _ebt("doctor", "--target", url, CONFIG, env=places.env)
    assert rc != 0 and seconds < 15, out
    assert "FAIL  torch:" in out and "?python=" in out
    rc, out, seconds = _ebt("run", CONFIG, "--target", url, *places.results_arg, env=places.env)
    assert rc == 2 and seconds < 15, out
    errors = [line for line in out.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "torch" in errors[0] and "?python=" in errors[0], out
    assert places.nothing_made(ssh_device.root) == []


@pytest.mark.slow
def test_sshd_without_sftp_is_named_at_connect(tmp_path, places, monkeypatch):
    server = start_sshd(tmp_path / "sshd", sftp=False)
    try:
        server.trust()
        monkeypatch.setenv("EBT_SSH_CONFIG", str(server.ssh_config))
        url = "%s?%s" % (server.url, urlencode({"root": str(tmp_path / "device"), "python": sys.executable}))
        env = dict(places.env, EBT_SSH_CONFIG=str(server.ssh_config))
        rc, out, seconds = _ebt("doctor", "--target", url, env=env)
        assert rc != 0 and "FAIL  sftp subsystem:" in out and "Subsystem sftp internal-sftp" in out, out
        assert "ok    key login" in out
        rc, out, seconds = _ebt("run", CONFIG, "--target", url, *places.results_arg, env=env)
        assert rc != 0 and seconds < 15, out
        assert "SFTP subsystem" in out and "link lost" not in out, out
        assert places.nothing_made(tmp_path / "device") == []
    finally:
        server.stop()


@pytest.mark.slow
def test_missing_serial_port_over_ssh_leaves_nothing(ssh_device, places):
    rc, out, _ = _ebt("run", CONFIG, "--target", ssh_device.url, "--meter", "wattsup:/dev/ttyNOPE",
                      *places.results_arg, env=places.env)
    errors = [line for line in out.splitlines() if "ERROR" in line]
    assert rc == 2 and len(errors) == 1 and "/dev/ttyNOPE" in errors[0], out
    assert places.nothing_made(ssh_device.root) == []


@pytest.mark.parametrize("meter,named", [("bogusmeter:1", "bogusmeter"), ("lines:/dev/ttyNOPE", "/dev/ttyNOPE")])
@pytest.mark.slow
def test_bad_local_meter_is_one_line_and_leaves_nothing(places, caplog, meter, named):
    rc = main(["run", CONFIG, "--meter", meter] + places.results_arg)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert rc == 2 and len(errors) == 1 and named in errors[0].getMessage()
    assert places.nothing_made() == []


@pytest.mark.slow
def test_unknown_host_key_stops_doctor_at_that_step(ssh_untrusted_device, capsys):
    rc = main(["doctor", "--target", ssh_untrusted_device.url])
    out = capsys.readouterr().out
    assert rc != 0 and "ok    ssh reachable" in out and "FAIL  host key known:" in out, out
    assert "--trust-new-host" in out and "python:" not in out


@pytest.mark.slow
def test_missing_interpreter_is_named_with_the_python_option(ssh_device, capsys):
    rc = main(["doctor", "--target", _url(ssh_device, "/nonexistent/python3")])
    out = capsys.readouterr().out
    assert rc != 0 and "FAIL  python: /nonexistent/python3" in out and "exit 127" in out, out
    assert "?python= at an interpreter that exists" in out and "torch:" not in out
