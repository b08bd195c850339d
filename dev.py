#!/usr/bin/env python3
"""Set-up and entry points for a fresh clone: `python3 dev.py quickstart` and `python3 dev.py test`.

Each command first makes `.venv/` and installs `requirements.txt` plus this project (editable) into it,
and redoes that only when requirements.txt or pyproject.toml changed.

`test` runs the main suite in parallel worker processes (pytest-xdist; pytest's own `-n` overrides), then
runs the device code under the board's own stack (JetPack 4.6: Python 3.6, torch 1.8):
an environment in ~/.cache/ebt/ (shared by every clone on the machine), made from CPython 3.6 (pyenv's 3.6.15, or $EBT_PYTHON36) with torch 1.8.1, numpy < 1.20 and
requirements-device.txt, runs tests/device/ and the test modules marked `board` (hw/ alone). pip's own cache keeps the torch wheel
between runs; the environment is redone only when its inputs change. Without Python 3.6 that stage is
skipped with a message, except under CI=true, where it fails.
"""
import ast
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".installed"

# Outside the checkout, keyed by its inputs: every clone on this machine (CI's fresh one included) reuses
# it instead of downloading torch 1.8.1 again.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ebt"
PYTHON36 = Path(os.environ.get("EBT_PYTHON36", Path.home() / ".pyenv/versions/3.6.15/bin/python3.6"))
# The board's stack: torch 1.8.1 is PyPI's last cp36 wheel of the series NVIDIA builds for JetPack 4.6.
BOARD_PACKAGES = ["torch==1.8.1", "numpy<1.20", "pytest==7.0.1", "pytest-timeout==2.1.0"]
# A test module that tests hw/ alone declares `pytestmark = pytest.mark.board`: it then also runs under
# the board's Python (it may import only hw/, the standard library, numpy and pytest).
BOARD_MARK = "board"
# pytest-xdist workers of the main suite (see `parallel`): one per core; more would overlap more of the
# waiting, but the tests that sample a meter in real time (pty streams at 20-50 Hz) need their CPU on time
WORKERS = max(2, os.cpu_count() or 1)


def _digest() -> str:
    h = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def ensure_venv() -> None:
    if sys.version_info < (3, 9):
        sys.exit("dev.py needs Python >= 3.9 on the laptop (found %d.%d)" % sys.version_info[:2])
    digest = _digest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not PY.exists():
        print("creating .venv/ ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("installing requirements.txt into .venv/ (first time: several minutes) ...", flush=True)
    pip = [str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["-r", str(ROOT / "requirements.txt")], check=True)
    subprocess.run(pip + ["--no-deps", "-e", str(ROOT)], check=True)
    STAMP.write_text(digest)


def ensure_venv36() -> bool:
    """Make (or reuse) the Python 3.6 environment; False (with a message) when there is no Python 3.6 and not in CI."""
    if not PYTHON36.exists():
        why = "no Python 3.6 at %s (pyenv install 3.6.15, or set EBT_PYTHON36)" % PYTHON36
        if os.environ.get("CI") == "true":
            sys.exit("board stack: %s; CI must test the device code under the board's Python" % why)
        print("board stack: SKIPPED, %s" % why, flush=True)
        return False
    venv, stamp = _venv36(), _venv36() / ".installed"
    if stamp.exists():
        return True
    if not (venv / "bin" / "python").exists():
        print("creating %s (Python 3.6, the board's) ..." % venv, flush=True)
        subprocess.run([str(PYTHON36), "-m", "venv", str(venv)], check=True)
    print("installing torch 1.8.1 and requirements-device.txt into %s (first time: minutes) ..." % venv, flush=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["--upgrade", "pip<22"], check=True)  # pip 21.3 is the last for Python 3.6
    subprocess.run(pip + BOARD_PACKAGES + ["-r", str(ROOT / "requirements-device.txt")], check=True)
    stamp.write_text("ok\n")
    return True


def _venv36() -> Path:
    """The board-stack environment for the current inputs (requirements-device.txt, the packages above)."""
    h = hashlib.sha256((ROOT / "requirements-device.txt").read_bytes())
    h.update(repr((str(PYTHON36), BOARD_PACKAGES)).encode())
    return CACHE / ("venv36-" + h.hexdigest()[:12])


def board_marked(path: Path) -> bool:
    """Whether a test module declares `pytestmark = pytest.mark.board` (read from its syntax tree: the
    Python 3.6 stage cannot import laptop test modules to ask pytest)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            return any(isinstance(n, ast.Attribute) and n.attr == BOARD_MARK for n in ast.walk(node.value))
    return False


def test_board_stack() -> int:
    """tests/device/ and the hw/ tests under Python 3.6 (no laptop conftest: it needs Python >= 3.9)."""
    if not ensure_venv36():
        return 0
    hw_tests = [str(path) for path in sorted((ROOT / "tests").glob("test_*.py")) if board_marked(path)]
    pytest = [str(_venv36() / "bin" / "python"), "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider"]
    return run_together([
        ("board stack: Python 3.6 + torch 1.8.1: every method end to end, kill -9 + resume, hw/ tests",
         pytest + ["-s", "tests/device"]),
        ("board stack: the hw/ tests under Python 3.6: %s" % " ".join(Path(t).name for t in hw_tests),
         pytest + ["-m", BOARD_MARK] + hw_tests)])


def run_together(steps: list) -> int:
    """Each (title, argv) at once, their outputs printed one after the other under their titles: the board
    stack (pytest 7.0 on Python 3.6) has no pytest-xdist, and its two pytest runs take about as long."""
    procs = [(title, subprocess.Popen(argv, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      universal_newlines=True)) for title, argv in steps]
    rc = 0
    for title, proc in procs:
        out = proc.communicate()[0]
        print(title + "\n" + out, end="", flush=True)
        rc = rc or proc.returncode
    return rc


def parallel(rest: list) -> list:
    """pytest-xdist options for the main suite, unless the caller chose their own (-n, --dist, -p no:xdist).
    Much of the suite waits (sshd, Slurm, meter windows, runner processes); tests/conftest.py keeps the
    workers apart and groups the tests that share a cluster."""
    if any(a.startswith(("-n", "--numprocesses", "--dist")) or a.endswith("no:xdist") for a in rest):
        return []
    return ["-n", str(WORKERS), "--dist", "loadgroup"]


def run(argv: list) -> int:
    return subprocess.call(argv, cwd=str(ROOT))


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "help"
    rest = sys.argv[2:]
    ebt = [str(VENV / "bin" / "ebt")]
    if cmd == "test":
        ensure_venv()
        rc = run([str(PY), "-m", "pytest", "-q"] + parallel(rest) + rest)
        # with pytest options the caller picked what to run; the board stage belongs to the full suite
        return rc if rest else (test_board_stack() or rc)
    if cmd == "board":
        return test_board_stack()
    if cmd == "quickstart":
        ensure_venv()
        rc = run(ebt + ["run", "experiments/configs/quickstart.yaml"] + rest)
        if rc == 0:
            rc = run(ebt + ["report"])
        return rc
    if cmd == "setup":
        ensure_venv()
        return 0
    print(__doc__.strip())
    print("\ncommands: quickstart [ebt run options], test [pytest options], board (the Python 3.6 stage "
          "of test alone), setup")
    return 0 if cmd == "help" else 2


if __name__ == "__main__":
    sys.exit(main())
