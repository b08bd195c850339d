"""Settings that are each allowed but can never do what they ask are refused before anything runs, one
line each naming the fix (`experiments.spec.check_possible`, asked by the laptop for every spec)."""
import pytest

from experiments.spec import SpecError, check_possible, resolve
from harness.cli import main
from tests.runs import ROOT


def refused(**raw) -> str:
    with pytest.raises(SpecError) as err:
        check_possible(resolve(raw))
    text = str(err.value)
    assert "\n" not in text
    return text


def test_a_search_shorter_than_the_detector_queue_can_never_find_a_ticket():
    text = refused(method="ebtrain-ff", epochs=4, eb_queue=5)
    assert text.startswith("no ticket possible") and "needs 5 epochs" in text and "epochs = 4" in text
    assert "needs 6 epochs" in refused(method="ebtrain-lf", epochs=5, eb_queue=5, eb_rule="consecutive")
    check_possible(resolve(dict(method="ebtrain-ff", epochs=5, eb_queue=5)))  # fills on the last epoch
    check_possible(resolve(dict(method="ebtrain-ff", epochs=4, eb_queue=5, eb_draw_epoch=2)))  # drawn, not detected
    check_possible(resolve(dict(method="dense", epochs=4, eb_queue=5)))  # no search


def test_a_draw_epoch_or_swa_start_past_the_end_and_keys_that_mean_nothing():
    for raw, words in [
        (dict(method="ebtrain-ff", epochs=20, eb_draw_epoch=40), "a draw after the budget's last epoch never"),
        (dict(method="ebtrain-ll", swa_start=140.0), "past 1 it would start after the last epoch"),
        (dict(method="dense", eb_draw_epoch=10), "means nothing for method 'dense'"),
        (dict(meter_idle_std_w=0.1), "set meter_idle_w too"),
    ]:
        with pytest.raises(SpecError) as err:
            check_possible(resolve(raw))
        assert words in str(err.value) and "\n" not in str(err.value)


def test_ebt_run_refuses_such_a_config_in_one_line_before_making_anything(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    config = ROOT / "experiments" / "configs" / "quickstart.yaml"
    rc = main(["run", str(config), "--results", str(tmp_path / "results"), "--set", "epochs=4",
               "--set", "eb_queue=5"])
    assert rc == 2
    (line,) = [r.getMessage() for r in caplog.records if "no ticket possible" in r.getMessage()]
    assert "method=ebtrain-ff" in line and "raise epochs" in line
    assert not (tmp_path / "home").exists() and not (tmp_path / "results").exists()
