"""Cost of Early-Bird bookkeeping relative to training, for VGG16 at CIFAR size (paper: <= 0.07%).

One bookkeeping step is what the search does once per epoch: the channel mask at each tracked ratio
(global sort of all 4,224 BN |gamma|), its distances to the older masks in the FIFO, and appending the
packed mask to masks.jsonl. It is compared with one training epoch of CIFAR-10 (50,000 images, batch
256), timed here as a few real SGD steps on random CIFAR-shaped batches and scaled to the 196 steps of an
epoch (a whole epoch of VGG16 takes tens of minutes on a laptop CPU).

    python benchmarks/eb_overhead.py [--device cpu|cuda] [--steps 3] [--batch 64]
"""
import argparse
import io
import time

import torch
import torch.nn.functional as F

from experiments.earlybird import EarlyBirdDetector, channel_mask, save_mask
from experiments.models import build


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3, help="SGD steps timed")
    parser.add_argument("--batch", type=int, default=64, help="batch of each timed step (scaled to 256)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build("vgg", 16, 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    per_image = (time.perf_counter() - t0) / (args.steps * args.batch)
    epoch_s = per_image * 50000

    detectors = [EarlyBirdDetector(r) for r in (0.3, 0.5, 0.7)]
    for det in detectors:  # a full FIFO, so each step computes all 4 distances
        for _ in range(det.queue):
            det.step(model)
    sink = io.StringIO()
    reps = 20
    t0 = time.perf_counter()
    for i in range(reps):
        for det in detectors:
            mask = channel_mask(model, det.ratio)
            det.step_mask(mask)
            save_mask(sink, i, det.ratio, mask)
    eb_s = (time.perf_counter() - t0) / reps

    print("device:                 %s" % device)
    print("BN channels:            %d" % channel_mask(model, 0.5).numel())
    print("EB step (3 ratios):     %.3f ms" % (eb_s * 1e3))
    print("train epoch (scaled):   %.1f s  (%.2f ms/image over %d steps of %d)"
          % (epoch_s, per_image * 1e3, args.steps, args.batch))
    print("EB step / epoch:        %.5f %%" % (100.0 * eb_s / epoch_s))


if __name__ == "__main__":
    main()
