"""The one rich console of the CLI and the live progress line of a run.

The live line and log records share the console, so logs print above the progress line instead of
through it.
"""
from __future__ import annotations

import logging
import sys
from typing import Optional

from rich.console import Console

from experiments import events as ev

console = Console(stderr=True)
log = logging.getLogger("harness.lifecycle")


class Progress:
    """Live view of a run: phase, epoch/total, accuracy, watts now, joules so far, ETA of the phase.

    On a terminal it is one rich status line; elsewhere (CI, logs) one log line per epoch.
    """

    def __init__(self, run_id: str, live: Optional[bool] = None) -> None:
        self.run_id = run_id
        self.live = sys.stderr.isatty() if live is None else live
        self.phase = "-"
        self.epoch = 0
        self.epochs = 0
        self.top1: Optional[float] = None
        self.watts: Optional[float] = None
        self.joules = 0.0
        self._last_sample: Optional[tuple[float, float]] = None
        self._epoch_s: list[float] = []
        self._status = None
        if self.live:
            self._status = console.status(self.text())
            self._status.start()

    def text(self) -> str:
        parts = [f"{self.run_id}", f"{self.phase} {self.epoch}/{self.epochs}"]
        if self.top1 is not None:
            parts.append(f"top1 {self.top1:.2f}%")
        if self.watts is not None:
            parts.append(f"{self.watts:.1f} W, {self.joules / 1000:.2f} kJ")
        if self._epoch_s and self.epochs > self.epoch:
            recent = self._epoch_s[-5:]
            parts.append(f"phase ETA {(self.epochs - self.epoch) * sum(recent) / len(recent):.0f} s")
        return " | ".join(parts)

    def on_event(self, e: dict) -> None:
        kind = e.get("event")
        if kind == ev.PHASE_START:
            self.phase, self.epoch, self.epochs = e["phase"], e.get("done", 0), e.get("epochs", 0)
            self._epoch_s = []
        elif kind == ev.EPOCH:
            self.epoch, self.epochs, self.top1 = e["epoch"], e["epochs"], e["top1"]
            self._epoch_s.append(e.get("train_seconds", 0.0))
            if not self.live:
                log.info("%s", self.text())
        elif kind == ev.EB_DRAWN:
            log.info("%s: early-bird ticket at p=%g drawn at epoch %d", self.run_id, e["ratio"], e["epoch"])
        elif kind == ev.EB_MISSING:
            log.warning("%s: no early-bird ticket at p=%g within %d search epochs", self.run_id,
                        e["ratio"], e.get("epochs", 0))
        elif kind == ev.RESUME:
            log.info("%s: resumed at phase %d epoch %d", self.run_id, e["phase_index"], e["phase_epoch"])
        if self._status is not None:
            self._status.update(self.text())

    def on_power(self, t: float, watts: float) -> None:
        if self._last_sample is not None and t > self._last_sample[0]:
            self.joules += 0.5 * (watts + self._last_sample[1]) * (t - self._last_sample[0])
        self._last_sample = (t, watts)
        self.watts = watts

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
