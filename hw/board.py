"""The board's power mode and clocks as part of the experiment: check, set, verify, restore.

A spec's `power_mode` (an nvpmodel mode id or name, resolved through the board's own list from
`nvpmodel -p --verbose`, else `/etc/nvpmodel.conf`) is set with `sudo -n nvpmodel -m ID` and verified
with `nvpmodel -q`; `clocks: max` runs `sudo -n jetson_clocks --store` then `jetson_clocks`. The
previous state is written to a per-host file in the run root's boards folder *before* anything changes,
so `restore` puts the board back after the run (ok, failed or stopped), and `recover` does it after a
kill -9 (the next runner on the board, or `ebt doctor`). `nvpmodel`, `jetson_clocks` and `sudo` are
found on PATH and called by absolute path, which is what a sudoers line names.

`check` changes nothing: it is what the harness's preflight (through `hw.probe`) and the runner ask
before a run folder exists. `sudo -n -l CMD` says whether sudo would run CMD without a password.
A mode change that nvpmodel says needs a reboot is refused: its prompt is never answered (stdin is
empty), so the board stays in its mode.

Throttling is observed from the kernel's cumulative frequency residency: GPU devfreq `trans_stat`
(ms per frequency) and cpufreq `stats/time_in_state` (10 ms units), read at phase boundaries; time
spent below the frequency cap of the mode (`max_freq`, `scaling_max_freq`) while the clocks were pinned
is time the clocks fell below the mode's maximum.
"""
import getpass
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import time

from hw.fileio import atomic_write_json
from hw.platform import GPU_DEVFREQ, clocks_locked, temperatures

TOOL_TIMEOUT_S = 60
MODE_RE = re.compile(r"POWER_MODEL:?\s+ID=(\d+)\s+NAME=([\w.+-]+)")
REBOOT_RE = re.compile(r"reboot", re.I)
GPU_ZONE = re.compile(r"gpu", re.I)
CLOCKS = ("max",)
COOL_POLL_S = 2.0


class BoardError(Exception):
    """The board cannot be put in the requested state; the message is one line with the fix."""


def tools():
    """{name: absolute path or None} of sudo, nvpmodel, jetson_clocks on PATH."""
    return {name: shutil.which(name) for name in ("sudo", "nvpmodel", "jetson_clocks")}


def sudoers_line(found=None):
    """The sudoers line that lets this user run exactly nvpmodel and jetson_clocks without a password."""
    found = found or tools()
    return "%s ALL=(root) NOPASSWD: %s, %s" % (
        getpass.getuser(), found.get("nvpmodel") or "/usr/sbin/nvpmodel",
        found.get("jetson_clocks") or "/usr/bin/jetson_clocks")


def _sudo_fix(found):
    return ("allow them with `sudo visudo -f /etc/sudoers.d/ebt` holding the line: %s" % sudoers_line(found))


def _run(argv):
    """(exit code, stdout + stderr) of argv; stdin is empty, so a prompt is never answered."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=TOOL_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as err:
        return 127, str(err)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def modes(nvpmodel):
    """[(id, name)] of the board's power modes, from `nvpmodel -p --verbose`, else /etc/nvpmodel.conf."""
    text = _run([nvpmodel, "-p", "--verbose"])[1]
    found = MODE_RE.findall(text)
    if not found:
        try:
            with open("/etc/nvpmodel.conf") as fh:
                found = MODE_RE.findall(fh.read())
        except OSError:
            found = []
    return [(int(i), name) for i, name in dict(found).items()]


def query(nvpmodel):
    """(id, name) of the mode `nvpmodel -q` reports, or None."""
    if not nvpmodel:
        return None
    text = _run([nvpmodel, "-q"])[1]
    name = re.search(r"NV Power Mode:\s*(\S+)", text)
    ident = re.search(r"^\s*(\d+)\s*$", text, re.M)
    if not name or not ident:
        return None
    return int(ident.group(1)), name.group(1)


def label(mode):
    return None if mode is None else "%s (%d)" % (mode[1], mode[0])


def resolve_mode(requested, known):
    """(id, name) of `requested` (an id or a name, any case) among the board's modes; BoardError if none."""
    text = str(requested).strip()
    for ident, name in known:
        if text == str(ident) or text.lower() == name.lower():
            return ident, name
    listed = ", ".join(label(m) for m in known) or "none listed by `nvpmodel -p --verbose`"
    raise BoardError("power_mode %r is not a mode of this board; its modes: %s" % (requested, listed))


def _allowed(found, argv):
    return _run([found["sudo"], "-n", "-l"] + argv)[0] == 0


def check(power_mode=None, clocks=None):
    """What `take` would set, as {"mode": (id, name) or None, "tools": {...}}, without changing anything;
    BoardError (one line with its fix) when it cannot be set."""
    found = tools()
    if power_mode is None and clocks is None:
        return {"mode": None, "tools": found}
    if clocks is not None and clocks not in CLOCKS:
        raise BoardError("clocks %r is not a setting: use max (jetson_clocks) or null" % clocks)
    need = (["nvpmodel"] if power_mode is not None else []) + (["jetson_clocks"] if clocks else [])
    missing = [n for n in ["sudo"] + need if not found[n]]
    if missing:
        raise BoardError("%s not found on PATH (%s): power_mode and clocks need NVIDIA's L4T tools and sudo; "
                         "run on a Jetson, or set power_mode and clocks to null"
                         % (", ".join(missing), os.environ.get("PATH", "")))
    argvs = ([[found["nvpmodel"], "-m", "0"]] if power_mode is not None else []) + (
        [[found["jetson_clocks"], "--store"], [found["jetson_clocks"]]] if clocks else [])
    refused = [" ".join(a) for a in argvs if not _allowed(found, a)]
    if refused:
        raise BoardError("sudo -n refuses `%s` (a password would be asked): %s" % (refused[0], _sudo_fix(found)))
    mode = resolve_mode(power_mode, modes(found["nvpmodel"])) if power_mode is not None else None
    return {"mode": mode, "tools": found}


# --- the state file: what the board was before a run changed it -------------------------------------
def state_path(folder):
    """This host's state file in the boards folder (hosts may share a run root, as Slurm nodes do)."""
    return os.path.join(str(folder), socket.gethostname() + ".json")


def idle_path(folder):
    return os.path.join(str(folder), socket.gethostname() + ".idle.json")


def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _held_by_live(held):
    """Whether the process that saved `held` still runs: same boot (a pid from before a reboot or power
    cut may now name another process) and its pid alive."""
    return held.get("boot") == _boot_id() and _alive(held.get("pid") or 0)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def take(folder, power_mode=None, clocks=None, owner=None):
    """Set the requested mode and clocks, after saving the previous state; returns what was found and set:
    {requested, before, set, clocks, locked_before}. Call `release(folder)` whatever happens next."""
    plan = check(power_mode, clocks)
    found = plan["tools"]
    before = query(found["nvpmodel"])
    out = {"requested": None if power_mode is None else str(power_mode), "before": label(before),
           "set": label(before), "clocks": clocks, "locked_before": clocks_locked()}
    if power_mode is None and clocks is None:
        return out
    path = state_path(folder)
    held = _read_json(path)
    if held and held.get("pid") != os.getpid() and _held_by_live(held):
        raise BoardError("another run (pid %s, %s) holds this board's power mode; wait for it to end"
                         % (held.get("pid"), held.get("owner")))
    if before is None and power_mode is not None:
        raise BoardError("`nvpmodel -q` does not say the board's mode, so it could not be restored; "
                         "check `nvpmodel -q` on the board")
    atomic_write_json(path, {"pid": os.getpid(), "boot": _boot_id(), "owner": owner, "t": time.time(),
                             "mode": before, "clocks_stored": bool(clocks)})
    _set(found, plan["mode"], before, clocks)
    out["set"] = label(query(found["nvpmodel"]))
    return out


def _sudo(found, argv, what):
    rc, text = _run([found["sudo"], "-n"] + argv)
    if rc != 0:
        last = (text.strip().splitlines() or ["no output"])[-1]
        raise BoardError("%s failed (exit %d: %s)" % (what, rc, last))
    return text


def _set_mode(found, mode):
    rc, text = _run([found["sudo"], "-n", found["nvpmodel"], "-m", str(mode[0])])
    if REBOOT_RE.search(text):
        raise BoardError("power mode %s needs a reboot to take effect (nvpmodel: %s); refused: set it by hand "
                         "(sudo nvpmodel -m %d, then reboot) and run with power_mode: null"
                         % (label(mode), text.strip().splitlines()[0], mode[0]))
    now = query(found["nvpmodel"])
    if rc != 0 or now is None or now[0] != mode[0]:
        raise BoardError("`sudo -n nvpmodel -m %d` left the board in %s (exit %d)" % (mode[0], label(now), rc))


def _set(found, mode, before, clocks):
    if clocks:
        _sudo(found, [found["jetson_clocks"], "--store"], "jetson_clocks --store")
    if mode is not None and mode != before:
        _set_mode(found, mode)
    if clocks:
        _sudo(found, [found["jetson_clocks"]], "jetson_clocks")


def release(folder, only_pid=None):
    """Put the board back as the state file says (mode, then stored clocks) and remove the file; None when
    there was nothing to restore (no file, or another live process's). Returns {mode, locked, error}."""
    path = state_path(folder)
    held = _read_json(path)
    if not held or (only_pid is not None and held.get("pid") != only_pid):
        return None
    found, error = tools(), None
    try:
        mode = tuple(held["mode"]) if held.get("mode") else None
        if mode is not None and query(found["nvpmodel"]) != mode:
            _set_mode(found, mode)
        if held.get("clocks_stored"):
            _sudo(found, [found["jetson_clocks"], "--restore"], "jetson_clocks --restore")
        os.remove(path)
    except (BoardError, OSError, KeyError, TypeError) as err:
        error = str(err)
    return {"mode": label(query(found["nvpmodel"])), "locked": clocks_locked(), "error": error,
            "owner": held.get("owner")}


def recover(folder):
    """After a kill -9 (or a reboot): restore the state a runner that is gone left; None when there is none
    or its runner still holds the board."""
    held = _read_json(state_path(folder))
    if not held or _held_by_live(held) and held.get("pid") != os.getpid():
        return None
    return release(folder)


# --- temperatures, cooldown, throttling ----------------------------------------------------------------
def hot_zone(temps):
    """(zone, °C) a cooldown watches: the GPU's zone, else the hottest."""
    gpu = sorted((z, c) for z, c in temps.items() if GPU_ZONE.search(z))
    if gpu:
        return gpu[0]
    return max(temps.items(), key=lambda kv: kv[1]) if temps else (None, None)


def _idle(folder, zone, now_c):
    """The idle temperature: the lowest reading of `zone` at the start of a run on this board under this
    run root (the file keeps it), this reading included."""
    path = idle_path(folder)
    seen = _read_json(path) or {}
    mine = seen.get(zone) or {"c": now_c, "readings": 0}
    mine = {"c": min(mine["c"], now_c), "readings": mine["readings"] + 1}
    seen[zone] = mine
    atomic_write_json(path, seen)
    return mine


def cool_down(folder, within_c, max_s, read=temperatures, sleep=time.sleep):
    """Wait (at most `max_s`) until the watched zone is within `within_c` °C of its idle temperature.
    None when no zone reads; else what happened, for the record."""
    zone, start_c = hot_zone(read())
    if zone is None:
        return None
    idle = _idle(folder, zone, start_c)
    t0, now_c = time.time(), start_c
    while within_c is not None and now_c > idle["c"] + within_c and time.time() - t0 < max_s:
        sleep(COOL_POLL_S)
        now_c = read().get(zone, now_c)
    return {"within_c": within_c, "max_s": max_s, "zone": zone, "idle_c": idle["c"],
            "idle_source": "lowest %s reading at the start of %d run(s) on this board" % (zone, idle["readings"]),
            "start_c": start_c, "end_c": now_c, "waited_s": round(time.time() - t0, 1),
            "reached": within_c is None or now_c <= idle["c"] + within_c}


def _trans_stat(folder):
    """(max_hz, {hz: seconds}) of a devfreq node, from `trans_stat` (last column: time in ms)."""
    try:
        with open(os.path.join(folder, "trans_stat")) as fh:
            text = fh.read()
        with open(os.path.join(folder, "max_freq")) as fh:
            cap = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    rows = re.findall(r"^\*?\s*(\d+):(?:\s+\d+)*\s+(\d+)\s*$", text, re.M)
    return (cap, {int(f): int(ms) / 1000.0 for f, ms in rows}) if rows else None


def _time_in_state(folder):
    """(max_khz, {khz: seconds}) of a cpufreq policy, from `stats/time_in_state` (10 ms units)."""
    try:
        with open(os.path.join(folder, "stats", "time_in_state")) as fh:
            rows = [line.split() for line in fh if line.strip()]
        with open(os.path.join(folder, "scaling_max_freq")) as fh:
            cap = int(fh.read().strip())
        return cap, {int(f): int(t) / 100.0 for f, t in rows}
    except (OSError, ValueError):
        return None


def residency(root="/"):
    """{"gpu": [seconds below the cap, total seconds], "cpu": [...]}: cumulative since boot, summed over the
    GPU devfreq nodes / CPU policies that keep statistics; a side without any is absent."""
    out = {}
    sides = (("gpu", _trans_stat, [d for d in glob.glob(os.path.join(root, "sys/class/devfreq/*"))
                                   if GPU_DEVFREQ.search(os.path.basename(d))]),
             ("cpu", _time_in_state, glob.glob(os.path.join(root, "sys/devices/system/cpu/cpufreq/policy*"))))
    for side, reader, folders in sides:
        stats = [s for s in (reader(f) for f in folders) if s is not None]
        if stats:
            out[side] = [sum(t for cap, table in stats for f, t in table.items() if f < cap),
                         sum(t for _, table in stats for t in table.values())]
    return out


def snapshot():
    """What a phase boundary records of the board: mode, temperatures, frequency residency."""
    return {"power_mode": label(query(shutil.which("nvpmodel"))), "temperatures_c": temperatures(),
            "residency": residency(), "clocks_locked": clocks_locked()}
