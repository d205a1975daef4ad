"""Tables in, tensors out: reading files, inferring column types and the task, preprocessing, splits.

Everything preprocessing learns lives in a `Preprocessor` that serialises to plain values, so a
checkpoint can turn a raw row into model input, and a model output into a label or a value, later.
"""

from __future__ import annotations

import codecs
import csv
import functools
import math
import os
import pickle
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch

from nnstudio.core.errors import DataError

if TYPE_CHECKING:  # pandas and pyarrow cost ~0.35 s of start-up: imported where a table is first touched
    import pandas as pd

TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq", ".npy", ".npz", ".pt", ".pth"}
TASKS = ("regression", "binary", "multiclass")
MAX_CATEGORIES = 50  # one-hot cap per categorical feature
MAX_CLASSES = 200
MISSING_POLICIES = ("impute", "drop")


# ---------------------------------------------------------------------------------------------- reading

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


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path.name}: this is a binary file, not a CSV/TSV table")
    encoding = _sniff_encoding(head)
    delimiter = _sniff_delimiter(head.decode(encoding, errors="replace"), path.suffix.lower())
    if encoding in ("utf-8", "utf-8-sig"):
        df = _read_csv_streaming(path, delimiter, head)
        if df is not None:
            return df
    try:
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding="utf8" if encoding == "utf-8-sig" else encoding,
                                           block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
        )
        df = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
        _release_memory()
        if encoding == "utf-8-sig" and len(df.columns) and str(df.columns[0]).startswith("\ufeff"):
            df = df.rename(columns={df.columns[0]: str(df.columns[0])[1:]})
        return df
    except Exception as arrow_exc:  # arrow is strict about ragged rows; pandas names the line
        try:
            return pd.read_csv(path, sep=delimiter, encoding=encoding)
        except pd.errors.ParserError as exc:
            raise DataError(f"{path.name}: could not parse as a table ({_first_line(exc)})") from exc
        except (UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{path.name}: could not read ({_first_line(exc) or _first_line(arrow_exc)})") from exc


class _ByteRange:
    """A file-like view of bytes [start, end) of a file, for one of the readers that share a large CSV."""

    def __init__(self, path: Path, start: int, end: int):
        self._fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._fh.seek(start)
        self._left = end - start

    @property
    def closed(self) -> bool:
        return self._fh.closed

    def read(self, n: int | None = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        if n <= 0:
            return b""
        data = self._fh.read(n)
        self._left -= len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._fh.close()


#: A float column is kept as float32 when float32's resolution is small against the column's spread: then
#: standardising a float32 value differs from standardising the float64 one by less than ~4e-6 of a std.
FLOAT32_MAX_SCALE = 64.0
_STREAM_BLOCK = 1 << 20
_RANGE_BYTES = 16 << 20  # a file is read by one more reader (up to one per core, 4 at most) per this many bytes


def _float_storage(values: np.ndarray) -> type:
    finite = values[np.isfinite(values)]
    if len(finite) < 2:
        return np.float32
    spread = float(finite.std())
    return np.float32 if spread > 0 and float(np.abs(finite).max()) <= FLOAT32_MAX_SCALE * spread else np.float64


class _RangeColumns:
    """What one reader collects from its byte range. float32 columns go straight into this range's region
    of the shared block (rows `row_of[i]`, columns [offset, offset + capacity)), and past the region into
    growable spill arrays; float64 columns into growable arrays; every other column as arrow chunks,
    converted once at the end."""

    def __init__(self, block: np.ndarray, row_of: dict[int, int], offset: int, capacity: int,
                 wide: list[int], n_columns: int):
        self.block, self.row_of, self.offset, self.capacity = block, row_of, offset, capacity
        self.arrays = {i: np.empty(max(capacity, 1024), dtype=np.float64) for i in wide}
        self.spill: dict[int, np.ndarray] = {}
        self.chunks: list[list[Any]] = [[] for _ in range(n_columns)]
        self.rows = 0
        self.in_region = 0  # rows in the block region; the rest are in `spill`

    @staticmethod
    def _put(arrays: dict[int, np.ndarray], i: int, start: int, values: np.ndarray, dtype: type) -> None:
        arr = arrays.get(i)
        if arr is None:
            arr = arrays[i] = np.empty(max(2 * len(values), 1024), dtype=dtype)
        end = start + len(values)
        if end > len(arr):
            arr.resize(max(end, int(len(arr) * 1.5)), refcheck=False)  # realloc: remaps, no copy
        arr[start:end] = values

    def add(self, batch: Any) -> None:
        n = batch.num_rows
        if not n:
            return
        end = self.rows + n
        fits = end <= self.capacity and self.in_region == self.rows
        for i, column in enumerate(batch.columns):
            if i in self.row_of:
                values = column.to_numpy(zero_copy_only=False)
                if fits:
                    self.block[self.row_of[i], self.offset + self.rows:self.offset + end] = values
                else:
                    self._put(self.spill, i, self.rows - self.in_region, values, np.float32)
            elif i in self.arrays:
                self._put(self.arrays, i, self.rows, column.to_numpy(zero_copy_only=False), np.float64)
            else:
                self.chunks[i].append(column)
        if fits:
            self.in_region = end
        self.rows = end


def _drop_pages(array: np.ndarray, start: int, stop: int) -> None:
    """Hand the pages wholly inside bytes [start, stop) of `array`'s buffer back to the system (Linux): they
    held data that moved, and are never read again."""
    madvise = _libc_function("madvise")
    if madvise is None:
        return
    page = 4096
    base = array.__array_interface__["data"][0]
    lo = (base + start + page - 1) // page * page
    hi = (base + stop) // page * page
    if hi > lo:
        madvise(lo, hi - lo, 4)  # MADV_DONTNEED


def _read_csv_streaming(path: Path, delimiter: str, head: bytes) -> pd.DataFrame | None:
    """A UTF-8 CSV read by arrow's streaming reader: one reader per core over byte ranges cut at line ends,
    float columns written into float32 arrays (float64 where float32 is too coarse for the column), so the
    peak stays near the size of the result. None when this path does not apply (types that change after
    the first block, a column empty there, duplicate names, a parse error): the caller reads it the old way."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    size = path.stat().st_size
    n_ranges = max(1, min(os.cpu_count() or 1, 4, size // _RANGE_BYTES))
    cuts = [0]
    if n_ranges > 1:
        with open(path, "rb") as fh:
            for k in range(1, n_ranges):
                fh.seek(size * k // n_ranges)
                fh.readline()
                if fh.tell() > cuts[-1] and fh.tell() < size:
                    cuts.append(fh.tell())
    cuts.append(size)
    n_ranges = len(cuts) - 1
    rows_per_byte = max(head.count(b"\n"), 1) / max(len(head), 1)
    parse = pacsv.ParseOptions(delimiter=delimiter)
    opened: list[_ByteRange] = []
    try:
        probe_file = _ByteRange(path, cuts[0], cuts[1])
        opened.append(probe_file)
        probe = pacsv.open_csv(probe_file, parse_options=parse,
                               read_options=pacsv.ReadOptions(encoding="utf8", block_size=_STREAM_BLOCK,
                                                              use_threads=False))  # no read-ahead
        schema = probe.schema
        names = [str(n) for n in schema.names]
        if names and names[0].startswith("\ufeff"):
            names[0] = names[0][1:]
        if len(set(names)) != len(names) or any(pa.types.is_null(t) for t in schema.types):
            return None
        try:
            first = probe.read_next_batch()
        except StopIteration:
            return None
        # The first block decides each column's type; a float column is parsed straight to float32 (which is
        # also much faster than arrow's float64 parsing) unless float32 is too coarse for it.
        storage = {i: _float_storage(first.column(i).to_numpy(zero_copy_only=False))
                   for i, t in enumerate(schema.types) if pa.types.is_floating(t)}
        del first, probe
        types = {name: (pa.float32() if storage.get(i) is np.float32 else pa.float64()) if i in storage else t
                 for i, (name, t) in enumerate(zip(schema.names, schema.types))}
        f32 = [i for i, dt in storage.items() if dt is np.float32]
        wide = [i for i, dt in storage.items() if dt is not np.float32]
        # One float32 block for the result; each reader fills its own region of it (the row count estimated
        # from the first 64 KiB, with room to spare: untouched pages cost nothing), and the regions are
        # closed up at the end. A reader that outgrows its region spills, and then the block is rebuilt.
        capacity = [int((cuts[k + 1] - cuts[k]) * rows_per_byte * 1.25) + 1024 for k in range(n_ranges)]
        offsets = np.concatenate([[0], np.cumsum(capacity)]).astype(int).tolist()
        block = np.empty((len(f32), offsets[-1]), dtype=np.float32)
        row_of = {i: r for r, i in enumerate(f32)}
        parts = [_RangeColumns(block, row_of, offsets[k], capacity[k], wide, len(names)) for k in range(n_ranges)]
        readers = []
        for k in range(n_ranges):
            rng = _ByteRange(path, cuts[k], cuts[k + 1])
            opened.append(rng)
            readers.append(pacsv.open_csv(
                rng, parse_options=parse,
                read_options=pacsv.ReadOptions(encoding="utf8", block_size=_STREAM_BLOCK, use_threads=n_ranges == 1,
                                               column_names=None if k == 0 else schema.names),
                convert_options=pacsv.ConvertOptions(column_types=types)))
        failures: list[BaseException] = []

        def run(k: int, batches: Any) -> None:
            try:
                for batch in batches:
                    parts[k].add(batch)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller, which reads the old way
                failures.append(exc)
            finally:
                batches.close()
                _release_memory()  # this thread's share of arrow's pool, before the thread ends

        threads = [threading.Thread(target=run, args=(k, readers[k]), daemon=True) for k in range(1, n_ranges)]
        for t in threads:
            t.start()
        run(0, readers[0])
        for t in threads:
            t.join()
        del readers
        if failures:
            return None
        n = sum(p.rows for p in parts)
        if n == 0:
            return None
        columns: dict[int, Any] = {}
        if all(p.in_region == p.rows for p in parts):
            at = parts[0].rows
            for p in parts[1:]:  # close up the regions, moving each down (numpy copes with the overlap)
                for r in range(len(f32)):
                    block[r, at:at + p.rows] = block[r, p.offset:p.offset + p.rows]
                at += p.rows
            last = parts[-1].offset + parts[-1].rows
            for r in range(len(f32)):
                _drop_pages(block, (r * block.shape[1] + n) * 4, (r * block.shape[1] + last) * 4)
            block = block[:, :n]
        else:
            whole = np.empty((len(f32), n), dtype=np.float32)
            for r, i in enumerate(f32):
                at = 0
                for p in parts:
                    whole[r, at:at + p.in_region] = block[r, p.offset:p.offset + p.in_region]
                    if p.rows > p.in_region:
                        whole[r, at + p.in_region:at + p.rows] = p.spill.pop(i)[:p.rows - p.in_region]
                    at += p.rows
            block = whole
        for i in range(len(names)):
            if i in f32:
                continue
            if i in wide:
                values = np.concatenate([p.arrays[i][:p.rows] for p in parts])
                for p in parts:
                    del p.arrays[i]
            else:
                chunked = pa.chunked_array([c for p in parts for c in p.chunks[i]], type=schema.types[i])
                for p in parts:
                    p.chunks[i] = []
                values = chunked.to_pandas()
                del chunked
            columns[i] = values
        del parts
        _release_memory()
        df = pd.DataFrame(block.T, columns=[names[i] for i in f32], copy=False) if f32 else \
            pd.DataFrame(index=pd.RangeIndex(n))
        for i in sorted(columns):
            df.insert(i, names[i], columns.pop(i), allow_duplicates=True)
        return df
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - arrow's errors, and anything unforeseen: the whole-file reader decides
        return None
    finally:
        for f in opened:
            f.close()
        _release_memory()


def _release_memory() -> None:
    """Give freed buffers back to the system: arrow's allocator keeps its parse buffers (~2× the table for
    a large CSV), and glibc keeps freed temporaries below its (self-raising) mmap threshold in the heap,
    where the next large array cannot reuse them; both would stack under the tensors prepared next."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        try:
            pa.default_memory_pool().release_unused()
        except Exception:  # an older pyarrow or a pool without the call: only memory is at stake
            pass
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=None)
def _libc_function(name: str) -> Any:
    """A glibc function taking and returning C integers/pointers, or None off Linux/glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    fn.argtypes = {"malloc_trim": [ctypes.c_size_t],
                   "madvise": [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]}[name]
    fn.restype = ctypes.c_int
    return fn


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _frame_from_arrays(x: Any, y: Any, name: str) -> pd.DataFrame:
    import pandas as pd

    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise DataError(f"{name}: X must be a 2-D array (rows × features), got shape {tuple(x.shape)}")
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{name}: y must be 1-D with one value per row of X ({len(x)}), got shape {tuple(y.shape)}")
        df["y"] = y
    return df


def _read_npy(path: Path) -> pd.DataFrame:
    import pandas as pd

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
    except (OSError, EOFError) as exc:
        raise DataError(f"{path.name}: not a readable NumPy file ({_first_line(exc)})") from exc
    if arr.dtype.names:
        return pd.DataFrame.from_records(arr)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise DataError(f"{path.name}: a .npy must be a 2-D array whose last column is the target, got shape {arr.shape}")
    return _frame_from_arrays(arr[:, :-1], arr[:, -1], path.name)


def _read_tensors(path: Path) -> pd.DataFrame:
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


def read_table(path: str | Path) -> pd.DataFrame:
    """Read any supported file into a DataFrame; raise DataError naming the file and the problem."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; open one data file")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path.name}: unsupported file type '{suffix or '(none)'}'; "
                        "open CSV/TSV, Parquet, .npy/.npz or a .pt holding tensors X and y")
    try:
        if suffix in (".parquet", ".pq"):
            try:
                df = pd.read_parquet(path)
            except Exception as exc:
                raise DataError(f"{path.name}: not a readable Parquet file ({_first_line(exc)})") from exc
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
    except Exception as exc:  # a damaged file reaches parsers' own errors (zipfile, numpy, pyarrow): still one sentence
        raise DataError(f"{path.name}: not a readable {suffix.lstrip('.')} file ({_first_line(exc)})") from exc
    if df.shape[1] < 2:
        raise DataError(f"{path.name}: found {df.shape[1]} column(s); a dataset needs at least one feature and a target")
    if len(df) == 0:
        raise DataError(f"{path.name}: the table has no rows")
    df.columns = [str(c) for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise DataError(f"{path.name}: duplicate column name(s) {', '.join(dupes)}")
    return df


# ---------------------------------------------------------------------------------------------- types

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


# ---------------------------------------------------------------------------------------------- preprocessing

def _bool_values(series: pd.Series) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64").to_numpy()
    mapped = series.astype(str).str.strip().str.lower().map({"true": 1.0, "false": 0.0})
    return mapped.astype("float64").to_numpy()


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


def _fit_categorical(name: str, col: "pd.Series") -> dict[str, Any]:
    """A categorical feature's one-hot categories (sorted text), within the one-hot cap."""
    cats = sorted(col.dropna().astype(str).unique().tolist())
    if len(cats) > MAX_CATEGORIES:
        raise DataError(f"column '{name}' has {len(cats)} distinct values, above the one-hot cap of "
                        f"{MAX_CATEGORIES}; drop it or use it as the target")
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


def _natural_key(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


# ---------------------------------------------------------------------------------------------- splits

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

    def to(self, device: torch.device) -> "PreparedData":
        return PreparedData(self.train.to(device), self.val.to(device), self.test.to(device),
                            self.preprocessor, self.report)


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


def prepare(df: pd.DataFrame, target: str | None = None, task: str = "auto",
            split: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0, missing: str = "impute",
            features: Sequence[str] | None = None, preprocessor: Preprocessor | None = None) -> PreparedData:
    """From a raw table to tensors: resolve the task, drop rows without a target, split, fit, transform.

    With a `preprocessor` (from a checkpoint) nothing is fitted: its target, task and features are used,
    so a loaded model sees data encoded exactly as it was trained on.

    The result is what `Preprocessor.fit` on the training rows and `transform_features`/`transform_target`
    on each split give, written column by column into one float32 matrix whose rows are laid out
    train | validation | test: the three splits are views of it, not copies of the table.
    """
    import pandas as pd

    if preprocessor is not None:
        target, task, features = preprocessor.target, preprocessor.task, preprocessor.feature_names
    target = target or default_target(df)
    task = resolve_task(df, target, task)
    if missing not in MISSING_POLICIES:
        raise DataError(f"unknown missing-value policy '{missing}': use impute or drop")
    feature_names = list(features) if features is not None else [c for c in df.columns if c != target]
    unknown = [f for f in feature_names if f not in df.columns]
    if unknown:
        raise DataError(f"feature column(s) not found: {', '.join(unknown)}")
    if not feature_names:
        raise DataError("no feature columns left besides the target")
    gaps = {c: _missing_count(df[c]) for c in feature_names + [target]}
    report: dict[str, Any] = {"rows_read": int(len(df)), "target": target, "task": task,
                              "missing_per_column": {c: n for c, n in gaps.items() if n},
                              "missing_policy": missing}
    target_col = df[target]
    keep = np.array(target_col.notna().to_numpy(dtype=bool))
    if task == "regression":
        keep &= np.isfinite(pd.to_numeric(target_col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan))
    report["rows_dropped_no_target"] = int((~keep).sum())
    if missing == "drop":
        complete = np.ones(len(df), dtype=bool)
        for c in feature_names:
            if gaps[c]:
                complete &= df[c].notna().to_numpy(dtype=bool)
        report["rows_dropped_missing"] = int((keep & ~complete).sum())
        keep &= complete
    rows = None if keep.all() else np.flatnonzero(keep)
    n = len(df) if rows is None else len(rows)
    if n < 3:
        raise DataError(f"only {n} usable row(s) after dropping rows with missing values; need at least 3")
    used_target = target_col if rows is None else target_col.iloc[rows].reset_index(drop=True)

    keys = codes = strat = None
    if task != "regression":
        keys, codes = _label_codes(used_target)
        counts = np.bincount(codes, minlength=len(keys))
        strat = codes if counts.min() >= 2 else None  # a class with one row cannot be stratified
    parts = split_indices(n, split, seed, strat)
    n_tr, n_va, n_te = (len(p) for p in parts)
    index_type = np.int32 if n < 2**31 else np.int64
    order = np.concatenate(parts).astype(index_type)  # matrix rows: train | validation | test, in table order
    del parts, strat
    src = order if rows is None else rows[order].astype(index_type)  # table row of each matrix row
    bounds = ((0, n_tr), (n_tr, n_tr + n_va), (n_tr + n_va, n))

    if preprocessor is not None:
        pre = preprocessor
    else:
        train_src = src[:n_tr]
        fitted: list[dict[str, Any]] = []
        for name in feature_names:
            col = df[name]
            if isinstance(col.dtype, np.dtype) and col.dtype.kind == "f":
                fitted.append({"name": name, "kind": "numeric"})  # stats below, from the matrix
                continue
            part = col.iloc[train_src]
            kind = column_kind(part)
            if kind in ("numeric", "boolean"):
                fitted.append({"name": name, "kind": kind})
            else:
                fitted.append(_fit_categorical(name, part))
        classes = None
        target_mean, target_std = 0.0, 1.0
        if task in ("binary", "multiclass"):
            seen = np.bincount(codes[order[:n_tr]], minlength=len(keys)) > 0
            classes = sorted(keys[seen].tolist(), key=_natural_key)
            _check_classes(target, task, classes)
        else:
            y = pd.to_numeric(used_target, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)[order[:n_tr]]
            y = y[np.isfinite(y)]
            if len(y) == 0:
                raise DataError(f"target '{target}' has no numeric values; regression needs numbers")
            target_mean = float(y.mean())
            target_std = float(y.std()) if len(y) > 1 and y.std() > 1e-12 else 1.0
        pre = Preprocessor(target, task, fitted, classes, target_mean, target_std, missing)

    missing_cols = [f["name"] for f in pre.features if f["name"] not in df.columns]
    if missing_cols:
        raise DataError(f"missing feature column(s): {', '.join(missing_cols)}")
    if task == "regression":
        y_all = pd.to_numeric(used_target, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)[order]
        y_t = torch.from_numpy(((y_all - pre.target_mean) / pre.target_std).astype(np.float32))
    else:
        position = {c: i for i, c in enumerate(pre.classes or [])}
        lut = np.array([position.get(k, -1) for k in keys.tolist()], dtype=np.int64)
        y_all = lut[codes[order]]
        for a, b in bounds:
            bad = np.flatnonzero(y_all[a:b] < 0)
            if len(bad):
                example = target_col.iloc[int(src[a + bad[0]])]
                raise DataError(f"target '{target}': {len(bad)} row(s) have a class not seen in training, "
                                f"e.g. {example!r}")
        y_t = torch.from_numpy(y_all) if task == "multiclass" else torch.from_numpy(y_all.astype(np.float32))
    if task != "regression":
        report["class_counts"] = {str(k): int(v) for k, v in
                                  zip(keys.tolist(), np.bincount(codes, minlength=len(keys)).tolist())}
    del codes, y_all, used_target
    _release_memory()  # the temporaries above, so the matrix does not stack on top of them
    X = np.empty((n, pre.n_features), dtype=np.float32)
    fast: list[int] = []  # float32 columns: gathered and standardised together, chunk by chunk
    fast_arrays: list[np.ndarray] = []
    fast_features: list[dict[str, Any]] = []
    j = 0
    for f in pre.features:
        col = df[f["name"]]
        if f["kind"] == "categorical":
            k = len(f["categories"])
            c = _category_codes(col, f["categories"])[src]
            X[:, j:j + k] = 0.0
            hit = np.flatnonzero(c >= 0)
            X[hit, j + c[hit]] = 1.0
            j += k
            continue
        values = _feature_values(col, f["kind"])
        if values.dtype == np.float32:
            fast.append(j)
            fast_arrays.append(values)
            fast_features.append(f)
        else:
            v = values[src].astype(np.float64, copy=False)
            if "mean" not in f:
                finite = v[:n_tr][np.isfinite(v[:n_tr])]
                mean = float(finite.mean()) if len(finite) else 0.0
                std = float(finite.std()) if len(finite) > 1 else 1.0
                f.update(mean=mean, std=std if std > 1e-12 else 1.0)
            v = (v - f["mean"]) / f["std"]
            v[~np.isfinite(v)] = 0.0
            X[:, j] = v
        j += 1
    given = [(f["mean"], f["std"]) for f in fast_features] if all("mean" in f for f in fast_features) else None
    for f, (mean, std) in zip(fast_features, _fill_float32(X, fast, fast_arrays, src, n_tr, given)):
        f.update(mean=mean, std=std)
    X_t = torch.from_numpy(X)
    train, val, test = (TensorSplit(X_t[a:b], y_t[a:b]) for a, b in bounds)

    del fast_arrays, order, src
    _release_memory()
    report.update({"rows_used": int(n), "n_train": int(n_tr), "n_val": int(n_va), "n_test": int(n_te),
                   "n_features": pre.n_features, "classes": pre.classes})
    return PreparedData(train, val, test, pre, report)


def load_dataset(path: str | Path, target: str | None = None, task: str = "auto",
                 split: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0, missing: str = "impute") -> PreparedData:
    df = read_table(path)
    try:
        return prepare(df, target, task, split, seed, missing)
    except DataError as exc:
        raise DataError(f"{Path(path).name}: {exc}") from exc
    except (ValueError, TypeError, UnicodeError) as exc:  # a damaged file's cells reaching pandas: still one sentence
        raise DataError(f"{Path(path).name}: its values cannot be prepared ({_first_line(exc)})") from exc


def summarize(df: pd.DataFrame, target: str | None = None, task: str = "auto") -> dict[str, Any]:
    """What the dataset panel and `nnstudio info` show about a raw table."""
    target = target or default_target(df)
    task = resolve_task(df, target, task)
    cols = describe_columns(df)
    out = {"rows": int(len(df)), "columns": len(cols), "features": len(cols) - 1, "target": target, "task": task,
           "missing": {c.name: c.missing for c in cols if c.missing}}
    if task != "regression":
        keys, codes = _label_codes(df[target])
        counts = np.bincount(codes[codes >= 0], minlength=len(keys))
        out["classes"] = {str(k): int(v) for k, v in zip(keys.tolist(), counts.tolist())}
    return out


def iter_batches(split: TensorSplit, batch_size: int, shuffle: bool,
                 generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Whole tensors on the device, sliced by a shuffled index: no per-sample __getitem__."""
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


def model_io_size(df: pd.DataFrame, target: str, task: str = "auto",
                  features: Sequence[str] | None = None) -> tuple[int, int]:
    """Inputs and outputs a model needs for this table, without splitting or fitting (cheap, for the builder).

    Counted on the whole table, so a category that only the validation split holds can make it one wider
    than the fitted preprocessing; training always builds from the fitted sizes.
    """
    task = resolve_task(df, target, task)
    feature_names = list(features) if features is not None else [c for c in df.columns if c != target]
    n_in = 0
    for name in feature_names:
        kind = column_kind(df[name])
        n_in += df[name].nunique(dropna=True) if kind == "categorical" else 1
    n_out = len(_label_codes(df[target])[0]) if task == "multiclass" else 1
    return int(n_in), int(n_out)
