"""The one rich console of the CLI and the live progress line of a run.

The live line and log records share the console, so logs print above the progress line instead of
through it.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Optional

from rich.console import Console
from rich.text import Text

from experiments import events as ev
from hw.energy import RunningEnergy

console = Console(stderr=True)
log = logging.getLogger("harness.lifecycle")

# Device samples reach the laptop in batches (the sampler flushes once a second, the follower polls
# twice a second, a slow link adds its round trips): a meter counts as lost once no new sample has come
# for this much past its gap threshold.
ARRIVAL_SLACK_S = 3.0


class Progress:
    """Live view of a run: phase, epoch/total, accuracy, watts now, joules so far, ETA of the phase.

    Joules follow hw.energy's gap rule (`RunningEnergy`): a stretch without samples adds nothing, and
    while no sample arrives the line says "meter lost" instead of a stale reading. On a terminal it is
    one rich status line that renders itself on every refresh; elsewhere (CI, logs) one log line per epoch.
    """

    def __init__(self, run_id: str, live: Optional[bool] = None) -> None:
        self.run_id = run_id
        self.live = sys.stderr.isatty() if live is None else live
        self.phase = "-"
        self.epoch = 0
        self.epochs = 0
        self.top1: Optional[float] = None
        self.watts: Optional[float] = None
        self.energy = RunningEnergy()
        self._arrived: Optional[float] = None  # laptop monotonic time of the last new sample
        self._epoch_s: list[float] = []
        self._last_t: Optional[float] = None  # device time of the phase's start or its last epoch
        self._status = None
        if self.live:
            self._status = console.status(self)
            self._status.start()

    def text(self) -> str:
        parts = [f"{self.run_id}", f"{self.phase} {self.epoch}/{self.epochs}"]
        if self.top1 is not None:
            parts.append(f"top1 {self.top1:.2f}%")
        if self.watts is not None:
            parts.append(self._meter_text())
        if self._epoch_s and self.epochs > self.epoch:
            recent = self._epoch_s[-5:]
            parts.append(f"phase ETA {(self.epochs - self.epoch) * sum(recent) / len(recent):.0f} s")
        return " | ".join(parts)

    def on_event(self, e: dict) -> None:
        self._apply(e)
        kind = e.get("event")
        if kind == ev.EPOCH and not self.live:
            log.info("%s", self.text())
        elif kind == ev.EB_DRAWN:
            log.info("%s: early-bird ticket at p=%g drawn at epoch %d", self.run_id, e["ratio"], e["epoch"])
            if e.get("late"):
                log.warning("%s: %s", self.run_id, e.get("note"))
        elif kind == ev.EB_MISSING:
            log.warning("%s: %s", self.run_id, e.get("note") or "no early-bird ticket at p=%g" % e["ratio"])
        elif kind == ev.RESUME:
            log.info("%s: resumed at phase %d epoch %d", self.run_id, e["phase_index"], e["phase_epoch"])

    def replay(self, events: list[dict]) -> None:
        """Catch up, without logging, on the part of the log read before (a reconnect: `ebt attach`, a
        rerun config following its run again): the phase, epoch and epoch times the line needs."""
        for e in events:
            self._apply(e)

    def _apply(self, e: dict) -> None:
        # The ETA takes an epoch's wall time between events (training, evaluation, checkpoint), on the
        # device clock; a runner's new session (resume) starts a new count, its downtime is no epoch.
        kind, t = e.get("event"), e.get("t")
        if kind == ev.RUN_START:
            self._last_t = None
        elif kind == ev.PHASE_START:
            self.phase, self.epoch, self.epochs = e["phase"], e.get("done", 0), e.get("epochs", 0)
            self._epoch_s, self._last_t = [], t
        elif kind == ev.EPOCH:
            self.epoch, self.epochs, self.top1 = e["epoch"], e["epochs"], e["top1"]
            if self._last_t is not None and t is not None:
                self._epoch_s.append(t - self._last_t)
            self._last_t = t

    def __rich__(self) -> Text:
        return Text(self.text())  # plain text: a run id or a meter spec is never read as markup

    def _meter_text(self) -> str:
        kj = f"{self.energy.energy_j / 1000:.2f} kJ"
        if self.energy.uncovered_s > 0:
            kj += f" ({self.energy.uncovered_s:.0f} s uncovered)"
        quiet = time.monotonic() - self._arrived if self._arrived is not None else 0.0
        if quiet > self.energy.gap_s + ARRIVAL_SLACK_S:
            return f"meter lost for {quiet:.0f} s, {kj}"
        return f"{self.watts:.1f} W, {kj}"

    def on_power(self, t: float, watts: float) -> None:
        """A sample (device time, W); one already seen (the laptop meter's latest, polled again) or
        older than the last is ignored."""
        if self.energy.last is not None and t <= self.energy.last[0]:
            return
        self.energy.add(t, watts)
        self._arrived = time.monotonic()
        self.watts = watts

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
