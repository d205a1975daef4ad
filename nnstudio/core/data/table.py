"""The table type every part of nnstudio works on: a `polars.DataFrame`.

`read_table` returns one; `as_table` turns what a caller may hold instead (a pandas DataFrame from user code or
a test, a dict of columns) into one, so pandas is never needed by nnstudio itself.
Missing values are nulls; a NaN in a float column counts as missing too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def as_table(data: Any) -> pl.DataFrame:
    """A polars DataFrame of `data`: returned as is when it is one; a pandas DataFrame (its index dropped,
    NaN and None as null, mixed Python values as text) or a mapping of column name to values otherwise."""
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return data
    if hasattr(data, "iloc") and hasattr(data, "columns"):  # pandas, without importing it
        return _from_pandas(data)
    if isinstance(data, dict):
        return pl.DataFrame(data, strict=False)
    raise TypeError(f"expected a table (polars or pandas DataFrame), got {type(data).__name__}")


def _from_pandas(frame: Any) -> pl.DataFrame:
    import polars as pl

    columns = []
    for i, name in enumerate(frame.columns):
        col = frame.iloc[:, i]
        try:
            series = pl.from_pandas(col)
        except (TypeError, ValueError, pl.exceptions.PolarsError):  # mixed Python objects: their text, None kept
            series = pl.Series(values=[None if v is None or v != v else str(v) for v in col.tolist()], dtype=pl.String)
        if series.dtype.is_float():
            series = series.fill_nan(None)
        columns.append(series.alias(str(name)))
    return pl.DataFrame(columns)


def as_series(data: Any) -> pl.Series:
    """A polars Series of one column (a pandas Series is converted like `as_table` converts its columns)."""
    import polars as pl

    if isinstance(data, pl.Series):
        return data
    if hasattr(data, "iloc"):
        return _from_pandas(data.to_frame()).to_series()
    return pl.Series(values=list(data), strict=False)
