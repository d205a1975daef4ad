"""One place that finds bundled files, wherever the app runs from (source tree, wheel, frozen bundle)."""

from __future__ import annotations

import re
import shutil
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


#: The README's run config, beside the tables it names, so `nnstudio samples --copy .` makes its examples run.
SAMPLE_CONFIG = "penguins.toml"


def samples_dir() -> Path:
    return resource_path("samples")


def sample_files() -> list[Path]:
    """The bundled tables (real ones first) and the README's run config, as they lie in the installed package."""
    names = [name for name, _ in SAMPLES] + [SAMPLE_CONFIG]
    return [samples_dir() / name for name in names if (samples_dir() / name).is_file()]


def copy_samples(dest: str | Path) -> tuple[list[Path], list[Path]]:
    """Copy the samples into `dest` (made if absent); a file already there is kept. Returns (copied, kept)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for source in sample_files():
        target = dest / source.name
        if target.exists():
            kept.append(target)
            continue
        shutil.copyfile(source, target)
        copied.append(target)
    return copied, kept


def missing_sample_hint(message: str) -> str:
    """For a "PATH: no such file" naming a bundled sample, where the samples are and how to copy them."""
    found = re.search(r"(\S+): no such file", message)
    if not found:
        return ""
    missing = Path(found.group(1))
    try:
        bundled = {p.name for p in samples_dir().iterdir()}
    except (OSError, FileNotFoundError):
        return ""
    if missing.name not in bundled and "samples" not in missing.parts:
        return ""
    return (f"; {missing.name} is a bundled sample: the samples are in {samples_dir()}, and "
            "`nnstudio samples --copy .` copies them (with the README's penguins.toml) into this folder")
