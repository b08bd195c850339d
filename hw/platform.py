"""What the run's `device` block records: `device_info(root='/')`.

Keys: host, board, jetpack, l4t, power_mode, clocks_locked, temperatures_c, python, torch, cuda (None where
unknown). `temperatures(root)` alone is what a run records again at its end. Sources:

* board: `/proc/device-tree/model` (Jetson and other device-tree boards; NUL-terminated),
  else DMI `/sys/devices/virtual/dmi/id/product_name` (PCs).
* l4t: `/etc/nv_tegra_release`, first line `# R32 (release), REVISION: 7.1, GCID: ...` -> "32.7.1".
* jetpack: the installed `nvidia-jetpack` package in `/var/lib/dpkg/status` when present (it is a
  meta-package that not every image has), else derived from the L4T release with NVIDIA's
  JetPack archive table (L4T_TO_JETPACK; unknown releases give None rather than a guess).
* power_mode: `nvpmodel -q` (prints `NV Power Mode: MAXN` then the mode id) when `root` is `/`,
  else `/var/lib/nvpmodel/status` (`pmode:0000`) mapped to a name through `/etc/nvpmodel.conf`
  (`< POWER_MODEL ID=0 NAME=MAXN >`): "MAXN (0)".
* clocks_locked: what `jetson_clocks` does, pin each clock's minimum to its maximum: True when every
  CPU policy (`/sys/devices/system/cpu/cpufreq/policy*/scaling_{min,max}_freq`) and every GPU devfreq
  node (`/sys/class/devfreq/*`, the ones named after the GPU) has min == max, False when one does not,
  None without cpufreq.
* temperatures_c: every thermal zone, `/sys/class/thermal/thermal_zone*/{type,temp}` (m°C) -> {type: °C}.
* python: this interpreter; torch and cuda: the imported torch if any, else read from torch's
  `version.py` without importing it (importing torch takes seconds on a TX2), else cuda from
  `/usr/local/cuda/version.txt` / `version.json`.

`root` points every file look-up at another tree (tests use a temporary folder).
"""
import glob
import json
import os
import platform as _platform
import re
import socket
import subprocess
import sys

# NVIDIA's JetPack archive, as jetson-stats `jtop/core/jetson_variables.py` carries it: R32 = JetPack 4,
# R35 = 5, R36 = 6, R38 = 7 (Thor), R39 = 7.2 (Orin on JetPack 7).
L4T_TO_JETPACK = {
    "32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.5.2": "4.5.1",
    "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4",
    "32.7.5": "4.6.5", "32.7.6": "4.6.6",
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4", "35.6.1": "5.1.5",
    "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1", "36.4.7": "6.2.1", "36.5.0": "6.2.2",
    "38.2.0": "7.0", "38.2.1": "7.0", "38.2.2": "7.0", "38.4.0": "7.1", "39.0.0": "7.2", "39.2.0": "7.2",
}
GPU_DEVFREQ = re.compile(r"gpu|gp10b|gv11b|ga10b|gb10b|gm20b", re.I)
L4T_RE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")


def _path(root, path):
    return os.path.join(root, path.lstrip("/"))


def _read(root, path):
    try:
        with open(_path(root, path), "rb") as fh:
            return fh.read().decode("utf-8", "replace").replace("\x00", "").strip() or None
    except OSError:
        return None


def board(root="/"):
    return _read(root, "/proc/device-tree/model") or _read(root, "/sys/devices/virtual/dmi/id/product_name")


def l4t_release(root="/"):
    text = _read(root, "/etc/nv_tegra_release")
    match = L4T_RE.search(text or "")
    if not match:
        return None
    parts = ("%s.%s" % match.groups()).split(".")
    while len(parts) < 3:
        parts.append("0")
    return ".".join(parts[:3])


def jetpack(root="/", l4t=None):
    status = _read(root, "/var/lib/dpkg/status") or ""
    for block in status.split("\n\n"):
        if re.search(r"^Package: nvidia-jetpack$", block, re.M) and re.search(r"^Status: .*installed", block, re.M):
            version = re.search(r"^Version: (\S+)", block, re.M)
            if version:
                return version.group(1).split("-")[0]
    return L4T_TO_JETPACK.get(l4t) if l4t else None


def parse_nvpmodel_query(text):
    """`nvpmodel -q` output -> "NAME (ID)"."""
    name = re.search(r"NV Power Mode:\s*(\S+)", text or "")
    ident = re.search(r"^\s*(\d+)\s*$", text or "", re.M)
    if not name:
        return None
    return "%s (%s)" % (name.group(1), ident.group(1)) if ident else name.group(1)


def power_mode(root="/"):
    if os.path.abspath(root) == "/":
        try:
            out = subprocess.check_output(["nvpmodel", "-q"], stderr=subprocess.STDOUT, timeout=10)
            mode = parse_nvpmodel_query(out.decode("utf-8", "replace"))
            if mode:
                return mode
        except (OSError, subprocess.SubprocessError):
            pass
    status = _read(root, "/var/lib/nvpmodel/status") or ""
    match = re.search(r"pmode:(\d+)", status)
    if not match:
        return None
    ident = int(match.group(1))
    conf = _read(root, "/etc/nvpmodel.conf") or ""
    for pid, name in re.findall(r"POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>", conf):
        if int(pid) == ident:
            return "%s (%d)" % (name, ident)
    return str(ident)


def _glob(root, pattern):
    return sorted(glob.glob(_path(root, pattern)))


def _min_is_max(folder, low, high):
    lo, hi = _read("/", os.path.join(folder, low)), _read("/", os.path.join(folder, high))
    return None if lo is None or hi is None else lo == hi


def clock_locks(root="/"):
    """(cpu, gpu): whether every CPU policy, and every GPU devfreq node, is pinned (min == max, as after
    `jetson_clocks`); None for a side with nothing readable."""
    def pinned(states):
        seen = [s for s in states if s is not None]
        return all(seen) if seen else None

    # policyN on current kernels; cpuN/cpufreq (the same files) where only those exist
    policies = (_glob(root, "/sys/devices/system/cpu/cpufreq/policy*")
                or _glob(root, "/sys/devices/system/cpu/cpu[0-9]*/cpufreq"))
    cpu = pinned(_min_is_max(p, "scaling_min_freq", "scaling_max_freq") for p in policies)
    gpu = pinned(_min_is_max(d, "min_freq", "max_freq") for d in _glob(root, "/sys/class/devfreq/*")
                 if GPU_DEVFREQ.search(os.path.basename(d)))
    return cpu, gpu


def clocks_locked(root="/"):
    """True when every CPU policy and GPU devfreq node is pinned; None when no CPU policy reads."""
    cpu, gpu = clock_locks(root)
    return None if cpu is None else cpu and gpu is not False


def temperatures(root="/"):
    """{thermal zone type: °C} for every zone that reads (Jetson: cpu, gpu, soc0, tj, ...)."""
    out = {}
    for zone in _glob(root, "/sys/class/thermal/thermal_zone*"):
        name, temp = _read("/", os.path.join(zone, "type")), _read("/", os.path.join(zone, "temp"))
        try:
            out[name or os.path.basename(zone)] = round(int(temp) / 1000.0, 1)
        except (TypeError, ValueError):
            continue
    return out


def torch_versions():
    """(torch version, CUDA version torch was built with), without importing torch."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return getattr(torch, "__version__", None), getattr(getattr(torch, "version", None), "cuda", None)
    try:
        import importlib.util
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None, None
    text = ""
    for folder in spec.submodule_search_locations:
        try:
            with open(os.path.join(folder, "version.py")) as fh:
                text = fh.read()
            break
        except OSError:
            continue
    version = re.search(r"^__version__\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)", text, re.M)
    cuda = re.search(r"^cuda\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)", text, re.M)
    return (version.group(1) if version else None), (cuda.group(1) if cuda else None)


def cuda_toolkit(root="/"):
    text = _read(root, "/usr/local/cuda/version.json")
    if text:
        try:
            return json.loads(text)["cuda"]["version"]
        except (ValueError, KeyError, TypeError):
            pass
    match = re.search(r"CUDA Version\s+([\d.]+)", _read(root, "/usr/local/cuda/version.txt") or "")
    return match.group(1) if match else None


def device_info(root="/"):
    l4t = l4t_release(root)
    torch, torch_cuda = torch_versions()
    return {
        "host": _read(root, "/etc/hostname") if os.path.abspath(root) != "/" else socket.gethostname(),
        "board": board(root),
        "jetpack": jetpack(root, l4t),
        "l4t": l4t,
        "power_mode": power_mode(root),
        "clocks_locked": clocks_locked(root),
        "temperatures_c": temperatures(root),
        "python": _platform.python_version(),
        "torch": torch,
        "cuda": torch_cuda or cuda_toolkit(root),
    }
