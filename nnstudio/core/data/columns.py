"""Column typing: what kind each column is, the task a target implies, class label keys.

Every function takes polars columns (`pl.Series`) of a table from `read_table` or `as_table`; a missing value
is a null, and a NaN in a float column counts as missing too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnstudio.core.data._common import TASKS
from nnstudio.core.data.table import as_series, as_table
from nnstudio.core.errors import DataError

if TYPE_CHECKING:  # polars costs start-up time: imported where a table is first touched
    import polars as pl


def is_text(dtype: Any) -> bool:
    import polars as pl

    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, (pl.Enum, pl.Categorical))


def is_number(dtype: Any) -> bool:
    """Numbers a regression target or a numeric feature can be (booleans count, as 0/1)."""
    import polars as pl

    return dtype.is_numeric() or dtype == pl.Boolean


def present(series: pl.Series) -> pl.Series:
    """The non-missing values of a column (nulls and, in float columns, NaN left out)."""
    values = series.drop_nulls()
    return values.drop_nans() if values.dtype.is_float() else values


def missing_mask(series: pl.Series) -> np.ndarray:
    """True where a value is missing (null, or NaN in a float column)."""
    mask = series.is_null()
    if series.dtype.is_float():
        mask = mask | series.is_nan().fill_null(True)
    return mask.to_numpy()


def column_kind(series: pl.Series) -> str:
    """numeric, boolean or categorical, by what the values are (not by how they were spelled)."""
    import polars as pl
    series = as_series(series)

    dtype = series.dtype
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        if not dtype.is_integer():  # cheap test first: floats are never 0/1 flags here
            return "numeric"
        values = series.drop_nulls()
        if len(values) and values.is_in([0, 1]).all() and values.n_unique() == 2:
            return "boolean"
        return "numeric"
    if not is_text(dtype):  # dates, times, anything else: not a number, so a category (or flagged: dates)
        return "categorical"
    return _text_kind(series.drop_nulls().unique())


def _text_kind(uniques: Any) -> str:
    """boolean when the distinct non-missing values of a non-numeric column all spell true/false."""
    import polars as pl

    if not isinstance(uniques, pl.Series):
        uniques = pl.Series([str(u) for u in uniques], dtype=pl.String)
    lowered = uniques.cast(pl.String).str.strip_chars().str.to_lowercase().unique()
    if 0 < len(lowered) <= 2 and set(lowered.to_list()) <= {"true", "false"}:
        return "boolean"
    return "categorical"


@dataclass
class ColumnInfo:
    name: str
    kind: str
    missing: int
    unique: int


def describe_columns(df: Any) -> list[ColumnInfo]:
    df = as_table(df)
    return [ColumnInfo(str(c.name), column_kind(c), _missing_count(c), int(present(c).n_unique()))
            for c in df.get_columns()]


def infer_task(series: pl.Series) -> str:
    series = as_series(series)
    values = present(series)
    if is_number(series.dtype):
        kind = column_kind(series)
        n_unique = values.n_unique()
    else:  # one pass over a text column for both
        uniques = values.unique()
        kind, n_unique = _text_kind(uniques), len(uniques)
    if kind == "boolean" or n_unique == 2:
        return "binary"
    if kind == "categorical":
        return "multiclass"
    if values.dtype.is_integer() or (values.dtype.is_float() and len(values) and bool((values % 1 == 0).all())):
        if n_unique <= min(20, max(2, len(values) // 10)):
            return "multiclass"
    return "regression"


def default_target(df: Any) -> str:
    return str(as_table(df).columns[-1])


def _label_key(value: Any) -> str:
    """Class labels are kept as strings so a checkpoint holds only plain values."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return str(value)


def _label_keys(series: pl.Series) -> np.ndarray:
    """`_label_key` of every value at once (an object array of str): per-row Python took ~2 µs a row."""
    import polars as pl
    series = as_series(series)

    dtype = series.dtype
    if len(series) == 0:
        return np.array([], dtype=object)
    nulls = series.null_count()
    if dtype == pl.Boolean and not nulls:
        return np.where(series.to_numpy(), "True", "False").astype(object)
    if dtype.is_integer() and not nulls:
        return series.to_numpy().astype(np.int64).astype(str).astype(object)
    if dtype.is_float():
        values = series.cast(pl.Float64).to_numpy()  # nulls as NaN
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (np.mod(values, 1) == 0) & (np.abs(values) < 2**53)
        out = np.empty(len(values), dtype=object)
        out[whole] = values[whole].astype(np.int64).astype(str)
        rest = np.flatnonzero(~whole)  # fractions, NaN, inf, huge values: as _label_key writes them
        if dtype == pl.Float32:  # as the file spelled them (0.1, not float64's 0.10000000149011612)
            out[rest] = [_label_key(float(str(v))) for v in series.to_numpy()[rest]]
        else:
            out[rest] = [_label_key(float(v)) for v in values[rest]]
        return out
    if is_text(dtype) and not nulls:
        return series.cast(pl.String).to_numpy().astype(object)
    return np.array([_label_key(v) for v in series.to_list()], dtype=object)


def _natural_key(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def resolve_task(df: Any, target: str, task: str = "auto") -> str:
    df = as_table(df)
    if target not in df.columns:
        raise DataError(f"target column '{target}' not found; columns are: {', '.join(map(str, df.columns))}")
    if task == "auto":
        return infer_task(df[target])
    if task not in TASKS:
        raise DataError(f"unknown task '{task}': use auto, regression, binary or multiclass")
    if task == "regression" and not is_number(df[target].dtype):
        raise DataError(f"target '{target}' is not numeric, so it cannot be a regression target")
    return task


def _label_codes(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The distinct `_label_key`s of a column, sorted as strings, and each row's index into them (-1: missing).

    Equal to `np.unique(_label_keys(series))` without a Python string per row: only the column's distinct
    values are turned into keys, and polars maps the rows onto them.
    """
    import polars as pl

    series = as_series(series)
    if series.dtype.is_float():
        series = series.fill_nan(None)
    if is_text(series.dtype):
        text = series.cast(pl.String)
        keys = np.unique(text.drop_nulls().unique().to_numpy().astype(str))
        codes = text.cast(pl.Enum(keys.tolist())).to_physical().cast(pl.Int64).fill_null(-1).to_numpy()
        return keys, codes
    if series.dtype in (pl.Null, pl.Object) or series.dtype.is_nested():
        raw_keys = _label_keys(series)
        missing = series.is_null().to_numpy()
        keys, codes = np.unique(raw_keys.astype(str), return_inverse=True)
        codes = codes.reshape(-1).astype(np.int64)
        codes[missing] = -1
        keep = np.bincount(codes[codes >= 0], minlength=len(keys)) > 0
        remap = np.append(np.cumsum(keep) - 1, -1)
        return keys[keep], remap[codes]
    uniques = series.drop_nulls().unique().sort()
    raw = (series.rank("dense") - 1).cast(pl.Int64).fill_null(-1).to_numpy()  # index into the sorted distinct values
    if len(uniques) == 0:
        return np.array([], dtype=str), raw
    keys, lut = np.unique(_label_keys(uniques).astype(str), return_inverse=True)
    lut = np.append(lut.reshape(-1), -1)  # raw -1 (missing) picks the last entry
    codes = raw if np.array_equal(lut[:-1], np.arange(len(lut) - 1)) else lut[raw]
    return keys, codes.astype(np.int64, copy=False)


def _missing_count(col: pl.Series) -> int:
    col = as_series(col)
    n = col.null_count()
    if col.dtype.is_float():
        n += int(col.is_nan().sum() or 0)
    return int(n)


#: Why a column is set to "ignore" when a table is loaded (the panel shows these words).
ID_LIKE = "identifier (unique in every row)"
CONSTANT = "constant (one value)"
DATE_LIKE = "dates"
_DATE_TEXT = r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$|^\d{1,2}[/.]\d{1,2}[/.]\d{4}$"


def unusable_features(df: Any, target: str | None = None,
                      columns: list[ColumnInfo] | None = None) -> dict[str, str]:
    """Columns that cannot be features, each with the reason: identifier-like (a distinct text value in every
    row, or distinct whole numbers rising or falling with the row), text with more distinct values than the one-hot cap, constant, or dates.

    `columns` (describe_columns of df) saves counting again. The target is never flagged."""
    from nnstudio.core.data._common import MAX_CATEGORIES

    df = as_table(df)
    infos = columns if columns is not None else describe_columns(df)
    out: dict[str, str] = {}
    for info in infos:
        if info.name == target:
            continue
        col = df[info.name]
        n_present = len(col) - info.missing
        if info.unique <= 1:
            out[info.name] = CONSTANT
        elif col.dtype.is_temporal() or (info.kind == "categorical" and _looks_like_dates(col)):
            out[info.name] = DATE_LIKE
        elif info.unique == n_present and n_present >= 20 and _identifier_like(col):
            out[info.name] = ID_LIKE
        elif info.kind == "categorical" and info.unique > MAX_CATEGORIES:
            out[info.name] = f"{info.unique:,} categories (one-hot cap {MAX_CATEGORIES})"
    return out


def _identifier_like(col: pl.Series) -> bool:
    """All-distinct text, or all-distinct whole numbers that rise or fall with the row (counters, record ids);
    all-distinct measurements (floats, or integers in no order) stay features."""
    import polars as pl

    if col.dtype.is_float() or col.dtype == pl.Boolean:
        return False
    if col.dtype.is_integer():
        return not col.null_count() and bool(col.is_sorted() or col.is_sorted(descending=True))
    return True


def _looks_like_dates(col: pl.Series) -> bool:
    import polars as pl

    if not is_text(col.dtype):
        return False
    head = col.drop_nulls().head(50)
    if not len(head):
        return False
    return bool(head.cast(pl.String).str.strip_chars().str.contains(_DATE_TEXT).all())


def feature_columns(df: Any, target: str, exclude: list[str] | None = None) -> list[str]:
    """The feature columns: every column but the target and `exclude`d ones; with `exclude` None, the
    columns `unusable_features` flags are left out instead. Unknown names in `exclude` are an error."""
    df = as_table(df)
    automatic_flags = None
    if exclude is None:
        automatic_flags = unusable_features(df, target)
        exclude = list(automatic_flags)
    unknown = [c for c in exclude if c not in df.columns]
    if unknown:
        raise DataError(f"excluded column(s) not found: {', '.join(unknown)}; "
                        f"columns are: {', '.join(map(str, df.columns))}")
    skip = set(exclude)
    kept = [str(c) for c in df.columns if c != target and c not in skip]
    if not kept:
        raise no_features_error(df, target, "listed in [data] exclude" if automatic_flags is None else None,
                                automatic_flags)
    return kept


def no_features_error(df: Any, target: str, chosen: str | None = "ignored",
                      flags: dict[str, str] | None = None) -> DataError:
    """Nothing left to train on: each column left out, why, and how to keep it (file and window alike).
    `chosen`: the reason for a column left out by the user's choice rather than a flag."""
    df = as_table(df)
    others = [str(c) for c in df.columns if c != target]
    if not others:
        return DataError(f"the table holds only the target column {target!r}: add columns to learn from")
    flags = flags if flags is not None else unusable_features(df, target)
    reasons = [f"{c!r} ({'flagged: ' + flags[c] if c in flags else chosen or 'left out'})" for c in others]
    shown = ", ".join(reasons[:12]) + (f" and {len(reasons) - 12} more" if len(reasons) > 12 else "")
    return DataError(f"no feature columns left besides the target {target!r}: every other column is left out: "
                     f"{shown}. To keep one, make it a feature: in a run config list in [data] exclude only the "
                     "columns to leave out (exclude = [] keeps them all); in the window set its role to feature in "
                     "the dataset panel's Columns tab")
