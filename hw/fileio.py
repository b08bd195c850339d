"""Atomic writes and tolerant JSON-lines reading: the one implementation every module uses.

Atomic: the content goes to a temporary file beside the target, is flushed and fsynced, and replaces the
target with `os.replace`, so a reader sees the old file or the new one, never half of one; the temporary
file is removed when writing fails. Tolerant: a torn last line of an append-only log (a crash mid-write,
or a live file read while it grows) is skipped and left for the next read.
"""
import contextlib
import json
import os

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write `path` through (for writers that take a path: torch.save,
    savefig); on success it replaces `path`, on failure it is removed."""
    path = str(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = path + TMP_SUFFIX
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write(path, data):
    """Write `data` (str or bytes) to `path` atomically."""
    mode = "wb" if isinstance(data, bytes) else "w"
    with atomic_path(path) as tmp:
        with open(tmp, mode) as fh:
            fh.write(data)


def json_text(obj, indent=1):
    """The project's JSON file text: sorted keys, indented, newline-terminated (numpy numbers as floats)."""
    return json.dumps(obj, indent=indent, sort_keys=True, default=float) + "\n"


def atomic_write_json(path, obj, indent=1):
    """Write `obj` as `json_text` atomically."""
    atomic_write(path, json_text(obj, indent))


def parse_jsonl(data):
    """JSON objects of the complete lines of `data` (bytes), and how many bytes those lines span: a torn
    last line is not consumed, so a follower reading by offset gets it whole next time; a complete line
    that is not JSON is skipped."""
    end = data.rfind(b"\n")
    if end < 0:
        return [], 0
    rows = []
    for line in data[:end + 1].splitlines():
        try:
            rows.append(json.loads(line.decode("utf-8")))
        except ValueError:
            continue
    return rows, end + 1


def read_jsonl(path):
    """Every complete JSON line of the file at `path` ([] when it is absent)."""
    try:
        with open(str(path), "rb") as fh:
            data = fh.read()
    except OSError:
        return []
    if data and not data.endswith(b"\n"):
        data += b"\n"  # a final line without newline is complete if it parses
    return parse_jsonl(data)[0]
