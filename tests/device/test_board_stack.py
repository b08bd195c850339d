"""The device code under the board's own stack (JetPack 4.6: Python 3.6, torch 1.8-1.10, numpy 1.19).

`python3 dev.py test` runs this module in its Python 3.6 environment (CPython 3.6 + torch 1.8.1 + numpy < 1.20), without
the laptop's conftest: every method of the registry end to end through `python3 -m experiments run` on
the offline digits set, on VGG and on PreResNet, and a runner killed with SIGKILL that resumes to the
end. Each finished run prints one line, so the CI log shows what ran under which stack.

Under the laptop's Python these tests skip: the laptop suite already runs the same code on its torch.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.version_info[:2] != (3, 6),
                                reason="the board-stack tests run under Python 3.6: `python3 dev.py test` "
                                       "runs them under Python 3.6")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Tiny but real: 1/8 width, 128 digits, 2 epochs, the ticket drawn at epoch 1.
SMALL = dict(dataset="digits", width=0.125, train_subset=128, test_subset=64, batch_size=32, lr=0.1,
             epochs=2, eb_draw_epoch=1, thinet_images=20, device="cpu", workers=0, seed=0,
             eb_ratios=[0.5], prune_ratio=0.5)
ARCHS = (("vgg", 11), ("preresnet", 11))


def _methods():
    if sys.version_info[:2] != (3, 6):
        return []
    sys.path.insert(0, ROOT)
    from experiments.methods import METHODS
    return sorted(METHODS)


def _spec(tmp_path, method, arch, depth, **overrides):
    from experiments.spec import resolve
    raw = dict(SMALL, method=method, arch=arch, depth=depth, run_id="board-%s-%s" % (arch, method))
    raw.update(overrides)
    path = os.path.join(str(tmp_path), "spec.json")
    with open(path, "w") as fh:
        json.dump(resolve(raw), fh)
    return path


def _runner(spec_path, out):
    return [sys.executable, "-m", "experiments", "run", spec_path, "--out", out]


def _run(spec_path, out):
    proc = subprocess.run(_runner(spec_path, out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return proc.returncode, proc.stdout


def _events(out):
    from experiments import paths
    from experiments.events import read_events
    return read_events(paths.events(out))


def _stack():
    import numpy
    import torch
    return "python %s torch %s numpy %s" % (sys.version.split()[0], torch.__version__, numpy.__version__)


@pytest.mark.slow
@pytest.mark.parametrize("arch,depth", ARCHS)
@pytest.mark.parametrize("method", _methods())
def test_every_method_runs_to_the_end(tmp_path, method, arch, depth):
    from experiments import events as ev
    out = os.path.join(str(tmp_path), "run")
    rc, log = _run(_spec(tmp_path, method, arch, depth), out)
    end = ev.last_end(_events(out))
    assert rc == 0 and end is not None and end["status"] == ev.OK, log[-3000:]
    print("\n[board stack: %s] %s %s%d: run_end status=%s" % (_stack(), method, arch, depth, end["status"]))


def _wait_for_checkpoint(out, proc, timeout=240):
    from experiments import events as ev
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if any(e["event"] == ev.CHECKPOINT for e in _events(out)):
            return
        time.sleep(0.1)
    raise AssertionError("no checkpoint within %d s (runner exit %s)" % (timeout, proc.poll()))


@pytest.mark.slow
def test_killed_runner_resumes_to_the_end(tmp_path):
    from experiments import events as ev
    out = os.path.join(str(tmp_path), "run")
    spec_path = _spec(tmp_path, "ebtrain-ff", "vgg", 11, epochs=6, eb_draw_epoch=None)
    proc = subprocess.Popen(_runner(spec_path, out), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    _wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ev.last_end(_events(out)) is None
    rc, log = _run(spec_path, out)
    events = _events(out)
    end = ev.last_end(events)
    assert rc == 0 and end is not None and end["status"] == ev.OK, log[-3000:]
    assert sum(e["event"] == ev.RESUME for e in events) == 1
    print("\n[board stack: %s] kill -9 + resume: run_end status=%s" % (_stack(), end["status"]))
