"""Reading a data file into a table: CSV/TSV and Parquet through polars, NumPy and tensor files by hand.

The result is a polars DataFrame (what the preprocessing, the preview and the other panels work on): missing
cells are nulls (NA spellings in text, NaN in floats included), text that is all numbers is numbers.
"""

from __future__ import annotations

import codecs
import csv
import io
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nnstudio.core.data._common import NA_SPELLINGS, TABLE_SUFFIXES
from nnstudio.core.errors import DataError
from nnstudio.core.files import regular_file

if TYPE_CHECKING:  # polars costs start-up time: imported where a table is first touched
    import polars as pl

#: A float column is kept as float32 when float32's resolution is small against the column's spread: then
#: standardising a float32 value differs from standardising the float64 one by less than ~4e-6 of a std.
FLOAT32_MAX_SCALE = 64.0
_SCHEMA_ROWS = 10_000  # rows polars looks at to type the columns (and nnstudio to pick float32)
_SAMPLE_BYTES = 1 << 18  # where nnstudio's own look at the first rows ends (~1,600 rows of 20 numbers: 8 ms; 1 MiB took 35 ms)

def _sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still UTF-8.
        if exc.start >= len(head) - 3:
            return "utf-8"
        return "latin-1"


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in ",;\t"}
        return max(counts, key=counts.get)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _ragged_row(source: Any, delimiter: str) -> str:
    """'row N has K fields, the header has M' for the first row whose width differs, or ''."""
    text = io.TextIOWrapper(source, encoding="utf-8", errors="replace", newline="") if isinstance(source, io.BytesIO) \
        else open(source, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115 - closed below
    try:
        rows = csv.reader(text, delimiter=delimiter)
        header = next(rows, None)
        if header is None:
            return ""
        for i, row in enumerate(rows, start=2):
            if row and len(row) != len(header):
                return f"line {i} has {len(row)} fields, the header has {len(header)}"
    except csv.Error:
        return ""
    finally:
        text.close()
    return ""


def _float32_columns(sample: pl.DataFrame) -> list[str]:
    """Float columns of the first rows that float32 holds finely enough for standardising (see FLOAT32_MAX_SCALE)."""
    import polars as pl

    out = []
    for name, dtype in sample.schema.items():
        if dtype != pl.Float64:
            continue
        values = sample[name].to_numpy()
        finite = values[np.isfinite(values)]
        if len(finite) < 2:
            out.append(name)
            continue
        spread = float(finite.std())
        if spread > 0 and float(np.abs(finite).max()) <= FLOAT32_MAX_SCALE * spread:
            out.append(name)
    return out


def _sample(source: Any, options: dict[str, Any]) -> pl.DataFrame:
    """The first rows (up to _SCHEMA_ROWS), parsed from the file's first 256 KiB cut at a line end: polars'
    own `n_rows` read took ~0.1 s on a 150 MB file, a seventh of reading it all. Where the cut falls inside a
    quoted field, or those bytes hold no line end, polars reads the rows itself."""
    import polars as pl

    if isinstance(source, Path):
        with open(source, "rb") as fh:
            head = fh.read(_SAMPLE_BYTES + 1)
        if len(head) > _SAMPLE_BYTES:
            cut = head.rfind(b"\n", 0, _SAMPLE_BYTES)
            if cut > 0 and b'"' not in head[:cut]:
                try:
                    return pl.read_csv(io.BytesIO(head[:cut + 1]), n_rows=_SCHEMA_ROWS, **options)
                except pl.exceptions.PolarsError:
                    pass
    sample = pl.read_csv(source, n_rows=_SCHEMA_ROWS, **options)
    if isinstance(source, io.BytesIO):
        source.seek(0)
    return sample


def _refuse_duplicate_names(head: str, delimiter: str, name: str) -> None:
    """A name twice in the header: polars would rename the second `X_duplicated_0` unsaid, and a project, a
    checkpoint and `[data] exclude` name columns, so which one is meant must never be a guess."""
    try:
        header = next(csv.reader(io.StringIO(head.lstrip("\ufeff")), delimiter=delimiter), [])
    except csv.Error:
        return  # the parser says what is wrong with such a header
    seen: dict[str, list[int]] = {}
    for i, column in enumerate(header, start=1):
        seen.setdefault(column, []).append(i)
    twice = {c: where for c, where in seen.items() if len(where) > 1 and c.strip()}
    if twice:
        shown = "; ".join(f"{c!r} in columns {', '.join(map(str, where))}" for c, where in list(twice.items())[:5])
        raise DataError(f"{name}: the header gives a column name more than once ({shown}); rename them so each "
                        "column has its own name, and open the file again")


def _read_csv(path: Path) -> pl.DataFrame:
    import polars as pl

    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if not head:
        raise DataError(f"{path.name}: the file is empty")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path.name}: this is a binary file, not a CSV/TSV table")
    encoding = _sniff_encoding(head)
    delimiter = _sniff_delimiter(head.decode(encoding, errors="replace"), path.suffix.lower())
    source: Any = path
    if encoding not in ("utf-8", "utf-8-sig"):  # polars reads UTF-8 only: small legacy files are re-encoded
        try:
            source = io.BytesIO(path.read_bytes().decode(encoding).encode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path.name}: could not decode as {encoding} ({_first_line(exc)})") from exc
    _refuse_duplicate_names(head.decode(encoding, errors="replace"), delimiter, path.name)
    options = dict(separator=delimiter, infer_schema_length=_SCHEMA_ROWS, raise_if_empty=True)
    try:
        sample = _sample(source, options)
        wide = {c: pl.Float32 for c in _float32_columns(sample)}
        try:
            frame = pl.read_csv(source, schema_overrides=wide, **options)
        except pl.exceptions.ComputeError:  # a column whose type changes past the sampled rows
            if isinstance(source, io.BytesIO):
                source.seek(0)
            frame = pl.read_csv(source, **{**options, "infer_schema_length": None})
    except pl.exceptions.NoDataError as exc:
        raise DataError(f"{path.name}: the file is empty") from exc
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError) as exc:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        where = _ragged_row(source, delimiter)
        raise DataError(f"{path.name}: could not parse as a table ({where or _first_line(exc)}); "
                        "check the separator and quoting") from exc
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise DataError(f"{path.name}: could not read ({_first_line(exc)})") from exc
    if frame.width and frame.columns[0].startswith("\ufeff"):
        frame = frame.rename({frame.columns[0]: frame.columns[0][1:]})
    frame = _null_na_spellings(frame, decimal_comma=delimiter == ";")
    return _finish(frame, path.name)


def _null_na_spellings(frame: pl.DataFrame, decimal_comma: bool = False) -> pl.DataFrame:
    """Text cells spelling a missing value (any casing, padded) become null; a text column whose other cells
    are all numbers becomes numeric (with decimal commas where the file's separator is ';').

    Decided on each column's distinct values, so a clean column of a million labels costs one `unique`.
    """
    import polars as pl

    fixes = []
    for name, dtype in frame.schema.items():
        if dtype not in (pl.String, pl.Categorical):
            continue
        col = frame[name].cast(pl.String)
        uniques = col.unique().drop_nulls()
        spelled = uniques.filter(uniques.str.strip_chars().str.to_lowercase().is_in(list(NA_SPELLINGS)))
        rest = uniques.filter(~uniques.is_in(spelled.implode()))
        expr = pl.col(name).cast(pl.String)
        if len(spelled):
            expr = pl.when(expr.is_in(spelled.implode())).then(None).otherwise(expr)
        if len(rest):
            text = rest.str.strip_chars()
            for comma in (False, True) if decimal_comma else (False,):
                candidate = text.str.replace(",", ".", literal=True) if comma else text
                if candidate.cast(pl.Float64, strict=False).null_count() == 0:
                    cleaned = expr.str.strip_chars()
                    expr = (cleaned.str.replace(",", ".", literal=True) if comma else cleaned).cast(pl.Float64)
                    break
        if len(spelled) or not expr.meta.eq(pl.col(name).cast(pl.String)):
            fixes.append(expr.alias(name))
    return frame.with_columns(fixes) if fixes else frame


def _nested_columns(schema: Any) -> list[str]:
    return [name for name, dtype in schema.items() if dtype.is_nested()]


def _read_parquet(path: Path) -> pl.DataFrame:
    import polars as pl

    try:
        schema = pl.read_parquet_schema(path)
        nested = _nested_columns(schema)
        if nested:
            raise DataError(f"{path.name}: column(s) {', '.join(nested)} hold lists or structs, which cannot be "
                            "model inputs; flatten them or save the table without them")
        frame = pl.read_parquet(path)
    except DataError:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise DataError(f"{path.name}: not a readable Parquet file ({_first_line(exc)})") from exc
    return _finish(_null_na_spellings(frame), path.name)


def _finish(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """Duplicate column names refused; NaN in a float column made null (NaN is one of the NA spellings);
    each column in one contiguous buffer."""
    import polars as pl

    if len(set(frame.columns)) != frame.width:
        dupes = sorted({c for c in frame.columns if frame.columns.count(c) > 1})
        raise DataError(f"{name}: duplicate column name(s) {', '.join(dupes)}")
    nan = [c.name for c in frame.get_columns() if c.dtype.is_float() and c.is_nan().any()]
    if nan:
        frame = frame.with_columns(pl.col(nan).fill_nan(None))
    # One buffer per column (a parallel CSV read leaves one chunk per thread batch), so `prepare` reads the
    # numbers without a copy; column by column, each old column freed as its copy is made.
    if all(c.n_chunks() == 1 for c in frame.get_columns()):
        return frame
    columns = frame.get_columns()
    del frame
    for i, column in enumerate(columns):
        columns[i] = column.rechunk()
        del column
    return pl.DataFrame(columns)


def _frame_from_arrays(x: Any, y: Any, name: str) -> pl.DataFrame:
    import polars as pl

    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise DataError(f"{name}: X must be a 2-D array (rows × features), got shape {tuple(x.shape)}")
    columns = {f"x{i}": x[:, i] for i in range(x.shape[1])}
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{name}: y must be 1-D with one value per row of X ({len(x)}), got shape {tuple(y.shape)}")
        columns["y"] = y
    return _finish(pl.DataFrame(columns), name)
def _read_npy(path: Path) -> pl.DataFrame:
    import polars as pl

    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                keys = set(archive.files)
                if "X" not in keys:
                    raise DataError(f"{path.name}: an .npz must hold an array named 'X' (and 'y'); it holds {sorted(keys)}")
                return _frame_from_arrays(archive["X"], archive["y"] if "y" in keys else None, path.name)
        arr = np.load(path, allow_pickle=False)
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):  # numpy's message suggests the unsafe way out; nnstudio never takes it
            raise DataError(f"{path.name}: holds Python objects (pickled data), which nnstudio never loads; "
                            "save plain numeric arrays") from exc
        raise DataError(f"{path.name}: not a plain numeric NumPy file ({_first_line(exc)})") from exc
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged header fails anywhere in numpy's own parser (even tokenize)
        raise DataError(f"{path.name}: not a readable NumPy file ({_first_line(exc)})") from exc
    if arr.dtype.names:
        return _finish(pl.DataFrame({str(f): arr[f] for f in arr.dtype.names}), path.name)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise DataError(f"{path.name}: a .npy must be a 2-D array whose last column is the target, got shape {arr.shape}")
    return _frame_from_arrays(arr[:, :-1], arr[:, -1], path.name)


def _read_tensors(path: Path) -> pl.DataFrame:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's message suggests weights_only=False; never do that
        raise DataError(f"{path.name}: refused: not a plain tensor file (it holds Python objects, or is not a "
                        "PyTorch file at all); only tensors X and y are loaded") from exc
    except Exception as exc:
        raise DataError(f"{path.name}: not a safe tensor file ({_first_line(exc)})") from exc
    if isinstance(obj, dict) and "X" in obj:
        x, y = obj["X"], obj.get("y")
        if not isinstance(x, torch.Tensor) or (y is not None and not isinstance(y, torch.Tensor)):
            raise DataError(f"{path.name}: 'X' and 'y' must be tensors")
        return _frame_from_arrays(x.detach().cpu().numpy(), None if y is None else y.detach().cpu().numpy(), path.name)
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(t, torch.Tensor) for t in obj):
        return _frame_from_arrays(obj[0].cpu().numpy(), obj[1].cpu().numpy(), path.name)
    if isinstance(obj, dict) and (obj.get("format") == "nnstudio" or "state_dict" in obj):
        raise DataError(f"{path.name}: this is a model checkpoint, not a dataset; open it as a checkpoint")
    raise DataError(f"{path.name}: a tensor dataset must be a dict with tensors 'X' and 'y'")


def read_table(path: str | Path) -> pl.DataFrame:
    """Read any supported file into a polars DataFrame; raise DataError naming the file and the problem.

    Only regular files are opened: a FIFO, device or socket named like a table would block or never end.
    """
    path = regular_file(path, DataError, "data file")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path.name}: unsupported file type '{suffix or '(none)'}'; "
                        "open CSV/TSV, Parquet, .npy/.npz or a .pt holding tensors X and y")
    try:
        if suffix in (".parquet", ".pq"):
            df = _read_parquet(path)
        elif suffix in (".npy", ".npz"):
            df = _read_npy(path)
        elif suffix in (".pt", ".pth"):
            df = _read_tensors(path)
        else:
            df = _read_csv(path)
    except MemoryError as exc:
        raise DataError(f"{path.name}: too large to load into memory") from exc
    except DataError:
        raise
    except Exception as exc:  # a damaged file reaches parsers' own errors (zipfile, numpy, polars): still one sentence
        raise DataError(f"{path.name}: not a readable {suffix.lstrip('.')} file ({_first_line(exc)})") from exc
    if df.width < 2:
        raise DataError(f"{path.name}: found {df.width} column(s); a dataset needs at least one feature and a target")
    if df.height == 0:
        raise DataError(f"{path.name}: the table has no rows")
    return df
