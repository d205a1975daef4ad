"""What a trained model is worth: loss and metrics per split, confusion matrix, per-class report, ROC/PR
curves, predicted against actual. Every figure comes from torchmetrics, so the window, the CLI and the
tests cannot disagree on a formula. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nnstudio.core.training import metrics as metrics_mod
from nnstudio.core.data import PreparedData, Preprocessor, TensorSplit
from nnstudio.core.errors import DataError

SPLITS = ("train", "val", "test")
SPLIT_TITLES = {"train": "train", "val": "validation", "test": "test"}
DEFAULT_THRESHOLD = 0.5


@dataclass
class ClassReport:
    """The classification view at one decision threshold (binary) or by argmax (multiclass)."""

    classes: list[str]
    confusion: np.ndarray  # rows: actual, columns: predicted; counts
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    metrics: dict[str, float]  # accuracy, f1 (and auroc for binary) at this threshold
    threshold: float | None = None

    normalized: np.ndarray | None = None  # the confusion matrix normalised by row (true class)

    def confusion_normalized(self) -> np.ndarray:
        """Each row as shares of its actual class (0 for a class absent from the split)."""
        return self.normalized if self.normalized is not None else np.zeros_like(self.confusion, dtype=float)

    def per_class_rows(self) -> list[dict[str, Any]]:
        return [{"class": c, "precision": p, "recall": r, "f1": f, "support": s}
                for c, p, r, f, s in zip(self.classes, self.precision, self.recall, self.f1, self.support)]


@dataclass
class Curves:
    """Binary ROC and precision-recall curves of the test split, with their areas."""

    fpr: np.ndarray
    tpr: np.ndarray
    roc_thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    pr_thresholds: np.ndarray
    auroc: float
    average_precision: float


@dataclass
class Evaluation:
    """A model's figures on a prepared dataset; `at_threshold` recomputes the classification view."""

    task: str
    preprocessor: Preprocessor
    table: dict[str, dict[str, float]]  # split -> {"loss": ..., metric: ...}
    sizes: dict[str, int]
    outputs: torch.Tensor  # the test split's raw model outputs (CPU)
    target: torch.Tensor  # the test split's encoded target (CPU)
    report: ClassReport | None = None
    curves: Curves | None = None
    threshold: float = DEFAULT_THRESHOLD

    @property
    def classes(self) -> list[str]:
        return list(self.preprocessor.classes or [])

    @property
    def probabilities(self) -> torch.Tensor:
        if self.task == "binary":
            return torch.sigmoid(self.outputs.reshape(-1).float())
        return torch.softmax(self.outputs.float(), dim=1)

    def at_threshold(self, threshold: float) -> ClassReport:
        """The binary view at another decision threshold (the probability above which a row is class 1)."""
        if self.task != "binary":
            raise ValueError("a decision threshold applies to binary tasks only")
        self.threshold = float(threshold)
        self.report = class_report(self.task, self.outputs, self.target, self.classes, self.threshold)
        return self.report

    def test_predictions(self) -> tuple[list[str], list[str], list[float]]:
        """Each test row's actual class, predicted class and the predicted class's probability (classification)."""
        classes = self.classes
        if self.task == "binary":
            p1 = self.probabilities
            pred = (p1 > self.threshold).long()
            prob = torch.where(pred == 1, p1, 1 - p1)
        else:
            prob, pred = self.probabilities.max(dim=1)
        actual = self.target.reshape(-1).long()
        return ([classes[int(i)] for i in actual], [classes[int(i)] for i in pred], [float(v) for v in prob])

    # -- regression
    def predicted_actual(self) -> tuple[np.ndarray, np.ndarray]:
        """Test split predictions and actual values, in the target's units."""
        pre = self.preprocessor
        pred = self.outputs.reshape(-1).double() * pre.target_std + pre.target_mean
        actual = self.target.reshape(-1).double() * pre.target_std + pre.target_mean
        return pred.numpy(), actual.numpy()

    def residuals(self) -> np.ndarray:
        pred, actual = self.predicted_actual()
        return actual - pred

    def largest_errors(self, n: int = 20) -> list[dict[str, Any]]:
        """Test rows (0-based position in the test split) ordered by absolute error, largest first."""
        pred, actual = self.predicted_actual()
        error = np.abs(actual - pred)
        order = np.argsort(-error, kind="stable")[:n]
        return [{"test_row": int(i), "actual": float(actual[i]), "predicted": float(pred[i]),
                 "error": float(actual[i] - pred[i])} for i in order]

    def test_features(self, rows: list[int], X: torch.Tensor) -> list[dict[str, Any]]:
        """The feature values of test rows as the table held them (numbers de-standardised, one-hot decoded;
        an imputed cell shows the training mean it was filled with)."""
        out: list[dict[str, Any]] = [{} for _ in rows]
        block = X[rows].double().cpu().numpy() if len(rows) else np.zeros((0, 0))
        j = 0
        for f in self.preprocessor.features:
            if f["kind"] == "categorical":
                k = len(f["categories"])
                part = block[:, j:j + k]
                for r, vals in enumerate(part):
                    out[r][f["name"]] = f["categories"][int(vals.argmax())] if vals.max() > 0 else None
                j += k
            else:
                for r in range(len(rows)):
                    value = block[r, j] * f["std"] + f["mean"]
                    out[r][f["name"]] = bool(round(value)) if f["kind"] == "boolean" else round(float(value), 6)
                j += 1
        return out

    # -- tables for export
    def metrics_rows(self) -> list[dict[str, Any]]:
        names = list(dict.fromkeys(k for v in self.table.values() for k in v))  # loss, then the task's order
        return [{"split": SPLIT_TITLES[s], "rows": self.sizes.get(s, 0), **{k: self.table[s].get(k) for k in names}}
                for s in SPLITS if s in self.table]

    def test_summary(self) -> str:
        test = self.table.get("test") or {}
        return "  ".join(f"{k} {v:.4g}" for k, v in test.items())


@torch.no_grad()
def model_outputs(model: torch.nn.Module, split: TensorSplit, batch_size: int = 8192) -> torch.Tensor:
    from nnstudio.core.training.engine import predict_batches

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return torch.cat([predict_batches(model, split.X[i:i + batch_size].to(device), batch_size).cpu()
                          for i in range(0, len(split), batch_size)]) if len(split) else torch.empty(0)
    finally:
        model.train(was_training)


def split_figures(task: str, outputs: torch.Tensor, target: torch.Tensor, preprocessor: Preprocessor,
                  loss_fn: torch.nn.Module, threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """Loss plus the task's metrics; for binary, accuracy and F1 are taken at `threshold`."""
    loss = float(loss_fn(outputs.squeeze(-1) if task != "multiclass" else outputs, target))
    values = metrics_mod.compute(task, outputs, target, preprocessor)
    if task == "binary" and threshold != DEFAULT_THRESHOLD:
        from torchmetrics.functional.classification import binary_accuracy, binary_f1_score

        probs = torch.sigmoid(outputs.reshape(-1).float())
        y = target.reshape(-1).long()
        values["accuracy"] = float(binary_accuracy(probs, y, threshold=threshold))
        values["f1"] = float(binary_f1_score(probs, y, threshold=threshold))
    return {"loss": loss, **values}


def class_report(task: str, outputs: torch.Tensor, target: torch.Tensor, classes: list[str],
                 threshold: float = DEFAULT_THRESHOLD) -> ClassReport:
    from torchmetrics.functional.classification import (
        binary_accuracy, binary_auroc, binary_f1_score, multiclass_accuracy, multiclass_confusion_matrix,
        multiclass_f1_score, multiclass_precision, multiclass_recall)

    y = target.reshape(-1).long()
    k = len(classes)
    metrics: dict[str, float] = {}
    if task == "binary":
        probs = torch.sigmoid(outputs.reshape(-1).float())
        preds = (probs > threshold).long()  # the rule torchmetrics' binary metrics use
        metrics["accuracy"] = float(binary_accuracy(probs, y, threshold=threshold))
        metrics["f1"] = float(binary_f1_score(probs, y, threshold=threshold))
        if 0 < int(y.sum()) < len(y):
            metrics["auroc"] = float(binary_auroc(probs, y))
    else:
        preds = outputs.float().argmax(dim=1)
        metrics["accuracy"] = float(multiclass_accuracy(preds, y, num_classes=k, average="micro"))
        metrics["f1"] = float(multiclass_f1_score(preds, y, num_classes=k, average="macro"))
    confusion = multiclass_confusion_matrix(preds, y, num_classes=k).numpy().astype(np.int64)
    normalized = multiclass_confusion_matrix(preds, y, num_classes=k, normalize="true").double().numpy()
    precision = multiclass_precision(preds, y, num_classes=k, average=None).tolist()
    recall = multiclass_recall(preds, y, num_classes=k, average=None).tolist()
    f1 = multiclass_f1_score(preds, y, num_classes=k, average=None).tolist()
    support = confusion.sum(axis=1).tolist()
    return ClassReport(list(classes), confusion, precision, recall, f1, [int(s) for s in support], metrics,
                       threshold if task == "binary" else None, normalized)


def binary_curves(outputs: torch.Tensor, target: torch.Tensor) -> Curves | None:
    """ROC and PR curves; None when the split holds a single class (no curve can be drawn)."""
    from torchmetrics.functional.classification import (
        binary_auroc, binary_average_precision, binary_precision_recall_curve, binary_roc)

    y = target.reshape(-1).long()
    if not 0 < int(y.sum()) < len(y):
        return None
    probs = torch.sigmoid(outputs.reshape(-1).float())
    fpr, tpr, roc_t = binary_roc(probs, y)
    precision, recall, pr_t = binary_precision_recall_curve(probs, y)
    return Curves(fpr.numpy(), tpr.numpy(), roc_t.numpy(), precision.numpy(), recall.numpy(), pr_t.numpy(),
                  float(binary_auroc(probs, y)), float(binary_average_precision(probs, y)))


def evaluate(model: torch.nn.Module, data: PreparedData, loss: str = "auto", threshold: float = DEFAULT_THRESHOLD,
             class_weight: str = "none") -> Evaluation:
    """Every split's loss and metrics, and the test split's detailed views.

    The loss is the training loss (with the same class weights when `class_weight` is "balanced"), so the
    table's numbers match the curves of the run.
    """
    from nnstudio.core.training.engine import class_weights, make_loss

    task = data.task
    pre = data.preprocessor
    loss_fn = make_loss(task, loss, weights=class_weights(data, class_weight))
    table: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    test_out = torch.empty(0)
    test_y = torch.empty(0)
    for name in SPLITS:
        split: TensorSplit = getattr(data, name)
        sizes[name] = len(split)
        if not len(split):
            continue
        out = model_outputs(model, split)
        y = split.y.cpu()
        table[name] = split_figures(task, out, y, pre, loss_fn, threshold)
        if name == "test":
            test_out, test_y = out, y
    if not len(test_y):
        raise DataError("the test split is empty; set a test fraction above 0 in the dataset's split to evaluate")
    ev = Evaluation(task, pre, table, sizes, test_out, test_y, threshold=float(threshold))
    if task in ("binary", "multiclass"):
        ev.report = class_report(task, test_out, test_y, ev.classes, threshold)
        if task == "binary":
            ev.curves = binary_curves(test_out, test_y)
    return ev


def rows_to_csv(rows: list[dict[str, Any]], path) -> None:
    """Write a list of dicts (one row each) as CSV, whole or not at all; the header is the first row's keys."""
    import csv

    from nnstudio.core.files import atomic_write

    with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
        if not rows:
            return
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def confusion_rows(report: ClassReport, normalized: bool = False) -> list[dict[str, Any]]:
    matrix = report.confusion_normalized() if normalized else report.confusion
    return [{"actual \\ predicted": c, **{p: (float(v) if normalized else int(v)) for p, v in zip(report.classes, row)}}
            for c, row in zip(report.classes, matrix)]
