"""Decoding image files, and image datasets too large to hold in memory: kept on disk, decoded batch by batch.

`ImageStream` stands where the in-memory path holds its uint8 N×C×H×W tensor (`len`, `shape`, `device`,
`to`, slicing and `index_select` decode the files asked for, on a thread pool: Pillow releases the GIL while it
decodes). Training batches come from the course notes' `Dataset` (`ImageFileDataset`) + `DataLoader` with
worker processes (`ImageStream.batches`), so the next batches decode while the model steps on this one, in the
same shuffled order the in-memory path draws from the same generator.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnstudio.core.errors import DataError


def _rel(path: Path, root: Path | None) -> str:
    if root is None:
        return str(path)
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def decode_image(path: str | Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One file as uint8 (C, H, W): first frame, transparency composited on white, resized to `size` (H, W)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            img.seek(0)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            elif img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                a = np.asarray(img, dtype=np.float64)
                hi = 65535.0 if a.max(initial=0) > 255 else 255.0
                img = Image.fromarray(np.clip(a / hi * 255.0, 0, 255).astype(np.uint8))
            img = img.convert("L" if channels == 1 else "RGB")
            h, w = size
            if img.size != (w, h):
                img = img.resize((w, h), Image.BILINEAR)
            a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return "is truncated (" + text + ")" if "truncated" in text.lower() else f"is damaged ({text})"


def decode_all(files: Sequence[Path], channels: int, size: tuple[int, int], workers: int | None = None,
               root: Path | None = None) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Decode files in parallel (Pillow releases the GIL while it decodes) into one uint8 N×C×H×W array.

    Returns the array of the files that decoded (in order) and (file, reason) for those that did not.
    """
    from concurrent.futures import ThreadPoolExecutor

    n = len(files)
    h, w = size
    out = np.empty((n, channels, h, w), dtype=np.uint8)
    ok = np.ones(n, dtype=bool)
    failed: list[tuple[str, str]] = []

    def one(i: int) -> None:
        try:
            out[i] = decode_image(files[i], channels, size)
        except Exception as exc:  # noqa: BLE001 - every damaged file is listed, never fatal here
            ok[i] = False
            failed.append((_rel(Path(files[i]), root), _why(exc)))

    workers = workers or min(8, os.cpu_count() or 1)
    chunk = max(1, n // (workers * 8) or 1)
    if workers < 2 or n < 64:
        for i in range(n):
            one(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda a: [one(i) for i in range(a, min(a + chunk, n))], range(0, n, chunk)))
    if not ok.all():
        out = out[ok]
    return out, sorted(failed)


def channel_sums(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel sum and sum of squares (float64, exact for uint8) and the pixel count of uint8 N×C×H×W,
    in ~4 MiB float32 chunks, so the peak stays near the uint8 data."""
    n, c = X.shape[:2]
    total = np.zeros(c)
    squares = np.zeros(c)
    rows = max(1, (1 << 20) // max(1, X[0].size)) if n else 1
    for a in range(0, n, rows):
        part = X[a:a + rows].astype(np.float32)  # exact for 0..255 and their squares
        total += part.sum(axis=(0, 2, 3), dtype=np.float64)
        np.square(part, out=part)
        squares += part.sum(axis=(0, 2, 3), dtype=np.float64)
    return total, squares, n * X.shape[2] * X.shape[3]


def stats_from_sums(total: np.ndarray, squares: np.ndarray, count: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0–1 units, ddof 0); a flat channel gets std 1 (255 in pixel units)."""
    count = max(1, count)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    std[std < 1e-6] = 255.0
    return (mean / 255.0).tolist(), (std / 255.0).tolist()


def check_and_measure(files: Sequence[Path], n_train: int, channels: int, size: tuple[int, int],
                      root: Path | None = None, chunk: int | None = None) -> tuple[np.ndarray, list[tuple[str, str]],
                                                                            tuple[list[float], list[float]]]:
    """One decoding pass over files that stay on disk: which decode (bool mask), the failures (file, why), and
    the per-channel statistics of the first `n_train` files that decoded, chunk by chunk (memory: one chunk)."""
    ok = np.ones(len(files), dtype=bool)
    failed: list[tuple[str, str]] = []
    c = channels
    chunk = chunk or max(64, (16 << 20) // max(1, channels * size[0] * size[1]))  # ~16 MiB of pixels at a time
    total, squares, count = np.zeros(c), np.zeros(c), 0
    for a in range(0, len(files), chunk):
        part = list(files[a:a + chunk])
        X, bad = decode_all(part, channels, size, root=root)
        if bad:
            failed += bad
            names = {name for name, _ in bad}
            mask = np.array([_rel(Path(f), root) not in names for f in part])
            ok[a:a + len(part)] = mask
        else:
            mask = np.ones(len(part), dtype=bool)
        train_in_chunk = int(mask[: max(0, n_train - a)].sum())  # decoded rows of this chunk in the training part
        if train_in_chunk:
            t, s, k = channel_sums(X[:train_in_chunk])
            total, squares, count = total + t, squares + s, count + k
    return ok, sorted(failed), stats_from_sums(total, squares, count)


def default_workers() -> int:
    """Decoding processes for a streamed dataset: one per core, at most 8 (0 decodes in the training thread)."""
    return min(8, os.cpu_count() or 1)


class ImageFileDataset(torch.utils.data.Dataset):
    """The course notes' `Dataset` over image files: opens and decodes one file per `__getitem__`.

    For datasets too large to decode into memory, with `DataLoader(dataset, batch_size, shuffle=True,
    num_workers=...)`; yields raw uint8 (C, H, W) and the class index, as the in-memory path does.
    """

    def __init__(self, files: Sequence[str | Path], labels: Sequence[int], channels: int, size: tuple[int, int],
                 root: Path | None = None):
        self.files = [Path(f) for f in files]
        self.labels = list(labels)
        self.channels = channels
        self.size = size
        self.root = root

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = decode_image(self.files[index], self.channels, self.size)
        return torch.from_numpy(np.ascontiguousarray(x).copy()), self.labels[index]



class _BatchDecoding(ImageFileDataset):
    """`ImageFileDataset` whose `__getitems__` (which `DataLoader` calls with a whole batch's indices when a
    dataset has one) decodes the batch straight into one tensor: no per-image tensors, no collate."""

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]]]:
        """A batch: uint8 B×C×H×W, int64 labels, and the files that no longer decode (file, why)."""
        h, w = self.size
        out = np.empty((len(indices), self.channels, h, w), dtype=np.uint8)
        failed: list[tuple[str, str]] = []
        for j, i in enumerate(indices):
            try:
                out[j] = decode_image(self.files[i], self.channels, self.size)
            except Exception as exc:  # noqa: BLE001 - reported by the main process, naming the file
                failed.append((_rel(self.files[i], self.root), _why(exc)))
        labels = torch.tensor([self.labels[i] for i in indices], dtype=torch.int64)
        return torch.from_numpy(out), labels, failed


def _whole_batch(batch: Any) -> Any:
    return batch  # `__getitems__` already made the batch


class _EpochBatches(torch.utils.data.Sampler):
    """The batches of one epoch's order (a batch sampler: each item is a list of dataset indices)."""

    def __init__(self, order: list[int], batch_size: int):
        self.order, self.batch_size = order, batch_size

    def __iter__(self) -> Iterator[list[int]]:
        for a in range(0, len(self.order), self.batch_size):
            yield self.order[a:a + self.batch_size]

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)


def _changed(name: str, why: str) -> DataError:
    return DataError(f"{name} {why}: it decoded when the dataset was opened; was it changed or removed since? "
                     "Open the dataset again")


class ImageStream:
    """N image files that behave as the uint8 N×C×H×W tensor of an in-memory dataset, decoded when read.

    Every file was decoded once when the dataset was opened (`check_and_measure`), so a file that fails later
    has changed on disk: that is a `DataError` naming it, never a silent gap in a batch.
    """

    dtype = torch.uint8

    def __init__(self, files: Sequence[Path], channels: int, size: tuple[int, int], root: Path | None = None,
                 device: torch.device | str = "cpu", workers: int | None = None):
        self.files = [Path(f) for f in files]
        self.channels, self.size, self.root = int(channels), (int(size[0]), int(size[1])), root
        self.device = torch.device(device)
        self.workers = default_workers() if workers is None else int(workers)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.files), self.channels, *self.size))

    @property
    def nbytes(self) -> int:
        """What these images take decoded (uint8)."""
        return len(self.files) * self.channels * self.size[0] * self.size[1]

    def dim(self) -> int:
        return 4

    def _like(self, files: Sequence[Path], device: torch.device | None = None) -> ImageStream:
        return ImageStream(files, self.channels, self.size, self.root, device or self.device, self.workers)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ImageStream:
        return self._like(self.files, torch.device(device))

    def subset(self, index: Any) -> ImageStream:
        """These positions as another stream (nothing decoded): a fold's rows, say."""
        idx = torch.as_tensor(index).reshape(-1).tolist()
        return self._like([self.files[i] for i in idx])

    @staticmethod
    def cat(streams: Sequence[ImageStream]) -> ImageStream:
        return streams[0]._like([f for s in streams for f in s.files])

    def decode(self, positions: Sequence[int]) -> torch.Tensor:
        """The images at these positions, decoded (threads) onto the stream's device."""
        files = [self.files[i] for i in positions]
        X, failed = decode_all(files, self.channels, self.size, root=self.root)
        if failed:
            raise _changed(*failed[0])
        return torch.from_numpy(X).to(self.device)

    def __getitem__(self, key: Any) -> torch.Tensor:
        if isinstance(key, (int, np.integer)):
            if not -len(self) <= int(key) < len(self):
                raise IndexError(f"image {int(key)} of {len(self)}")
            return self.decode([int(key) % len(self)])[0]
        if isinstance(key, slice):
            return self.decode(range(*key.indices(len(self))))
        idx = torch.as_tensor(key).reshape(-1)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().reshape(-1)
        return self.decode(idx.tolist())

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        if dim != 0:
            raise ValueError("an image stream selects whole images (dim 0) only")
        return self[index]

    def batches(self, y: torch.Tensor, batch_size: int, shuffle: bool,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of training batches through `DataLoader` + worker processes, on the stream's device.

        The order is the in-memory path's (`torch.randperm` from the same generator), so a streamed run and an
        in-memory run of the same data take the same steps.
        """
        n = len(self)
        order = (torch.randperm(n, generator=generator, device="cpu") if shuffle else torch.arange(n)).tolist()
        dataset = _BatchDecoding(self.files, y.cpu().tolist(), self.channels, self.size, self.root)
        cuda = self.device.type == "cuda"
        done = 0  # batches yielded: a worker that dies (a fork of a busy GUI process can) hands the rest to this one
        while done * batch_size < n:
            rest = order[done * batch_size:]
            workers = min(self.workers, max(1, -(-len(rest) // batch_size)))
            loader = torch.utils.data.DataLoader(
                dataset, batch_sampler=_EpochBatches(rest, batch_size), num_workers=workers,
                collate_fn=_whole_batch, pin_memory=cuda, prefetch_factor=4 if workers else None,
                generator=torch.Generator())  # its workers' seed drawn from its own generator, not the global one
            # that dropout and augmentation draw from: a streamed run takes an in-memory run's random steps
            try:
                for xb, yb, failed in loader:
                    if failed:
                        raise _changed(*failed[0])
                    done += 1
                    yield xb.to(self.device, non_blocking=cuda), yb.to(self.device, non_blocking=cuda)
            except RuntimeError as exc:
                if not workers or "DataLoader worker" not in str(exc):
                    raise
                self.workers = 0  # the same batches, in the same order, decoded in this process from here on
