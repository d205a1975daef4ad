"""A checkpoint applied to a new table: the stored preprocessing, the model, one prediction per row.

The table is checked against the training columns first, and every problem (a missing column, a value
that cannot be parsed, a category never seen in training) is named with its column and first rows;
nothing is silently guessed. Rows go through in batches, so the encoded features, outputs and
probabilities of a 1,000,000-row file never sit in memory at once; `predict_file` writes each batch's
CSV as it goes. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch

from nnstudio.core.model.checkpoint import LoadedCheckpoint
from nnstudio.core.data import NA_SPELLINGS, Preprocessor, as_table
from nnstudio.core.errors import CheckpointError, DataError
from nnstudio.core.files import atomic_write

if TYPE_CHECKING:  # polars is imported where a table is first touched (window start-up)
    import polars as pl

BATCH_ROWS = 65536
FIRST_ROWS = 5

#: A failure's kind, in the order they are reported; the CLI exits with one code per kind.
KINDS = ("missing_columns", "unparseable", "unknown_category")


class PredictionInputError(DataError):
    """The table does not fit the checkpoint's training columns; `kind` is one of KINDS."""

    def __init__(self, message: str, kind: str, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.kind = kind
        self.problems = problems or [(kind, message)]


@dataclass
class TableCheck:
    """What `check_table` found that is not an error: ignored columns and imputed cells."""

    extra_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    has_target: bool = False


def _rows_text(positions: np.ndarray, total: int) -> str:
    shown = ", ".join(str(int(p) + 1) for p in positions[:FIRST_ROWS])
    more = f" and {total - FIRST_ROWS} more" if total > FIRST_ROWS else ""
    return f"row{'s' if total > 1 else ''} {shown}{more}"


def _present(name: str, dtype: Any) -> Any:
    """True where column `name` holds a value: not null, not NaN, not a missing-value spelling (NA_SPELLINGS)."""
    import polars as pl

    col = pl.col(name)
    present = col.is_not_null()
    if dtype.is_float():
        present = present & col.is_not_nan()
    elif not (dtype.is_numeric() or dtype == pl.Boolean):
        spelled = col.cast(pl.String).str.strip_chars().str.to_lowercase().is_in(list(NA_SPELLINGS))
        present = present & ~spelled
    return present.fill_null(False)


def _readable(f: dict[str, Any], dtype: Any) -> Any:
    """True where a present cell of feature `f` is what training saw: a known category, a number, true/false."""
    import polars as pl

    col = pl.col(f["name"])
    if f["kind"] == "categorical":
        return col.cast(pl.String).is_in(list(f["categories"])).fill_null(False)
    if dtype.is_numeric() or dtype == pl.Boolean:
        return pl.lit(True)
    text = col.cast(pl.String).str.strip_chars()
    if f["kind"] == "boolean":
        return text.str.to_lowercase().is_in(["true", "false"]).fill_null(False)
    return text.cast(pl.Float64, strict=False).is_not_null()


def check_table(pre: Preprocessor, df: Any) -> TableCheck:
    """Raise PredictionInputError naming every problem; return the extra columns and notes otherwise.

    All columns are checked in one polars pass; rows are looked up only for a column that has a problem."""
    df = as_table(df)
    names = pre.feature_names
    problems: list[tuple[str, str]] = []
    missing = [n for n in names if n not in df.columns]
    if missing:
        problems.append(("missing_columns", f"missing column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(repr(m) for m in missing)} (the model was trained on "
                         f"{', '.join(repr(n) for n in names)}); add {'them' if len(missing) > 1 else 'it'} to the file"))
    check = TableCheck(extra_columns=[c for c in df.columns if c not in names and c != pre.target],
                       has_target=pre.target in df.columns)
    found = [f for f in pre.features if f["name"] in df.columns]
    exprs = []
    for i, f in enumerate(found):
        dtype = df.schema[f["name"]]
        here = _present(f["name"], dtype)
        exprs += [(~here).alias(f"empty{i}"), (here & ~_readable(f, dtype)).alias(f"bad{i}")]
    masks = df.select(exprs)
    counts = masks.sum().row(0, named=True) if masks.width else {}
    for i, f in enumerate(found):
        if counts[f"bad{i}"]:
            bad = masks[f"bad{i}"].arg_true().to_numpy()
            values = list(dict.fromkeys(str(v) for v in df[f["name"]].gather(bad[:50]).to_list()))[:3]
            shown = ", ".join(repr(v) for v in values)
            if f["kind"] == "categorical":
                problems.append(("unknown_category", f"column '{f['name']}': {len(bad)} value(s) never seen in "
                                 f"training ({shown}) in {_rows_text(bad, len(bad))}; "
                                 f"known: {', '.join(f['categories'][:10])}"))
            else:
                problems.append(("unparseable", f"column '{f['name']}': {len(bad)} value(s) cannot be read as "
                                 f"{'true/false' if f['kind'] == 'boolean' else 'numbers'} "
                                 f"({shown}) in {_rows_text(bad, len(bad))}; fix or empty them"))
        if counts[f"empty{i}"]:
            empty = masks[f"empty{i}"].arg_true().to_numpy()
            how = "an all-zero one-hot" if f["kind"] == "categorical" else "the training mean"
            check.notes.append(f"column '{f['name']}': {len(empty)} empty cell(s) in {_rows_text(empty, len(empty))} "
                               f"were filled with {how}, as in training")
    if problems:
        problems.sort(key=lambda p: KINDS.index(p[0]))
        raise PredictionInputError("; ".join(m for _, m in problems), problems[0][0], problems)
    if check.extra_columns:
        check.notes.insert(0, f"ignored column(s) the model was not trained on: {', '.join(check.extra_columns)}")
    return check


def _preprocessor(ckpt: LoadedCheckpoint) -> Preprocessor:
    if ckpt.preprocessor is None:
        raise CheckpointError(f"{ckpt.path.name}: holds no preprocessing (a bare state_dict), so new rows cannot be "
                              "encoded as in training; train it on a dataset in nnstudio and save it again")
    return ckpt.preprocessor


def output_columns(ckpt: LoadedCheckpoint) -> list[str]:
    pre = _preprocessor(ckpt)
    if pre.task == "regression":
        return ["prediction"]
    return ["prediction", *[f"probability_{c}" for c in pre.classes or []]]


@torch.no_grad()
def predict_batches(ckpt: LoadedCheckpoint, df: Any, batch_rows: int = BATCH_ROWS,
                    threshold: float | None = None) -> Iterator[tuple[int, int, dict[str, np.ndarray], torch.Tensor]]:
    """(start, stop, prediction columns, raw outputs) per batch of rows; the table must pass `check_table`."""
    pre = _preprocessor(ckpt)
    df = as_table(df)
    model = ckpt.model
    model.eval()
    device = next(model.parameters()).device
    threshold = ckpt_threshold(ckpt) if threshold is None else float(threshold)
    classes = np.asarray(pre.classes or [], dtype=object)
    for start in range(0, df.height, batch_rows):
        stop = min(start + batch_rows, df.height)
        X = torch.from_numpy(pre.transform_features(df.slice(start, stop - start)))
        out = model(X.to(device)).float().cpu()
        cols: dict[str, np.ndarray] = {}
        if pre.task == "regression":
            cols["prediction"] = (out.reshape(-1).double() * pre.target_std + pre.target_mean).numpy()
        elif pre.task == "binary":
            p1 = torch.sigmoid(out.reshape(-1)).numpy()
            cols["prediction"] = classes[(p1 > threshold).astype(np.int64)]
            cols[f"probability_{classes[0]}"] = 1.0 - p1
            cols[f"probability_{classes[1]}"] = p1
        else:
            probs = torch.softmax(out, dim=1).numpy()
            cols["prediction"] = classes[probs.argmax(axis=1)]
            for i, c in enumerate(classes):
                cols[f"probability_{c}"] = probs[:, i]
        yield start, stop, cols, out


def ckpt_threshold(ckpt: LoadedCheckpoint) -> float:
    value = getattr(ckpt, "threshold", None)
    return 0.5 if value is None else float(value)


@dataclass
class Prediction:
    """Predictions of a whole table (for the window, where the rows are shown anyway)."""

    columns: dict[str, np.ndarray]
    check: TableCheck
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_note: str = ""


def predict_table(ckpt: LoadedCheckpoint, df: Any, threshold: float | None = None) -> Prediction:
    """Check, predict every row, and score against the target when the table has it."""
    pre = _preprocessor(ckpt)
    df = as_table(df)
    check = check_table(pre, df)
    parts: dict[str, list[np.ndarray]] = {}
    outputs: list[torch.Tensor] = []
    for _, _, cols, out in predict_batches(ckpt, df, threshold=threshold):
        for k, v in cols.items():
            parts.setdefault(k, []).append(v)
        if check.has_target:
            outputs.append(out)
    columns = {k: np.concatenate(v) if v else np.array([]) for k, v in parts.items()}
    result = Prediction(columns, check)
    if check.has_target and outputs:
        result.metrics, result.metrics_note = score(pre, df[pre.target], torch.cat(outputs),
                                                    ckpt_threshold(ckpt) if threshold is None else threshold)
    return result


def score(pre: Preprocessor, target: pl.Series, outputs: torch.Tensor, threshold: float = 0.5) -> tuple[dict[str, float], str]:
    """The task's metrics on the rows whose target is known; a note says what was left out and why."""
    from nnstudio.core.results.evaluate import split_figures
    from nnstudio.core.training.engine import make_loss

    keep = target.to_frame().select(_present(target.name, target.dtype)).to_series().to_numpy()
    if not keep.any():
        return {}, f"column '{pre.target}' is empty: no metrics"
    try:
        y = torch.from_numpy(np.array(pre.transform_target(target.filter(keep))))
    except DataError as exc:
        return {}, f"no metrics: {exc}"
    out = outputs[torch.from_numpy(keep)]
    if pre.task == "binary":
        y = y.float()  # BCE takes float targets, as in training
    if pre.task == "regression":
        ok = torch.isfinite(y)
        out, y = out[ok], y[ok]
        keep_n = int(ok.sum())
    else:
        keep_n = int(keep.sum())
    note = "" if keep_n == len(keep) else f"metrics on the {keep_n:,} rows with a known '{pre.target}'"
    figures = split_figures(pre.task, out, y, pre, make_loss(pre.task), threshold)
    return figures, note


def write_csv_chunk(fh: Any, chunk: pl.DataFrame, columns: dict[str, np.ndarray], header: bool) -> None:
    """Rows of the input table followed by their prediction columns, as CSV, by polars' writer (multi-threaded:
    on 10^6 rows × 13 columns 2.1 s against pyarrow's 4.3 s, the largest part of a prediction run). A float
    NaN is written as an empty cell, like every other missing value."""
    import polars as pl

    chunk = chunk.with_columns([pl.col(n).fill_nan(None) for n, t in chunk.schema.items() if t.is_float()])
    chunk = chunk.with_columns([pl.Series(name, values) for name, values in columns.items()])
    chunk.write_csv(fh, include_header=header)


def _write_failure(path: Path, exc: OSError) -> DataError:
    return DataError(f"{path}: could not write the predictions ({exc.strerror or exc}); "
                     "the previous file, if any, is unchanged")


def save_predictions(df: Any, prediction: Prediction, path: str | Path, batch_rows: int = BATCH_ROWS) -> Path:
    """The window's export: the table's columns, then the prediction columns, written atomically."""
    df = as_table(df)
    path = Path(path)
    try:
        with atomic_write(path) as fh:
            for start in range(0, max(df.height, 1), batch_rows):
                stop = min(start + batch_rows, df.height)
                write_csv_chunk(fh, df.slice(start, stop - start),
                                {k: v[start:stop] for k, v in prediction.columns.items()}, header=start == 0)
    except OSError as exc:
        raise _write_failure(path, exc) from exc
    return path


def predict_file(ckpt: LoadedCheckpoint, data_path: str | Path, out_path: str | Path,
                 threshold: float | None = None, batch_rows: int = BATCH_ROWS) -> tuple[TableCheck, dict[str, float], str]:
    """Read a table, check it, write input columns + predictions as CSV batch by batch; return the check and
    the metrics when the target is present. The output appears only when complete (`atomic_write`)."""
    from nnstudio.core.data import read_table

    pre = _preprocessor(ckpt)
    df = read_table(data_path)
    check = check_table(pre, df)
    out_path = Path(out_path)
    if not out_path.parent.exists():
        raise DataError(f"{out_path.parent}: folder does not exist; choose where to write the predictions")
    outputs: list[torch.Tensor] = []
    try:
        with atomic_write(out_path) as fh:
            for start, stop, cols, out in predict_batches(ckpt, df, batch_rows, threshold):
                write_csv_chunk(fh, df.slice(start, stop - start), cols, header=start == 0)
                if check.has_target:
                    outputs.append(out)
            if not df.height:
                write_csv_chunk(fh, df, {c: np.array([]) for c in output_columns(ckpt)}, header=True)
    except OSError as exc:
        raise _write_failure(out_path, exc) from exc
    metrics, note = ({}, "")
    if check.has_target and outputs:
        metrics, note = score(pre, df[pre.target], torch.cat(outputs), ckpt_threshold(ckpt) if threshold is None else threshold)
    return check, metrics, note


# ---------------------------------------------------------------------------------------------- images

@dataclass
class ImagePrediction:
    """An image model applied to files: one row per readable file, the skipped ones with their reasons."""

    files: list[str]
    columns: dict[str, np.ndarray]
    skipped: list[str] = field(default_factory=list)
    labels: list[str] | None = None  # the class folders' names, when the folder is laid out by class
    metrics: dict[str, float] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)


def is_image_model(ckpt: LoadedCheckpoint) -> bool:
    return getattr(ckpt.preprocessor, "kind", None) == "image"


def _image_inputs(path: Path, classes: list[str]) -> tuple[Path, list[Path], list[str] | None, list[str]]:
    """(root, files, labels or None, skipped) for an image, a folder of class folders, or a folder of images."""
    from nnstudio.core.data.images import _walk_images, is_image_file

    if path.is_file():
        return path.parent, [path], None, []
    if not path.is_dir():
        raise DataError(f"{path}: no such image or folder")
    subs = sorted(d.name for d in path.iterdir() if d.is_dir())
    labelled = bool(subs) and set(subs) <= set(classes)
    found, problems = _walk_images(path)
    skipped = [f"{p} {why}" for p, why in problems]
    files = []
    for f in found:
        if is_image_file(f):
            files.append(f)
        else:
            skipped.append(f"{f.relative_to(path)} is not an image file (by its extension)")
    labels = [f.relative_to(path).parts[0] for f in files] if labelled else None
    if labelled:
        files = [f for f, lab in zip(files, labels) if lab in classes and f.parent != path]
        labels = [f.relative_to(path).parts[0] for f in files]
    return path, files, labels, skipped


@torch.no_grad()
def predict_images(ckpt: LoadedCheckpoint, path: str | Path, batch: int = 1024) -> ImagePrediction:
    """Decode the files as the model was trained (size, channels; the model normalises) and predict each."""
    pre = _preprocessor(ckpt)
    if not is_image_model(ckpt):
        raise DataError(f"{ckpt.path.name}: is a table model; give it a table, not images")
    path = Path(path)
    root, files, labels, skipped = _image_inputs(path, pre.classes)
    model = ckpt.model
    model.eval()
    device = next(model.parameters()).device
    kept: list[Path] = []
    outputs: list[torch.Tensor] = []
    for a in range(0, len(files), batch):  # decoded a batch at a time: a folder of any size fits in memory
        X, good, bad = pre.transform_images(files[a:a + batch])
        skipped += [f"{Path(name).name} {why}" for name, why in bad]
        kept += good
        if len(X):
            outputs.append(model(X.to(device)).float().cpu())
    if labels is not None:
        label_of = {f: lab for f, lab in zip(files, labels)}
        labels = [label_of[f] for f in kept]
    if not kept:
        raise DataError(f"{path}: no readable images" + (f" ({skipped[0]})" if skipped else ""))
    out = torch.cat(outputs)
    probs = torch.softmax(out, dim=1).numpy()
    classes = np.asarray(pre.classes, dtype=object)
    columns: dict[str, np.ndarray] = {"prediction": classes[probs.argmax(axis=1)]}
    for i, c in enumerate(pre.classes):
        columns[f"probability_{c}"] = probs[:, i]
    names = [str(f.relative_to(root)) if path.is_dir() else f.name for f in kept]
    result = ImagePrediction(names, columns, skipped, labels, paths=list(kept))
    if labels is not None:
        result.metrics = {"accuracy": float(np.mean(columns["prediction"] == np.asarray(labels, dtype=object)))}
    return result


def predict_image_file(ckpt: LoadedCheckpoint, path: str | Path, out_path: str | Path) -> ImagePrediction:
    """`nnstudio predict MODEL.pt IMAGE_OR_FOLDER --out p.csv`: columns file, prediction, probability_<class>."""
    import polars as pl

    result = predict_images(ckpt, path)
    out_path = Path(out_path)
    if not out_path.parent.exists():
        raise DataError(f"{out_path.parent}: folder does not exist; choose where to write the predictions")
    table = pl.DataFrame({"file": result.files, **{k: list(v) if v.dtype == object else v
                                                   for k, v in result.columns.items()}})
    try:
        with atomic_write(out_path) as fh:
            table.write_csv(fh)
    except OSError as exc:
        raise _write_failure(out_path, exc) from exc
    return result
