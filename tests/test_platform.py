"""device_info() on temporary trees shaped like a TX2 (JetPack 4.6), an Orin and a plain PC."""
import os
import platform

import pytest

from hw.platform import device_info, parse_nvpmodel_query

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
    assert set(info) == {"host", "board", "jetpack", "l4t", "power_mode", "python", "torch", "cuda"}


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


def test_torch_version_read_without_import():
    torch = pytest.importorskip("torch")
    info = device_info(root="/nonexistent")
    assert info["torch"] == torch.__version__
