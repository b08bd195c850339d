"""Laptop side of the suite: the `ebt` CLI, configs, targets (local, SSH), run lifecycle, run records."""

from pathlib import Path

# the checkout whose experiments/ and hw/ are shipped to targets and whose git state records note
CODE_ROOT = Path(__file__).resolve().parent.parent
