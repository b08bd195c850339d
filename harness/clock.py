"""Clock alignment between the laptop and a target.

A laptop-side power trace (a serial meter sampled by the harness) must be put on the device clock,
the clock of `events.jsonl`, before energy is split per phase. The offset (device - laptop) is
measured by round trips: the laptop notes its time before sending a probe and after the answer
arrives; the device's answer is assumed to be taken at the midpoint, so the error is at most half
the round trip. Of several probes the one with the smallest round trip gives the tightest bound
(Cristian's algorithm; the same minimum-delay filter NTP applies to its samples).

The offset is measured at the start and at the end of a run; between the two it is interpolated
linearly (clock drift of two crystal oscillators is linear to a good approximation over hours),
and the residual uncertainty is the larger of the two half round trips.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from harness.targets.base import ClockOffset
from hw.trace import Trace, read_trace, write_trace


@dataclass(frozen=True)
class Probe:
    """One round trip: laptop time at send and receive, device time in the answer (seconds)."""

    sent: float
    remote: float
    received: float

    @property
    def rtt(self) -> float:
        return self.received - self.sent


def offset_from_probes(probes: Sequence[Probe]) -> ClockOffset:
    """Midpoint rule on the minimum-round-trip probe."""
    if not probes:
        raise ValueError("no clock probes")
    best = min(probes, key=lambda p: p.rtt)
    if best.rtt < 0:
        raise ValueError("laptop clock went backwards during a clock probe")
    return ClockOffset(offset_s=best.remote - (best.sent + best.received) / 2.0, uncertainty_s=best.rtt / 2.0)


def measure(exchange: Callable[[], float], rounds: int = 8, warmup: int = 1,
            clock: Callable[[], float] = time.time) -> ClockOffset:
    """Offset from `rounds` calls of `exchange` (one round trip returning the device time);
    the first `warmup` answers are dropped because they pay for lazy setup (buffers, page-ins)."""
    probes: list[Probe] = []
    for i in range(warmup + rounds):
        sent = clock()
        remote = exchange()
        received = clock()
        if i >= warmup:
            probes.append(Probe(sent, remote, received))
    return offset_from_probes(probes)


@dataclass(frozen=True)
class ClockAlignment:
    """Offsets measured at laptop times `start_t` and (optionally) `end_t`."""

    start_t: float
    start: ClockOffset
    end_t: float | None = None
    end: ClockOffset | None = None

    def offset_at(self, t_laptop: float) -> float:
        """Device minus laptop clock at laptop time `t_laptop` (linear between the two measurements,
        constant beyond them: extrapolating a drift estimate past its interval only adds error)."""
        if self.end is None or self.end_t is None or self.end_t <= self.start_t:
            return self.start.offset_s
        frac = min(1.0, max(0.0, (t_laptop - self.start_t) / (self.end_t - self.start_t)))
        return self.start.offset_s + frac * (self.end.offset_s - self.start.offset_s)

    @property
    def uncertainty_s(self) -> float:
        if self.end is None:
            return self.start.uncertainty_s
        return max(self.start.uncertainty_s, self.end.uncertainty_s)

    @property
    def drift_ppm(self) -> float | None:
        if self.end is None or self.end_t is None or self.end_t <= self.start_t:
            return None
        return (self.end.offset_s - self.start.offset_s) / (self.end_t - self.start_t) * 1e6

    def to_record(self) -> dict[str, object]:
        """The `clock` entry of a record's `meter`: what was measured and the residual uncertainty.
        `end` is null when the end measurement failed (drift then unknown, offset held constant)."""
        def one(t: float | None, o: ClockOffset | None) -> dict[str, float] | None:
            if o is None or t is None:
                return None
            return {"t_laptop": t, "offset_s": o.offset_s, "uncertainty_s": o.uncertainty_s}

        return {
            "method": "min-rtt midpoint",
            "start": one(self.start_t, self.start),
            "end": one(self.end_t, self.end),
            "drift_ppm": self.drift_ppm,
            "uncertainty_s": self.uncertainty_s,
        }


def shift_traces(parts: Sequence[tuple[Path, ClockAlignment]], dst: Path) -> int:
    """Write the power trace `dst` from laptop-clock traces (read and written by `hw.trace`), each with
    the alignment of the session that recorded it, their times moved onto the device clock. All parts
    must have the same columns; a torn or garbage row (a crash's last) is dropped. Written atomically.
    Returns the number of samples."""
    shifted = []
    for src, alignment in parts:
        trace = read_trace(str(src))
        if not len(trace):
            continue  # a session that never got a sample
        if shifted and (list(trace.rails), trace.counter) != (list(shifted[0].rails), shifted[0].counter):
            raise ValueError("%s: header %s differs from %s" % (src, list(trace.rails), list(shifted[0].rails)))
        offsets = np.array([alignment.offset_at(t) for t in trace.t])
        shifted.append(Trace(trace.t + offsets, trace.watts, trace.rails, trace.energy_j))
    if not shifted:
        return 0
    first = shifted[0]
    write_trace(str(dst), Trace(
        np.concatenate([x.t for x in shifted]), np.concatenate([x.watts for x in shifted]),
        {name: np.concatenate([x.rails[name] for x in shifted]) for name in first.rails},
        np.concatenate([x.energy_j for x in shifted]) if first.counter else None))
    return sum(len(x) for x in shifted)
