"""One place that finds bundled files, wherever the app runs from (source tree, wheel, frozen bundle)."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def resources_dir() -> Path:
    here = Path(__file__).resolve().parent
    candidates = [
        here / "_resources",  # installed wheel (hatch force-include) and frozen bundle
        here.parent / "resources",  # source checkout / editable install
    ]
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        candidates.insert(0, Path(frozen_root) / "nnstudio" / "_resources")
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError("nnstudio resources not found; looked in " + ", ".join(map(str, candidates)))


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


#: The real datasets File → Open sample lists (file, menu text); the first is the one the window starts with.
#: Sources and licences: resources/samples/README.md. The synthetic tables beside them are test fixtures.
SAMPLES = (
    ("penguins.csv", "Palmer Penguins: species from body measurements (344 rows, with gaps)"),
    ("iris.csv", "Fisher's Iris: species from flower measurements (150 rows)"),
)


#: Image samples (folders of class folders) in the same menu, after a separator; opened as image datasets.
IMAGE_SAMPLES = (
    ("digits", "Handwritten digits: 8×8 images in 10 class folders (1,797 images)"),
)


def sample_dataset(name: str = SAMPLES[0][0]) -> Path:
    return resource_path("samples", name)
