"""The built-in training loads of `ebt meters agree`: `python -m experiments.load LEVEL [--seconds S]`.

Each level runs SGD steps of a small two-layer network (forward, backward by hand, update) on random
data with numpy's BLAS until it is stopped (SIGTERM) or S seconds have passed. numpy starts in well under
a second where torch takes many, and a meter check needs only two steady, different loads. It prints
`ready` once the first step is done, so that the measuring windows begin on a running load. The levels
differ in work per step and BLAS threads, so they draw different power:

* `low`: batch 16, one thread;
* `high`: batch 512, one thread per CPU.
"""
import argparse
import os
import sys
import time

LEVELS = {"low": (16, 1), "high": (512, None)}  # level -> (batch, BLAS threads; None = one per CPU)
WIDTH = 512
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def step_fn(batch, threads):
    """One SGD step of a 2-layer ReLU network with a squared loss; numpy is imported after the thread count
    is set, since BLAS reads it once."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads or os.cpu_count() or 1)
    import numpy as np
    rng = np.random.RandomState(0)
    w1 = rng.randn(WIDTH, WIDTH).astype(np.float32) * 0.01
    w2 = rng.randn(WIDTH, 10).astype(np.float32) * 0.01
    x = rng.randn(batch, WIDTH).astype(np.float32)
    y = rng.randn(batch, 10).astype(np.float32)

    def step():
        h = np.maximum(x @ w1, 0.0)
        err = (h @ w2 - y) / batch
        grad_h = (err @ w2.T) * (h > 0)
        w2[...] -= 0.01 * (h.T @ err)
        w1[...] -= 0.01 * (x.T @ grad_h)
    return step


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.load", description=__doc__.splitlines()[0])
    parser.add_argument("level", choices=sorted(LEVELS))
    parser.add_argument("--seconds", type=float, default=None, help="stop after S seconds (default: when stopped)")
    args = parser.parse_args(argv)
    step = step_fn(*LEVELS[args.level])
    step()
    print("ready", flush=True)
    end = time.time() + args.seconds if args.seconds is not None else None
    while end is None or time.time() < end:
        step()
    return 0


if __name__ == "__main__":
    sys.exit(main())
