"""Export a trained model for use without nnstudio: ONNX, TorchScript, or a plain nn.Sequential state_dict.

ONNX and TorchScript take *raw* features: the numeric standardisation (and the imputation of a missing value
by the training mean) is folded into the graph, and a regression output comes back in the target's units.
One-hot columns are inputs of 0/1; the JSON file written beside the model lists the inputs in order, each
one-hot column's categories and the class names. Each export is run right after it is written, on sample
rows, and compared with the live model through nnstudio's own preprocessing; the largest difference is
reported, and a mismatch is an error, not a footnote.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nnstudio.core.errors import NNStudioError
from nnstudio.core.files import atomic_write

FORMATS = ("onnx", "torchscript", "state_dict")
#: Largest difference accepted between an export and the live model (float32 outputs of order 1).
TOLERANCE = 1e-4


class ExportError(NNStudioError):
    pass


@dataclass
class ExportReport:
    path: Path
    format: str
    sidecar: Path
    max_difference: float | None  # None: nothing to run (a plain state_dict)
    rows_checked: int
    ok: bool

    def message(self) -> str:
        if self.max_difference is None:
            return f"{self.path.name}: written, with {self.sidecar.name}"
        verdict = "matches" if self.ok else "DOES NOT MATCH"
        return (f"{self.path.name}: {verdict} the live model on {self.rows_checked} sample rows "
                f"(largest difference {self.max_difference:.3g}; tolerance {TOLERANCE:g})")


class RawInputModel(nn.Module):
    """The network with the standardisation in front (and the target's scale behind, for regression)."""

    def __init__(self, layers: nn.Sequential, mean: torch.Tensor, std: torch.Tensor, out_scale: float,
                 out_shift: float):
        super().__init__()
        self.layers = layers
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.out_scale = out_scale
        self.out_shift = out_shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        z = torch.where(torch.isfinite(z), z, torch.zeros_like(z))  # missing: the training mean
        return self.layers(z) * self.out_scale + self.out_shift


def input_description(pre: Any) -> dict[str, Any]:
    """What the JSON beside an export says: inputs in order, categories, classes, what comes out."""
    inputs = []
    for f in pre.features:
        if f["kind"] == "categorical":
            inputs += [{"name": f"{f['name']}={c}", "column": f["name"], "kind": "one-hot", "category": c}
                       for c in f["categories"]]
        else:
            inputs.append({"name": f["name"], "column": f["name"], "kind": f["kind"],
                           "training_mean": f["mean"], "training_std": f["std"]})
    outputs = {"regression": f"the predicted '{pre.target}' in its own units",
               "binary": "one logit: sigmoid(logit) is the probability of the second class",
               "multiclass": "one logit per class, in the order of 'classes' (softmax for probabilities)"}
    return {"target": pre.target, "task": pre.task, "inputs": inputs,
            "categories": {f["name"]: f["categories"] for f in pre.features if f["kind"] == "categorical"},
            "classes": pre.classes, "outputs": outputs[pre.task],
            "missing": "a missing numeric value (NaN) becomes the training mean; a one-hot row of zeros "
                       "means a missing or unseen category"}


def image_description(pre: Any) -> dict[str, Any]:
    """The JSON beside an image model's export: raw pixels in, the normalisation it folds in, classes out."""
    return {"target": pre.target, "task": pre.task, "classes": pre.classes,
            "inputs": {"shape": ["N", *pre.input_shape], "layout": "N×C×H×W", "range": "raw pixels 0-255",
                       "channels": "grey" if pre.channels == 1 else "RGB (transparency composited on white)",
                       "normalization_folded_in": {"mean": pre.mean, "std": pre.std, "units": "0-1"}},
            "outputs": "one logit per class, in the order of 'classes' (softmax for probabilities)"}


def raw_input_model(model: nn.Module, pre: Any) -> RawInputModel:
    import copy

    mean, std = [], []
    for f in pre.features:
        if f["kind"] == "categorical":
            mean += [0.0] * len(f["categories"])
            std += [1.0] * len(f["categories"])
        else:
            mean.append(f["mean"])
            std.append(f["std"])
    scale, shift = (pre.target_std, pre.target_mean) if pre.task == "regression" else (1.0, 0.0)
    layers = copy.deepcopy(model.layers).cpu().eval()
    return RawInputModel(layers, torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32),
                         float(scale), float(shift)).eval()


def sample_rows(pre: Any, n: int = 64, seed: int = 0) -> tuple[Any, np.ndarray]:
    """Raw rows (a polars table, some cells missing) and the same rows as the export's input matrix."""
    import polars as pl

    rng = np.random.default_rng(seed)
    table: list[pl.Series] = []
    columns = []
    for f in pre.features:
        if f["kind"] == "categorical":
            cats = f["categories"]
            pick = rng.integers(0, len(cats), n)
            values = np.array([cats[i] for i in pick], dtype=object)
            values[::11] = None
            table.append(pl.Series(f["name"], values.tolist(), dtype=pl.String))
            columns += [(values == c).astype(np.float32) for c in cats]
        else:
            values = f["mean"] + f["std"] * rng.normal(size=n)
            if f["kind"] == "boolean":
                values = (values > f["mean"]).astype(np.float64)
            values[::13] = np.nan
            table.append(pl.Series(f["name"], values, nan_to_null=True))
            columns.append(values.astype(np.float32))
    return pl.DataFrame(table), np.stack(columns, axis=1)


def live_outputs(model: nn.Module, pre: Any, df: Any) -> np.ndarray:
    """The model through nnstudio's own preprocessing, in the units an export gives."""
    X = torch.from_numpy(pre.transform_features(df))
    model.eval()
    with torch.no_grad():
        out = model(X.to(next(model.parameters()).device)).float().cpu()
    if pre.task == "regression":
        out = out * pre.target_std + pre.target_mean
    return out.numpy()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=2))


def _check_dest(path: Path) -> None:
    if path.is_dir():
        raise ExportError(f"{path}: is a folder; choose a file name")
    if not path.parent.exists():
        raise ExportError(f"{path.parent}: folder does not exist")


def export_model(model: nn.Module, pre: Any, path: str | Path, fmt: str) -> ExportReport:
    """Write `model` (a SpecModel with its preprocessing) as `fmt`, check it, and describe its inputs beside it."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}': use {', '.join(FORMATS)}")
    _check_dest(path)
    if pre is None:
        raise ExportError(f"{path.name}: the model has no preprocessing record (a bare state_dict); "
                          "train it on a dataset first")
    if fmt == "state_dict":
        return _export_state_dict(model, pre, path)
    image = getattr(pre, "kind", None) == "image"
    if image:  # the model takes raw 0-255 pixels already: its ImageInput holds the training normalisation
        import copy

        wrapped = copy.deepcopy(model).cpu().eval()
        X = np.random.default_rng(0).integers(0, 256, (16, *pre.input_shape)).astype(np.float32)
        with torch.no_grad():
            expected = model.eval()(torch.from_numpy(X).to(next(model.parameters()).device)).float().cpu().numpy()
    else:
        wrapped = raw_input_model(model, pre)
        df, X = sample_rows(pre)
        expected = live_outputs(model, pre, df)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "torchscript":
            with warnings.catch_warnings():  # torch marks jit deprecated; the format is what was asked for
                warnings.simplefilter("ignore", DeprecationWarning)
                scripted = torch.jit.script(wrapped)
                scripted.save(str(tmp))
                loaded = torch.jit.load(str(tmp))
            with torch.no_grad():
                got = loaded(torch.from_numpy(X)).numpy()
        else:
            got = _export_onnx(wrapped, X, tmp)
    except ExportError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{path.name}: the {fmt} export failed ({first})") from exc
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    ok = bool(np.isfinite(diff) and diff <= TOLERANCE and got.shape == expected.shape)
    os.replace(tmp, path)
    sidecar = _sidecar(path)
    described = image_description(pre) if image else input_description(pre)
    _write_json(sidecar, {"format": fmt, "input_name": "features", "output_name": "outputs",
                          **described, "check": {"rows": len(X), "max_difference": diff, "ok": ok}})
    return ExportReport(path, fmt, sidecar, diff, len(X), ok)


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter narrates its passes on stdout, logs that torchvision's ops are skipped and warns of its own
    deprecations: none of it is about the user's model, so none of it reaches the terminal (errors still raise)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _export_onnx(wrapped: nn.Module, X: np.ndarray, dest: Path) -> np.ndarray:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ExportError("ONNX export needs onnx and onnxruntime: pip install \"nnstudio[export]\"") from exc
    sample = torch.from_numpy(X[:2])
    with _quiet_exporter():
        torch.onnx.export(wrapped, (sample,), str(dest), input_names=["features"], output_names=["outputs"],
                          dynamic_shapes={"x": {0: torch.export.Dim("rows", min=1)}}, dynamo=True,
                          external_data=False)
    session = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
    return session.run(None, {"features": X})[0]


def sequential_code(model: nn.Module) -> str:
    """`nn.Sequential(nn.Linear(7, 16), ...)`: what a reader of the notes writes to load the plain state_dict."""
    parts = []
    for m in model.layers:
        if isinstance(m, nn.Linear):
            parts.append(f"nn.Linear({m.in_features}, {m.out_features}{'' if m.bias is not None else ', bias=False'})")
        elif isinstance(m, nn.BatchNorm1d):
            parts.append(f"nn.BatchNorm1d({m.num_features}, eps={m.eps!r}, momentum={m.momentum!r})")
        elif isinstance(m, nn.LayerNorm):
            parts.append(f"nn.LayerNorm({m.normalized_shape[0]}, eps={m.eps!r})")
        elif isinstance(m, nn.Dropout):
            parts.append(f"nn.Dropout(p={m.p!r})")
        elif isinstance(m, nn.LeakyReLU):
            parts.append(f"nn.LeakyReLU({m.negative_slope!r})")
        else:
            parts.append(f"nn.{type(m).__name__}()")
    return "nn.Sequential(\n    " + ",\n    ".join(parts) + ",\n)"


def _export_state_dict(model: nn.Module, pre: Any, path: Path) -> ExportReport:
    from nnstudio.core.model.checkpoint import atomic_torch_save

    state = {k: v.detach().cpu().clone() for k, v in model.layers.state_dict().items()}
    atomic_torch_save(state, path)
    code = sequential_code(model)
    note = (f"# {path.name}: a plain nn.Sequential state_dict (keys 0.weight, 0.bias, ...). Load it with:\n"
            "import torch\nfrom torch import nn\n\n"
            f"model = {code}\n"
            f"model.load_state_dict(torch.load({path.name!r}, weights_only=True))\nmodel.eval()\n"
            "# Inputs are standardised: (x - training_mean) / training_std per numeric input, 0 where missing,\n"
            f"# one-hot columns as 0/1 (see {_sidecar(path).name}).")
    if pre.task == "regression":
        note += f"\n# The output is the standardised target: multiply by {pre.target_std!r} and add {pre.target_mean!r}."
    sidecar = _sidecar(path)
    _write_json(sidecar, {"format": "state_dict", "layers": code, "note": note, **input_description(pre),
                          "target_mean": pre.target_mean, "target_std": pre.target_std})
    path.with_name(path.name + ".txt").write_text(note + "\n", encoding="utf-8")
    return ExportReport(path, "state_dict", sidecar, None, 0, True)


def export_checkpoint(source: str | Path, dest: str | Path, fmt: str) -> ExportReport:
    from nnstudio.core.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(source)
    return export_model(ckpt.model, ckpt.preprocessor, dest, fmt)
