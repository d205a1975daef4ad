"""Full-state resume: 10 epochs equal 5 + 5 resumed through a checkpoint file, bit for bit (issue 13)."""

from __future__ import annotations

import pytest
import torch

from corehelpers import make_trainer, state_copy, states_equal
from nnstudio.core.model.checkpoint import atomic_torch_save, build_checkpoint, load_checkpoint
from nnstudio.core.training.engine import Callback

DROPOUT = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.3},
           {"type": "Linear", "out_features": "auto"}]

CASES = [
    dict(optimizer="SGD", shuffle=True),
    dict(optimizer="SGD", shuffle=False, scheduler="step", step_size=2, gamma=0.5),
    dict(optimizer="Adam", shuffle=True),
    dict(optimizer="Adam", shuffle=False, early_stopping=5, lr=0.2, data="houses"),
    dict(optimizer="AdamW", shuffle=True, weight_decay=0.01, scheduler="plateau", plateau_patience=1),
    dict(optimizer="AdamW", shuffle=True, early_stopping=5, lr=0.2, data="houses"),
]


class StopAt(Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer, event):
        if event.epoch == self.epoch:
            trainer.request_stop()


def _through_file(trainer, tmp_path, name="half.pt"):
    """The trainer's state written and read back the way a checkpoint is (weights-only load)."""
    path = atomic_torch_save(build_checkpoint(trainer.model, trainer.data.preprocessor,
                                              trainer_state=trainer.state_dict(), epoch=trainer.epoch), tmp_path / name)
    return load_checkpoint(path)


@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_ten_epochs_equal_five_plus_five(flowers_data, houses_data, tmp_path, case, dropout):
    """Early stopping cases use data and settings where it stops in the second half (houses, lr 0.2)."""
    layers = DROPOUT if dropout else None
    kw = {"lr": 0.05, "batch_size": 16, **case}
    data = houses_data if kw.pop("data", "flowers") == "houses" else flowers_data
    extra = {"layers": layers} if layers else {}
    full = make_trainer(data, epochs=10, **kw, **extra)
    full_result = full.fit()
    if kw.get("early_stopping"):
        assert len(full.history) > 5  # else the halves would not test early stopping across the resume

    first = make_trainer(data, epochs=5, **kw, **extra)
    first.fit()
    ckpt = _through_file(first, tmp_path)
    second = make_trainer(data, epochs=5, model_seed=123, **kw, **extra)  # other initial weights
    second.model.load_state_dict(ckpt.model.state_dict())
    second.load_state_dict(ckpt.trainer_state)
    result = second.fit()

    assert states_equal(state_copy(full.model), state_copy(second.model))
    assert [e.epoch for e in second.history] == [e.epoch for e in full.history]
    assert [e.train_loss for e in second.history] == [e.train_loss for e in full.history]
    assert [e.val_loss for e in second.history] == [e.val_loss for e in full.history]
    assert second.global_step == full.global_step
    assert (result.reason, result.best_epoch) == (full_result.reason, full_result.best_epoch)
    assert states_equal(full.optimizer.state_dict()["state"][0], second.optimizer.state_dict()["state"][0])


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_stopped_run_resumed_mid_schedule(flowers_data, tmp_path, scheduler):
    """A 10-epoch schedule stopped after 4 epochs and continued for 6: the same as not stopping."""
    kw = dict(optimizer="Adam", lr=0.05, batch_size=16, scheduler=scheduler, layers=DROPOUT)
    full = make_trainer(flowers_data, epochs=10, **kw)
    full.fit()
    first = make_trainer(flowers_data, epochs=10, callbacks=[StopAt(4)], **kw)
    assert first.fit().reason == "stopped"
    ckpt = _through_file(first, tmp_path)
    second = make_trainer(flowers_data, epochs=6, **kw)
    second.model.load_state_dict(ckpt.model.state_dict())
    second.load_state_dict(ckpt.trainer_state)
    second.fit()
    assert states_equal(state_copy(full.model), state_copy(second.model))
    assert [e.lr for e in second.history] == [e.lr for e in full.history]


class StopAtStep(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, event):
        if event.step == self.step:
            trainer.request_stop()


def test_stop_inside_an_epoch_resumes_the_rest_of_it(flowers_data, tmp_path):
    """A stop after batch 3 of epoch 2: the saved count is 1 finished epoch, and resuming finishes epoch 2
    with the same shuffled order, so the run equals one never stopped."""
    kw = dict(optimizer="Adam", lr=0.05, batch_size=16, layers=DROPOUT)
    full = make_trainer(flowers_data, epochs=4, **kw)
    full.fit()
    first = make_trainer(flowers_data, epochs=4, **kw)
    steps = -(-len(flowers_data.train) // 16)
    first.callbacks.append(StopAtStep(steps + 3))
    first.fit()
    assert first.epoch == 1 and len(first.history) == 1
    ckpt = _through_file(first, tmp_path)
    assert ckpt.trainer_state["epoch"] == 1
    second = make_trainer(flowers_data, epochs=3, **kw)
    second.model.load_state_dict(ckpt.model.state_dict())
    second.load_state_dict(ckpt.trainer_state)
    second.fit()
    assert [e.epoch for e in second.history] == [1, 2, 3, 4]
    assert states_equal(state_copy(full.model), state_copy(second.model))
    assert [e.train_loss for e in second.history] == [e.train_loss for e in full.history]


def test_trainer_state_loads_weights_only(flowers_data, tmp_path):
    trainer = make_trainer(flowers_data, epochs=2, layers=DROPOUT, early_stopping=1)
    trainer.fit()
    path = atomic_torch_save({"trainer_state": trainer.state_dict()}, tmp_path / "s.pt")
    state = torch.load(path, weights_only=True)["trainer_state"]
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert isinstance(state["rng"]["torch"], torch.Tensor) and isinstance(state["rng"]["shuffle"], torch.Tensor)
