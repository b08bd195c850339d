"""A power meter on the laptop (a serial meter: Watts Up?, UM25C, SCPI, DIY lines) during a run on
another machine.

The harness samples it here with `hw.sampler.PowerSampler`, on the laptop clock, into one raw trace per
sampling session (`laptop-power/session-<n>.csv` in the laptop copy of the run folder). Around each
session it measures the target's clock offset over the link (`Target.clock_offset`, several round
trips, minimum-RTT midpoint) at start and at stop, and keeps those in `laptop-clock.json`. `power.csv`
next to them is then rebuilt from every session, each moved onto the device clock by its own
alignment (`harness.clock`), so energy can be split by the phases of `events.jsonl`. A resumed or
re-attached run adds a session; the raw traces stay, for audit.

The record's `meter` entry says `where: laptop` and carries the offsets and the residual uncertainty
(the larger half round trip of a session's two measurements; worst over the sessions).
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from harness.clock import ClockAlignment, shift_traces
from harness.targets.base import ClockOffset, Target

log = logging.getLogger(__name__)

RAW_DIR = "laptop-power"
CLOCK_FILE = "laptop-clock.json"


def _write_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=str(path.parent))
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _alignment(entry: Dict[str, Any]) -> ClockAlignment:
    def offset(d: Optional[Dict[str, float]]) -> Optional[ClockOffset]:
        return None if d is None else ClockOffset(d["offset_s"], d["uncertainty_s"])

    end = entry.get("end")
    return ClockAlignment(
        start_t=entry["start"]["t_laptop"], start=offset(entry["start"]),  # type: ignore[arg-type]
        end_t=end["t_laptop"] if end else None, end=offset(end),
    )


class LaptopMeter:
    """`start()` before the runner starts, `latest()` while it runs, `stop()` when it has ended
    (returns the record's `meter` entry)."""

    def __init__(self, spec: str, target: Target, folder: Path, rate_hz: float = 10.0):
        self.spec = spec
        self.target = target
        self.folder = Path(folder)
        self.rate_hz = rate_hz
        self._sampler = None
        self._meter = None
        self._index = -1
        self._alignment: Optional[ClockAlignment] = None

    @property
    def clock_path(self) -> Path:
        return self.folder / CLOCK_FILE

    def _sessions(self) -> List[Dict[str, Any]]:
        return json.loads(self.clock_path.read_text()) if self.clock_path.exists() else []

    def _measure(self) -> Tuple[float, ClockOffset]:
        before = time.time()
        offset = self.target.clock_offset()
        return (before + time.time()) / 2.0, offset

    def start(self) -> None:
        from hw.meters import open_meter
        from hw.sampler import PowerSampler

        (self.folder / RAW_DIR).mkdir(parents=True, exist_ok=True)
        sessions = self._sessions()
        self._index = len(sessions)
        t, offset = self._measure()
        self._alignment = ClockAlignment(start_t=t, start=offset)
        sessions.append(dict(self._alignment.to_record(), raw="%s/session-%d.csv" % (RAW_DIR, self._index)))
        # Saved now, not at stop: a laptop that dies mid-run still leaves this session usable.
        _write_json(self.clock_path, sessions)
        log.info("clock of %s is %+.6f s from the laptop's (+- %.6f s)", self.target.url,
                 offset.offset_s, offset.uncertainty_s)
        self._meter = open_meter(self.spec)
        if self._meter is None:
            raise ValueError("meter %r measures nothing; a laptop meter must be a concrete serial meter" % self.spec)
        self._sampler = PowerSampler(self._meter, str(self.folder / sessions[-1]["raw"]), self.rate_hz).start()

    def latest(self) -> Optional[Tuple[float, float]]:
        """The last sample as (device time, watts), for live progress."""
        if self._sampler is None or self._alignment is None:
            return None
        sample = self._sampler.latest()
        if sample is None:
            return None
        return sample[0] + self._alignment.offset_at(sample[0]), sample[1]

    def stop(self) -> Dict[str, Any]:
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
        _write_json(self.clock_path, sessions)
        return self._rebuild(info, stats.get("rate_hz"))

    def _rebuild(self, info: Dict[str, Any], rate_hz: Optional[float]) -> Dict[str, Any]:
        """Write `power.csv` from every session on the device clock; the record's meter entry."""
        from hw.trace import read_meta

        sessions = self._sessions()
        parts, gaps = [], []
        for entry in sessions:
            raw = self.folder / entry["raw"]
            if not raw.exists():  # a session whose meter never answered
                continue
            alignment = _alignment(entry)
            parts.append((raw, alignment))
            for a, b in (read_meta(str(raw)) or {}).get("gaps", []):
                gaps.append([a + alignment.offset_at(a), b + alignment.offset_at(b)])
        samples = shift_traces(parts, self.folder / "power.csv")
        return {
            "spec": self.spec,
            "kind": info.get("kind"),
            "where": "laptop",
            "rate_hz": rate_hz,
            "samples": samples,
            "gaps": gaps,
            "clock": {
                "sessions": sessions,
                "uncertainty_s": max(_alignment(s).uncertainty_s for s in sessions),
            },
        }
