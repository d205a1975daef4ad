"""Task metrics through torchmetrics, in the target's own units (classes, or de-standardised values)."""

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


@torch.no_grad()
def compute(task: str, outputs: torch.Tensor, target: torch.Tensor, preprocessor: "Preprocessor | None" = None) -> dict[str, float]:
    # torchmetrics costs ~0.35 s to import: paid at the first epoch end, not at start-up.
    from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score
    from torchmetrics.functional.classification import (
        binary_accuracy, binary_auroc, binary_f1_score, multiclass_accuracy, multiclass_f1_score)

    outputs = outputs.detach().float()
    if task == "binary":
        logits = outputs.reshape(-1)
        y = target.reshape(-1).long()
        probs = torch.sigmoid(logits)
        out = {"accuracy": binary_accuracy(probs, y), "f1": binary_f1_score(probs, y)}
        out["auroc"] = binary_auroc(probs, y) if 0 < int(y.sum()) < len(y) else torch.tensor(float("nan"))
    elif task == "multiclass":
        k = outputs.shape[1]
        preds = outputs.argmax(dim=1)
        out = {"accuracy": multiclass_accuracy(preds, target, num_classes=k, average="micro"),
               "f1": multiclass_f1_score(preds, target, num_classes=k, average="macro")}
    else:
        scale = preprocessor.target_std if preprocessor is not None else 1.0
        shift = preprocessor.target_mean if preprocessor is not None else 0.0
        preds = outputs.reshape(-1) * scale + shift
        y = target.reshape(-1).float() * scale + shift
        mse = mean_squared_error(preds, y)
        out = {"rmse": mse.sqrt(), "mae": mean_absolute_error(preds, y)}
        out["r2"] = r2_score(preds, y) if len(y) > 1 else torch.tensor(float("nan"))
    return {k: float(v) for k, v in out.items()}
