"""Targets: where a run executes. `open_target(url)` for `local` or `ssh://[user@]host[:port]`."""
from __future__ import annotations

from .base import ClockOffset, Launched, Target, TargetError
from .local import LocalTarget


def open_target(url: str = "local", trust_new_host: bool = False) -> Target:
    if url in ("", "local"):
        return LocalTarget()
    if url.startswith("ssh://"):
        from .ssh import SSHTarget
        return SSHTarget.from_url(url, trust_new_host=trust_new_host)
    raise TargetError(f"unknown target {url!r}: use 'local' or 'ssh://[user@]host[:port]'")


__all__ = ["ClockOffset", "Launched", "LocalTarget", "Target", "TargetError", "open_target"]
