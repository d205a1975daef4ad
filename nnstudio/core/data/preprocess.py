"""Preprocessing fitted on the training rows: standardise numbers, one-hot categories, class indices.

Everything it learns lives in a `Preprocessor` that serialises to plain values, so a checkpoint can turn a
raw row into model input, and a model output into a label or a value, later.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from nnstudio.core.data._common import MAX_CATEGORIES, MAX_CLASSES
from nnstudio.core.data.columns import _label_codes, _natural_key, column_kind, is_text
from nnstudio.core.data.table import as_series, as_table
from nnstudio.core.errors import DataError

if TYPE_CHECKING:  # polars costs start-up time: imported where a table is first touched
    import polars as pl


def _bool_values(series: pl.Series) -> np.ndarray:
    """A boolean column as 1.0/0.0 (NaN where missing); text spelling true/false in any case counts."""
    import polars as pl

    series = as_series(series)
    if series.dtype == pl.Boolean or series.dtype.is_numeric():
        return series.cast(pl.Float64).to_numpy()
    words = series.cast(pl.String).str.strip_chars().str.to_lowercase()
    return words.replace_strict({"true": 1.0, "false": 0.0}, default=None, return_dtype=pl.Float64).to_numpy()


def _numbers(series: pl.Series) -> np.ndarray:
    """A column as float64 numbers, NaN where missing or not a number (text that spells a number counts)."""
    import polars as pl

    series = as_series(series)
    if series.dtype == pl.Boolean or series.dtype.is_numeric():
        return series.cast(pl.Float64).to_numpy()
    if is_text(series.dtype):
        return series.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).to_numpy()
    return np.full(len(series), np.nan)


def _text(series: pl.Series) -> pl.Series:
    import polars as pl

    return as_series(series).cast(pl.String)


def _fit_categorical(name: str, col: pl.Series) -> dict[str, Any]:
    """A categorical feature's one-hot categories (sorted text), within the one-hot cap."""
    cats = sorted(_text(col).drop_nulls().unique().to_list())
    if len(cats) > MAX_CATEGORIES:
        raise DataError(f"column '{name}' has {len(cats)} distinct values, above the one-hot cap of "
                        f"{MAX_CATEGORIES}; set its role to ignore (in the TOML: [data] exclude) or use it as the target")
    return {"name": name, "kind": "categorical", "categories": cats}


def _check_classes(target: str, task: str, classes: list[str]) -> None:
    """A classification target needs 2 (binary) or 2..MAX_CLASSES classes in the training split."""
    if task == "binary" and len(classes) != 2:
        raise DataError(f"target '{target}' has {len(classes)} classes in the training split; binary needs 2")
    if len(classes) < 2:
        raise DataError(f"target '{target}' has a single class in the training split; nothing to learn")
    if len(classes) > MAX_CLASSES:
        raise DataError(f"target '{target}' has {len(classes)} classes; above {MAX_CLASSES}, "
                        "choose regression or another target")


class Preprocessor:
    """Standardise numeric features, one-hot encode categoricals, map class labels to 0..K-1.

    Fitted on the training split only. `to_dict()`/`from_dict()` round-trip through plain values.
    Missing feature values are imputed (training mean; all-zero one-hot) unless the policy is "drop".
    """

    def __init__(self, target: str, task: str, features: list[dict[str, Any]], classes: list[str] | None,
                 target_mean: float = 0.0, target_std: float = 1.0, missing: str = "impute"):
        self.target = target
        self.task = task
        self.features = features
        self.classes = classes
        self.target_mean = target_mean
        self.target_std = target_std
        self.missing = missing

    # -- fitting
    @classmethod
    def fit(cls, df: Any, target: str, task: str, feature_names: Sequence[str] | None = None,
            missing: str = "impute", kinds: dict[str, str] | None = None) -> "Preprocessor":
        df = as_table(df)
        kinds = kinds or {}
        feature_names = list(feature_names) if feature_names is not None else [c for c in df.columns if c != target]
        features: list[dict[str, Any]] = []
        for name in feature_names:
            col = df[name]
            kind = kinds.get(name) or column_kind(col)
            if kind in ("numeric", "boolean"):
                values = _bool_values(col) if kind == "boolean" else _numbers(col)
                finite = values[np.isfinite(values)]
                mean = float(finite.mean()) if len(finite) else 0.0
                std = float(finite.std()) if len(finite) > 1 else 1.0
                features.append({"name": name, "kind": kind, "mean": mean, "std": std if std > 1e-12 else 1.0})
            else:
                features.append(_fit_categorical(name, col))
        classes = None
        target_mean, target_std = 0.0, 1.0
        if task in ("binary", "multiclass"):
            classes = sorted(_label_codes(df[target])[0].tolist(), key=_natural_key)
            _check_classes(target, task, classes)
        else:
            y = _numbers(df[target])
            y = y[np.isfinite(y)]
            if len(y) == 0:
                raise DataError(f"target '{target}' has no numeric values; regression needs numbers")
            target_mean = float(y.mean())
            target_std = float(y.std()) if len(y) > 1 and y.std() > 1e-12 else 1.0
        return cls(target, task, features, classes, target_mean, target_std, missing)

    # -- shape
    @property
    def n_features(self) -> int:
        return sum(len(f["categories"]) if f["kind"] == "categorical" else 1 for f in self.features)

    @property
    def n_outputs(self) -> int:
        if self.task == "multiclass":
            return len(self.classes or [])
        return 1

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def encoded_names(self) -> list[str]:
        names = []
        for f in self.features:
            if f["kind"] == "categorical":
                names += [f"{f['name']}={c}" for c in f["categories"]]
            else:
                names.append(f["name"])
        return names

    # -- transforms
    def transform_features(self, df: Any) -> np.ndarray:
        df = as_table(df)
        missing_cols = [f["name"] for f in self.features if f["name"] not in df.columns]
        if missing_cols:
            raise DataError(f"missing feature column(s): {', '.join(missing_cols)}")
        out = np.empty((len(df), self.n_features), dtype=np.float32)
        j = 0
        for f in self.features:
            col = df[f["name"]]
            if f["kind"] == "categorical":
                k = len(f["categories"])
                codes = _category_codes(col, f["categories"])
                out[:, j:j + k] = 0.0
                valid = np.flatnonzero(codes >= 0)
                out[valid, j + codes[valid]] = 1.0
                j += k
            else:
                values = _bool_values(col) if f["kind"] == "boolean" else _numbers(col)
                values = (values - f["mean"]) / f["std"]
                values[~np.isfinite(values)] = 0.0  # imputed with the training mean
                out[:, j] = values
                j += 1
        return out

    def transform_target(self, series: pl.Series) -> np.ndarray:
        series = as_series(series)
        if self.task == "regression":
            y = _numbers(series)
            return ((y - self.target_mean) / self.target_std).astype(np.float32)
        keys, raw = _label_codes(series)
        position = {c: i for i, c in enumerate(self.classes or [])}
        lut = np.append(np.array([position.get(k, -1) for k in keys.tolist()], dtype=np.int64), -1)
        codes = lut[raw]
        unknown = int((codes < 0).sum())
        if unknown:
            bad = series.to_list()[int(np.flatnonzero(codes < 0)[0])]
            raise DataError(f"target '{self.target}': {unknown} row(s) have a class not seen in training, e.g. {bad!r}")
        return codes

    def decode(self, outputs: torch.Tensor) -> list[Any]:
        """Model outputs to labels (classification) or values in the target's units (regression)."""
        outputs = outputs.detach().float().cpu()
        if self.task == "regression":
            return (outputs.reshape(-1) * self.target_std + self.target_mean).tolist()
        if self.task == "binary":
            idx = (outputs.reshape(-1) > 0).long().tolist()
        else:
            idx = outputs.argmax(dim=1).tolist()
        return [self.classes[i] for i in idx]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "task": self.task, "features": self.features, "classes": self.classes,
                "target_mean": self.target_mean, "target_std": self.target_std, "missing": self.missing}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocessor":
        return cls(d["target"], d["task"], [dict(f) for f in d["features"]],
                   None if d.get("classes") is None else list(d["classes"]),
                   float(d.get("target_mean", 0.0)), float(d.get("target_std", 1.0)), d.get("missing", "impute"))



def _feature_values(col: pl.Series, kind: str) -> np.ndarray:
    """A numeric or boolean feature as a float array over all rows (a float32 column as float32, NaN where missing)."""
    import polars as pl

    if kind == "boolean":
        return _bool_values(col)
    if col.dtype == pl.Float32:
        return col.to_numpy()
    return _numbers(col)


def _category_codes(col: pl.Series, categories: list[str]) -> np.ndarray:
    """Each row's index into the fitted categories; -1 for a missing or unseen value."""
    import polars as pl

    if not categories:
        return np.full(len(col), -1, dtype=np.int64)
    text = _text(col)
    known = text.is_in(categories)  # unseen values become null before the Enum cast, which refuses them
    codes = text.set(~known, None).cast(pl.Enum(categories)).to_physical().cast(pl.Int64).fill_null(-1)
    return codes.to_numpy()


_CHUNK_ROWS = 1 << 13


def _chunk_map(fn: Any, n: int) -> list[Any]:
    """`fn(a, b)` over row chunks of [0, n), in order; on worker threads for large n (numpy releases the GIL
    in take, astype, arithmetic and sums, so chunks run in parallel)."""
    chunks = [(a, min(a + _CHUNK_ROWS, n)) for a in range(0, n, _CHUNK_ROWS)]
    workers = min(os.cpu_count() or 1, 4, len(chunks) // 4)
    if workers < 2:
        return [fn(a, b) for a, b in chunks]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda ab: fn(*ab), chunks))


def _fill_float32(X: np.ndarray, cols: list[int], arrays: list[np.ndarray], src: np.ndarray,
                  stats: list[tuple[float, float]]) -> None:
    """Write standardised `arrays[k][src]` into `X[:, cols[k]]` for float32 columns, a few thousand rows at a
    time (cache-sized; arithmetic in float64, no float64 copy of a whole column); missing values become 0,
    the training mean."""
    if not cols:
        return
    m = len(cols)
    idx = np.asarray(cols)
    whole = cols == list(range(X.shape[1]))
    mean = np.array([s[0] for s in stats])
    std = np.array([s[1] for s in stats])

    def fill(a: int, b: int) -> None:
        part = np.empty((m, b - a), dtype=np.float32)
        for k, values in enumerate(arrays):
            np.take(values, src[a:b], out=part[k], mode="clip")  # "raise" would buffer `out`
        rows = np.multiply(part.T, 1.0 / std, dtype=np.float64)  # (x - mean) / std, to within an ulp of float64
        rows -= mean / std
        rows[~np.isfinite(rows)] = 0.0  # imputed with the training mean
        if whole:
            X[a:b] = rows
        else:
            X[a:b, idx] = rows

    _chunk_map(fill, len(X))
