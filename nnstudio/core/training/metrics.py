"""Task metrics as torchmetrics defines them, in the target's own units (classes, or de-standardised values)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from nnstudio.core.data import Preprocessor

METRIC_NAMES = {
    "binary": ("accuracy", "f1", "auroc"),
    "multiclass": ("accuracy", "f1"),
    "regression": ("rmse", "mae", "r2"),
}
#: Metrics whose values lie in [0, 1] (r2 at most 1): plotted on their own axis, apart from errors in the
#: target's units (rmse, mae), which can be thousands.
UNIT_INTERVAL_METRICS = frozenset({"accuracy", "balanced_accuracy", "f1", "auroc", "auprc", "average_precision",
                                   "precision", "recall", "specificity", "r2"})


def in_unit_interval(name: str) -> bool:
    """Whether metric ``name`` (also as ``val_name``, ``test_name``, ``train_name``) is a [0, 1] score."""
    for prefix in ("val_", "validation_", "test_", "train_"):
        name = name.removeprefix(prefix)
    return name in UNIT_INTERVAL_METRICS


#: Whether a larger value is better, per metric (for early stopping on a metric and for display).
HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "auroc": True, "rmse": False, "mae": False, "r2": True, "loss": False}


def _safe_divide(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, 0 where den is 0 (torchmetrics' zero_division=0)."""
    return torch.where(den == 0, torch.zeros_like(num), num / torch.where(den == 0, torch.ones_like(den), den))


def _f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    return _safe_divide(2 * tp, 2 * tp + fp + fn)


def _binary_auroc(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Area under the exact ROC curve (one point per distinct score, trapezoids), as torchmetrics' binary_auroc."""
    order = torch.argsort(probs, descending=True, stable=True)
    scores, hits = probs[order], y[order].float()
    last = torch.cat([torch.nonzero(scores[1:] != scores[:-1]).reshape(-1),
                      torch.tensor([len(scores) - 1], device=scores.device)])
    tps = torch.cumsum(hits, 0)[last]
    fps = (last + 1).float() - tps
    zero = torch.zeros(1, device=scores.device)
    return torch.trapz(torch.cat([zero, tps]) / tps[-1], torch.cat([zero, fps]) / fps[-1])


def _r2(preds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """torchmetrics' r2_score: 1 - rss/tss; 1 where both are ~0, 0 where only the target is ~constant."""
    n = len(y)
    sum_obs, rss = y.sum(), ((y - preds) ** 2).sum()
    tss = (y * y).sum() - sum_obs * (sum_obs / n)
    zero = torch.zeros_like(rss)
    if torch.isclose(rss, zero, atol=1e-4):
        return torch.ones_like(rss)
    if torch.isclose(tss, zero, atol=1e-4):
        return zero
    return 1 - rss / tss


@torch.no_grad()
def compute(task: str, outputs: torch.Tensor, target: torch.Tensor, preprocessor: "Preprocessor | None" = None) -> dict[str, float]:
    """The task's metrics, computed as torchmetrics computes them (tests/core/test_metrics_torch.py compares
    them with torchmetrics) in a few tensor ops: importing torchmetrics costs ~0.7 s, a third of a small run."""
    outputs = outputs.detach().float()
    if task == "binary":
        logits = outputs.reshape(-1)
        y = target.reshape(-1).long()
        probs = torch.sigmoid(logits)
        preds = (probs > 0.5).long()
        tp = ((preds == 1) & (y == 1)).sum().float()
        fp = ((preds == 1) & (y == 0)).sum().float()
        fn = ((preds == 0) & (y == 1)).sum().float()
        out = {"accuracy": (preds == y).float().mean(), "f1": _f1(tp, fp, fn)}
        out["auroc"] = _binary_auroc(probs, y) if 0 < int(y.sum()) < len(y) else torch.tensor(float("nan"))
    elif task == "multiclass":
        k = outputs.shape[1]
        preds = outputs.argmax(dim=1)
        y = target.reshape(-1).long()
        tp = torch.bincount(y[preds == y], minlength=k).float()
        fp = torch.bincount(preds, minlength=k).float() - tp
        fn = torch.bincount(y, minlength=k).float() - tp
        weights = ((tp + fp + fn) != 0).float()  # classes neither predicted nor present do not count
        out = {"accuracy": (preds == y).float().mean(),
               "f1": _safe_divide((weights * _f1(tp, fp, fn)).sum(), weights.sum())}
    else:
        scale = preprocessor.target_std if preprocessor is not None else 1.0
        shift = preprocessor.target_mean if preprocessor is not None else 0.0
        preds = outputs.reshape(-1) * scale + shift
        y = target.reshape(-1).float() * scale + shift
        diff = preds - y
        out = {"rmse": (diff * diff).mean().sqrt(), "mae": diff.abs().mean()}
        out["r2"] = _r2(preds, y) if len(y) > 1 else torch.tensor(float("nan"))
    return {k: float(v) for k, v in out.items()}
