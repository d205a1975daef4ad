"""The learning rate reported for an epoch (history, TensorBoard, the plots) is the one that epoch trained at."""

from __future__ import annotations

from collections import defaultdict

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from corehelpers import SMALL, make_trainer
from nnstudio.core.training.callbacks import TAG_LR
from nnstudio.core.config import RunConfig
from nnstudio.core.training.engine import Callback
from nnstudio.core.run import TrainingRun
from nnstudio.resources import sample_dataset


class LrPerEpoch(Callback):
    """The rate each batch of each epoch trained at, read while the epoch runs."""

    def __init__(self) -> None:
        self.seen: dict[int, set[float]] = defaultdict(set)

    def on_train_batch_end(self, trainer, event):
        self.seen[trainer.epoch].add(trainer.optimizer.param_groups[0]["lr"])


def test_steplr_every_two_epochs_reports_the_rate_each_epoch_trained_at(flowers_data):
    trainer = make_trainer(flowers_data, scheduler="step", step_size=2, gamma=0.1, lr=0.01, epochs=5)
    trainer.fit()
    assert [e.lr for e in trainer.history] == pytest.approx([0.01, 0.01, 0.001, 0.001, 0.0001])


@pytest.mark.parametrize("scheduler, extra", [
    ("step", {"step_size": 1, "gamma": 0.5}),
    ("cosine", {}),
    ("plateau", {"plateau_patience": 0, "plateau_factor": 0.5}),
])
def test_each_epochs_rate_is_the_one_its_batches_used(flowers_data, scheduler, extra):
    seen = LrPerEpoch()
    trainer = make_trainer(flowers_data, scheduler=scheduler, lr=0.02, epochs=4, callbacks=[seen], **extra)
    trainer.fit()
    for event in trainer.history:
        used = seen.seen[event.epoch]
        assert used and all(v == pytest.approx(event.lr) for v in used), (event.epoch, used, event.lr)


def test_onecycle_reports_the_rate_of_the_epochs_first_step(flowers_data):
    """A per-batch schedule moves the rate after each step: the epoch's first step trained at the rate left
    by the previous epoch's last step (the initial max_lr / 25 for the first epoch)."""
    last: dict[int, float] = {}

    class LastLr(Callback):
        def on_train_batch_end(self, trainer, event):
            last[trainer.epoch] = trainer.optimizer.param_groups[0]["lr"]

    trainer = make_trainer(flowers_data, scheduler="onecycle", lr=0.02, epochs=3, callbacks=[LastLr()])
    trainer.fit()
    expected = [0.02 / 25] + [last[e.epoch - 1] for e in trainer.history[1:]]
    assert [e.lr for e in trainer.history] == pytest.approx(expected)


def test_tensorboard_logs_the_rate_each_epoch_trained_at(tmp_path):
    cfg = RunConfig(base_dir=tmp_path)
    cfg.data.path = str(sample_dataset("flowers.csv"))
    cfg.layers = [dict(layer) for layer in SMALL]
    cfg.training.epochs = 4
    cfg.training.lr = 0.01
    cfg.training.scheduler = "step"
    cfg.training.step_size = 2
    cfg.training.gamma = 0.1
    cfg.training.device = "cpu"
    cfg.training.threads = 1
    cfg.output.logdir = "logs"
    result = TrainingRun(cfg, checkpoint=False).execute()
    acc = EventAccumulator(str(result.run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    logged = [(e.step, e.value) for e in acc.Scalars(TAG_LR)]
    assert [s for s, _ in logged] == [1, 2, 3, 4]
    assert [v for _, v in logged] == pytest.approx([0.01, 0.01, 0.001, 0.001])
