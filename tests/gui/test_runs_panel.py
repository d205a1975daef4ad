"""The runs dock and File → Follow run folder, on log folders written by other processes (earlier launches)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, QSettings, Qt

import nnstudio
from nnstudio.core.results.runs import list_runs
from nnstudio.gui.main_window import MainWindow
from nnstudio.gui.runs_panel import COLUMNS, RunsTableModel
from nnstudio.resources import sample_dataset


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONPATH"] = str(Path(nnstudio.__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["OMP_NUM_THREADS"] = "1"
    return env


def _toml(path: Path, data: Path, name: str, lr: float = 0.01, epochs: int = 2, checkpoint: str = "model.pt") -> Path:
    path.write_text(textwrap.dedent(f"""
        [data]
        path = '{data}'
        seed = 0
        [model]
        layers = [{{type = "Linear", out_features = 16}}, {{type = "ReLU"}}, {{type = "Linear", out_features = "auto"}}]
        [training]
        epochs = {epochs}
        batch_size = 64
        optimizer = {{name = "Adam", lr = {lr}}}
        device = "cpu"
        threads = 1
        seed = 0
        [output]
        checkpoint = '{checkpoint}'
        logdir = 'runs'
        name = '{name}'
    """), encoding="utf-8")
    return path


def _train(cwd: Path, toml: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nnstudio", "train", str(toml), "--quiet", *extra], cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def earlier_logdir(tmp_path_factory) -> Path:
    """A log folder written by three earlier headless runs: flowers twice (two learning rates), houses once."""
    root = tmp_path_factory.mktemp("earlier")
    runs = [("flowers-fast", sample_dataset("flowers.csv"), 0.03, "fast.pt"),
            ("flowers-slow", sample_dataset("flowers.csv"), 0.003, "slow.pt"),
            ("houses", sample_dataset("houses.csv"), 0.01, "houses.pt")]
    for name, data, lr, ckpt in runs:
        proc = _train(root, _toml(root / f"{name}.toml", data, name, lr, checkpoint=ckpt))
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    return root / "runs"


@pytest.fixture
def window(qtbot, tmp_path, earlier_logdir):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, logdir=earlier_logdir)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()


def _select(panel, *names: str) -> None:
    sm = panel.table.selectionModel()
    sm.clearSelection()
    for row, run in enumerate(panel.model.runs()):
        if run.name in names:
            sm.select(panel.model.index(row, 0), QItemSelectionModel.SelectionFlag.Select
                      | QItemSelectionModel.SelectionFlag.Rows)


def test_table_model_is_a_valid_qt_model(qtmodeltester, earlier_logdir):
    model = RunsTableModel()
    model.set_runs(list_runs(earlier_logdir))
    qtmodeltester.check(model)
    model.sort(7, Qt.SortOrder.AscendingOrder)
    qtmodeltester.check(model)


def test_panel_lists_runs_of_earlier_launches_sortable_by_any_column(window):
    panel = window.runsPanel
    assert panel.objectName() == "runsPanel" and window.runsDock.isVisible()
    model = panel.model
    assert model.rowCount() == 3
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers[:8] == ["Date", "Name", "Dataset", "Target", "Task", "Layers", "Optimizer", "Best val loss"]
    row = {h: model.index([r.name for r in model.runs()].index("houses"), c).data() for c, h in enumerate(headers)}
    assert row["Dataset"] == "houses.csv" and row["Target"] == "price" and row["Task"] == "regression"
    assert "Linear(16)" in row["Layers"] and row["Optimizer"].startswith("Adam lr=0.01")
    assert float(row["Best val loss"]) > 0 and "r2" in row["Test"] and row["Checkpoint"] == "houses.pt"
    for column in range(len(COLUMNS)):
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            panel.table.sortByColumn(column, order)
            keys = [COLUMNS[column][2](r) for r in model.runs()]
            assert keys == sorted(keys, reverse=order == Qt.SortOrder.DescendingOrder), headers[column]
    panel.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    assert [model.index(r, 1).data() for r in range(3)] == ["flowers-fast", "flowers-slow", "houses"]


def test_overlay_two_runs_of_the_same_task_and_not_others(qtbot, window):
    panel = window.runsPanel
    _select(panel, "flowers-fast", "houses")
    assert not panel.overlayButton.isEnabled()
    assert "regression" in panel.noteLabel.text() and "multiclass" in panel.noteLabel.text()
    _select(panel, "flowers-fast", "flowers-slow")
    assert panel.overlayButton.isEnabled()
    with qtbot.waitSignal(window.runs.overlaid, timeout=20000):  # read in a pool thread
        qtbot.mouseClick(panel.overlayButton, Qt.MouseButton.LeftButton)
    loss, metrics = window.lossPlot, window.metricsPlot
    assert loss.run_name == "flowers-slow" and loss.earlier_run_names() == ["flowers-fast"]
    assert metrics.run_name == "flowers-slow" and metrics.earlier_run_names() == ["flowers-fast"]
    xs, ys = loss.step_curve.getData()
    assert list(xs) == list(range(1, 15))  # 420 training rows at batch 64: 7 steps × 2 epochs
    tx, _ = loss.train_curve.getData()
    assert list(tx) == [7, 14]
    ax, ay = metrics.metric_curve("accuracy").getData()
    assert list(ax) == [1, 2] and all(0 <= v <= 1 for v in ay)
    assert [label for label in loss.legend_labels() if "flowers-fast" in label]


def test_open_restore_rename_delete(qtbot, window, tmp_path, earlier_logdir, monkeypatch):
    import shutil

    logdir = tmp_path / "copy"
    shutil.copytree(earlier_logdir, logdir)
    panel = window.runsPanel
    panel.set_logdir(logdir)
    _select(panel, "houses")
    with qtbot.waitSignal(window.checkpoint_loaded, timeout=10000) as opened:
        qtbot.mouseClick(panel.openButton, Qt.MouseButton.LeftButton)
    assert opened.args[0].endswith("houses.pt")
    window.modelBuilder.set_layers([{"type": "Linear", "out_features": "auto"}], undoable=True)
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        qtbot.mouseClick(panel.restoreButton, Qt.MouseButton.LeftButton)
    assert [l["type"] for l in window.modelBuilder.layers()] == ["Linear", "ReLU", "Linear"]
    assert window.modelBuilder.layers()[0]["out_features"] == 16
    assert window.trainingPanel.train_config().lr == pytest.approx(0.01)
    qtbot.waitUntil(lambda: window.datasetPanel.target() == "price")
    assert panel.rename(panel.selected_runs()[0], "houses again")
    assert [r.name for r in panel.selected_runs()] == ["houses again"]
    monkeypatch.setattr(panel, "confirm_delete", lambda runs: False)
    qtbot.mouseClick(panel.deleteButton, Qt.MouseButton.LeftButton)
    assert panel.model.rowCount() == 3  # cancelled: nothing deleted
    monkeypatch.setattr(panel, "confirm_delete", lambda runs: [r.name for r in runs] == ["houses again"])
    qtbot.mouseClick(panel.deleteButton, Qt.MouseButton.LeftButton)
    assert sorted(r.name for r in panel.model.runs()) == ["flowers-fast", "flowers-slow"]
    assert len(list(logdir.iterdir())) == 2


WRITER = textwrap.dedent("""
    import sys
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(sys.argv[1])
    step = 0
    for line in sys.stdin:
        step += 1
        writer.add_scalar("loss/train_step", 1.0 / step, step)
        if step % 3 == 0:
            writer.add_scalar("loss/train", 1.0 / step, step // 3)
            writer.add_scalar("epoch", step // 3, step)
            writer.add_scalar("metrics/validation_accuracy", 1 - 1.0 / step, step // 3)
        writer.flush()
    writer.close()
""")


def test_follow_a_folder_another_process_is_writing(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, logdir=tmp_path / "mine")
    qtbot.addWidget(window)
    window.show()
    logdir = tmp_path / "cluster"
    logdir.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(logdir / "job-1")], stdin=subprocess.PIPE, text=True,
                            env=_env())
    try:
        assert window.follow_folder(logdir)
        assert window.actionStopFollowing.isEnabled()
        loss = window.lossPlot
        for n in (1, 2, 3, 4):
            proc.stdin.write("step\n")
            proc.stdin.flush()
            qtbot.waitUntil(lambda: len(loss.step_curve.getData()[0] if loss.step_curve.getData()[0] is not None
                                        else []) == n, timeout=60000)
        assert loss.run_name == "job-1" and loss.earlier_run_names() == []
        assert window.runsPanel.logdir == logdir and [r.name for r in window.runsPanel.model.runs()] == ["job-1"]
        assert list(loss.step_curve.getData()[0]) == [1, 2, 3, 4]
        assert list(loss.train_curve.getData()[0]) == [3]  # epoch 1 ended at step 3
        assert list(window.metricsPlot.metric_curve("accuracy").getData()[0]) == [1]
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
        window.shutdown()


def test_follow_a_headless_nnstudio_train_and_open_its_checkpoint(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, logdir=tmp_path / "mine")
    qtbot.addWidget(window)
    window.show()
    (tmp_path / "runs").mkdir()
    assert window.follow_folder(tmp_path / "runs")
    proc = _train(tmp_path, _toml(tmp_path / "run.toml", sample_dataset("churn.csv"), "headless", epochs=4))
    try:
        qtbot.waitUntil(lambda: window.actionOpenFollowedCheckpoint.isEnabled(), timeout=120000)
        assert window.lossPlot.run_name == "headless"
        tx, _ = window.lossPlot.train_curve.getData()
        assert tx is not None and len(tx) == 4
        with qtbot.waitSignal(window.checkpoint_loaded, timeout=10000) as opened:
            window.actionOpenFollowedCheckpoint.trigger()
        assert Path(opened.args[0]) == (tmp_path / "model.pt").resolve()
        # the dock lists the followed folder's runs, this one with its scores once it has ended
        qtbot.waitUntil(lambda: [(r.status, "accuracy" in r.test) for r in window.runsPanel.model.runs()]
                        == [("completed", True)], timeout=20000)
    finally:
        proc.communicate(timeout=120)
        window.shutdown()
    assert proc.returncode == 0


def test_a_run_trained_in_the_window_is_listed_when_it_ends(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, logdir=tmp_path / "runs")
    qtbot.addWidget(window)
    window.show()
    try:
        assert window.runsPanel.model.rowCount() == 0
        with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
            window.open_path(sample_dataset("flowers.csv"))
        window.trainingPanel.epochsSpin.setValue(2)
        with qtbot.waitSignal(window.training_finished, timeout=60000):
            window.actionTrain.trigger()
        (run,) = window.runsPanel.model.runs()
        assert run.task == "multiclass" and run.target == "species" and run.status == "completed"
        assert run.dataset.endswith("flowers.csv") and "accuracy" in run.test
        assert run.checkpoint is None
        assert window.save_checkpoint(tmp_path / "mine.pt")
        (run,) = window.runsPanel.model.runs()
        assert run.checkpoint == str((tmp_path / "mine.pt").resolve()) and run.checkpoint_exists
        _select(window.runsPanel, run.name)
        assert window.runsPanel.openButton.isEnabled()
    finally:
        window.shutdown()
