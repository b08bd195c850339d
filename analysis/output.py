"""Atomic file output: write beside the target, then rename, so a reader never sees half a file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, List

import pandas as pd


def atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` then rename the temp file over `path` (same folder, so the rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def save_figure(fig, stem: Path, formats=("png", "pdf")) -> List[Path]:
    paths = []
    for fmt in formats:
        paths.append(atomic_write(Path(f"{stem}.{fmt}"), lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt)))
        # The first save ran the layout engine; the same layout serves every later format (half the cost).
        fig.set_layout_engine("none")
    return paths
