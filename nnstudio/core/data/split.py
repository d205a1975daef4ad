"""Train/validation/test splits and the tensors they become."""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch

from nnstudio.core.errors import DataError


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

if TYPE_CHECKING:
    from nnstudio.core.data.preprocess import Preprocessor


def split_indices(n: int, fractions: Sequence[float], seed: int = 0,
                  labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/validation/test indices by fractions; stratified by `labels` when given. Each part is sorted."""
    fr = validate_split(fractions)
    rng = np.random.default_rng(seed)

    def cut(idx: np.ndarray) -> list[np.ndarray]:
        idx = rng.permutation(idx)
        n_val = int(round(fr[1] * len(idx)))
        n_test = int(round(fr[2] * len(idx)))
        n_train = len(idx) - n_val - n_test
        return [idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:]]

    if labels is None:
        groups = [np.arange(n)]
    else:
        labels = np.asarray(labels)
        if labels.dtype.kind in "iub" and len(labels):  # one stable sort groups every class (rows ascending)
            lo, hi = int(labels.min()), int(labels.max())
            if -128 <= lo and hi < 128:
                labels = labels.astype(np.int8)  # small integers sort by radix
            elif -32768 <= lo and hi < 32768:
                labels = labels.astype(np.int16)
            order = np.argsort(labels, kind="stable")
            ordered = labels[order]
            groups = np.split(order, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1)
        else:
            groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    where = np.zeros(n, dtype=np.int8)  # which part each row went to: the parts come out sorted, no sort
    for group in groups:
        for k, piece in enumerate(cut(group)):
            if k:
                where[piece] = k
    return tuple(np.flatnonzero(where == k).astype(np.int64) for k in range(3))  # type: ignore[return-value]


def validate_split(fractions: Sequence[float]) -> tuple[float, float, float]:
    fr = [float(f) for f in fractions]
    if len(fr) == 2:
        fr.append(0.0)
    if len(fr) != 3 or any(not math.isfinite(f) or f < 0 for f in fr):
        raise DataError(f"split must be three fractions [train, validation, test], got {list(fractions)}")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise DataError(f"split fractions must add up to 1, got {sum(fr):g}")
    if fr[0] <= 0:
        raise DataError("the training fraction of the split must be above 0")
    return fr[0], fr[1], fr[2]


# ---------------------------------------------------------------------------------------------- prepared data

@dataclass
class TensorSplit:
    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def to(self, device: torch.device) -> "TensorSplit":
        if self.X.device == device:
            return self
        return TensorSplit(self.X.to(device), self.y.to(device))


@dataclass
class PreparedData:
    """Train/val/test tensors plus what made them; moves to a device as a whole."""

    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    preprocessor: Preprocessor
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.preprocessor.task

    @property
    def n_features(self) -> int:
        return self.preprocessor.n_features

    @property
    def n_outputs(self) -> int:
        return self.preprocessor.n_outputs

    @property
    def device(self) -> torch.device:
        return self.train.X.device

    @property
    def input_shape(self) -> int | tuple[int, ...]:
        """What a model takes: a table's width, or (C, H, W) for images."""
        return getattr(self.preprocessor, "input_shape", self.n_features)

    @property
    def normalization(self) -> tuple[list[float], list[float]] | None:
        """Per-channel (mean, std) that an image model folds into its input; None for tables."""
        return getattr(self.preprocessor, "normalization", None)

    #: A per-batch transform of training batches on the device (image augmentation), or None.
    augment: Any = None

    def to(self, device: torch.device) -> "PreparedData":
        out = PreparedData(self.train.to(device), self.val.to(device), self.test.to(device),
                           self.preprocessor, self.report)
        out.augment = self.augment
        return out


def iter_batches(split: TensorSplit, batch_size: int, shuffle: bool,
                 generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Whole tensors on the device, sliced by a shuffled index: no per-sample __getitem__.

    Images streamed from disk (`core.data.image_stream.ImageStream`) come through its `DataLoader` instead,
    in the same order."""
    stream = getattr(split.X, "batches", None)
    if stream is not None:
        yield from stream(split.y, batch_size, shuffle, generator)
        return
    n = len(split)
    if shuffle:
        order = torch.randperm(n, generator=generator, device="cpu").to(split.X.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield split.X.index_select(0, idx), split.y.index_select(0, idx)
    else:
        for start in range(0, n, batch_size):
            yield split.X[start:start + batch_size], split.y[start:start + batch_size]


class LazyTableDataset(torch.utils.data.Dataset):
    """A `Dataset` in the course notes' style for data too large to hold: rows are read from a .npy on disk.

    The file is memory-mapped; `__getitem__` reads one row and applies the fitted preprocessing.
    Use with `DataLoader(dataset, batch_size=..., shuffle=True)`.
    """

    def __init__(self, path: str | Path, feature_mean: np.ndarray | None = None, feature_std: np.ndarray | None = None,
                 target_dtype: torch.dtype = torch.float32):
        self.path = Path(path)
        try:
            self.array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{self.path.name}: not a plain numeric .npy file ({_first_line(exc)})") from exc
        if self.array.ndim != 2 or self.array.shape[1] < 2:
            raise DataError(f"{self.path.name}: expected a 2-D array whose last column is the target")
        self.mean = np.zeros(self.array.shape[1] - 1, np.float32) if feature_mean is None else feature_mean.astype(np.float32)
        self.std = np.ones(self.array.shape[1] - 1, np.float32) if feature_std is None else feature_std.astype(np.float32)
        self.target_dtype = target_dtype

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = np.asarray(self.array[index], dtype=np.float32)
        x = (row[:-1] - self.mean) / self.std
        return torch.from_numpy(x), torch.tensor(float(row[-1])).to(self.target_dtype)

