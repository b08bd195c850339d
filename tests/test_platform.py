"""device_info() on temporary trees shaped like a TX2 (JetPack 4.6), an Orin and a plain PC."""
import json
import os
import platform
import subprocess
import sys

import pytest

from hw.platform import clocks_locked, device_info, parse_nvpmodel_query, temperatures

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NVPMODEL_CONF = """< PARAM TYPE=FILE NAME=CPU_ONLINE >
CORE_0 /sys/devices/system/cpu/cpu0/online
< POWER_MODEL ID=0 NAME=MAXN >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=1 NAME=MAXQ >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=3 NAME=MAXP_CORE_ARM >
CPU_ONLINE CORE_0 1
< PM_CONFIG DEFAULT=3 >
"""


def write(root, path, data, mode="w"):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, mode) as fh:
        fh.write(data)


def test_tx2_tree(tmp_path):
    write(tmp_path, "/proc/device-tree/model", b"NVIDIA Jetson TX2\x00", "wb")
    write(tmp_path, "/etc/nv_tegra_release",
          "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref, EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022\n")
    write(tmp_path, "/etc/hostname", "tx2\n")
    write(tmp_path, "/var/lib/nvpmodel/status", "pmode:0003 fmode:quiet\n")
    write(tmp_path, "/etc/nvpmodel.conf", NVPMODEL_CONF)
    write(tmp_path, "/usr/local/cuda/version.txt", "CUDA Version 10.2.300\n")
    info = device_info(root=str(tmp_path))
    assert info["board"] == "NVIDIA Jetson TX2" and info["l4t"] == "32.7.1" and info["jetpack"] == "4.6.1"
    assert info["power_mode"] == "MAXP_CORE_ARM (3)" and info["host"] == "tx2"
    assert info["python"] == platform.python_version()
    assert set(info) == {"host", "board", "jetpack", "l4t", "power_mode", "clocks_locked", "temperatures_c", "python",
                         "torch", "cuda"}
    assert info["clocks_locked"] is None and info["temperatures_c"] == {}


def test_jetpack_package_wins_over_the_table(tmp_path):
    write(tmp_path, "/etc/nv_tegra_release", "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref\n")
    write(tmp_path, "/var/lib/dpkg/status", "Package: nvidia-l4t-core\nStatus: install ok installed\n"
          "Version: 35.4.1-20230801124926\n\nPackage: nvidia-jetpack\nStatus: install ok installed\n"
          "Version: 5.1.2-b104\n")
    assert device_info(root=str(tmp_path))["jetpack"] == "5.1.2"


def test_unknown_board_gives_nones(tmp_path):
    write(tmp_path, "/sys/devices/virtual/dmi/id/product_name", "ThinkPad X1\n")
    info = device_info(root=str(tmp_path))
    assert info["board"] == "ThinkPad X1"
    assert info["l4t"] is None and info["jetpack"] is None and info["power_mode"] is None


def test_nvpmodel_query_output():
    assert parse_nvpmodel_query("NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n") == "MAXN (0)"
    assert parse_nvpmodel_query("NVPM ERROR: failed") is None


def test_torch_version_read_without_import(tmp_path):
    """In a fresh process whose only torch refuses to be imported: its version file is read, and that
    works only if nothing imports it."""
    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('torch must not be imported here')\n")
    (fake / "version.py").write_text("__version__ = '9.8.7'\ncuda = '12.1'\n")
    code = ("import json, sys; from hw.platform import device_info, torch_versions; "
            "info = device_info(root='/nonexistent'); "
            "print(json.dumps([info['torch'], list(torch_versions()), 'torch' in sys.modules]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), ROOT]))
    out = subprocess.check_output([sys.executable, "-c", code], env=env, universal_newlines=True)
    assert json.loads(out.strip().splitlines()[-1]) == ["9.8.7", ["9.8.7", "12.1"], False]


@pytest.mark.parametrize("release, jetpack", [
    ("# R36 (release), REVISION: 4.4, GCID: 41062509, BOARD: generic, EABI: aarch64", "6.2.1"),
    ("# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64", "7.0"),   # Thor
    ("# R39 (release), REVISION: 2, GCID: 42000000, BOARD: generic, EABI: aarch64", "7.2"),     # AGX Orin
    ("# R40 (release), REVISION: 1.0, GCID: 1, BOARD: generic", None),                          # no guess
])
def test_jetpack_table_up_to_jetpack_7(tmp_path, release, jetpack):
    write(tmp_path, "/etc/nv_tegra_release", release + "\n")
    assert device_info(root=str(tmp_path))["jetpack"] == jetpack


def _clock_tree(root, cpu_pinned, gpu_pinned):
    for k in (0, 4):
        policy = "/sys/devices/system/cpu/cpufreq/policy%d/" % k
        write(root, policy + "scaling_min_freq", "2201600\n" if cpu_pinned else "115200\n")
        write(root, policy + "scaling_max_freq", "2201600\n")
    gpu = "/sys/class/devfreq/17000000.ga10b/"
    write(root, gpu + "min_freq", "1300500000\n" if gpu_pinned else "306000000\n")
    write(root, gpu + "max_freq", "1300500000\n")
    write(root, "/sys/class/devfreq/15340000.vic/min_freq", "115200000\n")  # not the GPU: ignored
    write(root, "/sys/class/devfreq/15340000.vic/max_freq", "729600000\n")


def test_clocks_locked_as_jetson_clocks_leaves_them(tmp_path):
    _clock_tree(tmp_path / "locked", True, True)
    _clock_tree(tmp_path / "gpu_free", True, False)
    _clock_tree(tmp_path / "free", False, False)
    assert clocks_locked(str(tmp_path / "locked")) is True
    assert clocks_locked(str(tmp_path / "gpu_free")) is False
    assert clocks_locked(str(tmp_path / "free")) is False


def test_thermal_zones_in_celsius(tmp_path):
    for k, (name, mc) in enumerate([("cpu-thermal", "47500"), ("gpu-thermal", "46531"), ("tj-thermal", "x")]):
        write(tmp_path, "/sys/class/thermal/thermal_zone%d/type" % k, name + "\n")
        write(tmp_path, "/sys/class/thermal/thermal_zone%d/temp" % k, mc + "\n")
    assert temperatures(str(tmp_path)) == {"cpu-thermal": 47.5, "gpu-thermal": 46.5}
    assert device_info(root=str(tmp_path))["temperatures_c"]["cpu-thermal"] == 47.5
