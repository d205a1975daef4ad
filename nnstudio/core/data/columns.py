"""Column typing: what kind each column is, the task a target implies, class label keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnstudio.core.data._common import TASKS
from nnstudio.core.errors import DataError

if TYPE_CHECKING:  # pandas costs start-up time: imported where a table is first touched
    import pandas as pd


def column_kind(series: pd.Series) -> str:
    """numeric, boolean or categorical, by what the values are (not by how they were spelled)."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        if not pd.api.types.is_integer_dtype(dtype):  # cheap test first: floats are never 0/1 flags here
            return "numeric"
        values = series.dropna()
        if len(values) and values.isin([0, 1]).all() and values.nunique() == 2:
            return "boolean"
        return "numeric"
    return _text_kind(series.dropna().unique())


def _text_kind(uniques: Any) -> str:
    """boolean when the distinct non-missing values of a non-numeric column all spell true/false."""
    import pandas as pd

    lowered = set(pd.Series(uniques).astype(str).str.strip().str.lower())
    if lowered and lowered <= {"true", "false"}:
        return "boolean"
    return "categorical"


@dataclass
class ColumnInfo:
    name: str
    kind: str
    missing: int
    unique: int


def describe_columns(df: pd.DataFrame) -> list[ColumnInfo]:
    return [ColumnInfo(str(c), column_kind(df[c]), int(df[c].isna().sum()), int(df[c].nunique(dropna=True)))
            for c in df.columns]


def infer_task(series: pd.Series) -> str:
    import pandas as pd

    values = series.dropna()
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        kind = column_kind(series)
        n_unique = values.nunique()
    else:  # one pass over a text column for both (a million labels: ~10 ms each)
        uniques = values.unique()
        kind, n_unique = _text_kind(uniques), len(uniques)
    if kind == "boolean" or n_unique == 2:
        return "binary"
    if kind == "categorical":
        return "multiclass"
    if pd.api.types.is_integer_dtype(values.dtype) or (
            pd.api.types.is_float_dtype(values.dtype) and len(values) and np.all(np.mod(values.to_numpy(), 1) == 0)):
        if n_unique <= min(20, max(2, len(values) // 10)):
            return "multiclass"
    return "regression"


def default_target(df: pd.DataFrame) -> str:
    return str(df.columns[-1])


def _label_key(value: Any) -> str:
    """Class labels are kept as strings so a checkpoint holds only plain values."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return str(value)


def _label_keys(series: pd.Series) -> np.ndarray:
    """`_label_key` of every value at once (an object array of str): per-row Python took ~2 µs a row."""
    import pandas as pd

    dtype = series.dtype
    if len(series) == 0:
        return np.array([], dtype=object)
    if pd.api.types.is_bool_dtype(dtype) and not series.isna().any():
        return np.where(series.to_numpy(dtype=bool), "True", "False").astype(object)
    if pd.api.types.is_integer_dtype(dtype) and not series.isna().any():
        return series.to_numpy(dtype=np.int64).astype(str).astype(object)
    if pd.api.types.is_float_dtype(dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (np.mod(values, 1) == 0) & (np.abs(values) < 2**53)
        out = np.empty(len(values), dtype=object)
        out[whole] = values[whole].astype(np.int64).astype(str)
        rest = np.flatnonzero(~whole)  # fractions, NaN, inf, huge values: as _label_key writes them
        if dtype == np.float32:  # as the file spelled them (0.1, not float64's 0.10000000149011612)
            out[rest] = [_label_key(float(str(v))) for v in series.to_numpy()[rest]]
        else:
            out[rest] = [_label_key(float(v)) for v in values[rest]]
        return out
    if not series.isna().any() and pd.api.types.infer_dtype(series, skipna=False) == "string":
        return series.astype(str).to_numpy(dtype=object)
    return np.array([_label_key(v) for v in series.tolist()], dtype=object)


def _natural_key(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)



def resolve_task(df: pd.DataFrame, target: str, task: str = "auto") -> str:
    import pandas as pd

    if target not in df.columns:
        raise DataError(f"target column '{target}' not found; columns are: {', '.join(map(str, df.columns))}")
    if task == "auto":
        return infer_task(df[target])
    if task not in TASKS:
        raise DataError(f"unknown task '{task}': use auto, regression, binary or multiclass")
    if task == "regression" and not pd.api.types.is_numeric_dtype(df[target].dtype):
        raise DataError(f"target '{target}' is not numeric, so it cannot be a regression target")
    return task


def _label_codes(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The distinct `_label_key`s of a column, sorted as strings, and each row's index into them (-1: missing).

    Equal to `np.unique(_label_keys(series))` without a Python string per row: the column is factorised
    first and only its distinct values are turned into keys.
    """
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        raw = series.cat.codes.to_numpy().astype(np.int64)
        value_keys = _label_keys(pd.Series(series.cat.categories))
    elif series.dtype == object:  # mixed Python values: factorize could merge True with 1, whose keys differ
        raw, uniques = pd.factorize(_label_keys(series))
        raw[series.isna().to_numpy()] = -1
        value_keys = np.asarray(uniques, dtype=object)
    else:
        raw, uniques = pd.factorize(series)  # missing values: -1
        value_keys = _label_keys(pd.Series(uniques))
    if len(value_keys) == 0:
        return np.array([], dtype=str), raw.astype(np.int64)
    keys, lut = np.unique(np.asarray(value_keys, dtype=str), return_inverse=True)
    lut = np.append(lut.reshape(-1), -1)  # raw -1 (missing) picks the last entry
    codes = raw if np.array_equal(lut[:-1], np.arange(len(lut) - 1)) else lut[raw]
    present = np.bincount(codes[codes >= 0] if (codes < 0).any() else codes, minlength=len(keys)) > 0
    if not present.all():
        remap = np.append(np.cumsum(present) - 1, -1)
        codes = remap[codes]
        keys = keys[present]
    return keys, codes.astype(np.int64, copy=False)


def _missing_count(col: pd.Series) -> int:
    if isinstance(col.dtype, np.dtype) and col.dtype.kind == "f":
        return int(np.count_nonzero(np.isnan(col.to_numpy())))
    return int(col.isna().sum())



#: Why a column is set to "ignore" when a table is loaded (the panel shows these words).
ID_LIKE = "identifier (unique in every row)"
CONSTANT = "constant (one value)"
DATE_LIKE = "dates"
_DATE_TEXT = r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$|^\d{1,2}[/.]\d{1,2}[/.]\d{4}$"


def unusable_features(df: pd.DataFrame, target: str | None = None,
                      columns: list[ColumnInfo] | None = None) -> dict[str, str]:
    """Columns that cannot be features, each with the reason: identifier-like (a distinct text value in every
    row, or distinct whole numbers rising or falling with the row), text with more distinct values than the one-hot cap, constant, or dates.

    `columns` (describe_columns of df) saves counting again. The target is never flagged."""
    import pandas as pd

    from nnstudio.core.data._common import MAX_CATEGORIES

    infos = columns if columns is not None else describe_columns(df)
    out: dict[str, str] = {}
    for info in infos:
        if info.name == target:
            continue
        col = df[info.name]
        present = len(col) - info.missing
        if info.unique <= 1:
            out[info.name] = CONSTANT
        elif pd.api.types.is_datetime64_any_dtype(col.dtype) or (info.kind == "categorical" and _looks_like_dates(col)):
            out[info.name] = DATE_LIKE
        elif info.unique == present and present >= 20 and _identifier_like(col):
            out[info.name] = ID_LIKE
        elif info.kind == "categorical" and info.unique > MAX_CATEGORIES:
            out[info.name] = f"{info.unique:,} categories (one-hot cap {MAX_CATEGORIES})"
    return out


def _identifier_like(col: pd.Series) -> bool:
    """All-distinct text, or all-distinct whole numbers that rise or fall with the row (counters, record ids);
    all-distinct measurements (floats, or integers in no order) stay features."""
    import pandas as pd

    if pd.api.types.is_float_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return False
    if pd.api.types.is_integer_dtype(col.dtype):
        return bool(col.is_monotonic_increasing or col.is_monotonic_decreasing)
    return True


def _looks_like_dates(col: pd.Series) -> bool:
    values = col.dropna()
    if not len(values) or not (values.dtype == object or hasattr(values, "str")):
        return False
    head = values.iloc[:50].astype(str).str.strip()
    return bool(head.str.match(_DATE_TEXT).all())


def feature_columns(df: pd.DataFrame, target: str, exclude: list[str] | None = None) -> list[str]:
    """The feature columns: every column but the target and `exclude`d ones; with `exclude` None, the
    columns `unusable_features` flags are left out instead. Unknown names in `exclude` are an error."""
    if exclude is None:
        exclude = list(unusable_features(df, target))
    unknown = [c for c in exclude if c not in df.columns]
    if unknown:
        raise DataError(f"excluded column(s) not found: {', '.join(unknown)}; "
                        f"columns are: {', '.join(map(str, df.columns))}")
    skip = set(exclude)
    return [str(c) for c in df.columns if c != target and c not in skip]
