"""A background thread that samples a meter into `power.csv` (format: hw/trace.py).

`PowerSampler(meter, path, rate_hz=10.0)`: `start()` opens the trace and returns once the first
sample is in (so a phase that starts right after is covered), `stop()` takes one last sample, closes
the trace and returns the stats dict; also a context manager. `latest()` gives the last (t, watts)
for live display.

Timing: polled meters are read on a monotonic schedule at min(rate_hz, meter.rate_hz), raised for a
meter that averages to at least one read per averaging window (so the readings tile the time and no
stretch goes unmeasured; at most MAX_AUTO_HZ); when the thread falls behind by more than a period it
skips ahead instead of bursting. A meter of point samples is read at a random instant inside each
period (jittered sampling), so a load that repeats at the sampling rate cannot alias the mean: the
readings fall at random phases of it and their spread shows in the uncertainty (`hw.energy`). Paced
meters (serial loggers, tegrastats, jtop) are read back to back: read() blocks until the meter's next
reading. Each sample's `t` is the wall clock at the reading (what the events file uses too).

Spikes: a meter of point samples has no averaging to smooth a glitch, so each of its readings is held
until two later ones arrive and judged against its four neighbours: a reading more than SPIKE_FACTOR
times their upper median, and more than SPIKE_FLOOR_W above it, is a spike (a median filter). Spikes
are counted (`spikes`), listed with their time and value (`spike_samples`, at most MAX_GAPS) and never
written to the trace, so they are never integrated. A real step in power passes: the readings after
it confirm it.

Robustness: rows are buffered for at most `flush_s` (1 s) and then appended and flushed, so a crash
loses at most a second; the meta is rewritten atomically every `meta_s` seconds. Malformed readings
(unparsable, or outside the meter's physical range: the meter raises MalformedReading for them) are
counted in `malformed` and never written, so no integrator sees them; a disconnected meter is reopened with exponential backoff (0.1 s doubling
to 5 s) and the stretch without samples is recorded as a gap. Memory is bounded: one second of rows,
and at most MAX_GAPS gaps (the rest are counted in `gaps_dropped`).
"""
import collections
import logging
import math
import os
import random
import threading
import time

from hw import trace as tracefmt
from hw.energy import gap_threshold, integrate
from hw.meters.base import MalformedReading, NoReading

log = logging.getLogger(__name__)

MAX_GAPS = 1000
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0
SLEEP_SLICE = 0.25
MAX_AUTO_HZ = 100.0
SPIKE_FACTOR = 4.0
SPIKE_FLOOR_W = 1.0
SPIKE_HALF = 2  # neighbours on each side


class SpikeFilter:
    """Judges each reading once SPIKE_HALF later ones are in: `push(sample)` and `flush()` give
    [(sample, is_spike)] in order."""

    def __init__(self):
        self.pending = collections.deque()
        self.before = collections.deque(maxlen=SPIKE_HALF)

    def push(self, sample):
        self.pending.append(sample)
        out = []
        while len(self.pending) > SPIKE_HALF:
            out.append(self._judge(self.pending.popleft()))
        return out

    def flush(self):
        out = []
        while self.pending:
            out.append(self._judge(self.pending.popleft()))
        return out

    def _judge(self, sample):
        around = [s.watts for s in self.before] + [s.watts for s in list(self.pending)[:SPIKE_HALF]]
        # the upper median: a real step (two readings on each level) passes, two glitches in a row do not
        level = sorted(around)[len(around) // 2] if len(around) >= 2 else None
        spike = (level is not None and sample.watts > SPIKE_FACTOR * max(level, 0.0)
                 and sample.watts - level > SPIKE_FLOOR_W)
        if not spike:
            self.before.append(sample)
        return sample, spike


def sampling_rate(meter, requested_hz):
    """The polling rate: the requested one, raised to one read per averaging window, capped by the meter."""
    if meter.paced:
        return meter.rate_hz
    rate = float(requested_hz)
    if meter.sampling == "average" and meter.sampling_window_s:
        rate = max(rate, min(1.0 / meter.sampling_window_s, MAX_AUTO_HZ))
    return min(rate, meter.rate_hz)


class PowerSampler:
    def __init__(self, meter, path, rate_hz=10.0, flush_s=1.0, meta_s=5.0, first_timeout=None):
        if rate_hz <= 0:
            raise ValueError("rate_hz must be > 0, got %r" % rate_hz)
        self.meter = meter
        self.path = tracefmt.csv_path(path)
        self.requested_hz = float(rate_hz)
        self.rate_hz = sampling_rate(meter, rate_hz)
        self.period = 1.0 / self.rate_hz
        point = getattr(meter, "sampling", "point") == "point" and not meter.counter
        self.jitter = point and not meter.paced
        self.spikes = SpikeFilter() if point else None
        self.gap_s = gap_threshold(self.period)
        self.flush_s = flush_s
        self.meta_s = meta_s
        self.first_timeout = first_timeout if first_timeout is not None else max(5.0, 3.0 * self.period)
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread = None
        self._fh = None
        self._columns = None
        self._rows = []
        self._latest = None
        self._last_t = None
        self._reconnected = False
        self._session = {
            "started": None, "stopped": None, "rate_hz": self.rate_hz, "requested_hz": self.requested_hz,
            "samples": 0, "malformed": 0, "timeouts": 0, "reconnects": 0, "gaps": [], "gaps_dropped": 0,
            "achieved_hz": None, "t_first": None, "t_last": None, "updated": None, "gap_s": self.gap_s,
            "spikes": 0, "spike_samples": [], "jittered": self.jitter,
        }
        self._previous = []
        self._error = None

    # -- public API -------------------------------------------------------------------------
    def start(self):
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        old = tracefmt.read_meta(self.path)
        if old and old.get("sessions"):
            self._previous = list(old["sessions"])
        self._session["started"] = time.time()
        tracefmt.write_meta(self.path, self._meta())  # a session that crashes early still shows up
        self._thread = threading.Thread(target=self._run, name="power-sampler")
        self._thread.daemon = True
        self._thread.start()
        if not self._first.wait(self.first_timeout):
            log.warning("no power sample within %.1f s of starting %s", self.first_timeout, self.meter.spec)
        return self

    def stop(self):
        if self._thread is None:
            return self.stats()
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self.spikes is not None:
            self._judged(self.spikes.flush())
        self._session["stopped"] = time.time()
        self._flush(meta=True)
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._error is not None:
            log.error("power sampler thread failed: %s", self._error)
        return self.stats()

    def latest(self):
        return self._latest

    def stats(self):
        s = self._session
        return {"samples": s["samples"], "malformed": s["malformed"], "timeouts": s["timeouts"],
                "reconnects": s["reconnects"], "gaps": [list(g) for g in s["gaps"]],
                "gaps_dropped": s["gaps_dropped"], "achieved_hz": self._achieved(), "rate_hz": self.rate_hz,
                "spikes": s["spikes"],
                "t_first": s["t_first"], "t_last": s["t_last"], "path": self.path}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- the thread ---------------------------------------------------------------------------
    def _run(self):
        try:
            self._loop()
        except Exception as exc:  # never let the trace go unflushed on a bug; report it at stop()
            self._error = exc
            log.exception("power sampler stopped")
        finally:
            self._first.set()

    def _loop(self):
        next_t = time.monotonic()
        last_flush = next_t
        last_meta = next_t - self.meta_s  # the first flush also refreshes the meta
        while True:
            stopping = self._stop.is_set()
            if not self._sample_once():
                # Only a lost meter returns False: wait it out unless we are stopping anyway.
                if stopping or not self._reconnect():
                    break
                next_t = time.monotonic()
            if stopping:
                break
            mono = time.monotonic()
            if mono - last_flush >= self.flush_s:
                write_meta = mono - last_meta >= self.meta_s
                self._flush(meta=write_meta)
                last_flush = mono
                if write_meta:
                    last_meta = mono
            if not self.meter.paced:
                next_t += self.period
                if next_t < mono - self.period:
                    next_t = mono  # fell behind (slow read, suspended): skip ahead, no burst
                self._sleep_until(next_t + (random.random() * self.period if self.jitter else 0.0))

    def _sleep_until(self, deadline):
        # time.sleep costs less CPU per wake-up than Event.wait (no lock per call); naps of at most
        # SLEEP_SLICE keep stop() prompt at low rates.
        while not self._stop.is_set():
            delay = deadline - time.monotonic()
            if delay <= 0:
                return
            time.sleep(min(delay, SLEEP_SLICE))

    def _sample_once(self):
        """Read one sample; False when the meter is gone (the caller reconnects)."""
        s = self._session
        try:
            sample = self.meter.read()
        except MalformedReading as exc:
            s["malformed"] += 1
            log.debug("malformed reading from %s: %s", self.meter.spec, exc)
            return True
        except NoReading:
            s["timeouts"] += 1
            return True
        except Exception as exc:  # MeterDisconnected, serial/OS errors, a dying jtop service
            log.warning("power meter %s lost: %s", self.meter.spec, exc)
            if self.spikes is not None:
                self._judged(self.spikes.flush())  # the held readings belong before the gap
            return False
        if not math.isfinite(sample.watts):  # the meter checks its range; a NaN must never reach the trace
            s["malformed"] += 1
            return True
        if self._latest is None:  # a held first reading already covers the start of what follows
            self._latest = (sample.t, sample.watts)
            self._first.set()
        if self.spikes is None:
            self._record(sample)
        else:
            self._judged(self.spikes.push(sample))
        return True

    def _judged(self, verdicts):
        s = self._session
        for sample, spike in verdicts:
            if not spike:
                self._record(sample)
                continue
            s["spikes"] += 1
            if len(s["spike_samples"]) < MAX_GAPS:
                s["spike_samples"].append([sample.t, sample.watts])
            log.debug("spike from %s dropped: %.3f W at %.3f", self.meter.spec, sample.watts, sample.t)

    def _record(self, sample):
        s = self._session
        if self._columns is None:
            self._rails = list(sample.rails)
            self._columns = tracefmt.header(self._rails, self.meter.counter)
            self._fh = tracefmt.open_for_append(self.path, self._columns)
        if self._last_t is not None and (self._reconnected or sample.t - self._last_t > self.gap_s):
            if len(s["gaps"]) < MAX_GAPS:
                s["gaps"].append([self._last_t, sample.t])
            else:
                s["gaps_dropped"] += 1
        self._reconnected = False
        self._rows.append(tracefmt.format_row(sample, self._rails, self.meter.counter))
        self._last_t = sample.t
        self._latest = (sample.t, sample.watts)
        s["samples"] += 1
        s["t_last"] = sample.t
        if s["t_first"] is None:
            s["t_first"] = sample.t
            self._first.set()

    def _reconnect(self):
        """Reopen the meter with exponential backoff until it answers or stop() is called."""
        delay = BACKOFF_START
        while not self._stop.is_set():
            try:
                self.meter.reopen()
            except Exception as exc:
                log.debug("reopening %s failed: %s (retry in %.1f s)", self.meter.spec, exc, delay)
                if self._stop.wait(delay):
                    return False
                delay = min(2 * delay, BACKOFF_MAX)
                continue
            self._session["reconnects"] += 1
            self._reconnected = True
            log.warning("power meter %s reconnected", self.meter.spec)
            return True
        return False

    def _flush(self, meta=False):
        rows, self._rows = self._rows, []
        if rows and self._fh is not None:
            self._fh.write("".join(rows))
            self._fh.flush()
        if meta:
            if self._fh is not None:
                os.fsync(self._fh.fileno())
            self._session["updated"] = time.time()
            self._session["achieved_hz"] = self._achieved()
            tracefmt.write_meta(self.path, self._meta())

    def _achieved(self):
        s = self._session
        if s["samples"] < 2 or s["t_last"] <= s["t_first"]:
            return None
        return (s["samples"] - 1) / (s["t_last"] - s["t_first"])

    def _meta(self):
        sessions = self._previous + [dict(self._session)]
        gaps = [g for sess in sessions for g in sess.get("gaps", [])]
        return {"format": tracefmt.FORMAT, "csv": os.path.basename(self.path), "meter": self.meter.info(),
                "samples": sum(x.get("samples", 0) for x in sessions),
                "malformed": sum(x.get("malformed", 0) for x in sessions),
                "spikes": sum(x.get("spikes", 0) for x in sessions),
                "reconnects": sum(x.get("reconnects", 0) for x in sessions),
                "gaps": gaps, "sessions": sessions}


class SamplerGroup:
    """The samplers of one run: the primary meter's (or None) and the secondary meters', each into its own
    trace. `start()` starts them all; `stop()` stops them, closes the secondary meters (the caller owns
    the primary's) and returns the primary's stats (None without one)."""

    def __init__(self, primary, secondary):
        self.primary = primary
        self.secondary = list(secondary)  # [(meter, PowerSampler)]

    def start(self):
        for sampler in self._all():
            sampler.start()
        return self

    def stop(self):
        stats = self.primary.stop() if self.primary is not None else None
        for meter, sampler in self.secondary:
            sampler.stop()
            meter.close()
        return stats

    def latest(self):
        return self.primary.latest() if self.primary is not None else None

    def _all(self):
        return ([self.primary] if self.primary is not None else []) + [s for _, s in self.secondary]


def measure_idle(meter, seconds, folder, rate_hz=10.0):
    """Sample `meter` into `folder` for `seconds` while nothing else is started; returns
    (EnergyResult, t0, t1). Its `mean_w` is the idle baseline that `meter_idle_w` takes, its `std_w`
    the spread of the idle readings (`meter_idle_std_w`)."""
    with PowerSampler(meter, folder, rate_hz=rate_hz):
        t0 = time.time()
        time.sleep(seconds)
        t1 = time.time()
    return integrate(tracefmt.read_trace(folder), t0, t1), t0, t1
