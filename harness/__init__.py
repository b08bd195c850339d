"""Laptop side of the suite: the `ebt` CLI, configs, targets (local, SSH), run lifecycle, run records."""
