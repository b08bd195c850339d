"""Two meters at once through `ebt run`: a RAPL sysfs tree whose counter a thread advances at 12 W (the
primary, on the device) and a pseudo-terminal `lines` meter (a wall meter). On the local target both
are sampled by the runner; over SSH the serial one is sampled on the laptop and moved onto the device
clock. Both traces are written, the record keeps both energy sets apart."""
import json

import pytest
import yaml

from experiments import paths
from harness.cli import main
from analysis.schema import SCHEMA, validate
from hw.trace import read_trace
from meter_standins import WATTS, LineStreamer, PtyPeer, pty_meter, rapl  # noqa: F401  (fixtures)
from tests.runs import ROOT

WALL_W = WATTS + 5.0


@pytest.fixture
def wall():
    peer = PtyPeer()
    streamer = LineStreamer(peer, lambda rel: WALL_W, hz=20.0)
    streamer.start()
    yield "lines:" + peer.port
    streamer.stop()
    peer.close()


@pytest.mark.slow
def test_run_with_two_meters_records_both_traces_and_energy_sets(rapl, wall, tmp_path, monkeypatch):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    raw = yaml.safe_load((ROOT / "experiments" / "configs" / "quickstart.yaml").read_text())
    raw.update(epochs=2, train_subset=128, test_subset=64, width=0.125, batch_size=32, sweep={"method": ["dense"]})
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump(raw))
    results = tmp_path / "results"
    assert main(["run", str(config), "--results", str(results), "--meter", rapl, "--meter", wall]) == 0
    (folder,) = [p.parent for p in results.glob("runs/*/record.json")]
    rec = validate(json.loads((folder / paths.RECORD).read_text()))
    assert rec["schema"] == SCHEMA and rec["status"] == "ok"
    assert len(read_trace(paths.power_csv(folder))) > 5 and len(read_trace(paths.secondary_power_csv(folder, 1))) > 5

    assert rec["meter"]["kind"] == "rapl" and rec["totals"]["scope"] == rec["meter"]["scope"]
    assert rec["totals"]["energy_j"] / rec["totals"]["seconds"] == pytest.approx(WATTS, rel=0.05)
    (sec,) = rec["secondary_meters"]
    assert sec["kind"] == "lines" and sec["spec"] == wall
    assert [p["name"] for p in sec["phases"]] == [p["name"] for p in rec["phases"]]
    assert sec["totals"]["energy_j"] / rec["totals"]["seconds"] == pytest.approx(WALL_W, rel=0.05)
    for p in rec["phases"] + sec["phases"]:
        assert p["energy_uncertainty_j"] > 0
    # the wall-vs-module gap per phase is what a second meter is for
    for mine, primary in zip(sec["phases"], rec["phases"]):
        if primary["seconds"] > 1:
            assert mine["mean_w"] - primary["mean_w"] == pytest.approx(5.0, abs=0.8)


@pytest.mark.slow
def test_over_ssh_the_serial_meter_is_sampled_on_the_laptop(ssh_device, rapl, pty_meter, tmp_path):
    results = tmp_path / "results"
    config = ROOT / "experiments" / "configs" / "quickstart.yaml"
    assert main(["run", str(config), "--target", ssh_device.url, "--results", str(results), "--set", "method=dense",
                 "--set", "epochs=2", "--set", "train_subset=128", "--meter", rapl, "--meter", pty_meter]) == 0
    (folder,) = [p.parent for p in results.glob("runs/*/record.json")]
    rec = validate(json.loads((folder / paths.RECORD).read_text()))
    assert rec["meter"]["where"] == "device" and rec["meter"]["kind"] == "rapl"
    assert rec["totals"]["energy_j"] / rec["totals"]["seconds"] == pytest.approx(WATTS, rel=0.05)
    (sec,) = rec["secondary_meters"]
    assert sec["where"] == "laptop" and sec["spec"] == pty_meter
    assert sec["totals"]["energy_j"] / rec["totals"]["seconds"] == pytest.approx(5.0, rel=0.05)
    assert rec["config"]["meters_extra"] == [pty_meter] and rec["config"]["meters_extra_where"] == ["laptop"]
    assert len(read_trace(paths.secondary_power_csv(folder, 1))) > 5
