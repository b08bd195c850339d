"""The life of a run seen from the laptop: launch on a target, follow, fetch, record.

Laptop-side state of each run is `results/runs/<run_id>/run.json` (target, run folder, pid, how far the
event log was read), written atomically, so `ebt status`, `ebt attach` and `ebt resume` work from any
later shell. Following reads `events.jsonl` (and `power.csv`, for live watts) by byte offset: after a
dropped connection it reconnects with backoff and continues where it stopped, losing nothing.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from .errors import EbtError, UnknownRun
from .record import build_record, write_record
from .targets import Target

if TYPE_CHECKING:
    from .laptop_meter import LaptopMeter

log = logging.getLogger(__name__)

POLL_S = 0.5
RECONNECT_BACKOFF_S = (1, 2, 4, 8, 15, 30)
RECONNECT_GIVE_UP_S = 600.0


@dataclass
class RunInfo:
    run_id: str
    target: str
    run_dir: str
    pid: int
    code_dir: str
    meter: str
    meter_where: str
    started: float
    state: str = "running"  # running | finished | failed | lost | detached
    events_offset: int = 0
    launches: int = 1
    extra: dict = field(default_factory=dict)

    @staticmethod
    def path(results: Path, run_id: str) -> Path:
        return Path(results) / "runs" / run_id / "run.json"

    def save(self, results: Path) -> None:
        path = self.path(results, self.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        os.replace(tmp, path)

    @classmethod
    def load(cls, results: Path, run_id: str) -> "RunInfo":
        path = cls.path(results, run_id)
        if not path.exists():
            raise UnknownRun(f"no run {run_id!r} under {Path(results) / 'runs'} (see `ebt status`)")
        return cls(**json.loads(path.read_text()))


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
            from .console import console
            self._status = console.status(self.text())
            self._status.start()

    def text(self) -> str:
        parts = [f"{self.run_id}", f"{self.phase} {self.epoch}/{self.epochs}"]
        if self.top1 is not None:
            parts.append(f"top1 {self.top1:.2f}%")
        if self.watts is not None:
            parts.append(f"{self.watts:.1f} W, {self.joules / 1000:.2f} kJ")
        if self._epoch_s and self.epochs > self.epoch:
            eta = (self.epochs - self.epoch) * sum(self._epoch_s[-5:]) / len(self._epoch_s[-5:])
            parts.append(f"phase ETA {eta:.0f} s")
        return " | ".join(parts)

    def on_event(self, e: dict) -> None:
        kind = e.get("event")
        if kind == "phase_start":
            self.phase, self.epoch, self.epochs = e["phase"], e.get("done", 0), e.get("epochs", 0)
            self._epoch_s = []
        elif kind == "epoch":
            self.epoch, self.epochs, self.top1 = e["epoch"], e["epochs"], e["top1"]
            self._epoch_s.append(e.get("train_seconds", 0.0))
            if not self.live:
                log.info("%s", self.text())
        elif kind == "eb_drawn":
            log.info("%s: early-bird ticket at p=%g drawn at epoch %d", self.run_id, e["ratio"], e["epoch"])
        elif kind == "resume":
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


def _complete_lines(buf: bytes) -> tuple[list[bytes], int]:
    """Complete lines of `buf` and how many bytes they span (a torn last line waits for more)."""
    end = buf.rfind(b"\n")
    if end < 0:
        return [], 0
    return buf[: end + 1].splitlines(), end + 1


def follow(info: RunInfo, target: Target, results: Path, progress: Optional[Progress] = None,
           on_tick: Optional[Callable[[], None]] = None) -> str:
    """Follow the run until `run_end` (-> its status) or until its runner is gone without one (-> 'lost').

    Reconnects with backoff when the target drops; after RECONNECT_GIVE_UP_S without the target the run
    is left `detached` (it goes on; `ebt attach` follows it again).
    """
    events_path = f"{info.run_dir}/events.jsonl"
    power_path = f"{info.run_dir}/power.csv"
    power_offset = 0
    failing_since: Optional[float] = None
    attempt = 0
    while True:
        try:
            chunk = target.read_from(events_path, info.events_offset)
            lines, used = _complete_lines(chunk)
            power_chunk = target.read_from(power_path, power_offset) if progress else b""
            alive = target.alive(info.pid)
        except Exception as err:  # the transport's own errors differ per target (OSError, SSHException...)
            now = time.time()
            failing_since = failing_since or now
            if now - failing_since > RECONNECT_GIVE_UP_S:
                info.state = "detached"
                info.save(results)
                log.error("lost contact with %s for %.0f s; the run goes on there: `ebt attach %s`",
                          info.target, now - failing_since, info.run_id)
                return "detached"
            delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
            log.warning("connection to %s failed (%s); retrying in %d s", info.target, err, delay)
            attempt += 1
            time.sleep(delay)
            continue
        failing_since, attempt = None, 0
        end = None
        for raw in lines:
            try:
                e = json.loads(raw)
            except ValueError:
                continue
            if progress:
                progress.on_event(e)
            if e.get("event") == "run_end":
                end = e
        info.events_offset += used
        if progress and power_chunk:
            plines, pused = _complete_lines(power_chunk)
            if power_offset == 0 and plines:
                plines = plines[1:]  # header
            for raw in plines:
                cols = raw.split(b",")
                try:
                    progress.on_power(float(cols[0]), float(cols[1]))
                except (ValueError, IndexError):
                    continue
            power_offset += pused
        if on_tick:
            on_tick()
        if end is not None and end.get("status") == "ok":
            info.state = "finished"
        elif end is not None:
            info.state = "failed"
        elif not alive:
            # the runner may have written its last lines just before exiting: read once more
            if target.read_from(events_path, info.events_offset):
                continue
            info.state = "lost"
        info.save(results)
        if info.state != "running":
            return info.state
        time.sleep(POLL_S)


def launch(spec: dict, target: Target, results: Path, code_root: Path) -> RunInfo:
    code_dir = target.prepare(code_root)
    run_dir = target.run_dir(spec["run_id"])
    launched = target.launch(code_dir, spec, run_dir)
    info = RunInfo(run_id=spec["run_id"], target=target.url, run_dir=launched.run_dir, pid=launched.pid,
                   code_dir=code_dir, meter=spec["meter"], meter_where=spec["meter_where"],
                   started=time.time())
    info.save(results)
    log.info("%s: started on %s (pid %d, %s)", info.run_id, target.url, info.pid, info.run_dir)
    return info


def relaunch(info: RunInfo, target: Target, results: Path, code_root: Path) -> RunInfo:
    """Start the runner again on the same run folder: it resumes from the last checkpoint."""
    spec = json.loads(target.read_from(f"{info.run_dir}/spec.json", 0) or b"{}")
    if not spec:
        raise EbtError(f"{info.target}:{info.run_dir}/spec.json is missing; cannot resume {info.run_id}")
    info.code_dir = target.prepare(code_root)
    info.pid = target.launch(info.code_dir, spec, info.run_dir).pid
    info.state = "running"
    info.launches += 1
    info.save(results)
    log.info("%s: resumed on %s (pid %d)", info.run_id, info.target, info.pid)
    return info


def finalize(info: RunInfo, target: Target, results: Path, code_root: Path, checkpoints: bool = False,
             meter: Optional[dict[str, Any]] = None) -> Path:
    """Fetch the run folder into `results/runs/<run_id>/` and write its record."""
    dest = Path(results) / "runs" / info.run_id
    target.fetch(info.run_dir, dest, checkpoints=checkpoints)
    record = build_record(dest, meter=meter, code_root=code_root, target=info.target)
    path = write_record(record, dest)
    top1 = record["accuracy"].get("top1")
    log.info("%s: %s, top1 %s, %.0f s, energy %s -> %s", info.run_id, record["status"],
             "n/a" if top1 is None else "%.2f%%" % top1, record["totals"]["seconds"],
             "n/a (no meter)" if record["totals"]["energy_j"] is None
             else f"{record['totals']['energy_j']:.0f} J", path)
    return path


def laptop_meter(meter: str, where: str, rate_hz: float, target: Target, results: Path,
                 run_id: str) -> Optional["LaptopMeter"]:
    """A new sampling session of a laptop-side (serial) meter, None when the meter is on the device.
    Start it before the runner (re)starts, so that no joule of the run goes unmeasured."""
    if where != "laptop":
        return None
    from .laptop_meter import LaptopMeter
    return LaptopMeter(meter, target, Path(results) / "runs" / run_id, rate_hz=rate_hz)


def start_metered(laptop: Optional["LaptopMeter"], start: Callable[[], RunInfo]) -> RunInfo:
    """Start the laptop meter (if any) before the runner, so its first joule is covered; stop the meter
    again when the runner could not be started."""
    if laptop:
        laptop.start()
    try:
        return start()
    except BaseException:
        if laptop:
            laptop.stop()
        raise


def follow_and_finish(info: RunInfo, target: Target, results: Path, code_root: Path,
                      checkpoints: bool = False, laptop: Optional["LaptopMeter"] = None) -> str:
    """Follow the run live, stop the laptop meter, and (unless the run was lost or left detached)
    fetch it and write its record. Returns the run's state."""
    progress = Progress(info.run_id)

    def show_laptop_watts() -> None:
        sample = laptop.latest() if laptop else None
        if sample is not None:
            progress.on_power(*sample)

    try:
        state = follow(info, target, results, progress, on_tick=show_laptop_watts if laptop else None)
    finally:
        progress.close()
        meter_block = laptop.stop() if laptop else None
    if state == "lost":
        log.error("%s: the runner on %s is gone without finishing; `ebt resume %s`",
                  info.run_id, info.target, info.run_id)
    elif state != "detached":
        finalize(info, target, results, code_root, checkpoints=checkpoints, meter=meter_block)
    return state
