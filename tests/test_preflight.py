"""The preflight's parts on real stand-ins: the device probe on sysfs trees and dataset folders in a temp
folder, a serial meter on a pty, the probe run through the local target."""
import json
import os

import pytest

from harness import CODE_ROOT, preflight
from harness.targets import LocalTarget
from experiments import datasets
from hw import probe
from hw.platform import device_info
from meter_standins import LineStreamer, PtyPeer, make_tx2_tree
from runs import tiny_spec


def test_dataset_state_names_the_missing_file_and_accepts_download(tmp_path):
    missing = datasets.state("cifar10", str(tmp_path), False)
    assert not missing["ok"] and "data_batch_1" in missing["detail"]
    assert datasets.state("cifar10", str(tmp_path), True)["ok"]
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(b"x")
    assert datasets.state("cifar10", str(tmp_path), False)["ok"]
    assert datasets.state("digits", str(tmp_path / "nowhere"), False)["ok"]  # bundled
    assert not datasets.state("imagenet", str(tmp_path), False)["ok"]


def _freq(folder, low, high, lo_name, hi_name):
    os.makedirs(folder)
    with open(os.path.join(folder, lo_name), "w") as fh:
        fh.write("%d\n" % low)
    with open(os.path.join(folder, hi_name), "w") as fh:
        fh.write("%d\n" % high)


def _jetson_tree(root, cpu_locked):
    """A TX2-like tree: L4T release, nvpmodel status and config, CPU and GPU frequency limits."""
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc/nv_tegra_release"), "w") as fh:
        fh.write("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref, EABI: aarch64\n")
    os.makedirs(os.path.join(root, "var/lib/nvpmodel"))
    with open(os.path.join(root, "var/lib/nvpmodel/status"), "w") as fh:
        fh.write("pmode:0000\n")
    with open(os.path.join(root, "etc/nvpmodel.conf"), "w") as fh:
        fh.write("< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=1 NAME=MAXQ >\n")
    for cpu in range(2):
        _freq(os.path.join(root, "sys/devices/system/cpu/cpu%d/cpufreq" % cpu), 2035200 if cpu_locked else 345600,
              2035200, "scaling_min_freq", "scaling_max_freq")
    _freq(os.path.join(root, "sys/class/devfreq/17000000.gp10b"), 1300500000, 1300500000, "min_freq", "max_freq")


@pytest.mark.parametrize("cpu_locked", [True, False])
def test_jetson_checks_read_power_mode_and_clock_locks(tmp_path, cpu_locked):
    root = str(tmp_path)
    _jetson_tree(root, cpu_locked)
    report = {"platform": device_info(root), "clocks": probe.clocks_state(root)}
    mode, clocks = preflight.jetson_checks(report)
    assert mode.ok and "MAXN (0)" in mode.detail and "JetPack 4.6.1" in mode.detail
    assert clocks.ok is cpu_locked and not clocks.blocking
    if not cpu_locked:
        assert "CPU scaling, GPU locked" in clocks.detail and "jetson_clocks" in clocks.fix
        assert "hw/jetson/README.md step 2" in clocks.fix


def test_no_jetson_no_jetson_checks(tmp_path):
    assert preflight.jetson_checks({"platform": device_info(str(tmp_path)), "clocks": {}}) == []


def test_laptop_serial_meter_is_opened_read_and_closed():
    peer = PtyPeer()
    streamer = LineStreamer(peer, lambda rel: 10.0, hz=50.0)
    streamer.start()
    try:
        [check] = preflight.laptop_meter_checks(preflight.needs_of([], "lines:%s" % peer.port, "laptop"))
    finally:
        streamer.stop()
    assert check.ok, check.line()
    assert "10.00 W" in check.detail and "laptop" in check.name


def test_missing_serial_port_fails_with_the_setup_step():
    [check] = preflight.laptop_meter_checks(preflight.needs_of([], "wattsup:/dev/ttyNOPE", "laptop"))
    assert not check.ok and check.blocking
    assert "/dev/ttyNOPE" in check.detail and "step 4" in check.fix


def test_checkpoint_space_follows_width_and_tracked_ratios():
    small = preflight.checkpoint_mb(tiny_spec(width=0.125, eb_ratios=[0.5]))
    wider = preflight.checkpoint_mb(tiny_spec(width=0.25, eb_ratios=[0.5]))
    more = preflight.checkpoint_mb(tiny_spec(width=0.125, eb_ratios=[0.3, 0.5, 0.7]))
    assert 0 < small < wider and small < more
    needs = preflight.needs_of([dict(tiny_spec(), meter_where="device")] * 2)
    assert needs.datasets == [("digits", "data", False)] and needs.need_mb == pytest.approx(
        2 * preflight.checkpoint_mb(tiny_spec()))


@pytest.mark.slow
def test_local_probe_passes_with_an_onboard_meter_and_shows_its_scope(tmp_path, monkeypatch):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    make_tx2_tree(str(tmp_path / "sys"))
    needs = preflight.needs_of([dict(tiny_spec(), meter="ina3221?root=%s" % (tmp_path / "sys"),
                                     meter_where="device")])
    checks, report = preflight.target_checks(LocalTarget(), needs, CODE_ROOT, idle_s=1.0)
    assert all(c.ok for c in checks), "\n".join(c.line() for c in checks)
    names = [c.name for c in checks]
    assert names[:3] == ["python", "torch", "numpy"] and "dataset digits" in names
    meter = checks[names.index("meter ina3221?root=%s (device)" % (tmp_path / "sys"))]
    assert "5.11 W (module)" in meter.detail
    idle = checks[names.index("idle baseline")]
    assert idle.detail.startswith("5.11 W") and "meter_idle_w" in idle.detail
    assert not (tmp_path / "home").exists()  # the run root's space is read, never created
    json.dumps(report)

