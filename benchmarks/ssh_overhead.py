"""Orchestration overhead of the SSH target: the quickstart's wall time locally vs over SSH.

The SSH side is a throwaway OpenSSH server on 127.0.0.1 (the tests' `tests/sshd.py`, needs Debian's
openssh-server), so the difference is what the harness adds (connect, ship code, launch detached,
follow over SFTP, fetch), not a network. Over Wi-Fi to a board add its round trips.

    python benchmarks/ssh_overhead.py [--repeats N] [--config experiments/configs/quickstart.yaml]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sshd import start_sshd  # noqa: E402  (needs the repo root on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--config", default=str(ROOT / "experiments" / "configs" / "quickstart.yaml"))
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ebt-ssh-overhead-"))
    server = start_sshd(base / "sshd")
    server.trust()
    env = dict(os.environ, EBT_SSH_CONFIG=str(server.ssh_config), EBT_HOME=str(base / "local-home"))
    url = server.url + "?" + urlencode({"root": str(base / "device"), "python": sys.executable})
    ebt = [str(Path(sys.executable).with_name("ebt"))]  # the venv's console script
    times = {"local": [], "ssh": []}
    try:
        for rep in range(args.repeats):
            for name, extra in (("local", []), ("ssh", ["--target", url])):
                t0 = time.monotonic()
                with open(base / ("%s%d.log" % (name, rep)), "w") as log:
                    rc = subprocess.call(ebt + ["run", args.config, "--results", str(base / name)] + extra,
                                         env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))
                times[name].append(time.monotonic() - t0)
                print("%-5s run %d: rc=%d wall %.1f s (load %s)" % (
                    name, rep, rc, times[name][-1], " ".join(open("/proc/loadavg").read().split()[:3])),
                    flush=True)
    finally:
        server.stop()
    local, ssh = min(times["local"]), min(times["ssh"])
    print("best of %d: local %.1f s, ssh %.1f s, overhead %+.1f s (%+.1f%%)"
          % (args.repeats, local, ssh, ssh - local, 100.0 * (ssh - local) / local))
    print("logs in %s" % base)


if __name__ == "__main__":
    main()
