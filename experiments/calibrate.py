"""`python3 -m experiments.calibrate REQUEST_JSON`: time a few training steps per model shape, meter on.

What `ebt plan` runs on a target before a sweep: for each shape of the request (arch, depth, cfg,
num_classes, input size, batch size, device, low-precision bits or null) it builds the model, trains it on
SYNTHETIC batches of that shape (random images and labels: no dataset is needed or read, so a board without
CIFAR can be calibrated; the arithmetic is the same whatever the pixels), and times two probe steps and
`steps` measured training steps (forward, cross-entropy, backward, SGD step, the low-precision quantiser's
work when `bits` is set), a few evaluation batches, and one checkpoint save. The request's `budget_s` is
shared by the shapes: when steps of the run's batch do not fit, steps of two smaller batches are timed and
the run's step time is extrapolated along a fixed cost per step plus a cost per sample (a small batch uses
a GPU's or a CPU's parallelism less, which the fixed part absorbs only roughly). With a meter on the device, the
power sampler runs through the measured steps and each shape gets their mean watts.

Request: {"shapes": [{"key", "arch", "depth", "cfg", "num_classes", "input_size", "batch_size", "device",
"bits"}], "meter": SPEC, "steps": N, "budget_s": S}. Answer (one JSON object on stdout): {"shapes": {key:
{"train_step_s", "eval_step_s", "checkpoint_s", "mean_w", "calibration_batches", "steps", "torch_device"}},
"meter": info or null, "startup_s"}. `mean_w` is null without a meter.
"""
import json
import os
import sys
import tempfile
import time

STARTED = time.time()

import torch  # (the import is part of what `startup_s` measures)
import torch.nn.functional as F

from hw.fileio import json_text

from . import checkpoint
from .quantise import Quantiser
from .models import build
from .train import pick_device

IMPORTED = time.time()
EVAL_BATCHES = 2
PROBE_BATCH = 8  # the probe steps: warm up, and tell how large a batch the time budget allows


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(shape, device, size):
    pixels = shape["input_size"]
    x = torch.randn(size, 3, pixels, pixels, device=device)
    y = torch.randint(0, shape["num_classes"], (size,), device=device)
    return x, y


def _train_steps(model, optimizer, quantiser, batch, n):
    """`n` training steps as the runner's train loop does them."""
    x, y = batch
    model.train()
    for _ in range(n):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        if quantiser is not None:
            quantiser.after_backward(model)
        optimizer.step()
        if quantiser is not None:
            quantiser.after_step(model)
        loss.item()  # the runner reads the loss every step: the same host-device synchronisation


def _eval_steps(model, batch, n):
    model.eval()
    with torch.no_grad():
        for _ in range(n):
            model(batch[0]).argmax(1).sum().item()


def _timed(device, work):
    _sync(device)
    t0 = time.time()
    work()
    _sync(device)
    return t0, time.time()


def _calibration_batch(shape, steps, budget_s, probe_s_per_sample):
    """The run's batch when its steps fit `budget_s`, else the largest power of two whose steps, and as
    many at half of it, do (from the probe's time per sample, which overestimates larger batches')."""
    fit = budget_s / (steps * max(probe_s_per_sample, 1e-9))
    if fit >= shape["batch_size"]:
        return shape["batch_size"]
    size = PROBE_BATCH
    while size * 2 * 1.5 <= fit:  # 1.5: the steps at half the size take their share of the budget too
        size *= 2
    return max(2 * PROBE_BATCH, size)


def _per_step(sizes_times, batch_size):
    """Time of one step of `batch_size` from steps measured at one or two sizes: a fixed cost per step
    (the quantiser's weight passes, kernel launches) plus a cost per sample, fitted through the two."""
    if len(sizes_times) == 1:
        return sizes_times[0][1]
    (b1, t1), (b2, t2) = sizes_times
    per_sample = max(0.0, (t2 - t1) / (b2 - b1))
    fixed = max(0.0, t2 - per_sample * b2)
    return fixed + per_sample * batch_size


def _model(shape, device):
    model = build(shape["arch"], shape["depth"], shape["num_classes"], cfg=shape["cfg"]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    quantiser = None
    if shape.get("bits"):
        quantiser = Quantiser(shape["bits"], optimizer)
        quantiser.attach(model)
    return model, optimizer, quantiser


def _checkpoint_s(model, optimizer):
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.time()
        checkpoint.save({"model_state": model.state_dict(), "optimizer_state": optimizer.state_dict()},
                        os.path.join(folder, "calibration.pt"))
        return time.time() - t0


def _measure(device, model, optimizer, quantiser, shape, size, steps):
    """(seconds per training step, seconds per evaluation batch, t0, t1 of the training steps) at `size`."""
    batch = _batch(shape, device, size)
    t0, t1 = _timed(device, lambda: _train_steps(model, optimizer, quantiser, batch, steps))
    e0, e1 = _timed(device, lambda: _eval_steps(model, batch, EVAL_BATCHES))
    return (t1 - t0) / steps, (e1 - e0) / EVAL_BATCHES, t0, t1


def calibrate_shape(shape, steps, budget_s, power):
    """Times (and mean watts, through `power(t0, t1)`) of one shape. Steps run at the run's batch size
    when they fit `budget_s`; else at the largest power-of-two batch that does and at half of it, and the
    step time of the run's batch is extrapolated along the line through the two (`calibration_batches`)."""
    device = pick_device(shape["device"])
    model, optimizer, quantiser = _model(shape, device)
    probe = min(PROBE_BATCH, shape["batch_size"])
    small = _batch(shape, device, probe)
    _train_steps(model, optimizer, quantiser, small, 1)  # the first step pays for lazy set-up: not timed
    p0, p1 = _timed(device, lambda: _train_steps(model, optimizer, quantiser, small, 1))
    size = _calibration_batch(shape, steps, budget_s, (p1 - p0) / probe)
    sizes = [size] if size == shape["batch_size"] else [size // 2, size]
    measured = [_measure(device, model, optimizer, quantiser, shape, b, steps) for b in sizes]
    result = {"train_step_s": _per_step([(b, m[0]) for b, m in zip(sizes, measured)], shape["batch_size"]),
              # evaluation has no per-step work besides the samples': scaled per sample from the larger size
              "eval_step_s": measured[-1][1] * shape["batch_size"] / sizes[-1],
              "checkpoint_s": _checkpoint_s(model, optimizer), "mean_w": power(measured[-1][2], measured[-1][3]),
              "calibration_batches": sizes, "steps": steps, "torch_device": str(device)}
    if quantiser is not None:
        quantiser.detach()
    return result


def _metered(meter_spec):
    """(sampler or None, meter info or None, power(t0, t1) -> mean watts or None, folder)."""
    from hw.meters import NONE, open_meter
    meter = None if meter_spec in (None, NONE) else open_meter(meter_spec)
    if meter is None:
        return None, None, (lambda t0, t1: None), None
    from hw.energy import integrate
    from hw.sampler import PowerSampler
    from hw.trace import read_trace
    folder = tempfile.mkdtemp(prefix="ebt-calibrate-")
    sampler = PowerSampler(meter, folder, rate_hz=10.0)
    sampler.start()

    def power(t0, t1):
        time.sleep(0.3)  # let the sampler write the samples of the window's end
        return integrate(read_trace(folder), t0, t1).mean_w

    return sampler, meter.info(), power, folder


def calibrate(request):
    sampler, info, power, folder = _metered(request.get("meter"))
    try:
        budget_s = float(request.get("budget_s", 30.0)) / len(request["shapes"])
        shapes = {s["key"]: calibrate_shape(s, int(request.get("steps", 3)), budget_s, power)
                  for s in request["shapes"]}
    finally:
        if sampler is not None:
            sampler.stop()
    if folder is not None:
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
    return {"shapes": shapes, "meter": info, "startup_s": IMPORTED - STARTED}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python3 -m experiments.calibrate REQUEST_JSON\n")
        return 2
    try:
        request = json.loads(argv[0])
        request["shapes"][0]["key"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        sys.stderr.write("bad calibration request (%s): give a JSON object with a non-empty 'shapes' list\n" % err)
        return 2
    sys.stdout.write(json_text(calibrate(request)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
