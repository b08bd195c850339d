"""hw/jetson/setup.sh against fake board roots (real /etc/nv_tegra_release lines and device-tree model strings),
with the commands it calls replaced by logging stand-ins first on PATH (tests/jetson_standins.py)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import jetson_standins

SETUP = str(Path(__file__).resolve().parent.parent / "hw" / "jetson" / "setup.sh")

AGX_MODES = "< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=1 NAME=MODE_15W >\n"
ORIN_NANO_SUPER_MODES = ("< POWER_MODEL ID=0 NAME=15W >\n< POWER_MODEL ID=1 NAME=7W >\n"
                         "< POWER_MODEL ID=2 NAME=MAXN_SUPER >\n")
XAVIER_NX_MODES = "< POWER_MODEL ID=0 NAME=MODE_15W_2CORE >\n< POWER_MODEL ID=2 NAME=MODE_15W_6CORE >\n"

# JetPack row: (first line of /etc/nv_tegra_release, /proc/device-tree/model, python, GPU arch, nvpmodel.conf)
BOARDS = {
    "4.6 Nano": ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
                 "DATE: Sat Feb 19 17:05:08 UTC 2022", "NVIDIA Jetson Nano Developer Kit", "3.6", 53, AGX_MODES),
    "5 Xavier NX": ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
                    "DATE: Tue Aug  1 19:57:35 UTC 2023", "NVIDIA Jetson Xavier NX Developer Kit", "3.8", 72,
                    XAVIER_NX_MODES),
    "6.0 AGX Orin": ("# R36 (release), REVISION: 3.0", "NVIDIA Jetson AGX Orin Developer Kit", "3.10", 87,
                     AGX_MODES),
    "6.2 Orin Nano Super": ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
                            "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot",
                            "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", "3.10", 87,
                            ORIN_NANO_SUPER_MODES),
    "7 Thor": ("# R38 (release), REVISION: 2.2, GCID: 42205042, BOARD: generic, EABI: aarch64, "
               "DATE: Thu Sep 25 22:47:11 UTC 2025", "NVIDIA Jetson AGX Thor Developer Kit", "3.12", 110, AGX_MODES),
    "7.2 AGX Orin": ("# R39 (release), REVISION: 2.0, GCID: 45755727, BOARD: generic, EABI: aarch64, "
                     "DATE: Mon Jun  1 09:28:48 PM UTC 2026", "NVIDIA Jetson AGX Orin Developer Kit", "3.12", 87,
                     AGX_MODES),
}


class Board:
    """A fake root and stand-in PATH for one board; `run` runs setup.sh there."""

    def __init__(self, tmp: Path, row: str, cuda: bool = True):
        release, model, self.python, self.sm, modes = BOARDS[row]
        self.root, self.state, self.bin, self.home = tmp / "root", tmp / "state", tmp / "bin", tmp / "home"
        for d in (self.root / "etc", self.root / "proc" / "device-tree", self.state, self.home):
            d.mkdir(parents=True)
        (self.root / "etc" / "nv_tegra_release").write_text(release + "\n")
        (self.root / "etc" / "nvpmodel.conf").write_text(modes)
        (self.root / "proc" / "device-tree" / "model").write_bytes(model.encode() + b"\0")
        if cuda:
            (self.root / "usr" / "local" / "cuda").mkdir(parents=True)
        jetson_standins.make_bin(self.bin)

    def run(self, *args, **env):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TORCH_", "STANDIN_", "OPENBLAS"))}
        base.update(EBT_JETSON_ROOT=str(self.root), STANDIN_STATE=str(self.state), STANDIN_BIN=str(self.bin),
                    STANDIN_PYTHON=self.python, STANDIN_SM=str(self.sm), HOME=str(self.home), USER="nvidia",
                    PATH="%s:%s" % (self.bin, os.environ["PATH"]))
        base.update(env)
        base = {k: v for k, v in base.items() if v is not None}
        proc = subprocess.run(["bash", SETUP] + list(args), env=base, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=60)
        return proc.returncode, proc.stdout

    def calls(self):
        return jetson_standins.calls(self.state)

    def installed(self, name):
        path = self.state / name
        return path.read_text().split() if path.exists() else []


def cannot_lines(out):
    return [line for line in out.splitlines() if line.startswith("CANNOT:")]


@pytest.mark.parametrize("row,source,libs", [
    ("4.6 Nano", "nvidia.box.com", []),
    ("5 Xavier NX", "jp/v511/pytorch/torch-2.0.0", []),
    ("6.0 AGX Orin", "jp/v60/pytorch/torch-2.4.0", []),
    ("6.2 Orin Nano Super", "pypi.jetson-ai-lab.io/jp6/cu126", ["cudss"]),
    ("7 Thor", "pypi.jetson-ai-lab.io/sbsa/cu130", ["libcudnn9-cuda-13", "nvpl", "cudss"]),
])
def test_each_jetpack_gets_a_torch_that_runs_a_convolution_on_its_gpu(tmp_path, row, source, libs):
    board = Board(tmp_path, row)
    rc, out = board.run()
    assert rc == 0 and not cannot_lines(out), out
    assert "conv forward and backward ran on sm_%d GPU" % board.sm in out
    torch_calls = [c for c in board.calls() if "torch" in c and ("wget" in c or "--index-url" in c)]
    assert torch_calls and all(source in c for c in torch_calls), torch_calls
    assert [p for p in libs if p in board.installed("apt.txt")] == libs
    if row == "6.0 AGX Orin":  # CUDA 12.2: NVIDIA's JetPack 6.0 wheel, not the 6.1 index
        assert not any("jp6/cu126" in c for c in board.calls())
    if board.python == "3.12":
        assert all("--break-system-packages" in c for c in board.calls() if "pip install" in c)
    assert (board.root / "etc" / "udev" / "rules.d" / "99-ebt-power-meter.rules").exists()
    assert "REBOOTED" not in board.calls()


def test_jetpack_4_6_pins_numpy_1_19_4_and_names_the_fix_for_1_19_5(tmp_path):
    board = Board(tmp_path, "4.6 Nano")
    rc, out = board.run()
    assert rc == 0, out
    assert "numpy==1.19.4" in board.installed("pip.txt") and "numpy 1.19.4" in out
    # a board that already has 1.19.5 (what numpy>=1.19,<1.20 resolves to): --check says so and how to fix it
    (board.state / "site" / "numpy" / "__init__.py").write_text(
        jetson_standins.FAKE_NUMPY.format(version="1.19.5"))
    rc, out = board.run("--check")
    assert "CANNOT: numpy dies with 'Illegal instruction'" in out and "OPENBLAS_CORETYPE=ARMV8" in out


def test_jetpack_7_2_on_orin_never_gets_thors_wheel(tmp_path):
    board = Board(tmp_path, "7.2 AGX Orin")
    rc, out = board.run()
    assert not any("sbsa/cu130" in c for c in board.calls())
    assert "built for Thor and has no kernels for Orin's sm_87" in out and "TORCH_INDEX_URL" in out
    assert rc == 1 and len(cannot_lines(out)) == 1, out
    assert "ok: udev rule" in out  # the other steps still ran


def test_thors_wheel_on_orin_fails_the_gpu_check_although_it_imports(tmp_path):
    board = Board(tmp_path, "7.2 AGX Orin")
    (board.state / "apt.txt").write_text("libcudnn9-cuda-13\nnvpl\ncudss\n")  # it imports: the libraries are there
    rc, out = board.run(TORCH_INDEX_URL="https://pypi.jetson-ai-lab.io/sbsa/cu130")
    assert any("--index-url https://pypi.jetson-ai-lab.io/sbsa/cu130 torch" in c for c in board.calls())
    assert "ok: torch from" in out
    line = [l for l in cannot_lines(out) if "torch cannot run on the GPU" in l]
    assert line and "no kernel image is available" in line[0] and "built for another GPU" in line[0], out
    assert rc == 1


@pytest.mark.slow
def test_a_board_override_is_honoured_on_every_jetpack(tmp_path):
    for i, row in enumerate(sorted(BOARDS)):
        board = Board(tmp_path / str(i), row)
        rc, out = board.run(TORCH_WHEEL_URL="https://example.org/torch-x.whl")
        assert any(c.startswith("wget") and "https://example.org/torch-x.whl" in c for c in board.calls()), row
        assert rc == 0 and "conv forward and backward ran" in out, (row, out)


def test_thor_after_an_iso_install_gets_cuda_from_nvidia_jetpack(tmp_path):
    board = Board(tmp_path, "7 Thor", cuda=False)
    rc, out = board.run()
    assert rc == 0, out
    assert "nvidia-jetpack" in board.installed("apt.txt")
    assert any(c.startswith("wget") and "ubuntu2404/sbsa/cuda-keyring" in c for c in board.calls())


def test_a_missing_cuda_library_is_named_with_its_package(tmp_path):
    board = Board(tmp_path, "6.2 Orin Nano Super")
    rc, out = board.run(STANDIN_FAIL="install -y cudss")
    assert "CANNOT: cudss failed" in out
    gpu = [l for l in cannot_lines(out) if "torch cannot run on the GPU" in l]
    assert gpu and "libcudss.so.0" in gpu[0] and "apt-get install cudss" in gpu[0], out
    assert rc == 2 and "ok: jtop.service" in out


def test_a_reboot_prompt_is_never_answered_and_is_reported(tmp_path):
    board = Board(tmp_path, "7 Thor")
    rc, out = board.run("--clocks", STANDIN_REBOOT="0")
    assert "sudo nvpmodel -m 0" in board.calls() and "REBOOTED" not in board.calls()
    assert "CANNOT: mode 0 needs a reboot: run `sudo nvpmodel -m 0`, answer yes, then run this again" in out
    assert "sudo jetson_clocks" in board.calls()  # the step after still ran
    assert rc == 1, out


@pytest.mark.slow
def test_clocks_pick_maxn_or_need_a_mode(tmp_path):
    board = Board(tmp_path / "a", "6.2 Orin Nano Super")
    rc, out = board.run("--clocks")
    assert rc == 0 and "sudo nvpmodel -m 2" in board.calls() and "ok: power mode 2" in out, out
    xavier = Board(tmp_path / "b", "5 Xavier NX")
    rc, out = xavier.run("--clocks")
    assert "pick one from 'nvpmodel -p --verbose'" in out and rc == 1


@pytest.mark.parametrize("fail,what", [
    ("wget", "CANNOT: torch from https://nvidia.box.com"),
    ("pip install --user numpy", "CANNOT: numpy==1.19.4 and pyserial failed"),
    ("apt-get update", "CANNOT: apt-get update failed"),
    ("systemctl enable", None),  # jtop --install-service is the fallback
])
def test_each_failure_is_reported_and_the_rest_still_runs(tmp_path, fail, what):
    board = Board(tmp_path, "4.6 Nano")
    rc, out = board.run(STANDIN_FAIL=fail)
    if what:
        assert what in out and rc >= 1, out
    else:
        assert "jtop --install-service" in board.calls() and rc == 0, out
    calls = board.calls()
    assert "sudo udevadm control --reload-rules" in calls and any(c.startswith("python3 -m hw meters") for c in calls)
    assert out.rstrip().splitlines()[-1].startswith("done")


@pytest.mark.slow
def test_an_unset_user_is_handled(tmp_path):
    board = Board(tmp_path, "5 Xavier NX")
    rc, out = board.run(USER=None)
    assert rc == 0 and "sudo usermod -aG dialout nvidia" in board.calls(), out
    rc, out = board.run(USER=None, STANDIN_NO_USER="1")
    assert "CANNOT: no user name" in out and rc == 1 and "done, but 1 step" in out


@pytest.mark.parametrize("row,family,maxn", [
    ("4.6 Nano", "JetPack 4.6: Python 3.6", "0 MAXN"),
    ("5 Xavier NX", "JetPack 5: Python 3.8", ""),
    ("6.0 AGX Orin", "JetPack 6.0: Python 3.10", "0 MAXN"),
    ("6.2 Orin Nano Super", "JetPack 6.1: Python 3.10", "2 MAXN_SUPER"),
    ("7 Thor", "JetPack 7: Python 3.12", "0 MAXN"),
    ("7.2 AGX Orin", "JetPack 7.2: Python 3.12", "0 MAXN"),
])
def test_check_detects_the_release_and_changes_nothing(tmp_path, row, family, maxn):
    board = Board(tmp_path, row)
    before = sorted(p.name for p in tmp_path.rglob("*") if board.state not in p.parents)
    rc, out = board.run("--check")
    assert rc == 0 and family in out and ("MAXN on this board: %s" % maxn).strip() in out, out
    assert "all modes: nvpmodel -p --verbose" in out
    assert "No module named 'torch'" in out  # nothing installed yet, and the check says so
    assert sorted(p.name for p in tmp_path.rglob("*") if board.state not in p.parents) == before
    assert not [c for c in board.calls() if c.startswith(("sudo", "apt-get", "wget"))]


def test_off_a_jetson_it_says_so_and_installs_nothing(tmp_path):
    board = Board(tmp_path, "5 Xavier NX")
    (board.root / "etc" / "nv_tegra_release").unlink()
    rc, out = board.run("--check")
    assert rc == 0 and "CANNOT: no known L4T release" in out
    rc, out = board.run()
    assert rc == 2 and not board.calls()


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
def test_setup_script_passes_shellcheck():
    proc = subprocess.run(["shellcheck", SETUP], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    assert proc.returncode == 0, proc.stdout
