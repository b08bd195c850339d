"""Targets: where a run executes. `open_target(url)` for `local`, `ssh://[user@]host[:port]` or
`slurm://LOGIN?partition=P`."""
from __future__ import annotations

from .base import ClockOffset, Launched, RemoteCommandError, Target, TargetError, TargetFailure, TargetUnreachable
from .local import LocalTarget


def open_target(url: str = "local", trust_new_host: bool = False) -> Target:
    if url in ("", "local"):
        return LocalTarget()
    if url.startswith("ssh://"):
        from .ssh import SSHTarget
        return SSHTarget(url, trust_new_host=trust_new_host)
    if url.startswith("slurm://"):
        from .slurm import SlurmTarget
        return SlurmTarget(url, trust_new_host=trust_new_host)
    raise TargetError(f"unknown target {url!r}: use 'local', 'ssh://[user@]host[:port]' or "
                      "'slurm://LOGIN?partition=P'")


__all__ = ["ClockOffset", "Launched", "LocalTarget", "RemoteCommandError", "Target", "TargetError", "TargetFailure",
           "TargetUnreachable", "open_target"]
