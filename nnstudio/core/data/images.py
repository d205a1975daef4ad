"""Image datasets: a folder of class folders (torchvision's ImageFolder layout) or a table with a column of
image paths, decoded once with Pillow into one uint8 N×C×H×W tensor, split and described like a table.

No torchvision: the folder scan, the resize (Pillow) and the per-channel statistics are here; normalising
happens on the device per batch, inside the model (`core.model.spec.ImageInput`), and augmentation in
`core.data.augment`.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnstudio.core.data.columns import _natural_key
from nnstudio.core.data.image_stream import (  # noqa: F401 - decode_image, ImageFileDataset re-exported
    ImageFileDataset, ImageStream, _rel, channel_sums, check_and_measure, decode_all, decode_image, stats_from_sums)
from nnstudio.core.data.split import PreparedData, TensorSplit, split_indices
from nnstudio.core.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: Modes whose pixels carry no colour.
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
#: An in-memory dataset may take at most this share of the memory available when it is loaded.
MEMORY_SHARE = 0.25


@dataclass
class ImageSource:
    """What a scan found: the files that open as images, with their classes, and those skipped (why)."""

    root: Path
    files: list[Path]
    labels: list[str]
    sizes: list[tuple[int, int]]  # (H, W) of each file
    grey: list[bool]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels), key=_natural_key)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {c: counts[c] for c in self.classes}


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_image_folder(path: str | Path) -> bool:
    """A folder whose subfolders hold images (the class folders), as the window and `train` tell them apart."""
    p = Path(path)
    if not p.is_dir():
        return False
    try:
        for sub in p.iterdir():
            if sub.is_dir() and any(is_image_file(f) for f in sub.iterdir()):
                return True
    except OSError:
        return False
    return False


def _walk_images(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every file under `folder` (sorted), following folder links once each: a link back up is a loop, skipped."""
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    seen: set[str] = set()

    def walk(d: Path, above: str = "") -> None:
        try:
            real = os.path.realpath(d)
        except OSError as exc:
            problems.append((d, f"cannot be read ({exc.strerror or exc})"))
            return
        if real in seen or (above + os.sep).startswith(real + os.sep):
            problems.append((d, "is a symbolic link loop (a link to a folder above it); skipped"))
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            problems.append((d, f"cannot be read ({exc.strerror or exc})"))
            return
        for e in entries:
            p = Path(e.path)
            try:
                if e.is_dir():
                    walk(p, real)
                elif e.is_file():
                    files.append(p)
                elif e.is_symlink():
                    os.stat(p)  # a dangling link or a loop of links raises here
                    files.append(p)
            except OSError as exc:
                problems.append((p, f"cannot be opened ({exc.strerror or exc})"))

    walk(folder, os.path.realpath(folder.parent))
    return files, problems


def _probe(path: Path, max_pixels: int | None) -> tuple[tuple[int, int], bool] | str:
    """(H, W), grey? from the file's header, or why it is not a usable image (one phrase)."""
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size == 0:
            return "is empty (0 bytes)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked against `limit` below
            img = Image.open(path)
        with img:
            w, h = img.size
            mode = img.mode
            palette_grey = False
            if mode == "P":
                pal = img.getpalette() or []
                rgb = np.array(pal[: 3 * 256]).reshape(-1, 3) if len(pal) >= 3 else np.zeros((0, 3))
                palette_grey = bool(len(rgb)) and bool((rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all())
    except UnidentifiedImageError:
        return "is not an image Pillow can read"
    except Image.DecompressionBombError:
        return f"is too large (over twice Pillow's decompression-bomb limit of {limit:,} pixels)"
    except PermissionError:
        return "cannot be read (permission denied)"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"is damaged ({str(exc) or type(exc).__name__})"
    if limit and w * h > limit:
        return (f"is {w}×{h} = {w * h:,} pixels, above Pillow's decompression-bomb limit of {limit:,} "
                "(PIL.Image.MAX_IMAGE_PIXELS); skipped as a possible decompression bomb")
    if w < 1 or h < 1:
        return "has no pixels"
    return (h, w), mode in _GREY_MODES or palette_grey


def _finish(root: Path, paths: list[Path], labels: list[str], skipped: list[tuple[str, str]],
            max_pixels: int | None) -> ImageSource:
    files, kept, sizes, grey = [], [], [], []
    for path, label in zip(paths, labels):
        if not is_image_file(path):
            skipped.append((_rel(path, root), "is not an image file (by its extension)"))
            continue
        probe = _probe(path, max_pixels)
        if isinstance(probe, str):
            skipped.append((_rel(path, root), probe))
            continue
        files.append(path)
        kept.append(label)
        sizes.append(probe[0])
        grey.append(probe[1])
    return ImageSource(root, files, kept, sizes, grey, skipped)


def scan_folder(root: str | Path, max_pixels: int | None = None) -> ImageSource:
    """The ImageFolder layout: one subfolder per class (sorted by name), images anywhere below it."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    try:
        classes = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: _natural_key(d.name))
    except OSError as exc:
        raise DataError(f"{root}: cannot be read ({exc.strerror or exc})") from exc
    if not classes:
        raise DataError(f"{root}: has no class folders; put each class's images in a subfolder named after it")
    paths: list[Path] = []
    labels: list[str] = []
    skipped: list[tuple[str, str]] = []
    for d in classes:
        found, problems = _walk_images(d)
        skipped += [(_rel(p, root), why) for p, why in problems]
        paths += found
        labels += [d.name] * len(found)
    source = _finish(root, paths, labels, skipped, max_pixels)
    counts = Counter(source.labels)
    empty = [d.name for d in classes if counts[d.name] == 0]
    if empty:
        raise DataError(f"{root}: class folder '{empty[0]}' has no readable images"
                        + (f" ({len(empty) - 1} more empty)" if len(empty) > 1 else "")
                        + "; add images or remove the folder")
    return source


def scan_table(path: str | Path, image_column: str, target: str | None = None,
               max_pixels: int | None = None) -> ImageSource:
    """A CSV/Parquet table with a column of image paths (relative to the table's folder) and a label column."""
    from nnstudio.core.data.read import read_table

    path = Path(path)
    df = read_table(path)
    if image_column not in df.columns:
        raise DataError(f"{path.name}: image_column '{image_column}' is not a column; columns: "
                        + ", ".join(df.columns[:10]))
    target = target or next((c for c in reversed(df.columns) if c != image_column), None)
    if target is None or target not in df.columns:
        raise DataError(f"{path.name}: target column '{target}' not found")
    root = path.parent
    paths, labels, skipped = [], [], []
    for i, (name, label) in enumerate(zip(df[image_column].to_list(), df[target].to_list())):
        if name is None or label is None or str(name).strip() == "":
            skipped.append((f"{path.name} row {i + 1}", "has no image path or no label"))
            continue
        p = Path(str(name))
        paths.append(p if p.is_absolute() else root / p)
        labels.append(str(label))
    missing = [(p, lab) for p, lab in zip(paths, labels) if not p.exists()]
    for p, _ in missing:
        skipped.append((_rel(p, root), "does not exist"))
    keep = [(p, lab) for p, lab in zip(paths, labels) if p.exists()]
    return _finish(root, [p for p, _ in keep], [lab for _, lab in keep], skipped, max_pixels)


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


class ImagePreprocessor:
    """What an image model needs to read new files as it was trained: size, channels, normalisation, classes.

    The same interface as the table `Preprocessor` where the engine, metrics and checkpoints use it;
    serialises to plain values (`to_dict`/`from_dict`), with kind "image".
    """

    kind = "image"

    def __init__(self, classes: list[str], channels: int, height: int, width: int, mean: list[float],
                 std: list[float], target: str = "label"):
        self.classes = list(classes)
        self.channels, self.height, self.width = int(channels), int(height), int(width)
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        self.target = target
        self.task = "multiclass"
        self.features: list[dict[str, Any]] = []
        self.missing = "drop"
        self.target_mean, self.target_std = 0.0, 1.0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    @property
    def normalization(self) -> tuple[list[float], list[float]]:
        return self.mean, self.std

    @property
    def n_features(self) -> int:
        return self.channels * self.height * self.width

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    @property
    def feature_names(self) -> list[str]:
        return []

    def encoded_names(self) -> list[str]:
        return []

    def transform_features(self, df: Any) -> np.ndarray:
        raise DataError("this model reads images: give it image files or a folder, not a table")

    def transform_images(self, files: Sequence[Path]) -> tuple[torch.Tensor, list[Path], list[tuple[str, str]]]:
        """Raw uint8 N×C×H×W for new files (the model normalises), the files it holds, and those that could
        not be read (file, why)."""
        good, bad = [], []
        for f in files:
            probe = _probe(Path(f), None)
            if isinstance(probe, str):
                bad.append((str(f), probe))
            else:
                good.append(Path(f))
        array, failed = decode_all(good, self.channels, (self.height, self.width))
        failed_names = {name for name, _ in failed}
        kept = [f for f in good if str(f) not in failed_names]
        return torch.from_numpy(array), kept, bad + failed

    def decode(self, outputs: torch.Tensor) -> list[Any]:
        idx = outputs.detach().float().cpu().argmax(dim=1).tolist()
        return [self.classes[i] for i in idx]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "image", "target": self.target, "task": self.task, "classes": self.classes,
                "channels": self.channels, "height": self.height, "width": self.width,
                "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImagePreprocessor:
        pre = cls(list(d["classes"]), int(d["channels"]), int(d["height"]), int(d["width"]),
                  [float(v) for v in d["mean"]], [float(v) for v in d["std"]], str(d.get("target", "label")))
        if pre.channels not in (1, 3) or len(pre.mean) != pre.channels or len(pre.std) != pre.channels:
            raise ValueError(f"image preprocessing has {pre.channels} channels but {len(pre.mean)} means")
        if min(pre.height, pre.width) < 1 or len(pre.classes) < 2 or min(pre.std) <= 0:
            raise ValueError("image preprocessing has no pixels, fewer than 2 classes or a zero std")
        return pre


def preprocessor_from_dict(d: dict[str, Any]) -> Any:
    """The table or image preprocessor a checkpoint's record describes."""
    if d.get("kind") == "image":
        return ImagePreprocessor.from_dict(d)
    from nnstudio.core.data.preprocess import Preprocessor

    return Preprocessor.from_dict(d)


def channel_stats(X: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0–1 units, ddof 0) of uint8 N×C×H×W, in float64 sums chunk by chunk."""
    return stats_from_sums(*channel_sums(X))


def _parse_size(image_size: Any, sizes: list[tuple[int, int]]) -> tuple[tuple[int, int], int]:
    """The (H, W) every image becomes (default: the most common) and how many are resized to it."""
    if image_size in (None, "auto", []):
        size = Counter(sizes).most_common(1)[0][0]
    else:
        size = (int(image_size[0]), int(image_size[1]))
    return size, sum(1 for s in sizes if s != size)


def storage_plan(n: int, channels: int, size: tuple[int, int], stream: Any = "auto",
                 memory_share: float = MEMORY_SHARE) -> tuple[bool, str]:
    """Whether n images of this size stream from disk, and the sentence that says why (`[data] stream`)."""
    need = n * channels * size[0] * size[1]
    budget = int(_available_memory() * memory_share)
    if stream is True:
        return True, f"streamed from disk batch by batch ([data] stream = true; {need / 2**20:,.1f} MiB decoded)"
    if stream in ("auto", None) and need > budget:
        return True, (f"{need / 2**20:,.0f} MiB decoded, over {memory_share:.0%} of the free memory "
                      f"({budget / 2**20:,.0f} MiB): streamed from disk batch by batch")
    return False, f"decoded into memory once ({need / 2**20:,.1f} MiB)"


def load_images(path: str | Path, image_size: Any = None, channels: Any = "auto",
                split: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0, image_column: str | None = None,
                target: str | None = None, on_bad: str = "skip", max_pixels: int | None = None,
                memory_share: float = MEMORY_SHARE, stream: Any = "auto", workers: int | None = None) -> PreparedData:
    """An image folder (or a table of image paths) to split uint8 tensors and an `ImagePreprocessor`.

    `on_bad`: "skip" lists unreadable files in the report and goes on; "fail" stops at the first, naming it.
    `stream`: "auto" decodes into memory when the decoded images fit in `memory_share` of the free memory and
    streams them from disk otherwise (`ImageStream`: a `Dataset` + `DataLoader` with `workers` processes);
    True always streams; False always decodes into memory, however large.
    """
    path = Path(path)
    source = scan_table(path, image_column, target, max_pixels) if image_column else scan_folder(path, max_pixels)
    if source.skipped and on_bad == "fail":
        name, why = source.skipped[0]
        raise DataError(f"{name} {why} (skip unreadable files with [data] on_bad = \"skip\")")
    if not source.files:
        raise DataError(f"{path}: no readable images found"
                        + (f"; {len(source.skipped)} file(s) skipped, e.g. {source.skipped[0][0]} "
                           f"{source.skipped[0][1]}" if source.skipped else ""))
    classes = source.classes
    if len(classes) < 2:
        raise DataError(f"{path}: only one class ('{classes[0]}'); a classifier needs at least two class folders")
    if channels in ("auto", None, 0):
        n_channels = 1 if all(source.grey) else 3
    else:
        n_channels = int(channels)
    size, resized = _parse_size(image_size, source.sizes)
    n = len(source.files)
    streamed, storage_note = storage_plan(n, n_channels, size, stream, memory_share)
    position = {c: i for i, c in enumerate(classes)}
    codes = np.array([position[lab] for lab in source.labels], dtype=np.int64)
    strat = codes if np.bincount(codes).min() >= 2 else None
    parts = split_indices(n, split, seed, strat)
    order = np.concatenate(parts)
    files = [source.files[i] for i in order]
    n_train_planned = len(parts[0])
    if streamed:  # one decoding pass that keeps no pixels: finds the damaged files, measures the training split
        ok, failed, (mean, std) = check_and_measure(files, n_train_planned, n_channels, size, source.root)
    else:
        X, failed = decode_all(files, n_channels, size, root=source.root)
    skipped = list(source.skipped)
    if failed:
        if on_bad == "fail":
            name, why = failed[0]
            raise DataError(f"{name} {why} (skip unreadable files with [data] on_bad = \"skip\")")
        skipped += failed
        bad = {name for name, _ in failed}
        keep = np.array([_rel(f, source.root) not in bad for f in files])
        order = order[keep]
        files = [f for f, k in zip(files, keep) if k]
        sizes = [int(k.sum()) for k in np.split(keep, np.cumsum([len(p) for p in parts])[:-1])]
    else:
        sizes = [len(p) for p in parts]
    y = torch.from_numpy(codes[order])
    n_tr, n_va = sizes[0], sizes[1]
    if streamed:
        X_t: Any = ImageStream(files, n_channels, size, source.root, workers=workers)
    else:
        mean, std = channel_stats(X[:n_tr])
        X_t = torch.from_numpy(X)
    pre = ImagePreprocessor(classes, n_channels, size[0], size[1], mean, std)
    bounds = ((0, n_tr), (n_tr, n_tr + n_va), (n_tr + n_va, len(files)))
    train, val, test = (TensorSplit(X_t.subset(range(a, b)) if streamed else X_t[a:b], y[a:b]) for a, b in bounds)
    rel = [_rel(f, source.root) for f in files]
    counts = Counter(source.labels)
    report: dict[str, Any] = {
        "kind": "image", "rows_read": n + len(source.skipped), "rows_used": len(files), "target": "label",
        "task": "multiclass", "n_train": n_tr, "n_val": n_va, "n_test": len(files) - n_tr - n_va,
        "n_features": pre.n_features, "classes": classes, "class_counts": {c: counts[c] for c in classes},
        "image_size": list(size), "channels": n_channels, "resized": resized,
        "skipped": [f"{name} {why}" for name, why in skipped], "n_skipped": len(skipped),
        "files": {"train": rel[:n_tr], "val": rel[n_tr:n_tr + n_va], "test": rel[n_tr + n_va:]},
        "root": str(source.root), "decoded_bytes": int(len(files) * n_channels * size[0] * size[1]), "mean": mean, "std": std,
        "storage": "stream" if streamed else "memory", "storage_note": storage_note,
    }
    return PreparedData(train, val, test, pre, report)


def summarize_images(path: str | Path, image_column: str | None = None, target: str | None = None,
                     stream: Any = "auto", image_size: Any = None, channels: Any = None) -> dict[str, Any]:
    """What the dataset panel and `nnstudio info` show about an image dataset, without decoding it; `stream`,
    `image_size` and `channels` (the run's [data] keys) only decide what the storage sentence says."""
    source = scan_table(path, image_column, target) if image_column else scan_folder(path)
    sizes = Counter(source.sizes)
    common = sizes.most_common(1)[0][0] if sizes else None
    grey = 1 if source.grey and all(source.grey) else 3
    size = (int(image_size[0]), int(image_size[1])) if image_size not in (None, "auto", []) else common
    held = grey if channels in (None, "auto", 0) else int(channels)
    streamed, note = (storage_plan(len(source.files), held, size, "auto" if stream is None else stream)
                      if size else (False, ""))
    return {"kind": "image", "images": len(source.files), "classes": source.class_counts(),
            "task": "multiclass", "target": "label", "channels": grey,
            "image_size": list(common) if common else None, "sizes": len(sizes),
            "skipped": [f"{name} {why}" for name, why in source.skipped],
            "storage": "stream" if streamed else "memory", "storage_note": note}
