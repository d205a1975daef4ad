"""Training health: the gradient norm per epoch (engine), overfitting seen by OverfitWatch."""

from __future__ import annotations

import math

import pytest
import torch

from corehelpers import make_trainer
from nnstudio.core.training.callbacks import TAG_GRAD_NORM, TensorBoardLogger
from nnstudio.core.training.engine import Callback, EpochFinished
from nnstudio.core.training.health import OverfitWatch


class PreStepNorms(Callback):
    """The total gradient norm before every optimizer step, by epoch, computed independently."""

    def __init__(self):
        self.by_epoch: dict[int, list[float]] = {}

    def on_fit_start(self, trainer, event):
        def hook(optimizer, args, kwargs):
            grads = [p.grad.flatten() for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            self.by_epoch.setdefault(trainer.epoch, []).append(float(torch.cat(grads).norm()))

        self.handle = trainer.optimizer.register_step_pre_hook(hook)

    def teardown(self, trainer):
        self.handle.remove()


@pytest.mark.parametrize("every", [1, 4])
def test_grad_norm_is_the_mean_of_the_measured_steps(flowers_data, every):
    norms, seen = PreStepNorms(), []
    trainer = make_trainer(flowers_data, callbacks=[norms], epochs=2, optimizer="SGD", lr=0.05)
    trainer.grad_norm_every = every
    trainer.callbacks.append(type("Keep", (Callback,), {"on_epoch_end": lambda self, t, e: seen.append(e)})())
    trainer.fit()
    for event in seen:
        steps = norms.by_epoch[event.epoch]
        expected = sum(steps[::every]) / len(steps[::every])
        assert event.grad_norm == pytest.approx(expected, rel=1e-5)


def test_grad_norm_with_clipping_is_the_norm_before_clipping(flowers_data):
    free, seen = [], []
    keep = lambda box: type("Keep", (Callback,), {"on_epoch_end": lambda self, t, e: box.append(e)})()
    make_trainer(flowers_data, callbacks=[keep(free)], epochs=1, optimizer="SGD", lr=0.05).fit()
    make_trainer(flowers_data, callbacks=[keep(seen)], epochs=1, optimizer="SGD", lr=0.05, grad_clip=0.01).fit()
    assert free[0].grad_norm > 0.05
    assert seen[0].grad_norm > 0.05  # clip_grad_norm_'s return value: the norm it found, not the bound


def test_grad_norm_off_and_in_tensorboard(flowers_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    seen = []
    trainer = make_trainer(flowers_data, callbacks=[], epochs=2)
    trainer.grad_norm_every = 0
    trainer.callbacks.append(type("Keep", (Callback,), {"on_epoch_end": lambda self, t, e: seen.append(e)})())
    trainer.fit()
    assert all(e.grad_norm is None for e in seen)
    logger = TensorBoardLogger(tmp_path, "norms")
    make_trainer(flowers_data, callbacks=[logger], epochs=3).fit()
    acc = EventAccumulator(str(logger.run_dir))
    acc.Reload()
    values = [s.value for s in acc.Scalars(TAG_GRAD_NORM)]
    assert [s.step for s in acc.Scalars(TAG_GRAD_NORM)] == [1, 2, 3]
    assert all(math.isfinite(v) and v > 0 for v in values)


def _event(epoch, train, val):
    return EpochFinished(epoch, epoch * 10, train, val, {}, 0.01, 0.1, False)


def _feed(watch, pairs):
    watch.on_fit_start(None, None)
    for epoch, (train, val) in enumerate(pairs, start=1):
        watch.on_epoch_end(None, _event(epoch, train, val))


def test_overfitting_is_reported_once_naming_the_best_epoch():
    got = []
    watch = OverfitWatch(patience=3, on_warning=got.append)
    _feed(watch, [(1.0, 0.9), (0.8, 0.7), (0.6, 0.5), (0.5, 0.55), (0.4, 0.6), (0.3, 0.65), (0.2, 0.7), (0.1, 0.8)])
    assert len(got) == 1 and watch.warnings == got
    warning = got[0]
    assert (warning.kind, warning.epoch, warning.best_epoch) == ("overfitting", 6, 3)
    assert "epoch 3" in warning.message and "0.5" in warning.message


@pytest.mark.parametrize("pairs", [
    [(1.0, 0.9), (0.8, 0.7), (0.6, 0.5), (0.5, 0.505), (0.4, 0.502), (0.35, 0.504), (0.3, 0.503)],  # a plateau
    [(1.0, 0.9), (0.8, 0.7), (0.6, 0.5), (0.5, 0.55), (0.4, 0.6)],  # risen for 2 epochs only
    [(1.0, 0.9), (0.8, 0.7), (0.9, 0.75), (1.0, 0.8), (1.1, 0.85)],  # both rise: diverging, not overfitting
    [(1.0, None), (0.8, None), (0.6, None), (0.5, None), (0.4, None)],  # no validation split
])
def test_no_warning_without_overfitting(pairs):
    watch = OverfitWatch(patience=3)
    _feed(watch, pairs)
    assert watch.warnings == []


def test_warned_again_after_a_new_best_and_in_the_next_fit():
    watch = OverfitWatch(patience=2)
    pairs = [(1.0, 0.5), (0.9, 0.6), (0.8, 0.7), (0.7, 0.4), (0.6, 0.45), (0.5, 0.5)]
    _feed(watch, pairs)  # the new best at epoch 4 withdraws the first warning; it overfits again from there
    assert [(w.epoch, w.best_epoch) for w in watch.warnings] == [(3, 1), (6, 4)]
    _feed(watch, pairs)
    assert [(w.epoch, w.best_epoch) for w in watch.warnings] == [(3, 1), (6, 4), (3, 1), (6, 4)]


def test_overfit_watch_in_a_real_fit():
    """Noise targets, few rows, a wide net: it learns the training rows by heart and validation worsens."""
    import numpy as np
    import polars as pl

    from nnstudio.core.data import prepare

    rng = np.random.default_rng(0)
    df = pl.DataFrame(rng.normal(size=(80, 8)), schema=[f"x{i}" for i in range(8)], orient="row")
    df = df.with_columns(y=rng.normal(size=80))
    data = prepare(df, "y", "regression", [0.5, 0.5, 0.0], 0)
    watch = OverfitWatch(patience=3)
    layers = [{"type": "Linear", "out_features": 256}, {"type": "ReLU"}, {"type": "Linear", "out_features": "auto"}]
    trainer = make_trainer(data, layers=layers, callbacks=[watch], epochs=40, lr=0.01, batch_size=8)
    trainer.fit()
    assert watch.warnings, [(e.train_loss, e.val_loss) for e in trainer.history]
    w = watch.warnings[0]
    vals = [e.val_loss for e in trainer.history]
    assert vals[w.best_epoch - 1] == min(vals[:w.epoch])
    assert trainer.history[w.epoch - 1].train_loss < trainer.history[w.epoch - 4].train_loss
