"""The run spec: every hyper-parameter of one run, validated and frozen.

A spec is a flat JSON object. `FIELDS` is the one table of keys: type, default, allowed values and
meaning. `resolve(raw)` fills defaults and rejects anything unknown or out of range with an error that
names the key, the value and what is allowed; both the laptop (when it reads a YAML config) and the
device runner (when it reads `spec.json`) call it, so a bad value never starts a run.

Defaults are the paper's CIFAR settings (Sec 4.1 and the official scripts): 160 epochs, batch 256, SGD
momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at 50% and 75% of the epochs, BN-gamma L1 strength
1e-4 in the Early-Bird search and in the ticket's retrain (the official search and retrain scripts all pass
`-sr`), Early-Bird FIFO of 5 masks, epsilon 0.1. A new key's default must leave old runs unchanged, and a
default never changes: run ids hash only the values that differ from their default (`harness.config`).
"""
import collections
import difflib
import json

from .datasets import DATASETS
from .methods import EB, METHODS
from .models import check as check_arch

Field = collections.namedtuple("Field", "name type default choices help")

BEST = "best"  # `eb_draw_epoch`: the ticket of the search epoch with the best top-1, known once the search ends

# `type` is one of: int, float, bool, str, "floats" (list of floats), "ints", "strs", "mode" (an id or a
# name, kept as text), "draw" (an epoch or BEST); `default` None means the
# key may be null. `choices` is a tuple of allowed values or None.
FIELDS = [
    Field("run_id", str, None, None, "set by the harness: <arch><depth>-<dataset>-<method>-p<ratio>-s<seed>-<digest "
          "of those and of the keys not at their default>"),
    Field("method", str, "ebtrain-ff", None, "training method: a name of the registry experiments.methods"),
    Field("arch", str, "vgg", ("vgg", "preresnet", "resnet"), "architecture family"),
    Field("depth", int, 16, None, "depth: vgg 11/13/16/19, preresnet 9n+2, resnet 18/50"),
    Field("width", float, 1.0, None, "channel multiplier of the dense model (< 1 for quick runs)"),
    Field("dataset", str, "cifar10", tuple(DATASETS), "dataset (the registry experiments.datasets)"),
    Field("data_root", str, "data", None, "folder holding the dataset (torchvision CIFAR layout, ImageFolder)"),
    Field("download", bool, False, None, "download CIFAR when missing"),
    Field("train_subset", int, None, None, "use only the first N training samples (quick runs)"),
    Field("test_subset", int, None, None, "evaluate on only the first N test samples (quick runs)"),
    Field("prune_ratio", float, 0.5, None, "fraction p of BN channels (or weights) pruned"),
    Field("seed", int, 0, None, "random seed"),
    Field("epochs", int, 160, None, "total epoch budget of the schedule"),
    Field("batch_size", int, 256, None, "mini-batch size"),
    Field("lr", float, 0.1, None, "initial learning rate"),
    Field("lr_milestones", "floats", [0.5, 0.75], None, "lr decays at these fractions of `epochs`"),
    Field("lr_gamma", float, 0.1, None, "lr factor at each milestone"),
    Field("search_lr", float, None, None, "initial lr of the Early-Bird search alone; null: `lr` (Table 1's "
          "[0LR0.01, 100LR0.001] search is 0.01; the retrain keeps the main schedule)"),
    Field("search_lr_milestones", "floats", None, None, "lr decays of the Early-Bird search alone, fractions "
          "of `epochs`; null: `lr_milestones`"),
    Field("retrain_batch_size", int, None, None, "mini-batch size of the Early-Bird ticket's retrain; null: "
          "`batch_size` (Table 3's ResNet-18 retrain uses 128, as its official script)"),
    Field("momentum", float, 0.9, None, "SGD momentum"),
    Field("weight_decay", float, 1e-4, None, "SGD weight decay"),
    Field("sparsity", float, 1e-4, None, "L1 strength s on BN gamma during the Early-Bird search"),
    Field("retrain_sparsity", bool, True, None, "keep the BN L1 term (strength `sparsity`) on while retraining "
          "the ticket (FF, re-init, LF, LL), as the official retrain scripts pass -sr; false: plain retrain"),
    Field("eb_ratios", "floats", [0.3, 0.5, 0.7], None, "prune ratios tracked by Early-Bird detectors"),
    Field("eb_epsilon", float, 0.1, None, "mask-distance threshold"),
    Field("eb_queue", int, 5, None, "FIFO length"),
    Field("eb_rule", str, "fifo", ("fifo", "consecutive"), "fifo: official code; consecutive: paper's text"),
    Field("eb_draw_epoch", "draw", None, None, "draw the ticket at this epoch instead of detecting it (Fig 1); "
          "`best`: at the search epoch of best top-1 (Fig 1's stars), the search running the whole budget"),
    Field("eb_stop", bool, True, None, "stop the search at the ticket (false: search to `epochs`, for Fig 3)"),
    Field("ns_sparsity", float, None, None, "network slimming's L1 strength on BN gamma (method ns); null: the "
          "slimming paper's value for the arch (vgg 1e-4, preresnet/resnet 1e-5)"),
    Field("finetune_epochs", int, None, None, "fine-tune after pruning (ns, thinet): the last N epochs of the "
          "schedule; null: the whole schedule, as Table 2's NS and ThiNet costs imply"),
    Field("snip_batches", int, 1, None, "mini-batches SNIP's connection sensitivity is computed on"),
    Field("thinet_images", int, None, None, "training images ThiNet samples activations from (10 locations "
          "each); null: 10 per class, as the ThiNet paper"),
    Field("lp_bits", int, 8, None, "word length of the block floating point of low-precision phases "
          "(ebtrain-lf/ll)"),
    Field("swa_start", float, 0.875, None, "low-precision phases average weights (SWA) from this fraction of "
          "`epochs` on (official: epoch 140 of 160)"),
    Field("device", str, "auto", ("auto", "cpu", "cuda"), "torch device"),
    Field("workers", int, 2, None, "data-loader worker processes"),
    Field("meter", str, "none", None, "power meter spec (hw.meters), sampled on the device"),
    Field("meter_rate_hz", float, 10.0, None, "power sampling rate"),
    Field("meter_idle_w", float, None, None, "idle power of the board in W (`ebt meters idle`): records "
          "then keep net energy beside gross"),
    Field("meter_where", str, "device", ("device", "laptop"), "where the meter is sampled (set by the harness)"),
    Field("meter_idle_std_w", float, None, None, "spread (standard deviation) of the idle readings in W "
          "(`ebt meters idle`), kept beside meter_idle_w"),
    Field("meters_extra", "strs", [], None, "secondary meters beside `meter` (`ebt run --meter A --meter B`): "
          "meter n writes its own trace (power-n.csv), the record keeps its energies apart"),
    Field("meters_extra_where", "strs", [], None, "where each of `meters_extra` is sampled, device or laptop "
          "(set by the harness)"),
    Field("validity_min_hz", float, 1.0, None, "a measured phase's energy is valid only with this many power "
          "samples per second or more (MLPerf's training power rule; hw.energy.validity)"),
    Field("validity_min_samples", int, 60, None, "... and at least this many samples (MLPerf: 60)"),
    Field("validity_min_coverage", float, 0.99, None, "... and at least this share of its time covered"),
    Field("validity_max_uncertainty_rel", float, 0.05, None, "... and an energy uncertainty of at most this "
          "share of the energy"),
    Field("meter_calibration", str, None, None, "a stored meter agreement (`ebt meters agree`, results/"
          "calibrations/NAME.json) whose ratio corrects the primary meter's energy; the record says so"),
    Field("power_mode", "mode", None, None, "nvpmodel power mode the run holds the board in, an id or a name of "
          "the board's list (`nvpmodel -p --verbose`), set with sudo -n before the first phase and restored "
          "after; null: leave the board as it is (its mode is recorded)"),
    Field("clocks", str, None, None, "max: pin the mode's maximum clocks with jetson_clocks (stored and "
          "restored after); null: leave them"),
    Field("cooldown_c", float, None, None, "before the first phase wait until the GPU's thermal zone is within "
          "this many degrees C of the board's idle temperature (the lowest start reading of runs on it); "
          "null: do not wait"),
    Field("cooldown_max_s", float, 600.0, None, "the longest a cooldown waits (the record says if it got there)"),
]

BY_NAME = {f.name: f for f in FIELDS}
# Keys the harness fills in itself (the id, where each meter is sampled): not offered to a user as choices,
# and not part of the experiment (neither a run id's digest nor a report cell covers them).
SET_BY_HARNESS = ("run_id", "meter_where", "meters_extra_where")


class SpecError(ValueError):
    """A spec key or value is not allowed; the message says which and what would be."""


def _coerce(field, value):
    kind = field.type
    if value is None:
        if field.default is None:
            return None
        raise SpecError("spec key '%s' must not be null (%s)" % (field.name, field.help))
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind in ("floats", "ints"):
        item = float if kind == "floats" else int
        if isinstance(value, (list, tuple)) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return [item(v) for v in value]
    elif kind == "mode":  # an nvpmodel id (YAML reads 0 as a number) or a name, kept as text
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return str(value)
    elif kind == "strs":
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
    elif kind == "draw":
        if isinstance(value, int) and not isinstance(value, bool) or value == BEST:
            return value
    type_name = {"floats": "a list of numbers", "ints": "a list of integers", "strs": "a list of strings",
                 "mode": "a mode id or name", "draw": "an epoch or %r" % BEST}.get(
        kind, getattr(kind, "__name__", str(kind)))
    raise SpecError("spec key '%s' = %r has the wrong type: expected %s (%s)"
                    % (field.name, value, type_name, field.help))


def _check_ranges(spec):
    def need(cond, key, allowed):
        if not cond:
            raise SpecError("spec key '%s' = %r is not allowed: %s" % (key, spec[key], allowed))

    try:
        check_arch(spec["arch"], spec["depth"])
    except ValueError as err:
        raise SpecError("spec key 'depth' = %r is not allowed: %s" % (spec["depth"], err))
    need(0.0 <= spec["prune_ratio"] < 1.0, "prune_ratio", "a fraction in [0, 1)")
    need(0.0 < spec["width"] <= 4.0, "width", "a multiplier in (0, 4]")
    need(spec["epochs"] >= 1, "epochs", "at least 1")
    need(spec["batch_size"] >= 1, "batch_size", "at least 1")
    need(spec["retrain_batch_size"] is None or spec["retrain_batch_size"] >= 1, "retrain_batch_size",
         "null or at least 1")
    need(spec["lr"] > 0, "lr", "a positive number")
    need(all(0.0 < m < 1.0 for m in spec["lr_milestones"]), "lr_milestones", "fractions in (0, 1)")
    need(spec["search_lr"] is None or spec["search_lr"] > 0, "search_lr", "null or a positive number")
    need(spec["search_lr_milestones"] is None or all(0.0 <= m < 1.0 for m in spec["search_lr_milestones"]),
         "search_lr_milestones", "null or fractions in [0, 1)")
    need(spec["sparsity"] >= 0, "sparsity", "a non-negative number")
    need(len(spec["eb_ratios"]) >= 1 and all(0.0 < r < 1.0 for r in spec["eb_ratios"]),
         "eb_ratios", "one or more fractions in (0, 1)")
    need(0.0 < spec["eb_epsilon"] < 1.0, "eb_epsilon", "a distance in (0, 1)")
    need(spec["eb_queue"] >= 2, "eb_queue", "at least 2")
    need(spec["eb_draw_epoch"] in (None, BEST) or 1 <= spec["eb_draw_epoch"] <= spec["epochs"],
         "eb_draw_epoch", "null, %r or an epoch in [1, epochs = %d]: a draw after the budget's last epoch never "
         "happens" % (BEST, spec["epochs"]))
    need(spec["ns_sparsity"] is None or spec["ns_sparsity"] >= 0, "ns_sparsity", "null or a non-negative number")
    need(spec["finetune_epochs"] is None or 1 <= spec["finetune_epochs"] <= spec["epochs"],
         "finetune_epochs", "null or an epoch count in [1, epochs]")
    need(spec["snip_batches"] >= 1, "snip_batches", "at least 1")
    need(spec["thinet_images"] is None or spec["thinet_images"] >= 1, "thinet_images", "null or at least 1")
    need(2 <= spec["lp_bits"] <= 16, "lp_bits", "a word length in [2, 16]")
    need(0.0 < spec["swa_start"] <= 1.0, "swa_start", "a fraction in (0, 1] of `epochs` (SWA from epoch 140 "
         "of 160 is 0.875); past 1 it would start after the last epoch")
    need(spec["workers"] >= 0, "workers", "0 or more")
    need(spec["meter_rate_hz"] > 0, "meter_rate_hz", "a positive rate")
    need(spec["meter_idle_w"] is None or spec["meter_idle_w"] >= 0, "meter_idle_w", "null or a power >= 0")
    need(set(spec["meters_extra_where"]) <= {"device", "laptop"}, "meters_extra_where", "device or laptop each")
    need(spec["validity_min_hz"] >= 0 and spec["validity_min_samples"] >= 0, "validity_min_hz",
         "validity_min_hz and validity_min_samples >= 0")
    need(0 <= spec["validity_min_coverage"] <= 1, "validity_min_coverage", "a fraction in [0, 1]")
    need(spec["validity_max_uncertainty_rel"] > 0, "validity_max_uncertainty_rel", "a fraction > 0")
    need(spec["clocks"] in (None, "max"), "clocks", "max (jetson_clocks) or null")
    need(spec["cooldown_c"] is None or spec["cooldown_c"] >= 0, "cooldown_c", "null or degrees >= 0")
    need(spec["cooldown_max_s"] >= 0, "cooldown_max_s", "seconds >= 0")
    for key in ("train_subset", "test_subset"):
        need(spec[key] is None or spec[key] >= 1, key, "null or at least 1")


def resolve(raw):
    """A complete, validated spec dict from `raw` (missing keys take their defaults)."""
    if not isinstance(raw, dict):
        raise SpecError("a spec must be a mapping of keys to values, got %s" % type(raw).__name__)
    unknown = sorted(set(raw) - set(BY_NAME))
    if unknown:
        raise SpecError(_unknown_keys(unknown))
    spec = {}
    for field in FIELDS:
        value = raw.get(field.name, field.default)
        value = _coerce(field, value)
        if field.choices is not None and value not in field.choices:
            raise SpecError("spec key '%s' = %r is not allowed: use one of %s"
                            % (field.name, value, ", ".join(str(c) for c in field.choices)))
        spec[field.name] = value
    _check_ranges(spec)
    _check_method(spec)
    return spec


def _unknown_keys(unknown):
    """One line: the unknown keys, a close match for each where there is one, else the keys a user sets."""
    settable = sorted(k for k in BY_NAME if k not in SET_BY_HARNESS)
    guesses = ["'%s'" % m[0] for m in (difflib.get_close_matches(k, settable, 1) for k in unknown) if m]
    text = "unknown spec key%s %s" % ("s" if len(unknown) > 1 else "", ", ".join("'%s'" % k for k in unknown))
    if guesses:
        return text + "; did you mean %s?" % " or ".join(guesses)
    return text + "; allowed keys: %s" % ", ".join(settable)


def detection_epochs(spec):
    """The fewest search epochs after which the Early-Bird detector can fire: its FIFO of `eb_queue` masks
    (one per epoch) must be full; the `consecutive` rule compares `eb_queue` distances, one mask more."""
    return spec["eb_queue"] + (1 if spec["eb_rule"] == "consecutive" else 0)


def check_possible(spec):
    """Settings that are each allowed but together can never do what they ask (SpecError: one line naming
    the fix). The laptop asks this of every spec of a config before anything runs; the runner does not
    (its own paths for a search without a ticket stay reachable and tested)."""
    searches = METHODS[spec["method"]].group == EB
    if searches and spec["eb_draw_epoch"] is None and spec["epochs"] < detection_epochs(spec):
        raise SpecError("no ticket possible: the Early-Bird detector needs %d epochs of masks (eb_queue %d, "
                        "eb_rule %s) but the search has at most epochs = %d; raise epochs, lower eb_queue, or "
                        "draw at a fixed epoch with eb_draw_epoch" % (detection_epochs(spec), spec["eb_queue"],
                                                                     spec["eb_rule"], spec["epochs"]))
    if not searches and spec["eb_draw_epoch"] is not None:
        raise SpecError("spec key 'eb_draw_epoch' = %s means nothing for method '%s': it has no Early-Bird "
                        "search; leave it out for this method" % (spec["eb_draw_epoch"], spec["method"]))
    if spec["meter_idle_std_w"] is not None and spec["meter_idle_w"] is None:
        raise SpecError("spec key 'meter_idle_std_w' = %r is the spread of an idle power that is not given: "
                        "set meter_idle_w too (`ebt meters idle` prints both)" % spec["meter_idle_std_w"])


def _check_method(spec):
    """The method is registered (the registry is read now: a test may register one) and takes the spec."""
    method = METHODS.get(spec["method"])
    if method is None:
        raise SpecError("spec key 'method' = %r is not allowed: use one of %s"
                        % (spec["method"], ", ".join(METHODS)))
    problem = method.problem(spec)
    if problem is not None:
        raise SpecError(problem)


def load(path):
    """Read and resolve a `spec.json`."""
    try:
        with open(str(path)) as fh:
            raw = json.load(fh)
    except (OSError, ValueError) as err:
        raise SpecError("cannot read spec %s: %s" % (path, err))
    return resolve(raw)


def num_classes(spec):
    return DATASETS[spec["dataset"]].classes
