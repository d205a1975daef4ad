"""core.training.engine: optimizers, schedulers, losses, repeatability, early stopping, clipping, control from
another thread, divergence, and the metrics against hand-written numpy references."""

from __future__ import annotations

import math
import threading

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from corehelpers import make_trainer, state_copy, states_equal
from nnstudio.core.training import metrics
from nnstudio.core.training.callbacks import HistoryRecorder
from nnstudio.core.data import PreparedData, TensorSplit, prepare
from nnstudio.core.training.engine import Callback, TrainConfig, make_loss
from nnstudio.core.errors import ConfigError, TrainingDiverged

DROPOUT_MLP = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.2},
               {"type": "Linear", "out_features": "auto"}]


def _loss_on(trainer, split) -> float:
    return trainer.evaluate(split)[0]


# ---------------------------------------------------------------------------------------------- optimizers, schedulers

@pytest.mark.parametrize("optimizer, settings", [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.0}),
    ("Adam", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.003, "momentum": 0.5}),
])
def test_each_optimizer_lowers_the_loss(flowers_data, optimizer, settings):
    trainer = make_trainer(flowers_data, optimizer=optimizer, epochs=4, **settings)
    before = _loss_on(trainer, flowers_data.train)
    result = trainer.fit()
    assert type(trainer.optimizer).__name__ == optimizer
    group = trainer.optimizer.param_groups[0]
    for key, value in settings.items():
        assert group[key] == value
    assert result.reason == "completed" and result.epochs_completed == 4
    assert _loss_on(trainer, flowers_data.train) < 0.7 * before
    assert trainer.history[-1].train_loss < trainer.history[0].train_loss


def _lrs(trainer) -> list[float]:
    return [e.lr for e in trainer.history]


@pytest.mark.parametrize("scheduler, extra, check", [
    ("step", {"step_size": 1, "gamma": 0.5},
     lambda lrs, lr: lrs == pytest.approx([lr * 0.5 ** k for k in range(len(lrs))])),
    ("cosine", {}, lambda lrs, lr: lrs[0] == pytest.approx(lr) and lrs[-1] > 0 and lrs == sorted(lrs, reverse=True)),
    ("plateau", {"plateau_patience": 0, "plateau_factor": 0.5},
     lambda lrs, lr: lrs == sorted(lrs, reverse=True) and all(math.log2(lr / v) % 1 == 0 for v in lrs)),
    ("onecycle", {}, lambda lrs, lr: max(lrs) <= lr and lrs[0] == pytest.approx(lr / 25) and lrs[-1] < lrs[1]),
])
def test_each_scheduler_runs_and_the_loss_falls(flowers_data, scheduler, extra, check):
    lr = 0.02
    trainer = make_trainer(flowers_data, scheduler=scheduler, lr=lr, epochs=4, **extra)
    before = _loss_on(trainer, flowers_data.train)
    trainer.fit()
    assert check(_lrs(trainer), lr), _lrs(trainer)
    assert _loss_on(trainer, flowers_data.train) < 0.8 * before


def test_onecycle_changes_the_rate_within_an_epoch(flowers_data):
    seen = []

    class LrPerStep(Callback):
        def on_train_batch_end(self, trainer, event):
            seen.append(trainer.optimizer.param_groups[0]["lr"])

    make_trainer(flowers_data, scheduler="onecycle", lr=0.02, epochs=2, callbacks=[LrPerStep()]).fit()
    steps_per_epoch = math.ceil(len(flowers_data.train) / 32)
    assert len(set(seen[:steps_per_epoch])) == steps_per_epoch  # a new rate every batch
    assert max(seen) == pytest.approx(0.02, rel=0.05)


# ---------------------------------------------------------------------------------------------- losses

@pytest.mark.parametrize("fixture, loss_type", [("flowers_data", nn.CrossEntropyLoss), ("houses_data", nn.MSELoss),
                                                ("churn_data", nn.BCEWithLogitsLoss)])
def test_default_loss_per_task(request, fixture, loss_type):
    data = request.getfixturevalue(fixture)
    trainer = make_trainer(data, epochs=1)
    assert type(trainer.loss_fn) is loss_type
    assert type(make_loss(data.task)) is loss_type
    trainer.fit()
    with torch.no_grad():
        out = trainer.model.eval()(data.val.X)
    expected = {"multiclass": lambda: F.cross_entropy(out, data.val.y),
                "regression": lambda: F.mse_loss(out.squeeze(-1), data.val.y),
                "binary": lambda: F.binary_cross_entropy_with_logits(out.squeeze(-1), data.val.y)}[data.task]()
    assert trainer.history[-1].val_loss == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("name, fn", [("l1", F.l1_loss), ("huber", F.huber_loss), ("mse", F.mse_loss)])
def test_regression_loss_override(houses_data, name, fn):
    trainer = make_trainer(houses_data, loss=name, epochs=2)
    before = _loss_on(trainer, houses_data.train)
    trainer.fit()
    with torch.no_grad():
        out = trainer.model.eval()(houses_data.val.X).squeeze(-1)
    assert trainer.history[-1].val_loss == pytest.approx(float(fn(out, houses_data.val.y)), rel=1e-5)
    assert _loss_on(trainer, houses_data.train) < before


@pytest.mark.parametrize("fixture, loss", [("flowers_data", "l1"), ("flowers_data", "bce"), ("houses_data", "bce"),
                                           ("churn_data", "cross_entropy"), ("houses_data", "hinge")])
def test_loss_that_does_not_fit_the_task(request, fixture, loss):
    data = request.getfixturevalue(fixture)
    with pytest.raises(ConfigError) as info:
        make_trainer(data, loss=loss)
    assert f"'{loss}'" in str(info.value) and data.task in str(info.value)


# ---------------------------------------------------------------------------------------------- repeatability

def test_seeded_cpu_run_repeats_step_for_step(flowers_data):
    runs = []
    for _ in range(2):
        rec = HistoryRecorder()
        trainer = make_trainer(flowers_data, DROPOUT_MLP, callbacks=[rec], epochs=3, seed=123, model_seed=5)
        trainer.fit()
        runs.append(([s.loss for s in rec.steps], [e.val_loss for e in rec.epochs], state_copy(trainer.model)))
    (steps_a, val_a, state_a), (steps_b, val_b, state_b) = runs
    assert len(steps_a) == 3 * math.ceil(len(flowers_data.train) / 32)
    assert steps_a == steps_b and val_a == val_b
    assert states_equal(state_a, state_b)
    rec = HistoryRecorder()
    make_trainer(flowers_data, DROPOUT_MLP, callbacks=[rec], epochs=1, seed=124, model_seed=5).fit()
    assert [s.loss for s in rec.steps] != steps_a[:len(rec.steps)]  # the seed is what makes it repeat


# ---------------------------------------------------------------------------------------------- early stopping

def _noise_regression(n: int = 80) -> PreparedData:
    """Targets that are pure noise: a wide net overfits the training rows and validation loss climbs."""
    rng = np.random.default_rng(0)
    df = pl.DataFrame(rng.normal(size=(n, 6)), schema=[f"f{i}" for i in range(6)], orient="row")
    df = df.with_columns(y=rng.normal(size=n))
    return prepare(df, target="y", split=(0.5, 0.5, 0.0), seed=0)


class Snapshots(Callback):
    def __init__(self):
        self.states = {}
        self.val = {}

    def on_epoch_end(self, trainer, event):
        self.states[event.epoch] = state_copy(trainer.model)
        self.val[event.epoch] = event.val_loss


def test_early_stopping_restores_the_best_weights():
    data = _noise_regression()
    snaps = Snapshots()
    wide = [{"type": "Linear", "out_features": 128}, {"type": "ReLU"}, {"type": "Linear", "out_features": 128},
            {"type": "ReLU"}, {"type": "Linear", "out_features": "auto"}]
    trainer = make_trainer(data, wide, callbacks=[snaps], epochs=60, lr=0.01, batch_size=8, early_stopping=3)
    result = trainer.fit()
    assert result.reason == "early_stopping"
    best = min(snaps.val, key=snaps.val.get)
    assert result.best_epoch == best and result.best_val_loss == snaps.val[best]
    assert result.epochs_completed == best + 3 < 60
    assert states_equal(state_copy(trainer.model), snaps.states[best])
    assert not states_equal(snaps.states[result.epochs_completed], snaps.states[best])
    assert trainer.evaluate(data.val)[0] == pytest.approx(snaps.val[best], rel=1e-6)


# ---------------------------------------------------------------------------------------------- gradient clipping

class GradNorms(Callback):
    """Records the total gradient norm right before every optimizer step (after any clipping)."""

    def __init__(self):
        self.norms = []

    def on_fit_start(self, trainer, event):
        def hook(optimizer, args, kwargs):
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

        self.handle = trainer.optimizer.register_step_pre_hook(hook)

    def teardown(self, trainer):
        self.handle.remove()


def test_gradient_clipping_bounds_the_norm(flowers_data):
    free, clipped = GradNorms(), GradNorms()
    make_trainer(flowers_data, callbacks=[free], epochs=1, optimizer="SGD", lr=0.05).fit()
    make_trainer(flowers_data, callbacks=[clipped], epochs=1, optimizer="SGD", lr=0.05, grad_clip=0.05).fit()
    steps = math.ceil(len(flowers_data.train) / 32)
    assert len(free.norms) == len(clipped.norms) == steps
    assert max(free.norms) > 0.2  # without clipping the bound is exceeded, so the check below means something
    assert max(clipped.norms) <= 0.05 * (1 + 1e-4)


# ---------------------------------------------------------------------------------------------- control from another thread

class OnStep(Callback):
    """Runs `action` in another thread at step `at`, and waits for it, so the order is certain."""

    def __init__(self, at, action):
        self.at, self.action = at, action
        self.global_step_then = None

    def on_train_batch_end(self, trainer, event):
        if event.step == self.at:
            self.global_step_then = trainer.global_step
            worker = threading.Thread(target=self.action, args=(trainer,))
            worker.start()
            worker.join()


def test_stop_from_another_thread_takes_effect_within_one_batch(flowers_data):
    stopper = OnStep(1, lambda trainer: trainer.request_stop())
    rec = HistoryRecorder()
    trainer = make_trainer(flowers_data, callbacks=[stopper, rec], epochs=5)
    result = trainer.fit()
    assert result.reason == "stopped"
    assert trainer.global_step <= stopper.global_step_then + 1
    assert result.steps == trainer.global_step and rec.finished == result
    assert len(rec.steps) == trainer.global_step


def test_pause_and_resume_from_another_thread(flowers_data):
    paused_at = threading.Event()

    def pause(trainer):
        trainer.pause()
        paused_at.set()

    pauser = OnStep(2, pause)
    trainer = make_trainer(flowers_data, callbacks=[pauser], epochs=2)
    outcome = {}
    fit_thread = threading.Thread(target=lambda: outcome.setdefault("result", trainer.fit()), daemon=True)
    fit_thread.start()
    try:
        assert paused_at.wait(30)
        assert trainer.paused
        fit_thread.join(0.3)  # paused: the loop must not advance (a bounded wait, not a sleep for sync)
        assert fit_thread.is_alive()
        assert trainer.global_step <= pauser.global_step_then + 1
        steps_while_paused = trainer.global_step
        fit_thread.join(0.2)
        assert trainer.global_step == steps_while_paused
    finally:
        trainer.resume()
        fit_thread.join(60)
    assert not fit_thread.is_alive()
    result = outcome["result"]
    assert result.reason == "completed"
    assert result.steps == 2 * math.ceil(len(flowers_data.train) / 32)


def test_observers_hear_of_a_pause_once_with_every_step_before_it(flowers_data):
    class PauseAtStep3(Callback):
        def __init__(self):
            self.steps: list[int] = []
            self.pauses: list[tuple[int, list[int]]] = []

        def on_train_batch_end(self, trainer, event):
            self.steps.append(event.step)
            if event.step == 3:
                trainer.pause()

        def on_pause(self, trainer):
            self.pauses.append((trainer.global_step, list(self.steps)))
            trainer.resume()  # from the training thread itself: the loop goes on

    watcher = PauseAtStep3()
    trainer = make_trainer(flowers_data, callbacks=[watcher], epochs=1)
    result = trainer.fit()
    assert result.reason == "completed"
    assert watcher.pauses == [(3, [1, 2, 3])]


def test_stop_wakes_a_paused_run(flowers_data):
    def pause_then_stop(trainer):
        trainer.pause()
        threading.Thread(target=trainer.request_stop).start()

    trainer = make_trainer(flowers_data, callbacks=[OnStep(1, pause_then_stop)], epochs=3)
    fit_thread = threading.Thread(target=trainer.fit, daemon=True)
    fit_thread.start()
    fit_thread.join(30)
    stuck = fit_thread.is_alive()
    trainer.resume()  # never leave a parked thread behind, even when the check fails
    assert not stuck
    assert trainer.result.reason == "stopped" and trainer.global_step <= 2


# ---------------------------------------------------------------------------------------------- divergence

class Lifecycle(Callback):
    def __init__(self):
        self.calls = []
        self.failed = None

    def on_exception(self, trainer, event):
        self.calls.append("on_exception")
        self.failed = event

    def teardown(self, trainer):
        self.calls.append("teardown")


def _with_nan_target(data: PreparedData) -> PreparedData:
    y = data.train.y.clone()
    y[5] = float("nan")
    return PreparedData(TensorSplit(data.train.X, y), data.val, data.test, data.preprocessor, data.report)


@pytest.mark.parametrize("how", ["huge_lr", "nan_target", "inf_target"])
def test_nan_or_inf_loss_stops_with_a_learning_rate_hint(houses_data, how):
    life = Lifecycle()
    if how == "huge_lr":
        trainer = make_trainer(houses_data, callbacks=[life], optimizer="SGD", lr=1e6, momentum=0.0, epochs=3)
    else:
        data = _with_nan_target(houses_data)
        if how == "inf_target":
            data.train.y[5] = float("inf")
        trainer = make_trainer(data, callbacks=[life], epochs=3)
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit()
    message = str(info.value)
    assert "learning rate" in message and ("nan" in message.lower() or "inf" in message.lower())
    assert life.calls == ["on_exception", "teardown"]
    assert life.failed.error_type == "TrainingDiverged" and life.failed.message == message


def test_divergence_never_leaves_nan_weights_as_the_best(flowers_data):
    class BlowUpAfter(Callback):
        def on_epoch_end(self, trainer, event):
            if event.epoch == 2:
                for group in trainer.optimizer.param_groups:
                    group["lr"] = 1e12
                    group["momentum"] = 0.0

    snaps = Snapshots()
    trainer = make_trainer(flowers_data, callbacks=[snaps, BlowUpAfter()], optimizer="SGD", lr=0.05, epochs=6,
                           early_stopping=5)
    with pytest.raises(TrainingDiverged):
        trainer.fit()
    state = state_copy(trainer.model)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert states_equal(state, snaps.states[trainer.best_epoch])


# ---------------------------------------------------------------------------------------------- metrics

def _f1(pred: np.ndarray, y: np.ndarray, positive) -> float:
    tp = np.sum((pred == positive) & (y == positive))
    fp = np.sum((pred == positive) & (y != positive))
    fn = np.sum((pred != positive) & (y == positive))
    return 2 * tp / (2 * tp + fp + fn)


def _auroc(scores: np.ndarray, y: np.ndarray) -> float:
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores)] = np.arange(1, len(scores) + 1)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    return (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_binary_metrics_match_numpy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    logits = rng.normal(size=300) + 1.2 * (y - 0.5)
    got = metrics.compute("binary", torch.tensor(logits, dtype=torch.float32).unsqueeze(1),
                          torch.tensor(y, dtype=torch.float32))
    pred = (logits > 0).astype(int)
    assert got["accuracy"] == pytest.approx(np.mean(pred == y), rel=1e-6)
    assert got["f1"] == pytest.approx(_f1(pred, y, 1), rel=1e-6)
    assert got["auroc"] == pytest.approx(_auroc(logits, y), rel=1e-5)
    assert 0.6 < got["auroc"] < 0.95


def test_multiclass_metrics_match_numpy():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), y] += 0.8
    got = metrics.compute("multiclass", torch.tensor(logits, dtype=torch.float32), torch.tensor(y))
    pred = logits.argmax(1)
    assert got["accuracy"] == pytest.approx(np.mean(pred == y), rel=1e-6)
    assert got["f1"] == pytest.approx(np.mean([_f1(pred, y, k) for k in range(4)]), rel=1e-6)


def test_regression_metrics_match_numpy_in_target_units(houses_data):
    rng = np.random.default_rng(2)
    y_std = rng.normal(size=200)
    out_std = y_std + rng.normal(scale=0.5, size=200)
    pre = houses_data.preprocessor
    got = metrics.compute("regression", torch.tensor(out_std, dtype=torch.float32).unsqueeze(1),
                          torch.tensor(y_std, dtype=torch.float32), pre)
    y = y_std * pre.target_std + pre.target_mean
    p = out_std * pre.target_std + pre.target_mean
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((p - y) ** 2)), rel=1e-4)
    assert got["mae"] == pytest.approx(np.mean(np.abs(p - y)), rel=1e-4)
    assert got["r2"] == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2), rel=1e-4)


def test_validation_metrics_are_those_of_the_model_predictions(flowers_data):
    trainer = make_trainer(flowers_data, epochs=2)
    result = trainer.fit()
    with torch.no_grad():
        pred = trainer.model.eval()(flowers_data.val.X).argmax(1).numpy()
    y = flowers_data.val.y.numpy()
    assert result.metrics["accuracy"] == pytest.approx(np.mean(pred == y), rel=1e-6)
    assert result.metrics["f1"] == pytest.approx(np.mean([_f1(pred, y, k) for k in range(3)]), rel=1e-6)
    assert set(trainer.history[-1].metrics) == {"accuracy", "f1"}


def test_train_config_rejects_bad_values():
    for field, value in [("epochs", 0), ("batch_size", 2.5), ("lr", 0), ("optimizer", "Adagrad"),
                         ("scheduler", "linear"), ("threads", 0), ("seed", "x"), ("grad_clip", -1)]:
        with pytest.raises(ConfigError, match=field):
            TrainConfig(**{field: value}).validate()


def test_a_seeded_run_from_config_repeats_exactly(flowers_csv):
    """The seed covers the initial weights too, not only the shuffling: two whole runs are identical."""
    from nnstudio.core.training.callbacks import HistoryRecorder
    from nnstudio.core.config import RunConfig
    from nnstudio.core.run import TrainingRun

    losses = []
    states = []
    for _ in range(2):
        torch.manual_seed(torch.seed())  # whatever the global generator holds must not matter
        cfg = RunConfig.from_dict({"data": {"path": str(flowers_csv)},
                                   "training": {"epochs": 2, "seed": 7, "device": "cpu", "threads": 1}})
        recorder = HistoryRecorder()
        run = TrainingRun(cfg, callbacks=[recorder], tensorboard=False, checkpoint=False)
        run.execute()
        losses.append([s.loss for s in recorder.steps])
        states.append(run.model.state_dict())
    assert losses[0] == losses[1]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
