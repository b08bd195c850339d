#!/usr/bin/env python3
"""Set-up and entry points for a fresh clone: `python3 dev.py quickstart` and `python3 dev.py test`.

Each command first makes `.venv/` and installs `requirements.txt` plus this project (editable) into it,
and redoes that only when requirements.txt or pyproject.toml changed.
"""
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".installed"


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


def run(argv: list) -> int:
    return subprocess.call(argv, cwd=str(ROOT))


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "help"
    rest = sys.argv[2:]
    ebt = [str(VENV / "bin" / "ebt")]
    if cmd == "test":
        ensure_venv()
        return run([str(PY), "-m", "pytest", "-q"] + rest)
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
    print("\ncommands: quickstart [ebt run options], test [pytest options], setup")
    return 0 if cmd == "help" else 2


if __name__ == "__main__":
    sys.exit(main())
