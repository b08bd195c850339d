"""The run's event log, `events.jsonl`: one JSON object a line, append-only, each with wall time `t`
and `event` (run_start, phase_start, epoch, eb_drawn, checkpoint, phase_end, resume, run_end).

Append-only writes with a flush per event mean a crash leaves at most one torn last line, which
readers skip; the laptop follows the file by byte offset.
"""
import json
import os
import time


class EventLog(object):
    def __init__(self, path):
        self.path = str(path)
        self._fh = open(self.path, "a")

    def emit(self, event, durable=False, **fields):
        row = {"t": time.time(), "event": event}
        row.update(fields)
        self._fh.write(json.dumps(row, sort_keys=True) + "\n")
        self._fh.flush()
        if durable:
            os.fsync(self._fh.fileno())
        return row

    def close(self):
        self._fh.close()


def read_events(path):
    """All complete events of an `events.jsonl` (a torn last line is skipped)."""
    rows = []
    if not os.path.exists(str(path)):
        return rows
    with open(str(path)) as fh:
        for line in fh:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows
