"""record.json from a run folder: phases, sessions of a resumed run, energy from the trace, status."""
import json

import pytest

from harness.record import build_record, write_record
from experiments.paths import SECONDARY_POWER
from analysis.schema import SCHEMA, SchemaError
from hw.energy import DEFAULT_ACCURACY
from hw.trace import write_meta

SPEC = {"run_id": "r1", "method": "ebtrain-ff", "arch": "vgg", "depth": 11, "dataset": "digits",
        "prune_ratio": 0.5, "seed": 0, "meter": "lines:/dev/x", "meter_where": "device", "meter_rate_hz": 10.0}
MODEL = {"arch": "vgg", "depth": 11, "num_classes": 10, "cfg": [8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64]}


def _ev(t, event, **kw):
    return dict(kw, t=t, event=event)


def _write_run(folder, events, power=None):
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps(SPEC))
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    if power is not None:
        (folder / "power.csv").write_text("t,watts\n" + "".join("%.3f,%.3f\n" % p for p in power))


def _samples(t0, t1, watts, hz=10):
    n = int(round((t1 - t0) * hz))
    return [(t0 + i / hz, watts) for i in range(n + 1)]


def _killed_and_resumed():
    """search 100-110 s (10 W); retrain starts at 110, runner killed at 115 (last event 114),
    resumed at 200 (20 W), run ends at 206."""
    events = [
        _ev(100, "run_start", train_samples=100, params_dense=1000, channels_dense=[8, 16],
            device={"host": "h"}, meter={"spec": "lines:/dev/x", "kind": "lines"}),
        _ev(100, "phase_start", phase="search", index=0, epochs=10, model=MODEL),
        _ev(105, "epoch", phase="search", epoch=1, epochs=10, top1=50.0, top5=90.0),
        _ev(105, "eb_drawn", ratio=0.5, epoch=1, ticket="tickets/eb-p0.5.pt", forced=False),
        _ev(110, "phase_end", phase="search", index=0, epochs=1, model=MODEL),
        _ev(110, "phase_start", phase="retrain", index=1, epochs=3, model=MODEL),
        _ev(114, "epoch", phase="retrain", epoch=1, epochs=3, top1=60.0, top5=95.0),
        _ev(200, "run_start", train_samples=100, params_dense=1000, channels_dense=[8, 16]),
        _ev(200, "resume", phase_index=1, phase_epoch=1),
        _ev(200, "phase_start", phase="retrain", index=1, epochs=3, done=1, model=MODEL),
        _ev(203, "epoch", phase="retrain", epoch=2, epochs=3, top1=70.0, top5=96.0),
        _ev(206, "phase_end", phase="retrain", index=1, epochs=3, model=MODEL),
        _ev(206, "run_end", status="ok", accuracy={"top1": 71.0, "top5": 97.0, "best_top1": 71.0},
            params={"dense": 1000, "final": 400}, channels={"dense": [8, 16], "final": [4, 8]},
            eb={"epoch": 1, "detected": True, "distances": [0.05]}),
    ]
    power = _samples(100, 115, 10.0) + _samples(200, 206, 20.0)
    return events, power


def test_resumed_run_bills_active_time_and_the_lost_partial_epoch(tmp_path):
    events, power = _killed_and_resumed()
    _write_run(tmp_path / "run", events, power)
    rec = build_record(tmp_path / "run")
    search, retrain = rec["phases"]
    assert search["seconds"] == pytest.approx(10.0)
    assert search["energy_j"] == pytest.approx(100.0, rel=1e-3)
    # retrain: 110-115 in the first session (the runner died after its last event at 114, the trace
    # shows it ran to 115) and 200-206 after resume; the downtime is not billed
    assert retrain["seconds"] == pytest.approx(5.0 + 6.0)
    assert retrain["energy_j"] == pytest.approx(5 * 10.0 + 6 * 20.0, rel=1e-3)
    assert retrain["coverage"] == pytest.approx(1.0, abs=0.02)
    assert rec["totals"]["energy_j"] == pytest.approx(270.0, rel=1e-3)
    assert rec["totals"]["energy_source"] == "measured"
    assert rec["resumed"] is True and rec["status"] == "ok"
    assert rec["eb"]["epoch"] == 1 and rec["params"]["final"] == 400
    assert rec["accuracy"]["top1"] == 71.0
    assert retrain["epochs"] == 3 and retrain["flops"] > 0
    assert rec["meter"]["kind"] == "lines"


def test_idle_baseline_gives_net_energy_beside_gross(tmp_path):
    events, power = _killed_and_resumed()
    _write_run(tmp_path / "run", events, power)
    spec = dict(SPEC, meter_idle_w=2.0)
    (tmp_path / "run" / "spec.json").write_text(json.dumps(spec))
    rec = build_record(tmp_path / "run")
    assert rec["meter"]["idle_w"] == 2.0
    assert rec["totals"]["energy_j"] == pytest.approx(270.0, rel=1e-3)
    assert rec["totals"]["net_energy_j"] == pytest.approx(270.0 - 2.0 * 21.0, rel=1e-3)
    assert rec["phases"][0]["net_energy_j"] == pytest.approx(100.0 - 20.0, rel=1e-3)


def test_no_trace_means_null_energy_never_zero(tmp_path):
    events, _ = _killed_and_resumed()
    _write_run(tmp_path / "run", events)
    rec = build_record(tmp_path / "run")
    assert rec["totals"]["energy_j"] is None and rec["totals"]["energy_source"] == "none"
    assert all(p["energy_j"] is None for p in rec["phases"])
    assert rec["totals"]["seconds"] == pytest.approx(20.0)  # without a trace, a session ends at its last event


def test_unfinished_run_is_partial_with_last_known_accuracy(tmp_path):
    events, power = _killed_and_resumed()
    _write_run(tmp_path / "run", events[:7], power[:150])
    rec = build_record(tmp_path / "run")
    assert rec["status"] == "partial"
    assert rec["accuracy"]["top1"] == 60.0
    assert rec["phases"][-1]["complete"] is False
    assert rec["eb"]["epoch"] == 1


def test_failed_run_keeps_its_error(tmp_path):
    events, _ = _killed_and_resumed()
    _write_run(tmp_path / "run", events[:7] + [_ev(116, "run_end", status="failed", error="RuntimeError: x")])
    rec = build_record(tmp_path / "run")
    assert rec["status"] == "failed" and rec["error"] == "RuntimeError: x"


def test_record_is_validated_and_written_atomically(tmp_path):
    events, power = _killed_and_resumed()
    _write_run(tmp_path / "run", events, power)
    rec = build_record(tmp_path / "run")
    path = write_record(rec, tmp_path / "out")
    assert json.loads(path.read_text()) == json.loads(json.dumps(rec))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["record.json"]
    with pytest.raises(SchemaError, match="totals.energy_j"):
        write_record(dict(rec, totals=dict(rec["totals"], energy_j="270 J")), tmp_path / "bad")
    assert not (tmp_path / "bad" / "record.json").exists()


def test_stopped_run_is_stopped_not_partial(tmp_path):
    events, power = _killed_and_resumed()
    _write_run(tmp_path / "run", events[:7] + [_ev(115, "run_end", status="stopped", error="stopped by signal 15")],
               power[:150])
    rec = build_record(tmp_path / "run")
    assert rec["status"] == "stopped" and rec["schema"] == SCHEMA


def _one_phase(t0, t1):
    return [_ev(t0, "run_start", train_samples=100, params_dense=1000, channels_dense=[8]),
            _ev(t0, "phase_start", phase="search", index=0, epochs=1, model=MODEL),
            _ev(t1, "phase_end", phase="search", index=0, epochs=1, model=MODEL),
            _ev(t1, "run_end", status="ok")]


def test_unplugged_span_is_uncovered_not_measured(tmp_path):
    """A 6 s run at 12.5 W whose meter is unplugged after 1 s and answers again only at the end: 12.5 J
    measured over 1 s, 5 s uncovered and inside the uncertainty, never the held reading billed as measured."""
    power = _samples(100, 101, 12.5) + [(106.0, 12.5)]
    _write_run(tmp_path / "run", _one_phase(100, 106), power)
    rec = build_record(tmp_path / "run")
    phase, tot = rec["phases"][0], rec["totals"]
    assert phase["energy_j"] == pytest.approx(12.5, rel=1e-6)
    assert phase["uncovered_s"] == pytest.approx(5.0) and phase["coverage"] == pytest.approx(1 / 6)
    assert phase["energy_uncertainty_j"] >= 5.0 * 12.5  # the gap lies inside the stated uncertainty
    assert tot["energy_j"] == pytest.approx(12.5, rel=1e-6) and tot["uncovered_s"] == pytest.approx(5.0)
    assert rec["meter"]["gaps"] == [[pytest.approx(101.0), pytest.approx(106.0)]]
    assert phase["mean_w"] == pytest.approx(12.5)


def test_every_joule_carries_uncertainty_and_scope_of_its_meter(tmp_path):
    _write_run(tmp_path / "run", _one_phase(100, 110), _samples(99, 111, 20.0))
    meter = {"spec": "wattsup:/dev/x", "kind": "wattsup", "where": "device", "scope": "wall",
             "accuracy_rel": 0.015, "accuracy_abs_w": 0.3, "rate_hz": 10.0}
    write_meta(str(tmp_path / "run"), {"meter": meter, "sessions": [{"gap_s": 0.5, "rate_hz": 10.0}]})
    rec = build_record(tmp_path / "run")
    phase = rec["phases"][0]
    assert phase["scope"] == rec["totals"]["scope"] == rec["meter"]["scope"] == "wall"
    instrument = 0.015 * 200.0 + 0.3 * 10.0
    edges = 2 * 20.0 * 0.1 / 2  # where each boundary falls inside one 0.1 s reading
    assert phase["energy_uncertainty_j"] == pytest.approx(instrument + edges, rel=1e-6)
    assert rec["totals"]["energy_uncertainty_j"] == pytest.approx(phase["energy_uncertainty_j"])
    assert rec["meter"]["accuracy"]["rel"] == 0.015 and rec["meter"]["accuracy"]["abs_w"] == 0.3
    assert "declared by the meter" in rec["meter"]["accuracy"]["source"]


def test_a_meter_without_accuracy_class_gets_the_documented_default(tmp_path):
    _write_run(tmp_path / "run", _one_phase(100, 110), _samples(99, 111, 20.0))
    rec = build_record(tmp_path / "run")
    assert rec["meter"]["accuracy"]["rel"] == DEFAULT_ACCURACY["accuracy_rel"]
    assert "default" in rec["meter"]["accuracy"]["source"]
    assert rec["phases"][0]["energy_uncertainty_j"] >= DEFAULT_ACCURACY["accuracy_rel"] * 200.0


def test_secondary_meter_gets_its_own_energies_per_phase(tmp_path):
    events, power = _killed_and_resumed()
    _write_run(tmp_path / "run", events, power)
    spec = dict(SPEC, meters_extra=["wattsup:/dev/x", "um25c:/dev/y"], meters_extra_where=["laptop", "device"])
    (tmp_path / "run" / "spec.json").write_text(json.dumps(spec))
    wall = [(t, w + 5.0) for t, w in power]  # the wall sees the board plus 5 W of supply and carrier
    secondary = tmp_path / "run" / (SECONDARY_POWER % 1)
    secondary.write_text("t,watts\n" + "".join("%.3f,%.3f\n" % p for p in wall))
    write_meta(str(secondary), {"meter": {"spec": "wattsup:/dev/x", "kind": "wattsup", "where": "laptop",
                                          "scope": "wall"}, "clock": {"uncertainty_s": 0.01}})
    rec = build_record(tmp_path / "run")
    sec, silent = rec["secondary_meters"]
    # the second one never wrote a trace: it keeps its entry, with nothing measured
    assert silent["spec"] == "um25c:/dev/y" and silent["where"] == "device" and silent["kind"] is None
    assert silent["totals"]["energy_j"] is None and all(p["energy_j"] is None for p in silent["phases"])
    assert sec["kind"] == "wattsup" and sec["scope"] == "wall" and sec["where"] == "laptop"
    assert [p["name"] for p in sec["phases"]] == ["search", "retrain"]
    for mine, primary in zip(sec["phases"], rec["phases"]):
        assert mine["energy_j"] == pytest.approx(primary["energy_j"] + 5.0 * primary["seconds"], rel=1e-3)
        assert mine["energy_uncertainty_j"] > 0 and mine["coverage"] == pytest.approx(1.0, abs=0.02)
    assert sec["totals"]["energy_j"] == pytest.approx(270.0 + 5.0 * 21.0, rel=1e-3)
    assert rec["totals"]["energy_j"] == pytest.approx(270.0, rel=1e-3)  # the primary is left alone
