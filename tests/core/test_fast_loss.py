"""The engine's class-major cross-entropy is the same loss as nn.CrossEntropyLoss, only faster."""

import copy

import pytest
import torch
from torch import nn

from nnstudio.core.training.engine import fast_loss


@pytest.mark.parametrize("rows, classes", [(4096, 10), (256, 10), (1000, 3), (512, 2), (64, 15), (32, 10), (300, 40)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_same_loss_and_gradient_as_cross_entropy(rows, classes, reduction):
    gen = torch.Generator().manual_seed(rows * classes)
    logits = torch.randn(rows, classes, generator=gen) * 3
    target = torch.randint(0, classes, (rows,), generator=gen)
    target[::17] = -100  # ignored rows take part in neither the sum nor the mean
    reference = nn.CrossEntropyLoss(reduction=reduction)
    fast = fast_loss(reference, torch.device("cpu"))
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    expected, got = reference(a, target), fast(b, target)
    expected.backward()
    got.backward()
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-6, atol=1e-9)


def test_other_losses_and_settings_are_left_to_torch():
    cpu = torch.device("cpu")
    for loss in (nn.MSELoss(), nn.BCEWithLogitsLoss(), nn.CrossEntropyLoss(label_smoothing=0.1),
                 nn.CrossEntropyLoss(weight=torch.ones(3)), nn.CrossEntropyLoss(reduction="none")):
        assert fast_loss(loss, cpu) is loss
    hooked = nn.CrossEntropyLoss()
    hooked.register_forward_hook(lambda *args: None)
    assert fast_loss(hooked, cpu) is hooked


def test_a_seeded_fit_is_unchanged_by_the_fast_loss(monkeypatch):
    """Same weights after training with the class-major loss as with torch's own (the run repeats exactly)."""
    from nnstudio.core.training import engine
    from nnstudio.core.data import PreparedData, Preprocessor, TensorSplit

    gen = torch.Generator().manual_seed(0)
    X, y = torch.randn(3000, 8, generator=gen), torch.randint(0, 5, (3000,), generator=gen)
    pre = Preprocessor("y", "multiclass", [{"name": f"x{i}", "kind": "numeric", "mean": 0.0, "std": 1.0}
                                           for i in range(8)], [str(c) for c in range(5)])
    data = PreparedData(TensorSplit(X[:2400], y[:2400]), TensorSplit(X[2400:], y[2400:]), TensorSplit(X[:0], y[:0]), pre)
    torch.manual_seed(0)
    start = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5))
    cfg = engine.TrainConfig(epochs=2, batch_size=512, seed=0, device="cpu")
    fast_model = copy.deepcopy(start)
    fast_result = engine.Trainer(fast_model, data, cfg).fit()
    monkeypatch.setattr(engine, "fast_loss", lambda loss_fn, device: loss_fn)
    plain_model = copy.deepcopy(start)
    plain_result = engine.Trainer(plain_model, data, cfg).fit()
    for p, q in zip(fast_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert fast_result.best_val_loss == pytest.approx(plain_result.best_val_loss, rel=1e-5)
