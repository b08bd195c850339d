"""Report output written atomically (through `hw.fileio`), so a reader never sees half a file."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from hw.fileio import atomic_path, atomic_write


def write_text(path: Path, text: str) -> Path:
    atomic_write(path, text)
    return Path(path)


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def save_figure(fig, stem: Path, formats=("png", "pdf")) -> list[Path]:
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt)
        paths.append(path)
        # The first save ran the layout engine; the same layout serves every later format (half the cost).
        fig.set_layout_engine("none")
    return paths
