"""Joules over a time window of a power trace: `integrate(trace, t0, t1)`.

* Counter meters (a trace with `energy_j`: NVML total energy, RAPL): the energy is the difference of
  the cumulative counter, linearly interpolated at t0 and t1. Exact between samples whatever the
  power did in between, gaps included (the counter kept counting). A counter that drops (a new
  sampler session restarted it at 0) contributes the trapezoid of `watts` for that one step.
* Power meters: the trapezoid rule over the samples inside (t0, t1), with the power linearly
  interpolated at t0 and t1. Exact for piecewise-linear power (constant, ramp; a step when the
  trace holds the two levels at the same instant); otherwise the error of one interval is at most
  |dW| x dt / 2 at a step.

Outside the samples the nearest value is held (the window's edge beyond the trace counts as
uncovered). `coverage` is the fraction of [t0, t1] that lies between consecutive samples no further
apart than `max_gap_s`; `gaps` lists the uncovered stretches within [t0, t1]. The energy still
bridges a gap (linear interpolation); judge it with `coverage`.

`max_gap_s` defaults to the sampler's own gap threshold from power.meta.json, else 5 x the median
sample spacing (at least 0.5 s). `idle_w` (W, from `ebt meters idle`) gives `net_energy_j` =
energy - idle_w x seconds.

Returns an `EnergyResult` namedtuple (use `._asdict()` for a dict): energy_j, net_energy_j, mean_w,
samples, coverage, gaps, seconds, method ('counter' | 'trapezoid' | None when there are no samples),
idle_w.
"""
import collections

import numpy as np

EnergyResult = collections.namedtuple(
    "EnergyResult", "energy_j net_energy_j mean_w samples coverage gaps seconds method idle_w")


def default_max_gap(trace):
    sessions = (getattr(trace, "meta", None) or {}).get("sessions") or []
    recorded = [s.get("gap_s") for s in sessions if s.get("gap_s")]
    if recorded:
        return float(max(recorded))
    if len(trace.t) >= 2:
        return max(0.5, 5.0 * float(np.median(np.diff(trace.t))))
    return 0.5


def integrate(trace, t0, t1, max_gap_s=None, idle_w=None):
    t0, t1 = float(t0), float(t1)
    if t1 < t0:
        raise ValueError("integrate: t1 (%r) is before t0 (%r)" % (t1, t0))
    seconds = t1 - t0
    if max_gap_s is None:
        max_gap_s = default_max_gap(trace)
    t = np.asarray(trace.t, dtype=float)
    w = np.asarray(trace.watts, dtype=float)
    samples = int(np.count_nonzero((t >= t0) & (t <= t1)))
    coverage, gaps = _coverage(t, t0, t1, max_gap_s)
    if len(t) == 0:
        return EnergyResult(None, None, None, 0, 0.0, gaps, seconds, None, idle_w)
    energy_j = getattr(trace, "energy_j", None)
    if energy_j is not None and np.count_nonzero(~np.isnan(energy_j)) >= 1:
        energy, method = _counter(t, w, np.asarray(energy_j, dtype=float), t0, t1), "counter"
    else:
        energy, method = _trapezoid(t, w, t0, t1), "trapezoid"
    mean_w = energy / seconds if seconds > 0 else None
    net = energy - idle_w * seconds if idle_w is not None else None
    return EnergyResult(energy, net, mean_w, samples, coverage, gaps, seconds, method, idle_w)


def _trapezoid(t, w, t0, t1):
    if t1 == t0:
        return 0.0
    inside = (t > t0) & (t < t1)
    tt = np.concatenate(([t0], t[inside], [t1]))
    ww = np.concatenate(([np.interp(t0, t, w)], w[inside], [np.interp(t1, t, w)]))
    return float(np.sum((ww[1:] + ww[:-1]) * 0.5 * np.diff(tt)))


def _counter(t, w, e, t0, t1):
    keep = ~np.isnan(e)
    t, w, e = t[keep], w[keep], e[keep]
    steps = np.diff(e)
    restarted = steps < 0
    if np.any(restarted):
        trap = (w[1:] + w[:-1]) * 0.5 * np.diff(t)
        steps = np.where(restarted, trap, steps)
    cumulative = np.concatenate(([0.0], np.cumsum(steps)))
    return float(np.interp(t1, t, cumulative) - np.interp(t0, t, cumulative))


def _coverage(t, t0, t1, max_gap_s):
    """(fraction of [t0, t1] between samples <= max_gap_s apart, [[a, b], ...] uncovered)."""
    if t1 == t0:
        inside = len(t) > 0 and t[0] <= t0 <= t[-1]
        return (1.0 if inside else 0.0), []
    uncovered = []
    if len(t) == 0:
        return 0.0, [[t0, t1]]
    a, b = t[:-1], t[1:]
    lo, hi = np.clip(a, t0, t1), np.clip(b, t0, t1)
    ok = (b - a) <= max_gap_s
    covered = float(np.sum((hi - lo)[ok]))
    if t[0] > t0:
        uncovered.append([t0, min(float(t[0]), t1)])
    for x, y in zip(lo[~ok & (hi > lo)], hi[~ok & (hi > lo)]):
        uncovered.append([float(x), float(y)])
    if t[-1] < t1:
        uncovered.append([max(float(t[-1]), t0), t1])
    return min(1.0, covered / (t1 - t0)), _merge(uncovered)


def _merge(spans):
    out = []
    for a, b in sorted(spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out
