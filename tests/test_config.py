"""YAML configs -> validated specs: sweeps, overrides, run ids, clear errors."""
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.config import ConfigError, expand, load_specs, parse_overrides

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def test_sweep_makes_one_spec_per_combination_and_dense_once():
    specs = expand({"arch": "vgg", "depth": 16, "sweep": {"method": ["ebtrain-ff", "dense"],
                                                          "prune_ratio": [0.3, 0.5]}}, when=WHEN)
    ids = [s["run_id"] for s in specs]
    assert ids == ["20260102T030405Z-vgg16-cifar10-ebtrain-ff-p0.3-s0",
                   "20260102T030405Z-vgg16-cifar10-ebtrain-ff-p0.5-s0",
                   "20260102T030405Z-vgg16-cifar10-dense-p0-s0"]
    assert specs[0]["epochs"] == 160 and specs[0]["eb_epsilon"] == 0.1  # the paper's defaults


def test_override_replaces_a_swept_key():
    specs = expand({"sweep": {"seed": [0, 1, 2]}}, overrides=parse_overrides(["seed=7", "epochs=3"]),
                   when=WHEN)
    assert [(s["seed"], s["epochs"]) for s in specs] == [(7, 3)]


def test_override_values_are_read_as_yaml():
    assert parse_overrides(["eb_ratios=[0.3, 0.5]", "download=true", "meter=none"]) == {
        "eb_ratios": [0.3, 0.5], "download": True, "meter": "none"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])


@pytest.mark.parametrize("raw, message", [
    ({"archh": "vgg"}, "unknown spec key 'archh'"),
    ({"arch": "vgg", "depth": 15}, "depth"),
    ({"method": "magic"}, "use one of dense, ebtrain-ff"),
    ({"epochs": "ten"}, "'epochs' = 'ten' has the wrong type"),
    ({"sweep": {"method": "dense"}}, "sweep key 'method' must be a non-empty list"),
    ({"sweep": {"prune_ratio": [0.5, 2.0]}}, "prune_ratio=2.0"),
])
def test_errors_name_the_key_value_and_what_is_allowed(raw, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        expand(raw, when=WHEN)


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
        assert load_specs(path, when=WHEN), path


def test_table2_configs_cover_the_papers_ratios():
    ratios = {p.stem: sorted({s["prune_ratio"] for s in load_specs(p, when=WHEN) if s["method"] != "dense"})
              for p in (CONFIGS / "table2").glob("*.yaml")}
    assert ratios == {"vgg16-cifar10": [0.3, 0.5, 0.7], "vgg16-cifar100": [0.1, 0.3, 0.5],
                      "preresnet101-cifar10": [0.3, 0.5, 0.7], "preresnet101-cifar100": [0.3, 0.5, 0.7]}
