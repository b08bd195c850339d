"""What a run needs on this machine, its datasets included, as one JSON object (for `ebt doctor`):

    python3 -m experiments.probe --dataset cifar10 data 0 --run-root ~/ebt/runs --meter ina3221

`hw.probe`'s report (Python, packages, torch, disk, meters, clocks; its docstring lists the keys) plus
`datasets`: [{ok, detail}], one per --dataset NAME DATA_ROOT DOWNLOAD, checked as `experiments.datasets`
says (no torch is imported for it).
"""
import json
import sys

from hw import probe as machine

from .datasets import state


def main(argv=None):
    ap = machine.parser(prog="python3 -m experiments.probe")
    ap.add_argument("--dataset", nargs=3, action="append", default=[], metavar=("NAME", "DATA_ROOT", "DOWNLOAD"),
                    help="a dataset whose files must be under DATA_ROOT (DOWNLOAD 1: `download: true`)")
    args = ap.parse_args(argv)
    report = machine.probe(args)
    report["datasets"] = [state(name, root, download == "1") for name, root, download in args.dataset]
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
