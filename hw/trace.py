"""The power-trace format: `power.csv` plus `power.meta.json`, written so a crash never corrupts them.

`power.csv` (append-only, one sample a row, flushed at least once a second by the sampler):

    t,watts,<rail 1>,<rail 2>,...[,energy_j]

* `t`: wall-clock epoch seconds of the reading (6 decimals); `watts`: total power in W.
* one column per rail (W), named by the meter (`VDD_IN`, `package-0`, ...); empty cell = not read.
* `energy_j` (counter meters only: NVML total energy, RAPL): joules counted since the meter was
  opened; it restarts at 0 when a sampler session restarts (a resumed run appends to the same file,
  and readers treat a drop of the counter as a restart).

A crash can leave at most a truncated last row (and the rows of the last unflushed second);
`read_trace` skips any row that does not parse and counts it in `Trace.skipped_rows`. A resumed
sampler appends after such a row on a fresh line.

`power.meta.json` (next to the CSV; rewritten whole via a temp file + `os.replace`, so a reader sees
either the old or the new version, never a torn one; refreshed every few seconds and at stop):

    {"format": "ebt-power-trace/1", "csv": "power.csv", "meter": {spec, kind, rate_hz, counter, where,
                                                                  scope, accuracy_rel, accuracy_abs_w,
                                                                  max_w, update_period_s, provenance},
     "samples": N, "malformed": N, "reconnects": N, "gaps": [[t0, t1], ...],
     "sessions": [{"started", "stopped", "rate_hz", "requested_hz", "samples", "malformed",
                   "timeouts", "reconnects", "gaps", "gaps_dropped", "achieved_hz", "t_first", "t_last",
                   "updated", "gap_s"}]}

A gap is a stretch between two consecutive good samples longer than the session's `gap_s` (three
expected periods, at least 0.5 s), and every stretch across a meter reconnect; `hw.energy` leaves
such a stretch out of the energy instead of bridging it. `malformed` counts the readings the meter
rejected (unparsable, or outside its physical range): they are never written. Top-level counts sum
the sessions; `stopped` stays null for a session that crashed. A secondary meter's trace has the same
format under its own name (`power-N.csv`, `power-N.meta.json`).
"""
import json
import math
import os

from hw.fileio import atomic_write, atomic_write_json

# The trace's file names, owned here; `experiments.paths` re-exports them for the run folder's layout.
POWER_CSV = "power.csv"
POWER_META = "power.meta.json"
SECONDARY_POWER = "power-%d.csv"  # the trace of secondary meter n (1, 2, ...), beside the primary's power.csv
FORMAT = "ebt-power-trace/1"


def csv_path(path):
    """`path` itself when it names a `.csv` file, else `power.csv` inside that (run) folder."""
    path = str(path)
    return path if path.endswith(".csv") and not os.path.isdir(path) else os.path.join(path, POWER_CSV)


def meta_path(path):
    base = csv_path(path)
    stem = base[:-4] if base.endswith(".csv") else base
    return stem + ".meta.json"


def header(rails, counter):
    return ["t", "watts"] + [r.replace(",", "_") for r in rails] + (["energy_j"] if counter else [])


def format_row(sample, rails, counter):
    cells = ["%.6f" % sample.t, "%.4f" % sample.watts]
    for name in rails:
        value = sample.rails.get(name)
        cells.append("" if value is None else "%.4f" % value)
    if counter:
        cells.append("" if sample.energy_j is None else "%.6f" % sample.energy_j)
    return ",".join(cells) + "\n"


def open_for_append(path, columns):
    """Open the CSV for appending, writing the header when new; ValueError on a different header."""
    path = csv_path(path)
    line = ",".join(columns)
    if os.path.exists(path) and os.path.getsize(path) > 0:
        with open(path, "rb") as fh:
            first = fh.readline().decode("utf-8", "replace").strip()
            fh.seek(-1, os.SEEK_END)
            ends_with_newline = fh.read(1) == b"\n"
        if first != line:
            raise ValueError("%s has columns %r, this meter writes %r: use a new run folder" % (path, first, line))
        fh = open(path, "a")
        if not ends_with_newline:
            fh.write("\n")  # the torn row of a crash stays a separate, skipped line
        return fh
    fh = open(path, "a")
    fh.write(line + "\n")
    fh.flush()
    return fh


def write_trace(path, trace):
    """Write a whole `Trace` as a power.csv, atomically (a rebuilt trace: a laptop meter's sessions moved
    onto the device clock); a NaN rail or counter cell stays empty."""
    rails = list(trace.rails)
    lines = [",".join(header(rails, trace.counter))]
    columns = [trace.rails[name] for name in rails] + ([trace.energy_j] if trace.counter else [])
    formats = ["%.4f"] * len(rails) + (["%.6f"] if trace.counter else [])
    for i in range(len(trace.t)):
        cells = ["%.6f" % trace.t[i], "%.4f" % trace.watts[i]]
        cells.extend("" if math.isnan(col[i]) else fmt % col[i] for col, fmt in zip(columns, formats))
        lines.append(",".join(cells))
    atomic_write(csv_path(path), "\n".join(lines) + "\n")


def write_meta(path, meta):
    """Replace power.meta.json atomically (temp file in the same folder, fsync, os.replace)."""
    atomic_write_json(meta_path(path), meta)


def read_meta(path):
    try:
        with open(meta_path(path)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


class Trace:
    """A loaded trace: numpy arrays `t`, `watts`, `energy_j` (None unless a counter meter), `rails`.

    `meta` is power.meta.json (None if absent), `skipped_rows` the rows that did not parse
    (a crash's torn last row), `gaps` the recorded gaps from the meta.
    """

    def __init__(self, t, watts, rails=None, energy_j=None, meta=None, skipped_rows=0, path=None):
        import numpy as np  # on use: the CLI and the run-folder names import this module without arrays
        self.t = np.asarray(t, dtype=float)
        self.watts = np.asarray(watts, dtype=float)
        self.rails = dict(rails or {})
        self.energy_j = None if energy_j is None else np.asarray(energy_j, dtype=float)
        self.meta = meta
        self.skipped_rows = skipped_rows
        self.path = path

    @property
    def counter(self):
        return self.energy_j is not None

    @property
    def gaps(self):
        return list((self.meta or {}).get("gaps", []))

    def __len__(self):
        return len(self.t)

    def __repr__(self):
        return "<Trace %s: %d samples%s>" % (self.path, len(self.t), ", counter" if self.counter else "")


def read_trace(path):
    """Load power.csv (a file, or a run folder holding one); tolerant of torn or garbage rows."""
    path = csv_path(path)
    with open(path, "rb") as fh:
        lines = fh.read().decode("utf-8", "replace").split("\n")
    columns = lines[0].strip().split(",") if lines else []
    if columns[:2] != ["t", "watts"]:
        raise ValueError("%s is not a power trace (first columns must be t,watts)" % path)
    rows = []
    skipped = 0
    width = len(columns)
    for line in lines[1:]:
        cells = line.strip().split(",")
        if cells == [""]:
            continue
        if len(cells) != width:
            skipped += 1
            continue
        try:
            row = [float(c) if c else float("nan") for c in cells]
        except ValueError:
            skipped += 1
            continue
        if math.isnan(row[0]) or math.isnan(row[1]):
            skipped += 1
            continue
        rows.append(row)
    import numpy as np
    data = np.array(rows, dtype=float).reshape(len(rows), width)
    order = np.argsort(data[:, 0], kind="mergesort")  # stable: equal times keep their written order
    data = data[order]
    counter = columns[-1] == "energy_j"
    rail_names = columns[2:-1] if counter else columns[2:]
    rails = {name: data[:, 2 + i] for i, name in enumerate(rail_names)}
    return Trace(data[:, 0], data[:, 1], rails, data[:, -1] if counter else None,
                 read_meta(path), skipped, path)


def parse_tail(data, has_header):
    """(t, watts) of the complete rows of a chunk of power.csv read from some offset (the live view),
    and how many bytes those rows span; `has_header` when the chunk starts at the file's beginning."""
    end = data.rfind(b"\n")
    if end < 0:
        return [], 0
    lines = data[:end + 1].splitlines()
    if has_header:
        lines = lines[1:]
    out = []
    for raw in lines:
        cells = raw.split(b",")
        try:
            out.append((float(cells[0]), float(cells[1])))
        except (ValueError, IndexError):
            continue
    return out, end + 1
