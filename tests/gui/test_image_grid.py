"""The image views, driven in the real window: dropping a class folder opens its preview; misclassified grid."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from nnstudio.gui.image_grid import ImagePreviewWidget, MisclassifiedGrid
from tests.core.test_images import write_folder


def drop(window, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))


def test_dropping_a_class_folder_shows_thumbnails_with_classes_and_counts(window, qtbot, tmp_path):
    root = write_folder(tmp_path / "pets", classes=("dog", "cat"), n=3)
    for i in range(9):
        Image.new("L", (12, 10), i).save(root / "dog" / f"extra_{i}.png")
    (root / "cat" / "readme.txt").write_text("notes")
    drop(window, root)
    qtbot.waitUntil(lambda: getattr(window, "imagePreview", None) is not None and window.imagePreview.isVisible())
    preview = window.imagePreview
    assert preview.objectName() == "imagePreview"
    assert preview.counts == {"cat": 3, "dog": 12}
    assert preview.texts() == ["cat"] * 3 + ["dog"] * 8  # at most 8 per class
    summary = preview.summaryLabel.text()
    assert "15 images in 2 classes (cat: 3, dog: 12); most common size 10×12;" in summary
    assert "readme.txt is not an image file" in summary
    icon = preview.thumbnailList.item(0).icon()
    assert not icon.isNull()


def test_a_folder_without_class_folders_is_one_sentence_and_keeps_state(window, tmp_path):
    empty = tmp_path / "plain"
    empty.mkdir()
    (empty / "a.csv").write_text("x,y\n1,2\n")
    drop(window, empty)
    assert "is a folder" in window.last_error and getattr(window, "imagePreview", None) is None


def test_misclassified_grid_shows_only_the_errors(qtbot, tmp_path):
    root = write_folder(tmp_path / "imgs", n=2)
    files = sorted(root.glob("*/*.png"))
    grid = MisclassifiedGrid()
    qtbot.addWidget(grid)
    true = [f.parent.name for f in files]
    predicted = ["cat", "cat", "cat", "dog"]
    grid.show_errors(files, true, predicted, [0.9, 0.8, 0.7, 0.6])
    assert grid.objectName() == "misclassifiedGrid"
    assert grid.texts() == ["dog → cat (0.70)"]
    assert grid.summaryLabel.text() == "1 of 4 test images misclassified"


def test_preview_of_the_digits_sample(qtbot):
    from nnstudio.resources import resource_path

    preview = ImagePreviewWidget()
    qtbot.addWidget(preview)
    with qtbot.waitSignal(preview.shown):
        preview.show_folder(resource_path("samples", "digits"))
    assert sorted(preview.counts) == [str(k) for k in range(10)] and sum(preview.counts.values()) == 1797
    assert Path(preview.thumbnailList.item(0).data(Qt.ItemDataRole.UserRole)).parent.name == "0"


def test_predict_tab_predicts_a_folder_with_an_image_model(window, qtbot, tmp_path):
    import csv

    import tomli_w

    from nnstudio.core.config import RunConfig
    from nnstudio.core.model.spec import PRESETS
    from nnstudio.core.run import TrainingRun

    root = write_folder(tmp_path / "imgs", classes=("a", "b"), n=5, size=(8, 8))
    (tmp_path / "run.toml").write_text(tomli_w.dumps({
        "data": {"path": str(root), "split": [0.6, 0.2, 0.2]}, "model": {"layers": PRESETS["Small CNN"]},
        "training": {"epochs": 1, "batch_size": 8, "seed": 0, "device": "cpu"},
        "output": {"checkpoint": "model.pt", "logdir": "runs"}}))
    TrainingRun(RunConfig.load(tmp_path / "run.toml"), tensorboard=False).execute()
    assert window.open_checkpoint(tmp_path / "model.pt")
    panel = window.predictPanel
    assert "Image model (8×8, 1 channel(s), classes a, b)" in panel.predictStatus.text()
    with qtbot.waitSignal(panel.predicted):
        panel.predict_path(root)
    assert panel.predictImages.thumbnailList.count() == 10
    assert panel.predictImages.texts()[0].split(" (")[0] in ("a", "b")
    assert "metrics against the class folders: accuracy" in panel.predictMessages.text()
    out = panel.export_csv(tmp_path / "p.csv")
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["file", "prediction", "probability_a", "probability_b"] and len(rows) == 10
    with qtbot.waitSignal(panel.failed):
        panel.predict_path(tmp_path / "nothing_here")


def test_file_open_sample_digits_opens_the_image_preview(window, qtbot):
    action = window.findChild(type(window.samplesMenu.actions()[0]), "sampleAction_digits")
    action.trigger()
    qtbot.waitUntil(lambda: getattr(window, "imagePreview", None) is not None and window.imagePreview.isVisible())
    assert sum(window.imagePreview.counts.values()) == 1797
