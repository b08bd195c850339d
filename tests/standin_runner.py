"""A tiny stand-in runner, shipped and started by the SSH target exactly like the real one.

It is a real `experiments` package (`python3 -m experiments run spec.json --out RUN_DIR`) that appends
JSON lines to the event log slowly, so connection drops can land mid-run; re-running it continues the
count, as the real runner resumes.
"""
from __future__ import annotations

from pathlib import Path

STAND_IN_RUNNER = r'''
import json, os, sys, time
_, spec_path, _, out = sys.argv[1:5]
spec = json.load(open(spec_path))
events = os.path.join(out, "events.jsonl")
done = 0
if os.path.exists(events):
    done = sum(1 for line in open(events) if '"epoch"' in line)
os.makedirs(os.path.join(out, "checkpoints"), exist_ok=True)
with open(os.path.join(out, "checkpoints", "last.pt"), "w") as f:
    f.write("weights")
with open(events, "a") as f:
    for i in range(done, spec["events"]):
        f.write(json.dumps({"t": time.time(), "event": "epoch", "epoch": i, "note": spec["note"]}) + "\n")
        f.flush()
        time.sleep(spec["interval"])
    f.write(json.dumps({"t": time.time(), "event": "run_end", "status": "ok"}) + "\n")
'''


def make_code(root: Path, version: str = "1") -> Path:
    (root / "experiments").mkdir(parents=True, exist_ok=True)
    (root / "hw").mkdir(exist_ok=True)
    (root / "experiments" / "__init__.py").write_text("VERSION = %r\n" % version)
    (root / "experiments" / "__main__.py").write_text(STAND_IN_RUNNER)
    (root / "hw" / "__init__.py").write_text("")
    return root
