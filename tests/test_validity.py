"""The energy validity verdict of every phase and of the totals (MLPerf's training power rules: >= 1
sample/s and >= 60 samples; coverage >= 99 %; relative uncertainty <= 5 %; each a spec key), and a run
whose energy is corrected by a stored meter agreement."""
import json

import pytest

from analysis.agreement import AgreementError, store
from harness.record import build_record
from hw.energy import validity

MODEL = {"arch": "vgg", "depth": 11, "num_classes": 10, "cfg": [8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64]}
SPEC = {"run_id": "r1", "method": "ebtrain-ff", "arch": "vgg", "depth": 11, "dataset": "digits",
        "prune_ratio": 0.5, "seed": 0, "meter": "lines:/dev/x", "meter_where": "device", "meter_rate_hz": 10.0}
# the meter's info as the sampler writes it: an averaging meter with a tight class, so the uncertainty
# of a steady trace is small and only the rule under test can fail
META = {"meter": {"spec": "lines:/dev/x", "kind": "lines", "scope": "wall", "accuracy_rel": 0.005,
                  "accuracy_abs_w": 0.01, "sampling": {"kind": "average", "window_s": 0.1, "source": "test"}}}


def _run(folder, phases, power, spec=None):
    """phases: [(name, t0, t1)]; power: [(t, watts)]."""
    folder.mkdir(parents=True)
    events = [{"t": phases[0][1], "event": "run_start", "train_samples": 100, "meter": META["meter"]}]
    for i, (name, a, b) in enumerate(phases):
        events += [{"t": a, "event": "phase_start", "phase": name, "index": i, "epochs": 1, "model": MODEL},
                   {"t": b, "event": "phase_end", "phase": name, "index": i, "epochs": 1, "model": MODEL}]
    events.append({"t": phases[-1][2], "event": "run_end", "status": "ok",
                   "accuracy": {"top1": 1.0, "top5": 2.0, "best_top1": 1.0}, "params": {"dense": 1, "final": 1},
                   "channels": {"dense": [1], "final": [1]}, "eb": None})
    (folder / "spec.json").write_text(json.dumps(dict(SPEC, **(spec or {}))))
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "power.csv").write_text("t,watts\n" + "".join("%.3f,%.3f\n" % p for p in power))
    (folder / "power.meta.json").write_text(json.dumps(META))
    return folder


def _steady(t0, t1, watts=10.0, hz=10):
    return [(t0 + i / hz, watts) for i in range(int(round((t1 - t0) * hz)) + 1)]


def test_each_rule_marks_a_phase_invalid_with_its_reason(tmp_path):
    power = _steady(0, 100) + [(t, 10.0) for t in (101, 103, 105)] + _steady(106, 130)
    # long: 100 s at 10 Hz (valid); short: 5 s read every 2 s (4 samples, 0.8/s); gap: 106-130 with
    # nothing from 110 to 116
    power = [p for p in power if not 110 < p[0] < 116]
    rec = build_record(_run(tmp_path / "results" / "runs" / "r1",
                            [("long", 0, 100), ("short", 100, 105), ("gap", 106, 130)], power))
    long, short, gap = rec["phases"]
    assert long["validity"] == {"valid": True, "reasons": []}
    assert short["validity"]["valid"] is False
    assert any("samples, fewer than 60" in r for r in short["validity"]["reasons"])
    assert any("samples/s, fewer than 1" in r for r in short["validity"]["reasons"])
    assert gap["validity"]["valid"] is False and any(r.startswith("coverage") for r in gap["validity"]["reasons"])
    assert rec["totals"]["validity"]["valid"] is False  # 6 s of 129 uncovered: below 99 %
    assert any(r.startswith("coverage") for r in rec["totals"]["validity"]["reasons"])


def test_wide_uncertainty_is_invalid_and_the_thresholds_are_spec_keys(tmp_path):
    power = _steady(0, 100)
    strict = build_record(_run(tmp_path / "a", [("p", 0, 100)], power,
                               {"validity_max_uncertainty_rel": 0.001}))
    reasons = strict["phases"][0]["validity"]["reasons"]
    assert strict["phases"][0]["validity"]["valid"] is False and reasons[0].startswith("uncertainty")
    lax = build_record(_run(tmp_path / "b", [("p", 0, 3)], _steady(0, 3),
                            {"validity_min_samples": 10, "validity_min_hz": 1.0}))
    assert lax["phases"][0]["validity"] == {"valid": True, "reasons": []}
    assert lax["totals"]["validity"]["valid"] is True


def test_nothing_measured_is_null_not_invalid():
    assert validity(0, 10.0, None, None, None) == {"valid": None, "reasons": []}


def test_a_stored_agreement_corrects_the_energy_and_labels_it(tmp_path):
    results = tmp_path / "results"
    store(results, {"name": "board__lines__vs__scpi", "board": "board", "meter_a": "lines:/dev/x",
                    "meter_b": "scpi:tcp://h:1", "ratio": 1.05, "ratio_uncertainty": 0.01})
    run = _run(results / "runs" / "r1", [("p", 0, 100)], _steady(0, 100),
               {"meter_calibration": "board__lines__vs__scpi"})
    rec = build_record(run)
    phase = rec["phases"][0]
    assert phase["energy_j"] == pytest.approx(1000.0 * 1.05, rel=1e-3)
    assert phase["energy_correction"] == "board__lines__vs__scpi"
    assert rec["totals"]["energy_correction"] == "board__lines__vs__scpi"
    assert rec["meter"]["correction"]["ratio"] == 1.05 and rec["meter"]["correction"]["reference"] == "scpi:tcp://h:1"
    plain = build_record(_run(results / "runs" / "r2", [("p", 0, 100)], _steady(0, 100)))
    assert phase["energy_uncertainty_j"] > plain["phases"][0]["energy_uncertainty_j"] * 1.05
    assert plain["totals"]["energy_correction"] is None
    with pytest.raises(AgreementError) as err:
        build_record(_run(results / "runs" / "r3", [("p", 0, 100)], _steady(0, 100),
                          {"meter_calibration": "board__lines__vs__scpi", "meter": "ina3221"}))
    assert "lines:/dev/x" in str(err.value) and "ina3221" in str(err.value)


def test_a_missing_calibration_fails_before_any_run_folder(tmp_path, monkeypatch, caplog):
    from harness.cli import main
    from pathlib import Path
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    config = Path(__file__).resolve().parent.parent / "experiments" / "configs" / "quickstart.yaml"
    results = tmp_path / "results"
    assert main(["run", str(config), "--results", str(results), "--set", "meter_calibration=nope"]) == 2
    assert "no stored meter agreement 'nope'" in caplog.text and "ebt meters agree" in caplog.text
    assert not (tmp_path / "home").exists() and not (results / "runs").exists()
