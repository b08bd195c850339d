"""Joules over a time window of a power trace, with what was covered and how sure the figure is:
`integrate(trace, t0, t1)`.

Energy:

* Counter meters (a trace with `energy_j`: NVML total energy, RAPL): the difference of the cumulative
  counter, linearly interpolated at t0 and t1. Exact between samples whatever the power did, long
  steps included (the counter kept counting). A counter that drops (a new sampler session restarted
  it at 0) contributes the trapezoid of `watts` for that one step, under the gap rule below.
* Power meters: the trapezoid rule between consecutive samples, the power linearly interpolated at
  t0 and t1. Exact for piecewise-linear power.

The gap rule: a stretch without samples (between two samples, or at a window edge beyond the trace)
is bridged when it is at most `max_gap_s` long (a few sample periods) and is otherwise left out
whole: no joule is extrapolated across it. `energy_j` is the energy of the covered time only;
`covered_s`, `uncovered_s`, `coverage` (covered / window) and `gaps` (the uncovered stretches) say
how much that is. `max_gap_s` defaults to the sampler's own threshold from power.meta.json (`gap_s`),
else 3 x the median sample spacing, at least 0.5 s.

Uncertainty (`uncertainty_j`, a worst-case bound: the sum of four terms, kept apart in
`uncertainty`):

* instrument: accuracy_rel x |energy| + accuracy_abs_w x covered_s, from the meter's accuracy class
  (`accuracy_rel`, `accuracy_abs_w` of its `info()`; DEFAULT_ACCURACY when it declares none);
* sampling, by what one reading is (the meter's `sampling` in its info, `hw.meters.base`):
  - averages over at least the sample spacing (and counter steps): on each covered step |dW| x dt / 2,
    the trapezoid's worst error on a monotone step (zero on counter steps);
  - point samples (and averages over a window shorter than the spacing, and meters that do not say):
    the power between two readings is not seen, and a load that moves faster than the reads can
    alias. The term is SPREAD_Z x s x covered_s / sqrt(n), s the sample-to-sample spread (the standard
    deviation of consecutive differences / sqrt 2: noise and fast load, not slow drift) of the n
    readings in the window: the standard error of a mean of readings taken at random phases of the load,
    which the sampler makes them by jittering each poll inside its period. (A paced meter locked to a
    load of exactly its own period reads a constant and no trace can show it.)
  plus at each window edge the edge power x tau / 2, tau being the larger of the sample spacing and the
  meter's own update period: where a boundary falls inside one reading is not known better than that.
  Relative to the window this is about tau / length: it tells a window too short for the rate;
* gap: each uncovered stretch x the highest reading next to it (the power the meter saw around the
  gap); it bounds the energy that `energy_j` leaves out, assuming the power stayed within the levels
  seen on either side;
* clock: a trace moved onto another clock with residual `clock_s` (a laptop meter) may be shifted
  that much against the window: clock_s x (power at t0 + power at t1).

`mean_w` is energy / covered_s (the power while measured). `idle_w` (W, from `ebt meters idle`) gives
`net_energy_j` = energy - idle_w x covered_s. `std_w` is the spread (standard deviation) of the
readings inside the window: for an idle baseline, its noise.

Validity (`validity(...)`): a measured window counts only with at least `min_hz` samples per second
and `min_samples` samples (MLPerf's training power rules: one sample a second, 60 a run), coverage of
at least `min_coverage` and a relative uncertainty of at most `max_uncertainty_rel` (VALIDITY_RULES;
runs set them through the spec keys of SPEC_KEYS). The verdict is `{"valid": bool, "reasons": [...]}`,
`valid` None (no reasons) when nothing was measured.

Returns an `EnergyResult` namedtuple (`._asdict()` for a dict). `RunningEnergy` applies the same gap
rule to samples as they arrive (the live view).
"""
import collections

import numpy as np

# For a meter that declares no accuracy class: looser than any class the suite's meters declare, so an
# unknown instrument never looks better than a known one.
DEFAULT_ACCURACY = {"accuracy_rel": 0.05, "accuracy_abs_w": 0.0,
                    "source": "default: the meter declares no accuracy class"}

VALIDITY_RULES = {"min_hz": 1.0, "min_samples": 60, "min_coverage": 0.99, "max_uncertainty_rel": 0.05}
# The run-spec key that sets each rule (experiments/spec.py).
SPEC_KEYS = {"min_hz": "validity_min_hz", "min_samples": "validity_min_samples",
             "min_coverage": "validity_min_coverage", "max_uncertainty_rel": "validity_max_uncertainty_rel"}


def validity_rules(spec=None):
    """The rules, each taken from `spec` (a run spec dict) where it sets one."""
    spec = spec or {}
    return {name: spec[key] if spec.get(key) is not None else VALIDITY_RULES[name] for name, key in SPEC_KEYS.items()}


def validity(samples, seconds, coverage, energy_j, uncertainty_j, rules=None):
    """{"valid": True/False, "reasons": [...]} of one measured window; valid None when energy_j is None."""
    if energy_j is None:
        return {"valid": None, "reasons": []}
    r = rules or VALIDITY_RULES
    reasons = []
    if samples < r["min_samples"]:
        reasons.append("%d samples, fewer than %d" % (samples, r["min_samples"]))
    if seconds and samples / seconds < r["min_hz"]:
        reasons.append("%.2f samples/s, fewer than %g" % (samples / seconds, r["min_hz"]))
    if coverage is None or coverage < r["min_coverage"]:
        reasons.append("coverage %s below %g%%" % (
            "unknown" if coverage is None else "%.1f%%" % (100 * coverage), 100 * r["min_coverage"]))
    rel = uncertainty_j / abs(energy_j) if uncertainty_j is not None and energy_j else None
    if rel is None or rel > r["max_uncertainty_rel"]:
        reasons.append("uncertainty %s above %g%%" % (
            "unknown" if rel is None else "%.1f%%" % (100 * rel), 100 * r["max_uncertainty_rel"]))
    return {"valid": not reasons, "reasons": reasons}


# Standard errors in the point-sample term: 3 keeps a worst-case flavour beside the other terms.
SPREAD_Z = 3.0

EnergyResult = collections.namedtuple(
    "EnergyResult", "energy_j net_energy_j mean_w std_w samples coverage covered_s uncovered_s gaps seconds "
                    "method idle_w uncertainty_j uncertainty")


def gap_threshold(spacing_s):
    """The longest stretch without samples that still counts as covered: three sample spacings, at
    least 0.5 s (the sampler's own `gap_s` rule)."""
    return max(0.5, 3.0 * spacing_s)


def default_max_gap(trace):
    sessions = (getattr(trace, "meta", None) or {}).get("sessions") or []
    recorded = [s.get("gap_s") for s in sessions if s.get("gap_s")]
    if recorded:
        return float(max(recorded))
    return gap_threshold(float(np.median(np.diff(trace.t))) if len(trace.t) >= 2 else 0.0)


def accuracy_of(meter_info):
    """(accuracy_rel, accuracy_abs_w, source) of a meter's info dict, DEFAULT_ACCURACY where absent."""
    info = meter_info or {}
    if info.get("accuracy_rel") is None and info.get("accuracy_abs_w") is None:
        d = DEFAULT_ACCURACY
        return d["accuracy_rel"], d["accuracy_abs_w"], d["source"]
    return (float(info.get("accuracy_rel") or 0.0), float(info.get("accuracy_abs_w") or 0.0),
            info.get("accuracy_source") or "declared by the meter (its class, or its accuracy_* options)")


def integrate(trace, t0, t1, max_gap_s=None, idle_w=None, meter=None, clock_s=0.0):
    """Energy of [t0, t1]; `meter` is the meter's info dict (default: the trace meta's), `clock_s` the
    residual clock uncertainty of the trace's time axis."""
    t0, t1 = float(t0), float(t1)
    if t1 < t0:
        raise ValueError("integrate: t1 (%r) is before t0 (%r)" % (t1, t0))
    if max_gap_s is None:
        max_gap_s = default_max_gap(trace)
    if meter is None:
        meter = (getattr(trace, "meta", None) or {}).get("meter")
    t = np.asarray(trace.t, dtype=float)
    w = np.asarray(trace.watts, dtype=float)
    seconds = t1 - t0
    if len(t) == 0:
        return EnergyResult(None, None, None, None, 0, 0.0, 0.0, seconds, [[t0, t1]] if seconds else [],
                            seconds, None, idle_w, None, None)
    counter = getattr(trace, "energy_j", None)
    method = "trapezoid"
    if counter is not None and np.count_nonzero(~np.isnan(counter)) >= 1:
        method = "counter"
        keep = ~np.isnan(np.asarray(counter, dtype=float))
        t, w, counter = t[keep], w[keep], np.asarray(counter, dtype=float)[keep]
    p = _pieces(t, t0, t1, max_gap_s)
    counting = _counting(t, counter, p) if method == "counter" else None
    if counting is not None:
        p = p._replace(ok=p.ok | counting)  # the counter covers a long step exactly
    covered = float(np.sum((p.b - p.a)[p.ok]))
    if seconds > 0:
        coverage = covered / seconds
    else:
        coverage = 1.0 if t[0] <= t0 <= t[-1] else 0.0
    energy, sampling = _counter(t, w, counter, p, counting) if method == "counter" else _trapezoid(t, w, p)
    terms = _uncertainty(t, w, (t0, t1), p, (energy, covered, sampling), meter, clock_s, method == "counter")
    inside = (t >= t0) & (t <= t1)
    return EnergyResult(
        energy, energy - idle_w * covered if idle_w is not None else None,
        energy / covered if covered > 0 else None,
        float(np.std(w[inside])) if np.any(inside) else None,
        int(np.count_nonzero(inside)), coverage, covered, seconds - covered, _merge(p), seconds, method,
        idle_w, float(sum(terms.values())), terms)


Pieces = collections.namedtuple("Pieces", "a b ok left right")


def _pieces(t, t0, t1, max_gap_s):
    """[t0, t1] cut at the samples: piece k is (a[k], b[k]), between samples left[k] and right[k]
    (-1 / len(t) beyond the trace), `ok` when the stretch without samples it lies in is bridged."""
    cuts = np.concatenate(([t0], t[(t > t0) & (t < t1)], [t1]))
    a, b = cuts[:-1], cuts[1:]
    keep = b > a
    a, b = a[keep], b[keep]
    left = np.searchsorted(t, a, side="right") - 1
    right = np.searchsorted(t, b, side="left")
    n = len(t)
    lt = t[np.clip(left, 0, n - 1)]
    rt = t[np.clip(right, 0, n - 1)]
    length = np.where(left < 0, t[0] - t0, np.where(right >= n, t1 - t[-1], rt - lt))
    return Pieces(a, b, length <= max_gap_s, left, right)


def _merge(p):
    """The uncovered stretches, adjacent pieces joined."""
    out = []
    for a, b in zip(p.a[~p.ok], p.b[~p.ok]):
        if out and a <= out[-1][1]:
            out[-1][1] = float(b)
        else:
            out.append([float(a), float(b)])
    return out


def _at(t, w, x, p):
    """Power at times `x` (each inside its piece's step), linear between the step's two samples and
    held beyond the trace; a sample shared by two levels (a step at one instant) gives each side its own."""
    n = len(t)
    li, ri = np.clip(p.left, 0, n - 1), np.clip(p.right, 0, n - 1)
    span = t[ri] - t[li]
    frac = np.where(span > 0, (x - t[li]) / np.where(span > 0, span, 1.0), 0.0)
    return np.where(p.left < 0, w[ri], np.where(p.right >= n, w[li], w[li] + frac * (w[ri] - w[li])))


def _trapezoid(t, w, p, use=None):
    """(energy, sampling bound) over the bridged pieces (or those of `use`)."""
    use = p.ok if use is None else use
    wa, wb, dt = _at(t, w, p.a, p)[use], _at(t, w, p.b, p)[use], (p.b - p.a)[use]
    return float(np.sum(0.5 * (wa + wb) * dt)), float(np.sum(0.5 * np.abs(wb - wa) * dt))


def _counting(t, e, p):
    """Pieces inside a step over which the counter went on counting (a restart drops it)."""
    n = len(t)
    li, ri = np.clip(p.left, 0, n - 1), np.clip(p.right, 0, n - 1)
    return (p.left >= 0) & (p.right < n) & (ri > li) & (e[ri] >= e[li])


def _counter(t, w, e, p, counting):
    """A counting piece takes its share of the step's counter difference, long step or not; any other
    bridged piece (an edge beyond the trace, a restarted counter) the trapezoid of watts."""
    n = len(t)
    li, ri = np.clip(p.left, 0, n - 1), np.clip(p.right, 0, n - 1)
    span = np.where(counting, t[ri] - t[li], 1.0)
    energy = float(np.sum(np.where(counting, (p.b - p.a) / span * (e[ri] - e[li]), 0.0)))
    more, sampling = _trapezoid(t, w, p, p.ok & ~counting)
    return energy + more, sampling


def point_samples(meter, spacing):
    """True unless the meter's readings are averages over at least the sample spacing (or a counter)."""
    declared = (meter or {}).get("sampling") or {}
    kind = declared.get("kind") or "point"
    if kind == "counter":
        return False
    return kind != "average" or float(declared.get("window_s") or 0.0) < 0.99 * spacing


def spread_term(w, covered):
    """SPREAD_Z standard errors of the mean of point readings `w`, over `covered` seconds."""
    if len(w) < 3:
        return None
    spread = float(np.std(np.diff(w))) / np.sqrt(2.0)
    return SPREAD_Z * spread * covered / np.sqrt(len(w))


def _uncertainty(t, w, window, p, figures, meter, clock_s, counted):
    (t0, t1), (energy, covered, sampling) = window, figures
    rel, abs_w, _ = accuracy_of(meter)
    spacing = float(np.median(np.diff(t))) if len(t) >= 2 else 0.0
    if not counted and point_samples(meter, spacing):
        spread = spread_term(w[(t >= t0) & (t <= t1)], covered)
        sampling = spread if spread is not None else sampling
    tau = max(spacing, float((meter or {}).get("update_period_s") or 0.0))
    edges = abs(float(np.interp(t0, t, w))) + abs(float(np.interp(t1, t, w)))
    n = len(t)
    gap = ~p.ok
    # the readings on either side of each uncovered piece (the one side there is, beyond the trace)
    around = np.maximum(np.abs(w[np.clip(p.left, 0, n - 1)]), np.abs(w[np.clip(p.right, 0, n - 1)]))
    return {"instrument_j": rel * abs(energy) + abs_w * covered,
            "sampling_j": sampling + edges * tau / 2.0 if covered > 0 else 0.0,
            "gap_j": float(np.sum(((p.b - p.a) * around)[gap])),
            "clock_j": float(clock_s or 0.0) * edges}


class RunningEnergy:
    """Joules of samples as they arrive, under `integrate`'s gap rule: a step longer than the gap
    threshold adds nothing and counts as uncovered. The threshold is `max_gap_s`, or, when None,
    `gap_threshold` of the recent sample spacing. `lost(now)`: no sample for longer than it."""

    RECENT = 20

    def __init__(self, max_gap_s=None):
        self.max_gap_s = max_gap_s
        self.energy_j = 0.0
        self.uncovered_s = 0.0
        self.last = None
        self._spacing = collections.deque(maxlen=self.RECENT)

    @property
    def gap_s(self):
        if self.max_gap_s is not None:
            return float(self.max_gap_s)
        return gap_threshold(float(np.median(self._spacing)) if self._spacing else 0.0)

    def add(self, t, watts):
        if self.last is not None and t > self.last[0]:
            dt = t - self.last[0]
            self._spacing.append(dt)  # the median shrugs off a gap among the recent steps
            if dt <= self.gap_s:
                self.energy_j += 0.5 * (watts + self.last[1]) * dt
            else:
                self.uncovered_s += dt
        if self.last is None or t >= self.last[0]:
            self.last = (float(t), float(watts))

    def lost(self, now):
        return self.last is not None and now - self.last[0] > self.gap_s
