"""Stratified k-fold cross-validation over the training+validation rows (the test split stays held out).

Rows are numbered in the prepared data's order, training rows then validation rows; the fold of each is
saved (`folds.json`) so the same folds can be trained again. Each fold standardises its numbers with its own
training rows' statistics; one-hot columns keep the configured split's categories, so every fold sees the same
columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nnstudio.core.config import RunConfig
from nnstudio.core.data import PreparedData
from nnstudio.core.data.split import TensorSplit
from nnstudio.core.errors import ConfigError
from nnstudio.core.files import atomic_write
from nnstudio.core.run import TrainingRun


def stratified_folds(y: torch.Tensor | np.ndarray, folds: int, seed: int = 0, stratify: bool = True) -> np.ndarray:
    """The fold (0..folds-1) of each row: each class dealt round-robin after a seeded shuffle."""
    y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    n = len(y)
    if folds < 2 or folds > n:
        raise ConfigError(f"--folds must be between 2 and the {n} training+validation rows, got {folds}")
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=np.int64)
    groups = [np.flatnonzero(y.reshape(n, -1)[:, 0] == c) for c in np.unique(y.reshape(n, -1)[:, 0])] if stratify \
        else [np.arange(n)]
    offset = 0
    for rows in groups:
        rows = rng.permutation(rows)
        out[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)  # the next class starts where this one stopped: fold sizes stay within one row
    return out


def pooled(data: PreparedData) -> TensorSplit:
    X_train, X_val = data.train.X, data.val.X
    X = (type(X_train).cat([X_train, X_val]) if hasattr(X_train, "subset")  # images streamed from disk
         else torch.cat([X_train, X_val]))
    return TensorSplit(X, torch.cat([data.train.y, data.val.y]))


def _rows(X: Any, index: torch.Tensor) -> Any:
    return X.subset(index) if hasattr(X, "subset") else X[index]


def fold_data(data: PreparedData, assignment: np.ndarray, fold: int) -> PreparedData:
    """The prepared data with fold `fold` as validation and the other folds as training rows, its standardisation
    refitted on the fold's own training rows (`refit_scaling`), so no validation row shapes its own scaling."""
    rows = pooled(data)
    val = torch.from_numpy(np.flatnonzero(assignment == fold))
    train = torch.from_numpy(np.flatnonzero(assignment != fold))
    return refit_scaling(PreparedData(TensorSplit(_rows(rows.X, train), rows.y[train]), TensorSplit(_rows(rows.X, val), rows.y[val]),
                                      data.test, data.preprocessor, dict(data.report)))


def refit_scaling(data: PreparedData) -> PreparedData:
    """Standardise every numeric feature (and a regression target) again with the statistics of `data.train`.

    The matrix holds z = (x - m) / s with the configured split's statistics; an affine map of it with the fold's
    training mean and std of z is exactly x standardised by the fold's own statistics, and the preprocessor (what
    a fold's checkpoint predicts with) gets the same statistics in raw units. Images are left as they are: their
    normalisation lives in the model. One-hot categories and imputed cells keep the configured split's fit."""
    import copy

    pre = data.preprocessor
    if not hasattr(pre, "features") or data.train.X.dim() != 2 or len(data.train) < 2:
        return data
    pre = copy.deepcopy(pre)
    X_train = data.train.X
    shift = torch.zeros(X_train.shape[1], dtype=X_train.dtype)
    scale = torch.ones(X_train.shape[1], dtype=X_train.dtype)
    j = 0
    for f in pre.features:
        if f.get("kind") == "categorical":
            j += len(f["categories"])
            continue
        if "mean" in f:
            m, sd = float(X_train[:, j].mean()), float(X_train[:, j].std())
            sd = sd if sd > 1e-12 else 1.0
            shift[j], scale[j] = m, sd
            f["mean"], f["std"] = f["mean"] + m * f["std"], f["std"] * sd
        j += 1

    def rescale(split: TensorSplit, y_shift: float = 0.0, y_scale: float = 1.0) -> TensorSplit:
        y = split.y if y_scale == 1.0 and y_shift == 0.0 else (split.y - y_shift) / y_scale
        return TensorSplit((split.X - shift) / scale, y)

    y_shift, y_scale = 0.0, 1.0
    if pre.task == "regression":
        y_shift, y_scale = float(data.train.y.mean()), float(data.train.y.std())
        y_scale = y_scale if y_scale > 1e-12 else 1.0
        pre.target_mean, pre.target_std = pre.target_mean + y_shift * pre.target_std, pre.target_std * y_scale
    return PreparedData(rescale(data.train, y_shift, y_scale), rescale(data.val, y_shift, y_scale),
                        rescale(data.test, y_shift, y_scale), pre, dict(data.report))


@dataclass
class CVResult:
    folds: list[dict[str, Any]] = field(default_factory=list)  # repeat, fold, rows, metrics, run_dir
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    folds_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"folds": self.folds, "mean": self.mean, "std": self.std, "folds_file": self.folds_file}


def fold_metrics(run: TrainingRun, result) -> dict[str, float]:
    last = run.trainer.history[-1] if run.trainer.history else None
    out: dict[str, float] = {}
    if last is not None:
        if last.val_loss is not None:
            out["val_loss"] = float(last.val_loss)
        out.update({f"val_{k}": float(v) for k, v in last.metrics.items()})
    out.update({f"test_{k}": float(v) for k, v in result.test.items()})
    return out


def summarize(folds: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and sample standard deviation of every metric over the folds."""
    keys = sorted({k for f in folds for k in f})
    mean, std = {}, {}
    for k in keys:
        values = [f[k] for f in folds if k in f and math.isfinite(f[k])]
        if values:
            mean[k] = float(np.mean(values))
            std[k] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return mean, std


def cross_validate(cfg: RunConfig, folds: int, repeats: int = 1, data: PreparedData | None = None,
                   callbacks: Callable[[], list] | None = None,
                   on_fold: Callable[[dict[str, Any]], None] | None = None) -> CVResult:
    """Train one run per fold (and repeat); seeded by `[data] seed` + repeat, so reruns give the same folds."""
    from nnstudio.core.experiments.study import cached_data

    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    data = data if data is not None else cached_data(cfg)
    rows = pooled(data)
    stratify = data.task in ("binary", "multiclass")
    result = CVResult()
    saved: dict[str, Any] = {"order": "training rows then validation rows of the prepared data",
                             "rows": len(rows), "folds": folds, "repeats": []}
    name = cfg.output.name
    for r in range(repeats):
        assignment = stratified_folds(rows.y, folds, cfg.data.seed + r, stratify)
        saved["repeats"].append(assignment.tolist())
        for k in range(folds):
            cfg.output.name = f"{name}-cv-r{r}f{k}"
            run = TrainingRun(cfg, data=fold_data(data, assignment, k), checkpoint=False,
                              callbacks=callbacks() if callbacks else ())
            res = run.execute()
            entry = {"repeat": r, "fold": k, "rows": int((assignment == k).sum()),
                     "metrics": fold_metrics(run, res), "run_dir": str(run.run_dir)}
            result.folds.append(entry)
            if on_fold is not None:
                on_fold(entry)
    cfg.output.name = name
    result.mean, result.std = summarize([f["metrics"] for f in result.folds])
    path = cfg.logdir / f"{name}-cv-folds.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(saved))
    result.folds_file = str(path)
    return result
