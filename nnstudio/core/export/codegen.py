"""The course notes' PyTorch for a run: Dataset, DataLoader, nn.Module, device, loss, optimizer, loop, SummaryWriter.

One text serves both the code view and *Export → Python script*: a file that runs with torch, numpy, polars and
tensorboard only (what nnstudio itself installs, so it runs in nnstudio's own environment; no pandas), and
repeats nnstudio's run of the same config (same rows, split, preprocessing fitted on the same training rows,
same initial weights, batch order, dropout masks and optimizer arithmetic), then writes a checkpoint in
nnstudio's own format (see ``core.model.checkpoint.build_checkpoint``).

The rules it writes out in plain code are those of ``core.data.read_table`` (missing values, decimal commas),
``core.data.prepare``/``split_indices`` and ``core.training.engine.Trainer``; ``tests/core/test_codegen_export.py`` runs
an exported script with nnstudio, pandas and pyarrow blocked and compares its checkpoint with nnstudio's own
run, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import pprint
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnstudio.core.config import RunConfig
from nnstudio.core.training.engine import DEFAULT_LOSS, PARALLEL_GRAIN
from nnstudio.core.errors import ConfigError
from nnstudio.core.model.spec import ACTIVATIONS, normalize_layer

#: Loop parts the window's plots read, by the tag of what they plot.
PARTS = ("step", "step_loss", "epoch_loss", "validation", "learning_rate", "save")

_LOSS_CODE = {"mse": "nn.MSELoss()", "l1": "nn.L1Loss()", "huber": "nn.HuberLoss()",
              "bce": "nn.BCEWithLogitsLoss()", "cross_entropy": "nn.CrossEntropyLoss()"}
_LOSS_NOTE = {"mse": "MSELoss on the standardised target (the plots show it in those units)",
              "l1": "L1Loss on the standardised target", "huber": "HuberLoss on the standardised target",
              "bce": "BCEWithLogitsLoss: the model outputs one logit; the sigmoid is inside the loss",
              "cross_entropy": "CrossEntropyLoss on logits: the softmax is inside the loss"}
_ATTR = {"Linear": "fc", "BatchNorm1d": "bn", "LayerNorm": "ln", "Dropout": "dropout", "ReLU": "relu",
         "LeakyReLU": "leaky_relu", "GELU": "gelu", "SiLU": "silu", "Sigmoid": "sigmoid", "Tanh": "tanh"}
_SUPPORTED_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


@dataclass
class DataFacts:
    """What the script must know about the data beyond the config: nnstudio's decisions about each column."""

    path: str = "data.csv"
    target: str = "target"
    task: str = "multiclass"
    features: dict[str, str] = field(default_factory=dict)  # name -> numeric, boolean or categorical
    float32_columns: list[str] = field(default_factory=list)  # columns nnstudio holds as float32
    separator: str = ","
    encoding: str = "utf-8"  # of a CSV/TSV file, as nnstudio detected it (polars itself reads UTF-8 only)
    placeholder: bool = False  # no dataset yet: the text shows the shape, the values are examples


@dataclass
class GeneratedCode:
    text: str
    layer_lines: dict[int, int]  # layer index (0-based, as in the spec) -> line (0-based) of its attribute
    parts: dict[str, tuple[int, int]]  # loop part -> first and last line (0-based, inclusive)


def facts_from_frame(df: Any, path: str | Path, target: str, task: str, preprocessor: Any = None,
                     separator: str | None = None, exclude: Any = ()) -> DataFacts:
    """Column decisions from a table (and, when given, the preprocessing nnstudio fitted on it).

    `df` is the frame nnstudio read (polars, or pandas from older callers): nnstudio's own column functions
    get it as it is, the dtypes are looked up on its polars form.
    """
    import polars as pl

    from nnstudio.core.data import as_table, column_kind, resolve_task

    if preprocessor is not None:
        features = {f["name"]: f["kind"] for f in preprocessor.features}
        target, task = preprocessor.target, preprocessor.task
    else:
        task = resolve_task(df, target, task)
        features = {str(c): column_kind(df[c]) for c in df.columns if c != target and c not in exclude}
    schema = as_table(df).schema
    float32 = [str(c) for c, dtype in schema.items() if dtype == pl.Float32 and (c in features or c == target)]
    sep = separator if separator is not None else _separator(Path(path))
    return DataFacts(str(path), target, task, features, float32, sep, _encoding(Path(path)))


def _separator(path: Path) -> str:
    """The delimiter nnstudio's reader picks (a csv.Sniffer over the first lines, tab for .tsv)."""
    from nnstudio.core.data import _sniff_delimiter, _sniff_encoding

    if path.suffix.lower() in (".parquet", ".pq") or not path.is_file():
        return ","
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    return _sniff_delimiter(head.decode(_sniff_encoding(head), errors="replace"), path.suffix.lower())


def _encoding(path: Path) -> str:
    """The text encoding nnstudio's reader detects in a CSV/TSV file (utf-8 where there is none)."""
    from nnstudio.core.data import _sniff_encoding

    if path.suffix.lower() in (".parquet", ".pq") or not path.is_file():
        return "utf-8"
    with open(path, "rb") as fh:
        return _sniff_encoding(fh.read(1 << 16))


def check_source(path: str | Path) -> None:
    """A script reads CSV/TSV or Parquet; say so for anything else."""
    path = Path(path)
    if path.suffix.lower() not in _SUPPORTED_SUFFIXES:
        raise ConfigError(f"{path.name}: a script reads CSV/TSV or Parquet files; "
                          f"convert this {path.suffix or 'file'} to one of them first")


def layer_attribute_names(layers: list[dict[str, Any]]) -> list[str]:
    """fc1, bn1, relu1, dropout1, fc2, ..., out: the names people give a model's attributes."""
    last_linear = max((i for i, l in enumerate(layers) if l["type"] == "Linear"), default=-1)
    counts: dict[str, int] = {}
    names = []
    for i, layer in enumerate(layers):
        if i == last_linear:
            names.append("out")
            continue
        stem = _ATTR[layer["type"]]
        counts[stem] = counts.get(stem, 0) + 1
        names.append(f"{stem}{counts[stem]}")
    return names


def _layer_code(layer: dict[str, Any], width: str, n_outputs: str) -> tuple[str, str]:
    """(the constructor call, the width after it) with widths as code: numbers or names."""
    t = layer["type"]
    if t == "Linear":
        out = n_outputs if layer["out_features"] == "auto" else str(layer["out_features"])
        bias = "" if layer["bias"] else ", bias=False"
        return f"nn.Linear({width}, {out}{bias})", out
    if t == "BatchNorm1d":
        extra = "".join(f", {k}={layer[k]!r}" for k, d in (("eps", 1e-5), ("momentum", 0.1)) if layer[k] != d)
        return f"nn.BatchNorm1d({width}{extra})", width
    if t == "LayerNorm":
        extra = f", eps={layer['eps']!r}" if layer["eps"] != 1e-5 else ""
        return f"nn.LayerNorm({width}{extra})", width
    if t == "Dropout":
        return f"nn.Dropout(p={layer['p']!r})", width
    if t == "LeakyReLU":
        return f"nn.LeakyReLU({layer['negative_slope']!r})", width
    return f"nn.{t}()", width


def generate(cfg: RunConfig, facts: DataFacts | None = None, *, source: str = "the window",
             script_name: str = "train.py") -> GeneratedCode:
    """The whole script for a config; raises ConfigError for a stack the script cannot express."""
    from nnstudio import __version__
    from nnstudio.core.data import NA_SPELLINGS

    facts = facts or DataFacts(placeholder=True)
    try:
        layers = [normalize_layer(l, i + 1) for i, l in enumerate(cfg.layers)]
    except Exception as exc:
        raise ConfigError(f"the model cannot be written as code yet: {exc}") from exc
    if not any(l["type"] == "Linear" for l in layers):
        raise ConfigError("the model cannot be written as code yet: it needs at least one Linear layer")
    t = cfg.training
    task = facts.task
    loss_name = DEFAULT_LOSS[task] if t.loss == "auto" else t.loss
    names = layer_attribute_names(layers)
    has_bn = any(l["type"] == "BatchNorm1d" for l in layers)
    r = repr
    out: list[str] = []

    def add(block: str) -> None:
        out.extend(block.split("\n"))

    data_path = cfg.data.path or facts.path
    reencode = facts.encoding not in ("utf-8", "utf-8-sig")  # polars reads UTF-8 only
    encoding_line = reencode_lines = ""
    if reencode:
        encoding_line = f"\nFILE_ENCODING = {facts.encoding!r}  # polars reads UTF-8: the file is re-encoded"
        reencode_lines = ('        with open(path, "rb") as f:\n'
                          '            source = io.BytesIO(f.read().decode(FILE_ENCODING).encode("utf-8"))\n')
    checkpoint = cfg.output.checkpoint or "model.pt"
    if Path(checkpoint).is_absolute():  # outputs go beside the script (or under --out), never back into nnstudio's
        checkpoint = Path(checkpoint).name
    logdir = Path(cfg.output.logdir or "runs")
    logdir = str(Path(logdir.name if logdir.is_absolute() else logdir) / cfg.output.name)
    split = tuple(float(f) for f in cfg.data.split) + ((0.0,) if len(cfg.data.split) == 2 else ())
    add(f'''"""Train {cfg.output.name!s}: the PyTorch of an nnstudio run, generated by nnstudio {__version__} from {source}.

Runs with torch, numpy, polars and tensorboard only (pip install torch numpy polars tensorboard):

    python {script_name}                    # writes {Path(checkpoint).as_posix()} and {Path(logdir).as_posix()}/ beside this script
    python {script_name} --out DIR          # writes them under DIR instead
    python {script_name} --data FILE        # reads another file with the same columns as DATA_PATH below

It never replaces a checkpoint it did not write itself (nnstudio's own, say) unless given --overwrite.
It repeats the nnstudio run: the same rows of the same file, the same split and preprocessing (fitted on
the training rows only), the same model, settings and seed. The checkpoint it writes opens in nnstudio
(File > Open checkpoint, or `nnstudio info {Path(checkpoint).name}`), which predicts with it.
"""

{"import io" + chr(10) if reencode else ""}import argparse
import importlib.util
import math
import os
import platform
import sys

REQUIRES = ("torch", "numpy", "polars", "tensorboard")  # the table is read with polars, not pandas
MISSING_PACKAGES = [name for name in REQUIRES if importlib.util.find_spec(name) is None]
if MISSING_PACKAGES:
    sys.exit(f"{{os.path.basename(__file__)}} needs {{', '.join(MISSING_PACKAGES)}}, not installed here: "
             f"pip install {{' '.join(MISSING_PACKAGES)}} (it runs with torch, numpy, polars and tensorboard)")

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, SubsetRandomSampler
from torch.utils.tensorboard import SummaryWriter

# ------------------------------------------------------------------------------------ settings of the run
DATA_PATH = {r(data_path)}
TARGET = {r(facts.target)}
TASK = {r(task)}  # regression, binary or multiclass
FEATURES = {_literal(facts.features, 11)}  # column -> how nnstudio typed it
FLOAT32_COLUMNS = {r(facts.float32_columns)}  # read as float32, as nnstudio holds them
CSV_SEPARATOR = {r(facts.separator)}{encoding_line}
NA_SPELLINGS = {r(list(NA_SPELLINGS))}  # a cell spelled so (any case, spaces around) is missing
SPLIT = {r(split)}  # train, validation, test
DATA_SEED = {cfg.data.seed!r}  # shuffles the rows before the split
MISSING = {r(cfg.data.missing)}  # impute: a missing feature becomes the training mean; drop: the row goes

EPOCHS = {t.epochs}
BATCH_SIZE = {t.batch_size}
SHUFFLE = {t.shuffle!r}
LR = {t.lr!r}
WEIGHT_DECAY = {t.weight_decay!r}''')
    if t.optimizer in ("SGD", "RMSprop"):
        add(f"MOMENTUM = {t.momentum!r}")
    if t.optimizer == "SGD":
        add(f"NESTEROV = {bool(t.nesterov and t.momentum > 0)!r}")
    if t.scheduler == "step":
        add(f"STEP_SIZE = {t.step_size}  # epochs between learning-rate decays\nGAMMA = {t.gamma!r}")
    elif t.scheduler == "plateau":
        add(f"PLATEAU_FACTOR = {t.plateau_factor!r}\nPLATEAU_PATIENCE = {t.plateau_patience}")
    add(f'''EARLY_STOPPING = {t.early_stopping}  # epochs without a better validation loss; 0: off
GRAD_CLIP = {t.grad_clip!r}  # largest gradient norm; 0: off
SEED = {t.seed!r}
DEVICE = {r(t.device)}  # auto: CUDA when available, then Apple MPS, then the CPU
THREADS = {t.threads if isinstance(t.threads, int) else None!r}  # CPU threads; None: as nnstudio picks them
OUTPUT_DIR = os.path.dirname(os.path.abspath(__file__))  # where the outputs go; --out DIR changes it
LOGDIR = {r(Path(logdir).as_posix())}  # TensorBoard log, under OUTPUT_DIR
CHECKPOINT = {r(Path(checkpoint).as_posix())}  # under OUTPUT_DIR
LAYERS = {_literal(layers, 9)}  # the model below as nnstudio describes it (stored in the checkpoint)


# ------------------------------------------------------------------------------------ the data
def read_table(path):
    """The file as nnstudio reads it, with polars: every missing value is a null."""
    if path.lower().endswith((".parquet", ".pq")):
        df = pl.read_parquet(path)
        decimal_comma = False
    else:
{reencode_lines}        df = pl.read_csv({"source" if reencode else "path"}, separator=CSV_SEPARATOR, infer_schema_length=None,  # all rows type a column
                         schema_overrides={{name: pl.Float32 for name in FLOAT32_COLUMNS}})
        decimal_comma = CSV_SEPARATOR == ";"  # such files write 1.5 as "1,5"
    return pl.DataFrame([missing_as_null(column, decimal_comma) for column in df.get_columns()])


def missing_as_null(column, decimal_comma):
    """Missing values become null: NaN in numbers, NA_SPELLINGS in text. A text column whose other cells are
    all numbers (say 2.5, NA, 3.1) becomes a number column."""
    if column.dtype.is_float():
        return column.fill_nan(None)
    if column.dtype not in (pl.String, pl.Categorical):
        return column
    text = column.cast(pl.String)
    spelled_missing = text.str.strip_chars().str.to_lowercase().is_in(NA_SPELLINGS)
    text = text.set(spelled_missing, None)
    numbers = text.str.strip_chars()
    if decimal_comma and numbers.cast(pl.Float64, strict=False).null_count() > text.null_count():
        numbers = numbers.str.replace(",", ".", literal=True)  # "1,5" -> "1.5"
    all_numbers = numbers.cast(pl.Float64, strict=False).null_count() == text.null_count()
    if all_numbers and text.null_count() < len(text):
        return numbers.cast(pl.Float64)
    return text


def label_keys(column):
    """Class labels as text, as nnstudio stores them (1.0 -> "1", True -> "True")."""
    return [str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer() else str(v)
            for v in column.to_numpy()]


def natural_key(label):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def as_numbers(column, kind):
    """A numeric or boolean column as float64 numbers, NaN where missing ("true"/"false" text as 1/0)."""
    if kind == "boolean" and column.dtype == pl.String:
        column = column.str.strip_chars().str.to_lowercase().replace_strict({{"true": 1.0, "false": 0.0}}, default=None)
    return column.cast(pl.Float64, strict=False).to_numpy()


def split_rows(n, labels=None):
    """Train, validation and test rows: shuffled by DATA_SEED, stratified by class (labels: class codes)."""
    rng = np.random.default_rng(DATA_SEED)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == k) for k in range(labels.max() + 1)]
    part = np.zeros(n, dtype=np.int8)
    for group in groups:
        group = rng.permutation(group)
        n_val = int(round(SPLIT[1] * len(group)))
        n_test = int(round(SPLIT[2] * len(group)))
        n_train = len(group) - n_val - n_test
        part[group[n_train:n_train + n_val]] = 1
        part[group[n_train + n_val:]] = 2
    return [np.flatnonzero(part == k) for k in range(3)]


def fit_preprocessing(train):
    """Means, spreads, categories and classes, from the training rows only (nnstudio's preprocessing record)."""
    features = []
    for name, kind in FEATURES.items():
        if kind == "categorical":  # one-hot: one input per category seen in training
            categories = sorted(train[name].cast(pl.String).drop_nulls().unique().to_list())
            features.append({{"name": name, "kind": kind, "categories": categories}})
        else:  # standardised: (x - mean) / std
            values = as_numbers(train[name], kind)
            finite = values[np.isfinite(values)]
            mean = float(finite.mean()) if len(finite) else 0.0
            std = float(finite.std()) if len(finite) > 1 else 1.0
            features.append({{"name": name, "kind": kind, "mean": mean, "std": std if std > 1e-12 else 1.0}})
    pre = {{"target": TARGET, "task": TASK, "features": features, "classes": None,
           "target_mean": 0.0, "target_std": 1.0, "missing": MISSING}}
    if TASK == "regression":  # the model learns the standardised target
        y = train[TARGET].cast(pl.Float64).to_numpy()
        pre["target_mean"] = float(y.mean())
        pre["target_std"] = float(y.std()) if len(y) > 1 and y.std() > 1e-12 else 1.0
    else:
        pre["classes"] = sorted(set(label_keys(train[TARGET])), key=natural_key)
    return pre


def encode(rows, pre):
    """Table rows to float32 inputs X and targets y, with the fitted preprocessing."""
    columns = []
    for f in pre["features"]:
        if f["kind"] == "categorical":  # a missing or unseen category: all zeros
            text = rows[f["name"]].cast(pl.String)
            columns += [(text == c).fill_null(False).to_numpy().astype(np.float32) for c in f["categories"]]
        else:
            values = (as_numbers(rows[f["name"]], f["kind"]) - f["mean"]) / f["std"]
            values[~np.isfinite(values)] = 0.0  # missing: the training mean
            columns.append(values.astype(np.float32))
    X = np.stack(columns, axis=1) if columns else np.zeros((len(rows), 0), dtype=np.float32)
    if TASK == "regression":
        y = rows[TARGET].cast(pl.Float64).to_numpy()
        return X, ((y - pre["target_mean"]) / pre["target_std"]).astype(np.float32)
    index = {{c: i for i, c in enumerate(pre["classes"])}}
    labels = label_keys(rows[TARGET])
    unseen = [v for v in labels if v not in index]
    if unseen:
        raise SystemExit(f"target {{TARGET!r}}: class {{unseen[0]!r}} is not in the training rows")
    y = np.array([index[v] for v in labels], dtype=np.int64)
    return X, (y if TASK == "multiclass" else y.astype(np.float32))


def load_data():
    """Read, drop rows without a target, split, fit on the training rows, encode every split."""
    df = read_table(DATA_PATH)
    keep = df[TARGET].is_not_null()
    if TASK == "regression":
        keep &= df[TARGET].cast(pl.Float64, strict=False).is_finite()
    if MISSING == "drop":
        for name in FEATURES:
            keep &= df[name].is_not_null()
    df = df.filter(keep)
    labels = None
    if TASK != "regression":
        _, codes = np.unique(np.array(label_keys(df[TARGET])), return_inverse=True)
        codes = codes.reshape(-1)
        labels = codes if np.bincount(codes).min() >= 2 else None  # a class of one row cannot be stratified
    splits = split_rows(len(df), labels)
    pre = fit_preprocessing(df[splits[0]])
    return [encode(df[rows], pre) for rows in splits], pre


class TableDataset(Dataset):
    """Encoded rows: features X and targets y as tensors."""

    def __init__(self, X, y):
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y)

    def __getitem__(self, index):
        return self.X[index], self.y[index]

    def __len__(self):
        return len(self.X)


# ------------------------------------------------------------------------------------ the model
class Net(nn.Module):
    def __init__(self, in_features, n_outputs):
        super().__init__()''')
    width = "in_features"
    for i, (layer, name) in enumerate(zip(layers, names)):
        code, width = _layer_code(layer, width, "n_outputs")
        add(f"        self.{name} = {code}  #@layer:{i}")
    add("\n    def forward(self, x):")
    for name in names[:-1] if names[-1] == "out" else names:
        add(f"        x = self.{name}(x)")
    add(f"        return self.{names[-1]}(x)" if names[-1] == "out" else "        return x")
    loss_call = "outputs" if task == "multiclass" else "outputs.squeeze(-1)"
    add(f'''

def to_nnstudio_keys(model):
    """fc1.weight -> layers.0.weight: nnstudio numbers the layers in the order of LAYERS."""
    names = [name for name, _ in model.named_children()]
    return {{f"layers.{{names.index(key.split('.')[0])}}.{{key.split('.', 1)[1]}}": value
            for key, value in model.state_dict().items()}}


def from_nnstudio_keys(state, model):
    """layers.0.weight -> fc1.weight, for load_state_dict into this file's Net."""
    names = [name for name, _ in model.named_children()]
    return {{f"{{names[int(key.split('.')[1])]}}.{{key.split('.', 2)[2]}}": value for key, value in state.items()}}


def nnstudio_threads(model):
    """nnstudio's thread count: every core when some tensor of a step is big enough for torch to split
    (over {PARALLEL_GRAIN} elements), else one (faster on small work)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    widest = max([linears[0].in_features] + [m.out_features for m in linears])
    largest = max(p.numel() for p in model.parameters())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores if max(BATCH_SIZE * widest, largest) > {PARALLEL_GRAIN} else 1


def command_line():
    """Where to read and write: the defaults above, or what the command line says."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA_PATH, help="the table to train on (default: DATA_PATH)")
    parser.add_argument("--out", default=OUTPUT_DIR, help="folder for the checkpoint and the TensorBoard log "
                        "(default: this script's folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace a checkpoint this script did not write")
    return parser.parse_args()


def check_outputs(checkpoint, overwrite):
    """Refuse, before any training, to replace a file this script did not write (nnstudio's checkpoint, say)."""
    if not os.path.exists(checkpoint):
        return
    try:
        previous = torch.load(checkpoint, map_location="cpu", weights_only=True)
        ours = isinstance(previous, dict) and previous.get("versions", {{}}).get("script") == os.path.basename(__file__)
    except Exception:  # not a checkpoint at all, or another program's
        ours = False
    if ours:
        print(f"{{checkpoint}}: replaced at the end (written by an earlier run of this script)")
    elif overwrite:
        print(f"{{checkpoint}}: replaced at the end, as --overwrite asks (this script did not write it)")
    else:
        sys.exit(f"{{checkpoint}}: exists and was not written by {{os.path.basename(__file__)}}; nothing was trained. "
                 "Give --out DIR to write elsewhere, or --overwrite to replace it")


def is_main_process():
    """Hook for torchrun/DDP (not wired yet): with several processes only rank 0 logs and saves."""
    return int(os.environ.get("RANK", "0")) == 0


@torch.no_grad()
def evaluate(model, loss_fn, dataset, pre, device):
    """Loss and a metric on a whole split, in eval mode (Dropout off, BatchNorm's running statistics)."""
    if len(dataset) == 0:
        return None, {{}}
    model.eval()
    X, y = dataset.X.to(device), dataset.y.to(device)
    outputs = torch.cat([model(X[i:i + 8192]) for i in range(0, len(X), 8192)])
    loss = float(loss_fn({loss_call}, y))
    model.train()
    if TASK == "regression":  # in the target's own units
        error = (outputs.squeeze(-1) - y) * pre["target_std"]
        return loss, {{"rmse": float(error.pow(2).mean().sqrt()), "mae": float(error.abs().mean())}}
    predicted = outputs.argmax(dim=1) if TASK == "multiclass" else (outputs.squeeze(-1) > 0).float()
    return loss, {{"accuracy": float((predicted == y).float().mean())}}


def main():
    (train_xy, val_xy, test_xy), pre = load_data()
    train_set, val_set, test_set = TableDataset(*train_xy), TableDataset(*val_xy), TableDataset(*test_xy)
    in_features = train_set.X.shape[1]
    n_outputs = len(pre["classes"]) if TASK == "multiclass" else 1
''')
    if t.device == "auto":
        add('''    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")''')
    else:
        add(f'''    device = torch.device(DEVICE)''')
    seeded = t.seed is not None
    if seeded:
        add('''    torch.manual_seed(SEED)  # the same initial weights as nnstudio's
    model = Net(in_features, n_outputs).to(device)
    torch.manual_seed(SEED)  # the run's own random numbers (Dropout) start from the seed
    order = torch.Generator().manual_seed(SEED)  # the order of the rows, epoch after epoch''')
    else:
        add('''    model = Net(in_features, n_outputs).to(device)
    order = None''')
    add('''    if device.type == "cpu":  # the thread count changes how sums round: use nnstudio's
        torch.set_num_threads(THREADS or nnstudio_threads(model))''')
    if t.shuffle:
        add('''    # shuffle=True, drawn the way nnstudio draws it (one torch.randperm per epoch from `order`), so this script
    # repeats its run; the loader's own generator keeps the global one (Dropout's) untouched.
    train_loader = DataLoader(train_set, batch_size=BATCH_SIZE,
                              sampler=SubsetRandomSampler(range(len(train_set)), generator=order),
                              generator=torch.Generator())''')
    else:
        add('''    train_loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=False, generator=torch.Generator())''')
    balanced = getattr(t, "class_weight", "none") == "balanced" and task != "regression"
    if balanced:
        add('''
    # class_weight = "balanced": each class weighted by n / (classes * its count) in the training rows
    y = train_set.y.long()
    if TASK == "binary":
        positives, negatives = int(y.sum()), len(y) - int(y.sum())
        weights = torch.tensor([negatives / positives]) if positives and negatives else None
    else:
        counts = torch.bincount(y, minlength=n_outputs).double()
        weights = torch.where(counts > 0, len(y) / (n_outputs * counts.clamp(min=1)), torch.zeros_like(counts)).float()
    weights = weights.to(device) if weights is not None else None''')
        call = {"bce": "nn.BCEWithLogitsLoss(pos_weight=weights)", "cross_entropy": "nn.CrossEntropyLoss(weight=weights)"}
        add(f"    loss_fn = {call[loss_name]}  # {_LOSS_NOTE[loss_name]}")
    else:
        add(f'''
    loss_fn = {_LOSS_CODE[loss_name]}  # {_LOSS_NOTE[loss_name]}''')
    fused = '(device.type in ("cpu", "cuda")) or None'
    if t.optimizer == "SGD":
        add(f'''    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=NESTEROV,
                                weight_decay=WEIGHT_DECAY, fused={fused})''')
    elif t.optimizer in ("Adam", "AdamW"):
        add(f'''    optimizer = torch.optim.{t.optimizer}(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY,
                                 fused={fused})  # one kernel for all parameters, as nnstudio steps''')
    else:
        add('''    optimizer = torch.optim.RMSprop(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)''')
    per_batch = t.scheduler == "onecycle"
    if t.scheduler == "step":
        add("    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=STEP_SIZE, gamma=GAMMA)")
    elif t.scheduler == "cosine":
        add("    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)")
    elif t.scheduler == "plateau":
        add("    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=PLATEAU_FACTOR,\n"
            "                                                           patience=PLATEAU_PATIENCE)")
    elif per_batch:
        add("    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, epochs=EPOCHS,\n"
            "                                                    steps_per_epoch=len(train_loader))\n"
            "    last_scheduled_step = EPOCHS * len(train_loader) - 1")
    else:
        add("    scheduler = None  # a constant learning rate")
    add(f'''    writer = SummaryWriter(LOGDIR) if is_main_process() else None

    step = 0  # one step per batch
    best_val_loss, best_epoch, best_state = None, None, None
    history = []
    for epoch in range(1, EPOCHS + 1):  # one epoch per pass over the training rows
        model.train()
        #@begin:learning_rate
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trains at
        #@end:learning_rate
        total, seen = 0.0, 0
        for xb, yb in train_loader:
            #@begin:step
            xb, yb = xb.to(device), yb.to(device)''')
    if has_bn:
        add('''            if len(xb) == 1:
                continue  # BatchNorm cannot train on a batch of one''')
    add(f'''            outputs = model(xb)  # forward
            loss = loss_fn({loss_call}, yb)
            optimizer.zero_grad()
            loss.backward()  # gradients''')
    if t.grad_clip > 0:
        add("            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)")
    add("            optimizer.step()  # update the weights")
    if per_batch:
        add('''            if step < last_scheduled_step:
                scheduler.step()''')
    add('''            step += 1
            #@end:step
            #@begin:step_loss
            if writer:
                writer.add_scalar("loss/train_step", loss.item(), step)
            #@end:step_loss
            total += loss.item() * len(xb)
            seen += len(xb)
        if seen == 0:
            break
        #@begin:epoch_loss
        train_loss = total / seen  # the mean over the epoch's rows
        #@end:epoch_loss
        if not math.isfinite(train_loss):
            raise SystemExit(f"the loss became {train_loss} at epoch {epoch}: try a lower learning rate (now {LR:g})")
        #@begin:validation
        val_loss, metrics = evaluate(model, loss_fn, val_set, pre, device)
        #@end:validation
        improved = val_loss is None or (math.isfinite(val_loss) and (best_val_loss is None or val_loss < best_val_loss))
        if improved:
            best_epoch, best_val_loss = epoch, val_loss
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}''')
    if t.scheduler == "plateau":
        add("        scheduler.step(val_loss if val_loss is not None else train_loss)")
    elif t.scheduler in ("step", "cosine"):
        add("        scheduler.step()  # once per epoch")
    add('''        if writer:
            writer.add_scalar("loss/train", train_loss, epoch)
            if val_loss is not None:
                writer.add_scalar("loss/validation", val_loss, epoch)
            for name, value in metrics.items():
                writer.add_scalar(f"metrics/validation_{name}", value, epoch)
            writer.add_scalar("learning_rate", lr, epoch)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, **metrics})
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        print(f"epoch {epoch}/{EPOCHS}  loss {train_loss:.4g}  validation {val_loss if val_loss is None else f'{val_loss:.4g}'}  {shown}")
        if EARLY_STOPPING and best_epoch is not None and epoch - best_epoch >= EARLY_STOPPING:
            break
    if EARLY_STOPPING and best_state is not None:
        model.load_state_dict(best_state)  # the weights of the best validation loss
    if writer:
        writer.close()

    test_loss, test_metrics = evaluate(model, loss_fn, test_set, pre, device)
    if test_loss is not None:
        print("test: " + "  ".join(f"{k} {v:.4g}" for k, v in {"loss": test_loss, **test_metrics}.items()))
    if not is_main_process():
        return
    #@begin:save
    checkpoint = {  # nnstudio's checkpoint format: plain values and tensors only
        "format": "nnstudio", "version": 1,
        "model_spec": {"layers": LAYERS, "in_features": in_features, "n_outputs": n_outputs},
        "state_dict": {k: v.cpu() for k, v in to_nnstudio_keys(model).items()},
        "optimizer_state": optimizer.state_dict(),
        "scheduler_state": None,
        "epoch": epoch,
        "preprocessing": pre,
        "config": {"data": {"path": DATA_PATH, "target": TARGET, "task": TASK, "split": list(SPLIT),
                            "seed": DATA_SEED, "missing": MISSING},
                   "model": {"layers": LAYERS}},
        "metrics": {**{f"val_{k}": v for k, v in (history[-1] if history else {}).items() if k not in ("epoch", "train_loss", "val_loss")},
                    **({"test_loss": test_loss} if test_loss is not None else {}),
                    **{f"test_{k}": v for k, v in test_metrics.items()}},
        "history": history,
        "versions": {"torch": str(torch.__version__), "numpy": np.__version__, "python": platform.python_version(),
                     "script": os.path.basename(__file__)},
    }
    torch.save(checkpoint, CHECKPOINT)
    print(f"checkpoint: {CHECKPOINT}")

    # Load it back into a fresh instance, as one does to predict later.
    fresh = Net(in_features, n_outputs)
    fresh.load_state_dict(from_nnstudio_keys(torch.load(CHECKPOINT, weights_only=True)["state_dict"], fresh))
    fresh.eval()
    #@end:save


if __name__ == "__main__":
    ARGS = command_line()
    DATA_PATH = os.path.abspath(ARGS.data)
    CHECKPOINT = os.path.join(ARGS.out, CHECKPOINT)
    LOGDIR = os.path.join(ARGS.out, LOGDIR)
    check_outputs(CHECKPOINT, ARGS.overwrite)
    main()''')
    return _resolve_markers(out)


def _literal(value: Any, indent: int) -> str:
    text = pprint.pformat(value, width=110 - indent, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


_MARK = re.compile(r"^\s*#@(begin|end):(\w+)\s*$")
_LAYER = re.compile(r"\s*#@layer:(\d+)$")


def _resolve_markers(lines: list[str]) -> GeneratedCode:
    """Strip the `#@` markers, remembering where the layers and the loop parts are."""
    text_lines: list[str] = []
    layer_lines: dict[int, int] = {}
    parts: dict[str, tuple[int, int]] = {}
    open_parts: dict[str, int] = {}
    for line in lines:
        m = _MARK.match(line)
        if m:
            if m.group(1) == "begin":
                open_parts[m.group(2)] = len(text_lines)
            else:
                parts[m.group(2)] = (open_parts.pop(m.group(2)), len(text_lines) - 1)
            continue
        m = _LAYER.search(line)
        if m:
            layer_lines[int(m.group(1))] = len(text_lines)
            line = line[:m.start()]
        text_lines.append(line)
    return GeneratedCode("\n".join(text_lines) + "\n", layer_lines, parts)


# ---------------------------------------------------------------------------------------------- export

def script_for_config(cfg: RunConfig, source: str, script_name: str = "train.py") -> GeneratedCode:
    """Read the config's data the way a run does and write its script (column decisions from the real fit)."""
    from nnstudio.core.data import read_table
    from nnstudio.core.run import load_data

    path = cfg.data_path
    if not cfg.data.path:
        raise ConfigError(f"{source}: [data] path is empty; a script needs the data file")
    if cfg.data.is_images(path):
        from nnstudio.core.export.codegen_images import image_script

        return GeneratedCode(image_script(cfg, load_data(cfg), source), {}, {})
    check_source(path)
    data = load_data(cfg)  # the very decisions a run makes (columns used, kinds, categories)
    df = read_table(path)  # and the dtypes nnstudio reads the columns as
    facts = facts_from_frame(df, path, data.preprocessor.target, data.task, data.preprocessor)
    return generate(cfg, facts, source=source, script_name=script_name)


def config_from_source(source: str | Path) -> RunConfig:
    """A RunConfig from a run config (.toml) or from the config a checkpoint (.pt) carries."""
    from nnstudio.core.model.checkpoint import load_checkpoint

    source = Path(source)
    if source.suffix.lower() == ".toml":
        return RunConfig.load(source)
    ckpt = load_checkpoint(source)
    raw = ckpt.config
    if not raw or not raw.get("data", {}).get("path"):
        raise ConfigError(f"{source.name}: the checkpoint does not record the run's data file, so no script can "
                          "be written from it; export from the project (.toml) instead")
    raw = {k: v for k, v in raw.items() if k in ("data", "model", "training", "output")}
    cfg = RunConfig.from_dict(raw, source.resolve().parent, source.name)
    cfg.layers = list(ckpt.layers)
    return cfg


def export_script(source: str | Path, dest: str | Path) -> Path:
    """Write the standalone script of a run config or checkpoint to `dest`: the data path absolute (once, at its
    top); the checkpoint and log by name, written beside the script (or under its --out)."""
    cfg = config_from_source(source)
    cfg.data.path = str(cfg.data_path.resolve())
    dest = Path(dest)
    cfg.output.checkpoint = Path(cfg.output.checkpoint or "model.pt").name
    cfg.output.logdir = Path(cfg.output.logdir or "runs").name
    code = script_for_config(cfg, Path(source).name, dest.name)
    return atomic_text_write(code.text, dest)


def atomic_text_write(text: str, dest: str | Path) -> Path:
    """Write through `core.files.atomic_write`: a failed export never leaves half a file."""
    from nnstudio.core.errors import NNStudioError
    from nnstudio.core.files import atomic_write

    dest = Path(dest)
    if dest.is_dir():
        raise NNStudioError(f"{dest}: is a folder; choose a file name")
    if not dest.parent.exists():
        raise NNStudioError(f"{dest.parent}: folder does not exist")
    try:
        with atomic_write(dest, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise NNStudioError(f"{dest}: could not write ({exc.strerror or exc})") from exc
    return dest
