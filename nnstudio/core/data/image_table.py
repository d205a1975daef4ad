"""Tables that list image files: which column holds the paths (relative to the table), and which the labels.

The window opens such a table as an image dataset, as `[data] image_column = "file"` does on the command line;
the scan and decoding of the files is `core.data.images.scan_table` / `load_images`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnstudio.core.data.images import IMAGE_SUFFIXES

#: Values looked at per column (the first ones that are not empty): enough to tell, few enough to stat quickly.
SAMPLE = 64
#: Shares of those values that must end in an image extension, and that must exist as files.
IMAGE_SHARE = 0.8
EXISTING_SHARE = 0.5


def _string_columns(frame: Any) -> list[str]:
    import polars as pl

    return [str(c) for c, dtype in zip(frame.columns, frame.dtypes) if dtype in (pl.Utf8, pl.Categorical)]


def _values(frame: Any, column: str) -> list[str]:
    values = []
    for v in frame.get_column(column).head(SAMPLE * 4).to_list():
        if v is not None and str(v).strip():
            values.append(str(v).strip())
            if len(values) == SAMPLE:
                break
    return values


def _resolve(value: str, folder: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else folder / p


def image_path_column(frame: Any, folder: str | Path) -> str | None:
    """The column whose values are image files: most end in an image extension and exist on disk relative to
    `folder` (the table's own folder) or as absolute paths. None when no column does, or when it would leave no
    other column to hold the labels. Looks at the first `SAMPLE` values of each text column only."""
    from nnstudio.core.data.table import as_table

    frame = as_table(frame)
    if frame.width < 2:
        return None
    folder = Path(folder)
    best: tuple[float, str] | None = None
    for column in _string_columns(frame):
        values = _values(frame, column)
        if not values:
            continue
        images = [v for v in values if Path(v).suffix.lower() in IMAGE_SUFFIXES]
        if len(images) < IMAGE_SHARE * len(values):
            continue
        try:
            existing = sum(1 for v in images if _resolve(v, folder).is_file())
        except OSError:
            continue
        share = existing / len(values)
        if share >= EXISTING_SHARE and (best is None or share > best[0]):
            best = (share, column)
    return best[1] if best else None


def default_label(columns: list[str], image_column: str) -> str | None:
    """The label column `scan_table` takes when none is named: the last column other than the image paths."""
    return next((str(c) for c in reversed(columns) if str(c) != image_column), None)
