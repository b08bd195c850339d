"""`ebt report`, `ebt status` and `ebt --help` run where torch cannot be imported: the method registry, the
phase declarations and the report's readers (masks included) load without it, so these commands start at
once on a laptop. A module-level torch import anywhere on their path fails this test."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import paths

ROOT = Path(__file__).resolve().parents[1]
EBT = "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))"


def _torch_that_refuses(site: Path, marker: Path) -> None:
    """A `torch` package first on the path that notes it was imported (even where the ImportError is caught)
    and refuses to load."""
    fake = site / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('imported\\n')\n"
                                      "raise ImportError('torch must not be imported by this command')\n")


def _ebt(argv: list[str], site: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    return subprocess.run([sys.executable, "-c", EBT] + argv, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_report_status_and_help_run_without_torch(tmp_path):
    """Over the committed reference runs: every method, mask logs (Fig 3 reads them back), trunks."""
    results = ROOT / "results"
    assert list(results.glob("runs/*/masks.jsonl")), "the reference runs have mask logs"
    site, marker, out = tmp_path / "site", tmp_path / "torch-imported", tmp_path / "report"
    _torch_that_refuses(site, marker)

    report = _ebt(["report", "--results", str(results), "--out", str(out)], site)
    assert report.returncode == 0, report.stderr
    assert (out / "figures" / "fig3_mask_distance.png").is_file() and (out / paths.REPORT).is_file()
    status = _ebt(["status", "--results", str(results)], site)
    assert status.returncode == 0, status.stderr
    assert "vgg11-digits-" in status.stdout
    helped = _ebt(["--help"], site)
    assert helped.returncode == 0 and "report" in helped.stdout, helped.stderr
    assert not marker.exists(), "torch was imported"


def test_the_refusing_torch_refuses(tmp_path):
    """The stand-in does what the test above relies on: a torch import through it fails and is noted."""
    site, marker = tmp_path / "site", tmp_path / "torch-imported"
    _torch_that_refuses(site, marker)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    proc = subprocess.run([sys.executable, "-c", "import experiments.train"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "torch must not be imported" in proc.stderr
    assert marker.exists()
