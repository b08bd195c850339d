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
    """Write `fig` in each format, laid out once: with a layout engine attached, every `savefig` lays the
    figure out and draws it twice, so the layout is computed here, kept, and the engine removed."""
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        fig.set_layout_engine(None)
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt)
        paths.append(path)
    return paths
