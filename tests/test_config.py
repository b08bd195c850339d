"""YAML configs -> validated specs: sweeps, overrides, run ids, clear errors."""
import hashlib
import json
import logging
import re
from pathlib import Path

import pytest

from experiments import paths
from harness.config import (NAMING, ConfigError, differing_keys, expand, identity, load_specs, parse_overrides,
                            spec_digest)
from tests.runs import added_key

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def test_sweep_makes_one_spec_per_combination_and_dense_once():
    specs = expand({"arch": "vgg", "depth": 16, "sweep": {"method": ["ebtrain-ff", "dense"],
                                                          "prune_ratio": [0.3, 0.5]}})
    readable = [s["run_id"].rsplit("-", 1)[0] for s in specs]
    assert readable == ["vgg16-cifar10-ebtrain-ff-p0.3-s0", "vgg16-cifar10-ebtrain-ff-p0.5-s0",
                        "vgg16-cifar10-dense-p0-s0"]
    assert specs[0]["epochs"] == 160 and specs[0]["eb_epsilon"] == 0.1  # the paper's defaults


def test_a_sweep_over_keys_outside_the_readable_name_keeps_every_run():
    specs = expand({"sweep": {"eb_draw_epoch": [10, 20, 40], "lr": [0.1, 0.01]}})
    assert [(s["eb_draw_epoch"], s["lr"]) for s in specs] == [
        (10, 0.1), (10, 0.01), (20, 0.1), (20, 0.01), (40, 0.1), (40, 0.01)]
    assert len({s["run_id"] for s in specs}) == 6
    assert differing_keys(specs) == ["lr", "eb_draw_epoch"]


def test_run_ids_are_the_same_on_every_expansion_and_plain_folder_names():
    raw = {"method": "ebtrain-ff", "sweep": {"seed": [0, 1]}}
    first, again = expand(raw), expand(dict(raw))
    assert [s["run_id"] for s in first] == [s["run_id"] for s in again]
    for s in first:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", s["run_id"]), s["run_id"]
        assert s["run_id"].endswith("-" + spec_digest(s))


def test_the_digest_covers_every_changed_key_but_not_the_id_or_where_the_meter_hangs():
    spec = expand({})[0]
    same = dict(spec, run_id="other", meter_where="laptop")
    assert spec_digest(same) == spec_digest(spec)
    for key, value in (("weight_decay", 5e-4), ("meter", "jtop"), ("eb_stop", False), ("lr", 0.1 + 1e-9),
                       ("seed", 1), ("depth", 11)):
        assert spec_digest(dict(spec, **{key: value})) != spec_digest(spec), key
    # a value written as an int or a float resolves to the same spec, hence the same id
    assert expand({"lr": 1})[0]["run_id"] == expand({"lr": 1.0})[0]["run_id"]
    # the keys that name the run are hashed even at their default; the rest only when they differ from it
    assert set(identity(spec)) == set(NAMING)
    assert set(identity(expand({"lr": 0.5})[0])) == set(NAMING) | {"lr"}


def test_a_key_added_with_a_default_keeps_every_id_and_another_value_gives_new_ids(monkeypatch):
    before = {p.name: [s["run_id"] for s in load_specs(p)] for p in sorted(CONFIGS.rglob("*.yaml"))}
    key = added_key(monkeypatch)
    assert {p.name: [s["run_id"] for s in load_specs(p)] for p in sorted(CONFIGS.rglob("*.yaml"))} == before
    changed = [s["run_id"] for s in load_specs(CONFIGS / "quickstart.yaml", {key: 4})]
    assert len(changed) == 2 and not set(changed) & set(before["quickstart.yaml"])


def _legacy_id(spec):
    """The id the earlier rule gave: a digest of every resolved key but the id and where meters hang."""
    body = {k: v for k, v in spec.items() if k not in ("run_id", "meter_where", "meters_extra_where")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return spec["run_id"].rsplit("-", 1)[0] + "-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def test_a_folder_made_under_the_earlier_id_rule_keeps_its_id(tmp_path, caplog):
    specs = load_specs(CONFIGS / "quickstart.yaml")
    eb, dense = specs
    old = _legacy_id(eb)
    assert old != eb["run_id"]
    folder = Path(paths.results_run(tmp_path, old))
    folder.mkdir(parents=True)
    (folder / paths.SPEC).write_text(json.dumps(dict(eb, run_id=old, meter_where="device")))
    # the same readable part but another run (another lr): never adopted
    other = Path(paths.results_run(tmp_path, _legacy_id(dict(dense, lr=0.5))))
    other.mkdir(parents=True)
    (other / paths.SPEC).write_text(json.dumps(dict(dense, lr=0.5)))
    with caplog.at_level(logging.INFO):
        adopted = load_specs(CONFIGS / "quickstart.yaml", results=tmp_path)
    assert [s["run_id"] for s in adopted] == [old, dense["run_id"]]
    assert "earlier run-id rule" in caplog.text and caplog.text.count(old) == 1


def test_keys_swept_together_take_one_value_each_from_every_tuple():
    specs = expand({"sweep": {"arch,depth": [["vgg", 11], ["preresnet", 20]], "seed": [0, 1]}})
    assert [(s["arch"], s["depth"], s["seed"]) for s in specs] == [
        ("vgg", 11, 0), ("vgg", 11, 1), ("preresnet", 20, 0), ("preresnet", 20, 1)]
    with pytest.raises(ConfigError, match=r"sweep key 'arch,depth' must list \[arch, depth\] tuples"):
        expand({"sweep": {"arch,depth": [["vgg", 11], ["preresnet"]]}})


def test_a_list_of_grids_is_their_union_without_repeats():
    specs = expand({"sweep": [{"method": ["ebtrain-ff"], "prune_ratio": [0.3, 0.5]},
                              {"method": ["dense"]}, {"method": ["dense"], "prune_ratio": [0.3]}]})
    assert [(s["method"], s["prune_ratio"]) for s in specs] == [
        ("ebtrain-ff", 0.3), ("ebtrain-ff", 0.5), ("dense", 0.0)]


def test_override_replaces_a_swept_key():
    specs = expand({"sweep": {"seed": [0, 1, 2]}}, overrides=parse_overrides(["seed=7", "epochs=5"]),
                   )
    assert [(s["seed"], s["epochs"]) for s in specs] == [(7, 5)]


def test_override_values_are_read_as_yaml():
    assert parse_overrides(["eb_ratios=[0.3, 0.5]", "download=true", "meter=none"]) == {
        "eb_ratios": [0.3, 0.5], "download": True, "meter": "none"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])


@pytest.mark.parametrize("raw, message", [
    ({"archh": "vgg"}, "unknown spec key 'archh'"),
    ({"arch": "vgg", "depth": 15}, "depth"),
    ({"method": "magic"}, "'method' = 'magic' is not allowed"),
    ({"epochs": "ten"}, "'epochs' = 'ten' has the wrong type"),
    ({"sweep": {"method": "dense"}}, "sweep key 'method' must be a non-empty list"),
    ({"sweep": ["method"]}, "must map spec keys to lists"),
    ({"sweep": {"prune_ratio": [0.5, 2.0]}}, "prune_ratio=2.0"),
])
def test_errors_name_the_key_value_and_what_is_allowed(raw, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        expand(raw)


def test_a_misspelt_key_gets_its_close_match_and_never_the_harness_keys():
    with pytest.raises(ConfigError, match="did you mean 'epochs'") as err:
        expand({}, overrides=parse_overrides(["epoch=3"]))
    assert "allowed keys" not in str(err.value)
    with pytest.raises(ConfigError, match="allowed keys") as err:
        expand({"zzzzqq": 1})
    for harness_key in ("run_id", "meter_where", "meters_extra_where"):
        assert f" {harness_key}," not in str(err.value) and not str(err.value).endswith(harness_key)


def test_bad_yaml_file_is_reported(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: [vgg\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_specs(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_specs(tmp_path / "missing.yaml")


def test_every_shipped_config_resolves():
    files = sorted(CONFIGS.rglob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        assert load_specs(path), path


def test_table2_configs_cover_the_papers_ratios():
    ratios = {p.stem: sorted({s["prune_ratio"] for s in load_specs(p) if s["method"] != "dense"})
              for p in (CONFIGS / "table2").glob("*.yaml")}
    assert ratios == {"vgg16-cifar10": [0.3, 0.5, 0.7], "vgg16-cifar100": [0.1, 0.3, 0.5],
                      "preresnet101-cifar10": [0.3, 0.5, 0.7], "preresnet101-cifar100": [0.3, 0.5, 0.7]}
