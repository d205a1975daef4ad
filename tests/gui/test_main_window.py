"""The real window, driven headless: open data, build a model, train, stop, close, save and reopen."""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QPushButton

from nnstudio.core.model.checkpoint import load_checkpoint
from nnstudio.core.data import read_table
from nnstudio.gui.main_window import MainWindow

from guiwindow import load


def train(qtbot, window, epochs=3, timeout=60000):
    window.trainingPanel.epochsSpin.setValue(epochs)
    with qtbot.waitSignal(window.training_finished, timeout=timeout) as blocker:
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def drop(window, *paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_required_object_names(window):
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QWidget

    for name in ("datasetPanel", "datasetTable", "targetCombo", "layerList", "addLayerButton", "deviceCombo",
                 "epochsSpin", "batchSizeSpin", "learningRateSpin", "trainButton", "pauseButton", "stopButton",
                 "progressBar", "lossPlot", "metricsPlot"):
        assert window.findChild(QWidget, name) is not None, name
    for name in ("actionOpenDataset", "actionOpenCheckpoint", "actionSaveCheckpoint", "actionOpenProject",
                 "actionSaveProject"):
        assert window.findChild(QAction, name) is not None, name
    assert window.actionTrain.shortcut().toString() == "F5"
    assert window.actionStop.shortcut().toString() == "Shift+F5"
    assert window.actionOpenDataset.shortcut().toString() == "Ctrl+O"
    assert window.actionSaveCheckpoint.shortcut().toString() == "Ctrl+S"
    assert window.findChild(QWidget, "deviceCombo").currentData() == "auto"


def test_open_by_dialog_and_train_plots_hold_points(qtbot, window, flowers_csv, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(flowers_csv), ""))
    assert not window.trainingPanel.trainButton.isEnabled()
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        window.actionOpenDataset.trigger()
    assert window.datasetPanel.datasetTable.model().rowCount() == 600
    assert window.datasetPanel.targetCombo.currentText() == "species"
    qtbot.waitUntil(window.trainingPanel.trainButton.isEnabled)
    info = train(qtbot, window, epochs=3)
    assert info["status"] == "completed"
    bar = window.trainingPanel.progressBar
    assert bar.value() == bar.maximum() > 0
    run = window.last_run
    steps = run.trainer.global_step
    window.lossPlot.redraw()
    xs, ys = window.lossPlot.step_curve.getData()
    assert len(xs) == steps and list(xs[:3]) == [1, 2, 3]
    epoch_x, epoch_y = window.lossPlot.train_curve.getData()
    assert len(epoch_x) == 3
    assert epoch_y[-1] == pytest.approx(run.trainer.history[-1].train_loss)
    window.metricsPlot.redraw()
    assert len(window.metricsPlot.curves["accuracy"].getData()[0]) == 3
    assert list(Path(window.logdir).glob("*/events.out.tfevents.*"))


def test_drop_dataset_then_build_model_and_train_regression(qtbot, window, houses_csv):
    drop(window, houses_csv)
    qtbot.waitUntil(lambda: window.datasetPanel.dataframe() is not None, timeout=20000)
    assert window.datasetPanel.task() == "regression"
    builder = window.modelBuilder
    builder.set_layers([{"type": "Linear", "out_features": 16}, {"type": "Tanh"},
                        {"type": "Linear", "out_features": "auto"}])
    assert builder.is_valid()
    info = train(qtbot, window, epochs=2)
    assert set(info["validation"]) == {"rmse", "mae", "r2"}
    assert window.model.spec[0]["out_features"] == 16


def test_invalid_model_disables_train(qtbot, window, flowers_csv):
    load(qtbot, window, flowers_csv)
    qtbot.waitUntil(window.trainingPanel.trainButton.isEnabled)
    window.modelBuilder.set_layers([{"type": "ReLU"}])
    assert not window.modelBuilder.is_valid()
    assert not window.trainingPanel.trainButton.isEnabled()
    assert not window.actionTrain.isEnabled()
    window.modelBuilder.undo_stack.undo()
    qtbot.waitUntil(window.trainingPanel.trainButton.isEnabled)


def test_stop_mid_run(qtbot, window, flowers_csv):
    load(qtbot, window, flowers_csv)
    window.trainingPanel.epochsSpin.setValue(5000)
    window.trainingPanel.batchSizeSpin.setValue(8)
    with qtbot.waitSignal(window.controller.epoch_finished, timeout=30000):
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    assert window.controller.is_running()
    with qtbot.waitSignal(window.training_finished, timeout=30000) as blocker:
        qtbot.mouseClick(window.trainingPanel.stopButton, Qt.MouseButton.LeftButton)
    assert blocker.args[0]["status"] == "stopped"
    assert len(window.last_run.trainer.history) < 5000
    qtbot.waitUntil(lambda: not window.controller.is_running())
    assert window.trainingPanel.trainButton.isEnabled()


def test_stop_right_after_train_leaves_the_plots_settled(qtbot, window, flowers_csv):
    """Stop before the plots have started the run (they start over several passes): the run ends, both plots
    end live mode with nothing left to paint, and the next run starts normally."""
    load(qtbot, window, flowers_csv)
    train(qtbot, window, epochs=1)
    window.trainingPanel.epochsSpin.setValue(5000)
    waiting: list[int] = []

    def stop_now(_run) -> None:  # right after the window took the run in (controller signal: GUI thread)
        waiting.append(len(window._plots_to_start))
        window.trainingPanel.stopButton.click()

    window.controller.run_created.connect(stop_now)
    try:
        with qtbot.waitSignal(window.training_finished, timeout=30000) as blocker:
            qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    finally:
        window.controller.run_created.disconnect(stop_now)
    assert waiting == [2]  # neither plot had started the run when Stop was pressed
    assert blocker.args[0]["status"] == "stopped"
    assert not window.lossPlot.is_live() and not window.metricsPlot.is_live()
    assert not window.lossPlot.is_paint_held() and not window.metricsPlot.is_paint_held()
    assert window.lossPlot.run_name == window.last_run.cfg.output.name  # its points went to its own curves
    assert train(qtbot, window, epochs=1)["status"] == "completed"


def test_close_mid_run_joins_worker(qtbot, tmp_path, flowers_csv):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, logdir=tmp_path / "runs")
    qtbot.addWidget(w)
    w.show()
    load(qtbot, w, flowers_csv)
    w.trainingPanel.epochsSpin.setValue(5000)
    with qtbot.waitSignal(w.controller.epoch_finished, timeout=30000):
        w.actionTrain.trigger()
    assert w.controller.is_running()
    w.close()
    assert not w.controller.is_running()
    assert w.last_run.trainer.epoch < 5000
    # geometry and recent files persisted
    settings.sync()
    assert settings.value("window/geometry") is not None
    assert str(flowers_csv.resolve()) in MainWindow(settings=settings, logdir=tmp_path / "r2").recent_files()


def test_save_and_reopen_checkpoint_identical_predictions(qtbot, window, churn_csv, tmp_path, monkeypatch):
    load(qtbot, window, churn_csv)
    train(qtbot, window, epochs=2)
    target = tmp_path / "saved.pt"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    with qtbot.waitSignal(window.checkpoint_saved):
        window.actionSaveCheckpoint.trigger()
    X = window.last_run.data.test.X.cpu()
    window.model.eval()
    with torch.no_grad():
        before = window.model(X)
    raw = torch.load(target, weights_only=True)
    assert raw["format"] == "nnstudio" and raw["preprocessing"]["classes"] == ["no", "yes"]

    settings = QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat)
    other = MainWindow(settings=settings, logdir=tmp_path / "runs2")
    qtbot.addWidget(other)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    with qtbot.waitSignal(other.checkpoint_loaded):
        other.actionOpenCheckpoint.trigger()
    with torch.no_grad():
        after = other.model(X)
    assert torch.equal(before, after)
    assert other.modelBuilder.layers() == load_checkpoint(target).layers
    df = read_table(churn_csv).head(20)  # whatever table type the core reads
    assert load_checkpoint(target).predict(df) == other.loaded_checkpoint.predict(df)
    other.shutdown()


def test_bad_file_keeps_previous_dataset(qtbot, window, flowers_csv, tmp_path):
    load(qtbot, window, flowers_csv)
    before = window.datasetPanel.dataframe()
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(os.urandom(300))
    with qtbot.waitSignal(window.error_shown, timeout=20000) as blocker:
        drop(window, bad)
    assert "broken.parquet" in blocker.args[0]
    assert window.datasetPanel.dataframe() is before
    assert window.findChild(QMessageBox, "errorDialog") is not None
    with qtbot.waitSignal(window.error_shown):
        drop(window, flowers_csv, flowers_csv)
    assert "one" in window.last_error.lower()
    with qtbot.waitSignal(window.error_shown):
        drop(window, tmp_path)
    assert "folder" in window.last_error
    info = train(qtbot, window, epochs=1)
    assert info["status"] == "completed"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_hostile_checkpoint_is_refused_and_window_keeps_working(qtbot, window, flowers_csv, tmp_path):
    load(qtbot, window, flowers_csv)
    layers_before = window.modelBuilder.layers()
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "nnstudio", "state_dict": _Evil(marker)}, evil)
    with qtbot.waitSignal(window.error_shown, timeout=10000) as blocker:
        drop(window, evil)
    assert "refused" in blocker.args[0]
    assert not marker.exists()
    assert window.model is None
    assert window.modelBuilder.layers() == layers_before
    assert train(qtbot, window, epochs=1)["status"] == "completed"


def test_project_round_trip(qtbot, window, houses_csv, tmp_path):
    load(qtbot, window, houses_csv)
    window.trainingPanel.epochsSpin.setValue(7)
    window.modelBuilder.set_layers([{"type": "Linear", "out_features": 8}, {"type": "GELU"},
                                    {"type": "Linear", "out_features": "auto"}])
    project = tmp_path / "proj" / "houses.toml"
    project.parent.mkdir()
    assert window.save_project(project)
    settings = QSettings(str(tmp_path / "s3.ini"), QSettings.Format.IniFormat)
    other = MainWindow(settings=settings, logdir=tmp_path / "other")
    qtbot.addWidget(other)
    with qtbot.waitSignal(other.datasetPanel.dataset_loaded, timeout=20000):
        other.open_path(project)
    assert other.trainingPanel.epochsSpin.value() == 7
    assert [l["type"] for l in other.modelBuilder.layers()] == ["Linear", "GELU", "Linear"]
    assert Path(other.datasetPanel.path()).resolve() == houses_csv.resolve()
    assert other.datasetPanel.target() == "price"
    other.shutdown()


def test_about_text_names_versions():
    from nnstudio.gui.main_window import about_text
    from PySide6 import QtCore

    text = about_text()
    assert torch.__version__ in text and QtCore.qVersion() in text and "CPU" in text


def test_dropped_tensor_file_opens_as_dataset(qtbot, window, tmp_path):
    path = tmp_path / "tensors.pt"
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 5, generator=g)
    torch.save({"X": X, "y": (X[:, 0] > 0).long()}, path)
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        drop(window, path)
    assert window.datasetPanel.dataframe().shape == (200, 6)
    assert window.datasetPanel.task() == "binary"
    assert window.model is None


def test_diverging_run_shows_dialog_and_resets_controls(qtbot, window, houses_csv):
    load(qtbot, window, houses_csv)
    panel = window.trainingPanel
    panel.optimizerCombo.setCurrentText("SGD")
    panel.learningRateSpin.setValue(10.0)
    panel.epochsSpin.setValue(50)
    with qtbot.waitSignal(window.error_shown, timeout=60000) as blocker:
        qtbot.mouseClick(panel.trainButton, Qt.MouseButton.LeftButton)
    assert "learning rate" in blocker.args[0]
    qtbot.waitUntil(lambda: not window.controller.is_running())
    qtbot.waitUntil(panel.trainButton.isEnabled)
    assert not panel.stopButton.isEnabled()
    assert window.model is not None  # the best finite weights come back, never NaN ones
    assert all(torch.isfinite(p).all() for p in window.model.parameters())


def test_evaluate_after_loading_checkpoint_uses_its_preprocessing(qtbot, window, flowers_csv, tmp_path):
    load(qtbot, window, flowers_csv)
    train(qtbot, window, epochs=3)
    path = tmp_path / "flowers.pt"
    assert window.save_checkpoint(path)
    expected = window.last_run.trainer.evaluate(window.last_run.data.test)
    settings = QSettings(str(tmp_path / "s4.ini"), QSettings.Format.IniFormat)
    other = MainWindow(settings=settings, logdir=tmp_path / "runs4")
    qtbot.addWidget(other)
    assert other.open_checkpoint(path)
    assert not other.actionEvaluate.isEnabled()  # no dataset yet
    load(qtbot, other, flowers_csv)
    assert other.actionEvaluate.isEnabled()
    other.actionEvaluate.trigger()
    assert other.last_evaluation["loss"] == pytest.approx(expected[0], rel=1e-5)
    assert other.last_evaluation["accuracy"] == pytest.approx(expected[1]["accuracy"])
    assert other.centralTabs.currentWidget() is other.evaluationTab
    assert other.evaluationPanel.confusionMatrix.values.sum() == len(window.last_run.data.test)
    # Continue after opening a checkpoint goes on from its weights and counts on (issue 13) ...
    loaded_model = other.model
    fresh_first_epoch = window.last_run.trainer.history[0].train_loss
    with qtbot.waitSignal(other.training_finished, timeout=60000):
        other.trainingPanel.epochsSpin.setValue(1)
        other.actionContinue.trigger()
    assert other.last_run.model is loaded_model
    assert [e.epoch for e in other.last_run.trainer.history] == [1, 2, 3, 4]
    assert other.last_run.trainer.history[3].train_loss < fresh_first_epoch
    # ... while Train always starts from freshly initialised weights
    with qtbot.waitSignal(other.training_finished, timeout=60000):
        other.actionTrain.trigger()
    assert other.last_run.model is not loaded_model
    assert other.last_run.trainer.history[0].train_loss == fresh_first_epoch
    other.model_unsaved = False
    other.shutdown()


def test_recent_files_menu_reopens(qtbot, window, flowers_csv, houses_csv):
    load(qtbot, window, flowers_csv)
    load(qtbot, window, houses_csv)
    actions = window.recentMenu.actions()
    assert [a.data() for a in actions[:2]] == [str(houses_csv.resolve()), str(flowers_csv.resolve())]
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        actions[1].trigger()
    assert window.datasetPanel.target() == "species"


def test_tensorboard_child_starts_and_ends(qtbot, tmp_path):
    from nnstudio.gui.tensorboard_launcher import TensorBoardLauncher

    launcher = TensorBoardLauncher(open_browser=False)
    with qtbot.waitSignal(launcher.ready, timeout=90000) as blocker:
        launcher.start(tmp_path / "runs")
    url = blocker.args[0]
    assert url.startswith("http://127.0.0.1:")
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
    process = launcher.process
    launcher.stop()
    assert process is not None and launcher.process is None
    assert not launcher.is_running()


def test_export_plots_as_png(qtbot, window, flowers_csv, tmp_path, monkeypatch):
    load(qtbot, window, flowers_csv)
    train(qtbot, window, epochs=2)
    for action, name in ((window.actionExportLoss, "loss.png"), (window.actionExportMetrics, "metrics.png")):
        target = tmp_path / name
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, _t=target, **k: (str(_t), ""))
        action.trigger()
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pause_and_resume_from_the_run_menu(qtbot, window, flowers_csv):
    load(qtbot, window, flowers_csv)
    window.trainingPanel.epochsSpin.setValue(5000)
    with qtbot.waitSignal(window.controller.epoch_finished, timeout=30000):
        window.actionTrain.trigger()
    window.actionPause.trigger()  # F6
    qtbot.waitUntil(window.controller.is_paused)
    assert window.actionPause.text() == "&Resume"
    step = window.last_run.trainer.global_step
    window.actionPause.trigger()
    qtbot.waitUntil(lambda: window.last_run.trainer.global_step > step + 1, timeout=20000)
    assert not window.controller.is_paused()
    with qtbot.waitSignal(window.training_finished, timeout=30000) as blocker:
        window.actionStop.trigger()
    assert blocker.args[0]["status"] == "stopped"


def test_train_prepares_tensors_in_the_training_thread_and_reuses_them(qtbot, window, flowers_csv, monkeypatch):
    import threading

    import nnstudio.gui.window_training as mw  # run control prepares the data

    threads: list[threading.Thread] = []
    real_prepare = mw.prepare

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(mw, "prepare", spy)
    load(qtbot, window, flowers_csv)
    train(qtbot, window, epochs=1)
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    first = window.last_run.data
    train(qtbot, window, epochs=1)  # same table, same choices: the same tensors, no second conversion
    assert len(threads) == 1 and window.last_run.data is first
    window.datasetPanel.valSplitSpin.setValue(window.datasetPanel.valSplitSpin.value() + 5)
    train(qtbot, window, epochs=1)
    assert len(threads) == 2 and window.last_run.data is not first
    assert len(window.last_run.data.val) > len(first.val)


def test_a_run_that_cannot_start_keeps_the_plots_and_the_model(qtbot, window, flowers_csv, monkeypatch):
    import nnstudio.gui.window_training as mw  # run control prepares the data
    from nnstudio.core.errors import DataError

    load(qtbot, window, flowers_csv)
    train(qtbot, window, epochs=2)
    model, run, curve_points = window.model, window.last_run, len(window.lossPlot.train_curve.xData)

    def refuse(*args, **kwargs):
        raise DataError("column 'species' has only one class in the training split")

    monkeypatch.setattr(mw, "prepare", refuse)
    window.datasetPanel.valSplitSpin.setValue(window.datasetPanel.valSplitSpin.value() + 5)  # not the cached tensors
    with qtbot.waitSignal(window.error_shown, timeout=20000) as blocker:
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    assert "only one class" in blocker.args[0]
    qtbot.waitUntil(lambda: not window.controller.is_running())
    dialog = window.findChild(QMessageBox, "errorDialog")
    assert dialog is not None and dialog.windowTitle() == "Cannot start training"
    assert window.model is model and window.last_run is run
    assert len(window.lossPlot.train_curve.xData) == curve_points  # the last run's curves are still current
    assert window.trainingPanel.trainButton.isEnabled()


def test_plots_start_a_run_in_later_passes_but_before_its_data(qtbot, window, flowers_csv):
    """Each plot starts the new run in a pass of its own; data or the end of the run arriving first start
    them at once, so no point of the new run lands on the old run's curves."""
    load(qtbot, window, flowers_csv)
    train(qtbot, window, epochs=1)
    # training_finished comes once the plots have shown the end: exact bounds, nothing left to paint.
    assert not window.lossPlot.is_live() and not window.metricsPlot.is_live()
    assert not window.lossPlot.is_paint_held() and not window.metricsPlot.is_paint_held()
    first = window.last_run
    second = SimpleNamespace(cfg=SimpleNamespace(output=SimpleNamespace(name="second"), training=first.cfg.training),
                             model=first.model, trainer=first.trainer, data=first.data)
    window.controller.run_created.emit(second)
    assert window.last_run is second
    assert window.lossPlot.run_name != "second" and window.metricsPlot.run_name != "second"  # later passes
    window.controller.steps_arrived.emit([1, 2], [0.9, 0.8])  # the fit's first steps come first
    assert window.lossPlot.run_name == "second" and window.metricsPlot.run_name == "second"
    assert window.lossPlot.earlier_run_names()[0] == first.cfg.output.name
    window.lossPlot.redraw()
    assert list(window.lossPlot.step_curve.getData()[0]) == [1, 2]
    window.controller.resume_start()  # the hold the window took (no worker here to release)

    third = SimpleNamespace(cfg=SimpleNamespace(output=SimpleNamespace(name="third"), training=first.cfg.training),
                            model=first.model, trainer=first.trainer, data=first.data)
    window.controller.run_created.emit(third)
    qtbot.waitUntil(lambda: window.metricsPlot.run_name == "third")  # on their own, in later passes
    assert window.lossPlot.run_name == "third" and window.lossPlot.is_live() and window.metricsPlot.is_live()
    # While live, x spans the whole planned run: its last step, its last epoch.
    training = first.cfg.training
    last_step = first.trainer.global_step + training.epochs * math.ceil(len(first.data.train) / training.batch_size)
    assert window.lossPlot.getPlotItem().vb.viewRange()[0][1] >= last_step
    assert window.metricsPlot.getPlotItem().vb.viewRange()[0][1] >= first.trainer.epoch + training.epochs
    window._reset_after_run()
    assert not window.lossPlot.is_live()
    qtbot.waitUntil(lambda: not window.metricsPlot.is_live())  # the metrics plot in the next pass
