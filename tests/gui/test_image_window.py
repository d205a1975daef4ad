"""Images in the real window: a class folder as the dataset, the Small CNN on it, train, evaluate (confusion
matrix and misclassified test images), the code view's image script, checkpoint, project, Continue, runs."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

from nnstudio.core.model.checkpoint import load_checkpoint
from tests.core.test_images import write_folder


def drop(window, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))


@contextmanager
def reopened(qtbot, tmp_path, project):
    """A second window (its own settings and log folder) with `project` opened in it, shut down afterwards."""
    from nnstudio.gui.main_window import MainWindow

    other = MainWindow(settings=QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat),
                       logdir=tmp_path / "runs2")
    qtbot.addWidget(other)
    try:
        with qtbot.waitSignal(other.datasetPanel.dataset_loaded, timeout=20000):
            assert other.open_project(project)
        yield other
    finally:
        other.shutdown()


def train(qtbot, window, epochs=2, button=True):
    """Train (or Continue) and wait for the end; an error dialog instead fails with its sentence."""
    window.trainingPanel.epochsSpin.setValue(epochs)
    done: list = []
    window.training_finished.connect(done.append)
    window.error_shown.connect(done.append)
    try:
        if button:
            qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
        else:
            window.actionContinue.trigger()
        qtbot.waitUntil(lambda: bool(done), timeout=120000)
    finally:
        window.training_finished.disconnect(done.append)
        window.error_shown.disconnect(done.append)
    assert isinstance(done[0], dict), done[0]
    return done[0]


def small_cnn(window):
    combo = window.modelBuilder.presetCombo
    combo.setCurrentIndex(combo.findText("Small CNN"))
    assert window.modelBuilder.is_valid(), window.modelBuilder.summary().errors


@pytest.fixture
def shapes(tmp_path):
    """Three classes of 12×10 grey images, 8 each, written to disk."""
    return write_folder(tmp_path / "shapes", classes=("bar", "dot", "ring"), n=8, size=(12, 10))


def test_a_dropped_class_folder_is_the_dataset_and_trains_with_the_small_cnn(window, qtbot, tmp_path, shapes):
    drop(window, shapes)
    dp = window.datasetPanel
    qtbot.waitUntil(lambda: dp.images() is not None)
    assert not dp.dataTabs.isVisible() and dp.dataframe() is None
    text = dp.summaryLabel.text()
    assert text.startswith("24 images · 3 classes · 12×10 px · 1 channel (grey)"), text
    assert "Classes: bar 8, dot 8, ring 8" in text
    assert dp.pathLabel.text() == "shapes"
    assert window.modelBuilder.model.io() == ((1, 12, 10), 3)
    assert "24 images · 1 × 12 × 10 · 3 classes" in window.datasetStatus.text()

    small_cnn(window)
    summary = window.modelBuilder.summary()
    assert summary.ok
    assert summary.total_params > 0 and f"{summary.total_params:,} parameters" in window.modelStatus.text()
    assert window.actionTrain.isEnabled()

    train(qtbot, window, epochs=2)
    run = window.last_run
    assert run.data.report["kind"] == "image" and run.model.input_shape == (1, 12, 10)
    assert "trained weights" in window.modelStatus.text() and "train again" not in window.modelStatus.text()
    assert window.evaluationPanel.evaluationHeader.text().endswith(
        f"test {window.last_run.data.report['n_test']} images")
    window.lossPlot.redraw()
    xs, _ys = window.lossPlot.train_curve.getData()
    assert len(xs) == 2  # one point per epoch streamed to the loss plot
    assert len(window.metricsPlot.curves["accuracy"].getData()[0]) == 2

    assert window.save_checkpoint(tmp_path / "cnn.pt")
    ckpt = load_checkpoint(tmp_path / "cnn.pt")
    assert ckpt.preprocessor.input_shape == (1, 12, 10) and ckpt.preprocessor.classes == ["bar", "dot", "ring"]
    assert window.open_checkpoint(tmp_path / "cnn.pt")
    assert window.model is window.loaded_checkpoint.model

    window.datasetPanel.valSplitSpin.setValue(20.0)
    assert window.save_project(tmp_path / "images.toml")
    import tomllib

    saved = tomllib.loads((tmp_path / "images.toml").read_text())
    assert (tmp_path / saved["data"]["path"]).resolve() == shapes.resolve() and saved["data"]["split"][1] == pytest.approx(0.2)
    assert saved["model"]["layers"][0]["type"] == "Conv2d"

    with reopened(qtbot, tmp_path, tmp_path / "images.toml") as other:
        assert other.datasetPanel.images() is not None and other.datasetPanel.split()[1] == pytest.approx(0.2)
        assert other.modelBuilder.layers() == window.modelBuilder.layers()
        assert other.modelBuilder.model.io() == ((1, 12, 10), 3) and other.actionTrain.isEnabled()


def test_project_image_keys_are_kept_and_used(window, qtbot, tmp_path, shapes):
    import tomli_w

    from nnstudio.core.model.spec import PRESETS

    (tmp_path / "p.toml").write_text(tomli_w.dumps({
        "data": {"path": str(shapes), "image_size": [8, 8], "channels": 3, "augment": {"hflip": True}},
        "model": {"layers": PRESETS["Small CNN"]}, "training": {"epochs": 1, "batch_size": 8}}))
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        assert window.open_project(tmp_path / "p.toml")
    assert window.modelBuilder.model.io() == ((3, 8, 8), 3)
    train(qtbot, window, epochs=1)
    assert window.last_run.model.input_shape == (3, 8, 8)
    assert window.save_project(tmp_path / "again.toml")
    import tomllib

    data = tomllib.loads((tmp_path / "again.toml").read_text())["data"]
    assert data["image_size"] == [8, 8] and data["channels"] == 3 and data["augment"] == {"hflip": True}


def test_a_single_class_folder_is_one_sentence_and_keeps_the_table(window, qtbot, tmp_path):
    from guiwindow import load

    csv = tmp_path / "t.csv"
    csv.write_text("x,y\n1,a\n2,b\n3,a\n4,b\n")
    load(qtbot, window, csv)
    write_folder(tmp_path / "one", classes=("only",), n=3)
    drop(window, tmp_path / "one")
    assert window.datasetPanel.images() is None and window.datasetPanel.dataframe() is not None
    assert "only one class" in window.last_error


def test_the_evaluation_tab_shows_the_confusion_matrix_and_the_misclassified_test_images(window, qtbot, tmp_path,
                                                                                          shapes):
    import re

    drop(window, shapes)
    qtbot.waitUntil(lambda: window.datasetPanel.images() is not None)
    small_cnn(window)
    window.trainingPanel.learningRateSpin.setValue(1e-4)  # barely trained: some test images are wrong
    train(qtbot, window, epochs=1)
    panel = window.evaluationPanel
    qtbot.waitUntil(lambda: panel.evaluation is not None)
    ev = panel.evaluation
    matrix = ev.report.confusion
    n_test = window.last_run.data.report["n_test"]
    assert matrix.shape == (3, 3) and int(matrix.sum()) == n_test
    wrong = int(matrix.sum() - matrix.trace())
    grid = panel.misclassifiedGrid
    assert grid.objectName() == "misclassifiedGrid" and not panel.misclassifiedBox.isHidden()
    assert grid.thumbnailList.count() == wrong
    assert grid.summaryLabel.text() == f"{wrong} of {n_test} test images misclassified"
    test_files = window.last_run.data.report["files"]["test"]
    for i, text in enumerate(grid.texts()):
        true, predicted, p = re.fullmatch(r"(\w+) → (\w+) \((\d\.\d\d)\)", text).groups()
        assert true != predicted and 1 / 3 - 0.01 <= float(p) <= 1.0
        shown = Path(grid.thumbnailList.item(i).data(Qt.ItemDataRole.UserRole))
        assert shown.parent.name == true and f"{true}/{shown.name}" in test_files  # the image of that class
    # the same for a checkpoint opened on the folder; a table model hides the grid again
    assert window.save_checkpoint(tmp_path / "m.pt") and window.open_checkpoint(tmp_path / "m.pt")
    assert panel.misclassifiedGrid.thumbnailList.count() == wrong
    from guiwindow import load

    csv = tmp_path / "t.csv"
    csv.write_text("x,y\n" + "".join(f"{i % 7},{'ab'[i % 2]}\n" for i in range(40)))
    load(qtbot, window, csv)
    window.modelBuilder.presetCombo.setCurrentIndex(1)
    train(qtbot, window, epochs=1)
    qtbot.waitUntil(lambda: panel.evaluation is not None and panel.evaluation.task == "binary")
    assert panel.misclassifiedBox.isHidden()


def test_the_code_view_shows_the_image_script_that_export_writes(window, qtbot, tmp_path, shapes):
    import subprocess
    import sys

    from nnstudio.core.export.codegen import export_script
    from tests.core.corehelpers import cli_env

    window.codeView.raise_()
    panel = window.codeViewPanel
    drop(window, shapes)
    qtbot.waitUntil(lambda: window.datasetPanel.images() is not None)
    small_cnn(window)
    qtbot.waitUntil(lambda: "class ImageFiles(Dataset)" in panel.text())
    text = panel.text()
    for words in ("self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)", "from PIL import Image",
                  "CLASSES = ['bar', 'dot', 'ring']", "IMAGE_SIZE = (12, 10)", "CHANNELS = 1"):
        assert words in text, words
    assert "read_table" not in text  # not the table script
    compile(text, "train.py", "exec")
    window.trainingPanel.epochsSpin.setValue(1)
    qtbot.waitUntil(lambda: "EPOCHS = 1" in panel.text())
    # the same script as `nnstudio export --script` of the saved project (but the line naming where from)
    assert window.save_project(tmp_path / "p.toml")
    export_script(tmp_path / "p.toml", tmp_path / "cli.py")
    cli = (tmp_path / "cli.py").read_text().splitlines()
    shown = panel.text().splitlines()
    differ = [i for i, (a, b) in enumerate(zip(cli, shown)) if a != b]
    assert len(cli) == len(shown) and all(cli[i].startswith(("\"\"\"Train a CNN", "CHECKPOINT =")) for i in differ), \
        [cli[i] for i in differ]
    # hovering a layer marks its line in the image script too
    panel.highlight_layer(0)
    assert shown[panel.marked_lines()["layer"][0]].strip().startswith("self.conv1 = nn.Conv2d(")
    # File > Export script writes it; it trains with torch and Pillow and its checkpoint opens in nnstudio
    assert window.codeExport.export_script(tmp_path / "train_cnn.py")
    ran = subprocess.run([sys.executable, str(tmp_path / "train_cnn.py")], check=False, cwd=tmp_path, env=cli_env(),
                         capture_output=True, text=True, timeout=240)
    assert ran.returncode == 0, ran.stderr
    ckpt = load_checkpoint(tmp_path / "train_cnn.pt")
    assert ckpt.model.input_shape == (1, 12, 10) and ckpt.preprocessor.classes == ["bar", "dot", "ring"]
    assert window.open_checkpoint(tmp_path / "train_cnn.pt")


def test_continue_and_the_runs_panel_with_an_image_run(window, qtbot, tmp_path, shapes):
    drop(window, shapes)
    qtbot.waitUntil(lambda: window.datasetPanel.images() is not None)
    small_cnn(window)
    train(qtbot, window, epochs=1)
    first = window.last_run
    qtbot.waitUntil(lambda: window.actionContinue.isEnabled())
    train(qtbot, window, epochs=1, button=False)  # Continue: the same model and run folder, one more epoch
    run = window.last_run
    assert run is not first and run.model is first.model and run.trainer.epoch == 2
    assert [h.epoch for h in run.trainer.history] == [1, 2] and run.run_dir == first.run_dir
    qtbot.waitUntil(lambda: len(window.runsPanel.model.runs()) == 1)
    (record,) = window.runsPanel.model.runs()
    assert record.status == "completed" and record.task == "multiclass" and "accuracy" in record.test
    assert record.dataset.endswith("shapes")
    # restore its settings in a window that shows a table: the image folder comes back as the dataset
    from guiwindow import load

    csv = tmp_path / "t.csv"
    csv.write_text("x,y\n" + "".join(f"{i % 7},{'ab'[i % 2]}\n" for i in range(40)))
    load(qtbot, window, csv)
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        assert window.runs.restore_run(record)
    assert window.datasetPanel.images() is not None and window.modelBuilder.model.io() == ((1, 12, 10), 3)
    assert window.modelBuilder.is_valid() and window.actionTrain.isEnabled()


def test_a_stack_that_cannot_take_images_becomes_the_small_cnn_undoably(window, qtbot, shapes):
    before = window.modelBuilder.layers()  # the default MLP: a Linear first
    drop(window, shapes)
    qtbot.waitUntil(lambda: window.datasetPanel.images() is not None)
    assert window.modelBuilder.is_valid() and window.modelBuilder.layers()[0]["type"] == "Conv2d"
    assert "Small CNN preset replaced them" in window.statusBar().currentMessage()
    window.modelBuilder.model.undo_stack.undo()
    assert window.modelBuilder.layers() == before and not window.modelBuilder.is_valid()
