"""Power meters on the laptop (serial meters: Watts Up?, UM25C, SCPI, DIY lines) during a run on
another machine.

The harness samples each here with `hw.sampler.PowerSampler`, on the laptop clock, into one raw trace
per sampling session (`experiments.paths.laptop_power`, in the laptop copy of the run folder). Around
each session it measures the target's clock offset over the link (`Target.clock_offset`, several round
trips, minimum-RTT midpoint) at start and at stop, and keeps those beside the raw traces
(`paths.laptop_clock`). The meter's trace on the device clock is then rebuilt from every session,
each moved by its own alignment (`harness.clock`), so energy can be split by the phases of
`events.jsonl`: `power.csv` for the primary meter, `power-N.csv` for secondary meter N, each with its
meta (the meter's description, its clock entry and gaps). A resumed or re-attached run adds a session;
the raw traces stay, for audit.

The primary's record entry says `where: laptop` and carries the offsets and the residual clock
uncertainty (the larger half round trip of a session's two measurements; worst over the sessions),
which the energy uncertainty then includes.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from experiments import paths
from harness.clock import ClockAlignment, shift_traces
from harness.targets.base import ClockOffset, Target
from hw.fileio import atomic_write_json
from hw.meters import NONE

log = logging.getLogger(__name__)


def _alignment(entry: dict[str, Any]) -> ClockAlignment:
    def offset(d: dict[str, float] | None) -> ClockOffset | None:
        return None if d is None else ClockOffset(d["offset_s"], d["uncertainty_s"])

    end = entry.get("end")
    return ClockAlignment(
        start_t=entry["start"]["t_laptop"], start=offset(entry["start"]),  # type: ignore[arg-type]
        end_t=end["t_laptop"] if end else None, end=offset(end),
    )


class LaptopMeter:
    """One laptop-side meter: the primary (`n` = 0) or secondary meter `n`. `start()` before the runner
    starts, `latest()` while it runs, `stop()` when it has ended (returns its record entry)."""

    def __init__(self, spec: str, target: Target, folder: Path, rate_hz: float = 10.0, n: int = 0):
        self.spec = spec
        self.target = target
        self.folder = Path(folder)
        self.rate_hz = rate_hz
        self.n = n
        self._sampler = None
        self._meter = None
        self._index = -1
        self._alignment: ClockAlignment | None = None

    @property
    def clock_path(self) -> Path:
        return Path(paths.laptop_clock(self.folder, self.n))

    @property
    def trace_path(self) -> Path:
        """The meter's trace on the device clock."""
        if self.n == 0:
            return Path(paths.power_csv(self.folder))
        return Path(paths.secondary_power_csv(self.folder, self.n))

    def _sessions(self) -> list[dict[str, Any]]:
        return json.loads(self.clock_path.read_text()) if self.clock_path.exists() else []

    def _measure(self) -> tuple[float, ClockOffset]:
        before = time.time()
        offset = self.target.clock_offset()
        return (before + time.time()) / 2.0, offset

    def start(self) -> None:
        from hw.meters import open_meter
        from hw.sampler import PowerSampler

        raw_dir = Path(paths.laptop_power(self.folder, self.n))
        raw_dir.mkdir(parents=True, exist_ok=True)
        sessions = self._sessions()
        self._index = len(sessions)
        t, offset = self._measure()
        self._alignment = ClockAlignment(start_t=t, start=offset)
        raw = os.path.relpath(raw_dir / (paths.LAPTOP_SESSION % self._index), self.folder)
        sessions.append(dict(self._alignment.to_record(), raw=raw))
        # Saved now, not at stop: a laptop that dies mid-run still leaves this session usable.
        atomic_write_json(self.clock_path, sessions)
        log.info("clock of %s is %+.6f s from the laptop's (+- %.6f s)", self.target.url,
                 offset.offset_s, offset.uncertainty_s)
        self._meter = open_meter(self.spec)
        if self._meter is None:
            raise ValueError("meter %r measures nothing; a laptop meter must be a concrete serial meter" % self.spec)
        self._sampler = PowerSampler(self._meter, str(self.folder / raw), self.rate_hz).start()

    def latest(self) -> tuple[float, float] | None:
        """The last sample as (device time, watts), for live progress."""
        if self._sampler is None or self._alignment is None:
            return None
        sample = self._sampler.latest()
        if sample is None:
            return None
        return sample[0] + self._alignment.offset_at(sample[0]), sample[1]

    def stop(self) -> dict[str, Any]:
        assert self._sampler is not None and self._meter is not None and self._alignment is not None
        stats = self._sampler.stop()
        self._meter.close()
        info = self._meter.info()
        self._sampler = None
        try:
            end_t, end = self._measure()
            self._alignment = ClockAlignment(self._alignment.start_t, self._alignment.start, end_t, end)
        except Exception as err:  # the link may be down at the end: the start offset still holds
            log.warning("end clock offset of %s not measured (%s); drift stays unknown", self.target.url, err)
        sessions = self._sessions()
        sessions[self._index] = dict(self._alignment.to_record(), raw=sessions[self._index]["raw"])
        atomic_write_json(self.clock_path, sessions)
        return self._rebuild(info, stats.get("rate_hz"))

    def _rebuild(self, info: dict[str, Any], rate_hz: float | None) -> dict[str, Any]:
        """Write the device-clock trace and its meta from every session; the meter's record entry."""
        from hw.trace import read_meta, write_meta

        sessions = self._sessions()
        parts, gaps, malformed = [], [], 0
        for entry in sessions:
            raw = self.folder / entry["raw"]
            if not raw.exists():  # a session whose meter never answered
                continue
            alignment = _alignment(entry)
            parts.append((raw, alignment))
            meta = read_meta(str(raw)) or {}
            malformed += meta.get("malformed", 0)
            for a, b in meta.get("gaps", []):
                gaps.append([a + alignment.offset_at(a), b + alignment.offset_at(b)])
        samples = shift_traces(parts, self.trace_path)
        clock = {"sessions": sessions, "uncertainty_s": max(_alignment(s).uncertainty_s for s in sessions)}
        meter = dict(info, spec=self.spec, where="laptop", rate_hz=rate_hz or info.get("rate_hz"))
        write_meta(str(self.trace_path), {"meter": meter, "clock": clock, "samples": samples,
                                          "malformed": malformed, "gaps": gaps})
        return dict(meter, samples=samples, gaps=gaps, clock=clock)


class LaptopMeters:
    """Every laptop-side meter of one run, driven as one: the primary's entry comes back from `stop()`
    (None when the primary sits on the device), the secondaries' traces go to their own files."""

    def __init__(self, meters: list[LaptopMeter]):
        self.meters = meters
        self.primary = next((m for m in meters if m.n == 0), None)

    def start(self) -> None:
        started: list[LaptopMeter] = []
        try:
            for m in self.meters:
                m.start()
                started.append(m)
        except BaseException:
            for m in started:
                m.stop()
            raise

    def latest(self) -> tuple[float, float] | None:
        return self.primary.latest() if self.primary is not None else None

    def stop(self) -> dict[str, Any] | None:
        entries = {m.n: m.stop() for m in self.meters}
        return entries.get(0)


def laptop_meters(spec: dict[str, Any], target: Target, folder: Path) -> LaptopMeters | None:
    """The laptop-side meters of a run spec (its primary `meter` and its `meters_extra`, where the harness
    put them on the laptop); None when every meter sits on the device."""
    rate = spec.get("meter_rate_hz") or 10.0
    meters = []
    if spec.get("meter_where") == "laptop" and spec.get("meter") not in (None, NONE):
        meters.append(LaptopMeter(spec["meter"], target, folder, rate))
    where = spec.get("meters_extra_where") or []
    for n, extra in enumerate(spec.get("meters_extra") or [], 1):
        if n <= len(where) and where[n - 1] == "laptop":
            meters.append(LaptopMeter(extra, target, folder, rate, n=n))
    return LaptopMeters(meters) if meters else None
