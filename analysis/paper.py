"""The paper's printed numbers (analysis/paper/*.csv), each row with its transcription `note`."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

PAPER_DIR = Path(__file__).resolve().parent / "paper"


@cache
def _load(name: str) -> pd.DataFrame:
    # draw_epoch mixes ints and 'final', so it stays text; notes are text with '' for "no doubt".
    df = pd.read_csv(PAPER_DIR / name, dtype={"draw_epoch": str, "note": str}, keep_default_na=True)
    df["note"] = df["note"].fillna("")
    return df


def table1() -> pd.DataFrame:
    """Table 1: retrain accuracy (p = 0.5) per LR schedule and draw epoch."""
    return _load("table1_lr_schedule.csv").copy()


def table2() -> pd.DataFrame:
    """Table 2: retrain accuracy, total training energy (kJ) and FLOPs (P) per method and ratio."""
    return _load("table2_methods.csv").copy()


def table2_improvement() -> pd.DataFrame:
    """Table 2's printed "EB Train Improv." row (accuracy points, energy x, FLOPs x)."""
    return _load("table2_improvement.csv").copy()


def table3() -> pd.DataFrame:
    """Table 3: ImageNet top-1/top-5, total training FLOPs (P) and energy (MJ)."""
    return _load("table3_imagenet.csv").copy()


def table4() -> pd.DataFrame:
    """Table 4: retrain accuracy (p = 0.5) per initial LR and draw epoch."""
    return _load("table4_large_lr.csv").copy()


def ll_lf_cells() -> list[tuple[tuple, float, float]]:
    """Table 2's 12 (setting, ratio) cells with both 8-bit rows: (key, LF kJ, LL kJ)."""
    t2 = table2().set_index(["model", "dataset", "pruning_ratio", "method"])["energy_kj"]
    keys = sorted({k[:3] for k in t2.index if k[3] == "EB Train (LL)"})
    return [(k, float(t2[k + ("EB Train (LF)",)]), float(t2[k + ("EB Train (LL)",)])) for k in keys]
