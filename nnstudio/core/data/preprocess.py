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
from nnstudio.core.data.columns import _label_keys, _natural_key, column_kind
from nnstudio.core.errors import DataError

if TYPE_CHECKING:  # pandas costs start-up time: imported where a table is first touched
    import pandas as pd


def _bool_values(series: pd.Series) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64").to_numpy()
    mapped = series.astype(str).str.strip().str.lower().map({"true": 1.0, "false": 0.0})
    return mapped.astype("float64").to_numpy()


def _fit_categorical(name: str, col: "pd.Series") -> dict[str, Any]:
    """A categorical feature's one-hot categories (sorted text), within the one-hot cap."""
    cats = sorted(col.dropna().astype(str).unique().tolist())
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
    def fit(cls, df: pd.DataFrame, target: str, task: str, feature_names: Sequence[str] | None = None,
            missing: str = "impute", kinds: dict[str, str] | None = None) -> "Preprocessor":
        import pandas as pd

        kinds = kinds or {}
        feature_names = list(feature_names) if feature_names is not None else [c for c in df.columns if c != target]
        features: list[dict[str, Any]] = []
        for name in feature_names:
            col = df[name]
            kind = kinds.get(name) or column_kind(col)
            if kind in ("numeric", "boolean"):
                values = _bool_values(col) if kind == "boolean" else pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")
                finite = values[np.isfinite(values)]
                mean = float(finite.mean()) if len(finite) else 0.0
                std = float(finite.std()) if len(finite) > 1 else 1.0
                features.append({"name": name, "kind": kind, "mean": mean, "std": std if std > 1e-12 else 1.0})
            else:
                features.append(_fit_categorical(name, col))
        classes = None
        target_mean, target_std = 0.0, 1.0
        if task in ("binary", "multiclass"):
            classes = sorted(set(_label_keys(df[target].dropna()).tolist()), key=_natural_key)
            _check_classes(target, task, classes)
        else:
            y = pd.to_numeric(df[target], errors="coerce").to_numpy(dtype="float64")
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
    def transform_features(self, df: pd.DataFrame) -> np.ndarray:
        import pandas as pd

        missing_cols = [f["name"] for f in self.features if f["name"] not in df.columns]
        if missing_cols:
            raise DataError(f"missing feature column(s): {', '.join(missing_cols)}")
        out = np.empty((len(df), self.n_features), dtype=np.float32)
        j = 0
        for f in self.features:
            col = df[f["name"]]
            if f["kind"] == "categorical":
                k = len(f["categories"])
                codes = pd.Index(f["categories"], dtype="string").get_indexer(col.astype("string"))
                block = np.zeros((len(df), k), dtype=np.float32)
                valid = codes >= 0
                block[np.nonzero(valid)[0], codes[valid]] = 1.0
                out[:, j:j + k] = block
                j += k
            else:
                if f["kind"] == "boolean":
                    values = _bool_values(col)
                else:
                    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")
                values = (values - f["mean"]) / f["std"]
                values[~np.isfinite(values)] = 0.0  # imputed with the training mean
                out[:, j] = values
                j += 1
        return out

    def transform_target(self, series: pd.Series) -> np.ndarray:
        import pandas as pd

        if self.task == "regression":
            y = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
            return ((y - self.target_mean) / self.target_std).astype(np.float32)
        codes = pd.Categorical(_label_keys(series), categories=self.classes or []).codes.astype(np.int64)
        unknown = int((codes < 0).sum())
        if unknown:
            bad = next(v for v, c in zip(series.tolist(), codes) if c < 0)
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



def _feature_values(col: pd.Series, kind: str) -> np.ndarray:
    """A numeric or boolean feature as a float array over all rows (float32 columns without a copy)."""
    import pandas as pd

    if kind == "boolean":
        return _bool_values(col)
    if isinstance(col.dtype, np.dtype) and col.dtype.kind == "f":
        return col.to_numpy()
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _category_codes(col: pd.Series, categories: list[str]) -> np.ndarray:
    """Each row's index into the fitted categories; -1 for a missing or unseen value."""
    import pandas as pd

    index = pd.Index(categories, dtype="string")
    if isinstance(col.dtype, pd.CategoricalDtype):
        lut = index.get_indexer(pd.Index(col.cat.categories).astype("string"))
        raw = col.cat.codes.to_numpy()
        return np.where(raw >= 0, lut[np.maximum(raw, 0)] if len(lut) else -1, -1)
    return index.get_indexer(col.astype("string"))


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


def _fill_float32(X: np.ndarray, cols: list[int], arrays: list[np.ndarray], src: np.ndarray, n_train: int,
                  stats: list[tuple[float, float]] | None) -> list[tuple[float, float]]:
    """Write standardised `arrays[k][src]` into `X[:, cols[k]]` for float32 columns, a few thousand rows at a
    time (cache-sized; arithmetic in float64, no float64 copy of a whole column). Without `stats`, each
    column's mean and std are fitted on the first `n_train` rows by the rules of `Preprocessor.fit`: finite
    values only, std 1 for fewer than two values or no spread. Returns the (mean, std) used."""
    if not cols:
        return []
    m = len(cols)
    idx = np.asarray(cols)
    whole = cols == list(range(X.shape[1]))

    def put(a: int, b: int, rows: np.ndarray) -> None:  # rows: (b - a, m)
        if whole:
            X[a:b] = rows
        else:
            X[a:b, idx] = rows

    def get(a: int, b: int) -> np.ndarray:
        return X[a:b] if whole else X[a:b, idx]

    def gather(a: int, b: int) -> np.ndarray:
        part = np.empty((m, b - a), dtype=np.float32)
        for k, values in enumerate(arrays):
            np.take(values, src[a:b], out=part[k], mode="clip")  # "raise" would buffer `out`
        return part

    def standardise(a: int, b: int, rows: np.ndarray) -> None:  # rows: float32, (b - a, m)
        rows = np.multiply(rows, 1.0 / std, dtype=np.float64)  # (x - mean) / std, to within an ulp of float64
        rows -= mean / std
        if not finite_only:
            rows[~np.isfinite(rows)] = 0.0  # imputed with the training mean
        put(a, b, rows)

    if stats is not None:
        mean = np.array([s[0] for s in stats])
        std = np.array([s[1] for s in stats])
        finite_only = False
        _chunk_map(lambda a, b: standardise(a, b, gather(a, b).T), len(X))
        return list(stats)

    # One pass gathers, and sums (x - shift) and its square over the training rows, shift being the first
    # training rows' mean (so the sums do not cancel); a second, exact pass only if they could have.
    head = gather(0, min(n_train, 256)).astype(np.float64)
    shift = np.array([float(np.mean(r[np.isfinite(r)])) if np.isfinite(r).any() else 0.0 for r in head])

    def first(a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        part = gather(a, b)
        put(a, b, part.T)
        finite = bool(np.isfinite(part).all())
        t = min(b, n_train) - a
        if t <= 0:
            return np.zeros(m), np.zeros(m), np.zeros(m), finite
        rows = np.subtract(part[:, :t], shift[:, None], dtype=np.float64)
        if finite:
            return rows.sum(1), np.einsum("ij,ij->i", rows, rows), np.full(m, float(t)), True
        ok = np.isfinite(rows)
        rows[~ok] = 0.0
        return rows.sum(1), np.einsum("ij,ij->i", rows, rows), ok.sum(1).astype(np.float64), False

    partial = _chunk_map(first, len(X))
    total = np.sum([p[0] for p in partial], axis=0)
    squares = np.sum([p[1] for p in partial], axis=0)
    count = np.sum([p[2] for p in partial], axis=0)
    finite_only = all(p[3] for p in partial)
    offset = np.divide(total, count, out=np.zeros(m), where=count > 0)
    mean = shift + offset
    var = np.divide(squares, count, out=np.ones(m), where=count > 0) - offset * offset
    if np.any(offset * offset > 1e6 * np.maximum(var, 1e-300)):  # the shift was far off: sum exactly
        def second(a: int, b: int) -> np.ndarray:
            rows = np.subtract(get(a, b), mean, dtype=np.float64)
            return np.where(np.isfinite(rows), rows * rows, 0.0).sum(0)

        var = np.divide(np.sum(_chunk_map(second, n_train), axis=0), count, out=np.ones(m), where=count > 0)
    std = np.sqrt(np.maximum(var, 0.0))
    mean = np.where(count > 0, mean, 0.0)
    std = np.where((count > 1) & (std > 1e-12), std, 1.0)
    _chunk_map(lambda a, b: standardise(a, b, get(a, b)), len(X))
    return [(float(mu), float(sd)) for mu, sd in zip(mean, std)]

