"""A streamed image dataset ([data] stream = true) in the real window: said in the dataset panel, trained through
the DataLoader from the training thread (workers = 0 here: a forked worker of the pytest-qt process died once in a full run), evaluated, kept in the project."""

from __future__ import annotations

import tomllib

import tomli_w

from nnstudio.core.data.image_stream import ImageStream
from nnstudio.core.model.spec import PRESETS
from tests.core.test_images import write_folder
from tests.gui.test_image_window import drop, train


def test_a_streamed_project_trains_evaluates_and_keeps_its_keys(window, qtbot, tmp_path):
    shapes = write_folder(tmp_path / "shapes", classes=("bar", "dot", "ring"), n=8, size=(12, 10))
    (tmp_path / "p.toml").write_text(tomli_w.dumps({
        "data": {"path": str(shapes), "stream": True, "workers": 0},
        "model": {"layers": PRESETS["Small CNN"]}, "training": {"epochs": 1, "batch_size": 4}}))
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        assert window.open_project(tmp_path / "p.toml")
    assert "Training: streamed from disk batch by batch ([data] stream = true" in window.datasetPanel.summaryLabel.text()
    train(qtbot, window, epochs=2)
    data = window.last_run.data
    assert isinstance(data.train.X, ImageStream) and data.report["storage"] == "stream"
    assert len(window.last_run.trainer.history) == 2
    panel = window.evaluationPanel
    qtbot.waitUntil(lambda: panel.evaluation is not None)
    assert int(panel.evaluation.report.confusion.sum()) == data.report["n_test"]
    assert panel.misclassifiedGrid.thumbnailList.count() == int(panel.evaluation.report.confusion.sum()
                                                                 - panel.evaluation.report.confusion.trace())
    assert window.save_project(tmp_path / "again.toml")
    saved = tomllib.loads((tmp_path / "again.toml").read_text())["data"]
    assert saved["stream"] is True and saved["workers"] == 0


def test_the_dataset_panel_says_how_the_images_will_be_held(window, qtbot, tmp_path):
    shapes = write_folder(tmp_path / "shapes", classes=("bar", "dot"), n=4, size=(12, 10))
    drop(window, shapes)
    qtbot.waitUntil(lambda: window.datasetPanel.images() is not None)
    assert "Training: decoded into memory once" in window.datasetPanel.summaryLabel.text()
