"""The training metrics, computed without torchmetrics (0.7 s to import), give torchmetrics' values."""

import pytest
import torch
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score
from torchmetrics.functional.classification import (binary_accuracy, binary_auroc, binary_f1_score,
                                                    multiclass_accuracy, multiclass_f1_score)

from nnstudio.core.training.metrics import compute


def _binary_reference(logits, y):
    probs = torch.sigmoid(logits)
    return {"accuracy": float(binary_accuracy(probs, y)), "f1": float(binary_f1_score(probs, y)),
            "auroc": float(binary_auroc(probs, y))}


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_match_torchmetrics(seed):
    g = torch.Generator().manual_seed(seed)
    n = 50 + 97 * seed
    y = torch.randint(0, 2, (n,), generator=g)
    logits = torch.randn(n, generator=g) + y * (0.5 * seed)
    logits[: n // 4] = torch.round(logits[: n // 4])  # tied scores across both classes
    got = compute("binary", logits.unsqueeze(1), y.float().unsqueeze(1))
    assert got == pytest.approx(_binary_reference(logits, y), abs=1e-6)


def test_binary_f1_is_zero_when_nothing_is_predicted_positive_and_auroc_nan_with_one_class():
    logits = torch.tensor([-3.0, -2.0, -1.0, -4.0])
    got = compute("binary", logits, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert got["f1"] == float(binary_f1_score(torch.sigmoid(logits), torch.tensor([0, 1, 0, 1]))) == 0.0
    one_class = compute("binary", logits, torch.zeros(4))
    assert one_class["accuracy"] == 1.0 and one_class["auroc"] != one_class["auroc"]


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_metrics_match_torchmetrics_with_absent_classes(seed):
    g = torch.Generator().manual_seed(seed)
    k, n = 3 + seed, 40 + 50 * seed
    target = torch.randint(0, k - 1, (n,), generator=g)  # the last class never occurs in the target ...
    logits = torch.randn(n, k, generator=g)
    logits[:, -1] -= 10 * (seed % 2)  # ... and, in odd seeds, is never predicted either
    preds = logits.argmax(1)
    want = {"accuracy": float(multiclass_accuracy(preds, target, num_classes=k, average="micro")),
            "f1": float(multiclass_f1_score(preds, target, num_classes=k, average="macro"))}
    assert compute("multiclass", logits, target) == pytest.approx(want, abs=1e-6)


class _Scale:
    target_mean, target_std = 120.0, 35.0


@pytest.mark.parametrize("seed", range(4))
def test_regression_metrics_match_torchmetrics_in_target_units(seed):
    g = torch.Generator().manual_seed(seed)
    n = 30 + 40 * seed
    y = torch.randn(n, generator=g)
    out = y + 0.3 * torch.randn(n, generator=g)
    p, t = out * 35.0 + 120.0, y * 35.0 + 120.0
    want = {"rmse": float(mean_squared_error(p, t).sqrt()), "mae": float(mean_absolute_error(p, t)),
            "r2": float(r2_score(p, t))}
    assert compute("regression", out.unsqueeze(1), y.unsqueeze(1), _Scale()) == pytest.approx(want, rel=1e-5)


def test_r2_on_a_constant_target_is_torchmetrics_value():
    for preds in (torch.full((5,), 2.0), torch.tensor([1.0, 2.0, 3.0, 2.0, 2.0])):
        want = float(r2_score(preds, torch.full((5,), 2.0)))
        assert compute("regression", preds, torch.full((5,), 2.0))["r2"] == want
