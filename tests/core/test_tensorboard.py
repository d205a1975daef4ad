"""TensorBoard: a run writes <logdir>/<timestamp>-<name>, and TensorBoard's own reader sees every tag."""

from __future__ import annotations

import math
import re

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from corehelpers import SMALL
from nnstudio.core.training.callbacks import (
    TAG_LR, TAG_MODEL, TAG_STEP_LOSS, TAG_TRAIN_LOSS, TAG_VAL_LOSS, TensorBoardLogger)
from nnstudio.core.config import RunConfig
from nnstudio.core.run import TrainingRun


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory, flowers_csv_path):
    root = tmp_path_factory.mktemp("tb")
    cfg = RunConfig(base_dir=root)
    cfg.data.path = str(flowers_csv_path)
    cfg.layers = [dict(layer) for layer in SMALL]
    cfg.training.epochs = 3
    cfg.training.batch_size = 64
    cfg.training.lr = 0.01
    cfg.training.device = "cpu"
    cfg.training.threads = 1
    cfg.output.logdir = "logs"
    cfg.output.name = "tb check/1"
    run = TrainingRun(cfg, checkpoint=False)
    result = run.execute()
    acc = EventAccumulator(str(result.run_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return root, run, result, acc


@pytest.fixture(scope="module")
def flowers_csv_path():
    from nnstudio.resources import sample_dataset

    return sample_dataset("flowers.csv")


def test_run_directory_is_timestamp_dash_name(tb_run):
    root, run, result, _ = tb_run
    assert result.run_dir.parent == root / "logs"
    assert re.fullmatch(r"\d{8}-\d{6}-tb-check-1", result.run_dir.name)
    assert list(result.run_dir.glob("events.out.tfevents.*"))


def test_scalars_per_step_and_per_epoch(tb_run):
    _, run, result, acc = tb_run
    tags = acc.Tags()["scalars"]
    steps = acc.Scalars(TAG_STEP_LOSS)
    assert [s.step for s in steps] == list(range(1, result.finished.steps + 1))
    assert result.finished.steps == 3 * math.ceil(len(run.data.train) / 64)
    history = run.trainer.history
    for tag, values in [(TAG_TRAIN_LOSS, [e.train_loss for e in history]), (TAG_VAL_LOSS, [e.val_loss for e in history]),
                        ("metrics/validation_accuracy", [e.metrics["accuracy"] for e in history]),
                        ("metrics/validation_f1", [e.metrics["f1"] for e in history]),
                        (TAG_LR, [e.lr for e in history])]:
        assert tag in tags
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2, 3], tag
        assert [e.value for e in events] == pytest.approx(values, rel=1e-6), tag


def test_model_structure_text(tb_run):
    _, _, _, acc = tb_run
    tag = TAG_MODEL + "/text_summary"
    assert tag in acc.Tags()["tensors"]
    text = acc.Tensors(tag)[0].tensor_proto.string_val[0].decode()
    assert "Linear(in_features=7, out_features=16" in text and "ReLU" in text


def test_hparams_with_final_metrics(tb_run):
    _, _, result, acc = tb_run
    content = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(content)
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["optimizer"].string_value == "Adam"
    assert start.hparams["lr"].number_value == pytest.approx(0.01)
    assert start.hparams["epochs"].number_value == 3
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert {"hparam/accuracy", "hparam/f1", "hparam/best_validation_loss"} <= metric_tags
    final = acc.Scalars("hparam/accuracy")[-1].value
    assert final == pytest.approx(result.finished.metrics["accuracy"], rel=1e-6)


def test_logger_closes_even_when_fit_fails(tmp_path, houses_data):
    from corehelpers import make_trainer
    from nnstudio.core.errors import TrainingDiverged

    tb = TensorBoardLogger(tmp_path, "boom", {"lr": 1e6})
    with pytest.raises(TrainingDiverged):
        make_trainer(houses_data, callbacks=[tb], optimizer="SGD", lr=1e6, momentum=0.0).fit()
    assert tb.writer is None  # closed in teardown
    acc = EventAccumulator(str(tb.run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    assert TAG_STEP_LOSS in acc.Tags()["scalars"]  # the steps before the failure were flushed
    content = acc.PluginTagToContent("hparams")["_hparams_/experiment"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["hparam/failed"]


def test_step_rate_cap_keeps_epoch_scalars(tmp_path, houses_data):
    from corehelpers import make_trainer

    from nnstudio.core.training.callbacks import MIN_STEP_POINTS

    tb = TensorBoardLogger(tmp_path, "capped", max_step_rate=1e-3)  # one step event per 1000 s at most
    trainer = make_trainer(houses_data, callbacks=[tb], epochs=25)
    trainer.fit()
    acc = EventAccumulator(str(tb.run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    steps = [e.step for e in acc.Scalars(TAG_STEP_LOSS)]
    # the cap drops every step but the first and an even grid of MIN_STEP_POINTS, so the curve keeps its shape
    grid = trainer.global_step // MIN_STEP_POINTS
    assert grid > 1
    assert steps == sorted({1} | set(range(grid, trainer.global_step + 1, grid)))
    assert len(acc.Scalars(TAG_TRAIN_LOSS)) == 25


def test_scalars_are_written_in_bursts_with_their_own_wall_times(tmp_path, houses_data, monkeypatch):
    import time as time_mod

    from corehelpers import make_trainer

    tb = TensorBoardLogger(tmp_path, "bursts", burst_s=3600.0)  # no timed burst: all at the end of the fit
    calls: list[int] = []

    trainer = make_trainer(houses_data, callbacks=[tb], epochs=2)
    walls: list[float] = []
    real_time = time_mod.time

    def stamped() -> float:
        walls.append(real_time())
        return walls[-1]

    from types import SimpleNamespace

    monkeypatch.setattr("nnstudio.core.training.callbacks.time", SimpleNamespace(time=stamped, perf_counter=time_mod.perf_counter))
    original = tb._write_pending

    def counting():
        calls.append(len(tb._pending))
        original()

    monkeypatch.setattr(tb, "_write_pending", counting)
    trainer.fit()
    steps_per_epoch = trainer.global_step // 2
    per_epoch = 1 + 1 + len(trainer.history[0].metrics) + 1 + 1 + 1  # loss, val loss, metrics, lr, grad norm, epoch
    assert calls == [2 * steps_per_epoch + 2 * per_epoch]  # one burst, not one write per scalar
    acc = EventAccumulator(str(tb.run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars(TAG_STEP_LOSS)
    assert [e.step for e in events] == list(range(1, trainer.global_step + 1))
    step_walls = [w for i, w in enumerate(walls) if i not in (steps_per_epoch, 2 * steps_per_epoch + 1)]
    assert [e.wall_time for e in events] == pytest.approx(step_walls[:len(events)], abs=1e-3)  # each its own time
    epochs = acc.Scalars(TAG_TRAIN_LOSS)
    assert [e.step for e in epochs] == [1, 2]
    assert [e.wall_time for e in epochs] == pytest.approx([walls[steps_per_epoch], walls[2 * steps_per_epoch + 1]],
                                                          abs=1e-3)
    assert [e.value for e in epochs] == pytest.approx([h.train_loss for h in trainer.history])


def test_a_burst_is_due_every_burst_seconds(tmp_path, houses_data):
    from corehelpers import make_trainer

    from nnstudio.core.training.engine import Callback

    tb = TensorBoardLogger(tmp_path, "eager", burst_s=0.0)  # every scalar at once
    left_waiting: list[int] = []

    class Spy(Callback):  # runs after the logger: what did it leave unwritten?
        def on_train_batch_end(self, trainer, event):
            left_waiting.append(len(tb._pending))

        def on_epoch_end(self, trainer, event):
            left_waiting.append(len(tb._pending))

    trainer = make_trainer(houses_data, callbacks=[tb, Spy()], epochs=1)
    trainer.fit()
    assert len(left_waiting) == trainer.global_step + 1 and not any(left_waiting)
