"""A CSV that lists image files (paths relative to it) and their labels, opened in the real window: found to be
images, shown as images, trained as images, saved and reopened with `image_column`, exported as a script."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import tomllib
from PIL import Image

from nnstudio.core.export.codegen import export_script
from nnstudio.core.model.checkpoint import load_checkpoint
from tests.core.corehelpers import cli_env
from tests.gui.test_image_window import drop, reopened, small_cnn, train

SPECIES = ("cat", "dog", "fox")


def write_table(root, n=8):
    """`pets.csv` beside a `pics/` folder of 12×10 grey PNGs (flat, not class folders), one row naming a file that
    is not there; columns id, file, size, species (the last is the default label)."""
    rng = np.random.default_rng(0)
    (root / "pics").mkdir(parents=True)
    lines = ["id,file,size,species"]
    for i in range(n * len(SPECIES)):
        k = i % len(SPECIES)
        a = rng.integers(0, 40, (12, 10), dtype=np.uint8)
        a[k::3] = 230
        Image.fromarray(a).save(root / "pics" / f"p{i:02d}.png")
        lines.append(f"{i},pics/p{i:02d}.png,{'big' if i % 2 else 'small'},{SPECIES[k]}")
    lines.append(f"{n * 3},pics/gone.png,big,cat")
    (root / "pets.csv").write_text("\n".join(lines) + "\n")
    return root / "pets.csv"


def test_a_dropped_table_of_image_paths_opens_trains_saves_and_exports_as_images(window, qtbot, tmp_path):
    csv = write_table(tmp_path / "data")
    drop(window, csv)
    dp = window.datasetPanel
    qtbot.waitUntil(lambda: dp.images() is not None, timeout=20000)
    assert dp.dataframe() is None and not dp.dataTabs.isVisible()
    text = dp.summaryLabel.text()
    assert text.startswith("Images: column 'file' lists image files (relative to the table); classes from column "
                           "'species'"), text
    assert "24 images · 3 classes · 12×10 px · 1 channel (grey)" in text and "Classes: cat 8, dog 8, fox 8" in text
    assert "1 file(s) skipped, e.g. pics/gone.png does not exist" in text
    assert dp.pathLabel.text() == "pets.csv"
    preview = window.imagePreview
    assert preview.counts == {"cat": 8, "dog": 8, "fox": 8} and preview.thumbnailList.count() == 24
    assert preview.texts()[:2] == ["cat", "cat"] and window.imagePreviewDock.isVisible()
    assert window.modelBuilder.model.io() == ((1, 12, 10), 3)
    assert "24 images · 1 × 12 × 10 · 3 classes" in window.datasetStatus.text()

    # the label column is the user's to choose: another column gives other classes, and back
    combo = dp.targetCombo
    assert combo.isEnabled() and [combo.itemText(i) for i in range(combo.count())] == ["id", "size", "species"]
    combo.setCurrentIndex(combo.findText("size"))
    qtbot.waitUntil(lambda: dp.images()["label_column"] == "size")
    assert dp.images()["classes"] == {"big": 12, "small": 12} and window.modelBuilder.model.io() == ((1, 12, 10), 2)
    combo.setCurrentIndex(combo.findText("species"))
    qtbot.waitUntil(lambda: window.modelBuilder.model.io() == ((1, 12, 10), 3))

    small_cnn(window)
    train(qtbot, window, epochs=1)
    report = window.last_run.data.report
    assert report["kind"] == "image" and report["rows_used"] == 24 and report["classes"] == list(SPECIES)
    assert window.last_run.model.input_shape == (1, 12, 10)
    panel = window.evaluationPanel
    assert panel.evaluationHeader.text().endswith(f"test {report['n_test']} images") and panel.misclassifiedBox.isVisibleTo(panel)

    # the project keeps the column and the label; another window opens it as the same image dataset
    assert window.save_project(tmp_path / "pets.toml")
    saved = tomllib.loads((tmp_path / "pets.toml").read_text())["data"]
    assert saved["image_column"] == "file" and saved["target"] == "species"
    with reopened(qtbot, tmp_path, tmp_path / "pets.toml") as other:
        images = other.datasetPanel.images()
        assert images is not None and images["image_column"] == "file" and images["label_column"] == "species"
        assert other.modelBuilder.model.io() == ((1, 12, 10), 3) and other.actionTrain.isEnabled()
        assert other.run_config().data.image_column == "file"

    # the code view's script reads the table; the CLI's export of the project is the same script
    window.codeView.raise_()
    code = window.codeViewPanel
    qtbot.waitUntil(lambda: "IMAGE_COLUMN = 'file'" in code.text())
    assert "LABEL_COLUMN = 'species'" in code.text() and "CLASSES = ['cat', 'dog', 'fox']" in code.text()
    export_script(tmp_path / "pets.toml", tmp_path / "cli.py")
    cli, shown = (tmp_path / "cli.py").read_text().splitlines(), code.text().splitlines()
    differ = [i for i, (a, b) in enumerate(zip(cli, shown)) if a != b]
    assert len(cli) == len(shown) and all(cli[i].startswith(("\"\"\"Train a CNN", "CHECKPOINT =")) for i in differ), \
        [cli[i] for i in differ]
    # File > Export script: it trains on the listed files with torch and Pillow; its checkpoint opens in nnstudio
    assert window.codeExport.export_script(tmp_path / "train_pets.py")
    ran = subprocess.run([sys.executable, str(tmp_path / "train_pets.py")], check=False, cwd=tmp_path, env=cli_env(),
                         capture_output=True, text=True, timeout=240)
    assert ran.returncode == 0, ran.stderr
    ckpt = load_checkpoint(tmp_path / "train_pets.pt")
    assert ckpt.model.input_shape == (1, 12, 10) and ckpt.preprocessor.classes == list(SPECIES)


def test_a_table_that_names_no_image_files_stays_a_table(window, qtbot, tmp_path):
    from guiwindow import load

    csv = tmp_path / "names.csv"
    csv.write_text("file,kind\n" + "".join(f"photo{i}.png,{'ab'[i % 2]}\n" for i in range(20)))  # none exist
    load(qtbot, window, csv)
    assert window.datasetPanel.images() is None and window.datasetPanel.dataframe() is not None


def test_restoring_a_run_on_a_table_of_images_opens_the_table_as_images(window, qtbot, tmp_path):
    from guiwindow import load

    drop(window, write_table(tmp_path / "data"))
    qtbot.waitUntil(lambda: window.datasetPanel.images() is not None, timeout=20000)
    window.image_options["image_size"] = [8, 8]  # as a project's [data] image_size sets it
    combo = window.datasetPanel.targetCombo  # the run's classes come from another column than the default
    combo.setCurrentIndex(combo.findText("size"))
    qtbot.waitUntil(lambda: window.datasetPanel.images()["label_column"] == "size")
    assert window.image_options["image_size"] == [8, 8] and window.modelBuilder.model.io() == ((1, 8, 8), 2)
    small_cnn(window)
    train(qtbot, window, epochs=1)
    qtbot.waitUntil(lambda: len(window.runsPanel.model.runs()) == 1)
    (record,) = window.runsPanel.model.runs()
    other = tmp_path / "t.csv"
    other.write_text("x,y\n" + "".join(f"{i % 7},{'ab'[i % 2]}\n" for i in range(40)))
    load(qtbot, window, other)
    assert window.datasetPanel.images() is None
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        assert window.runs.restore_run(record)
    images = window.datasetPanel.images()
    assert images is not None and images["image_column"] == "file" and images["label_column"] == "size"
    assert window.modelBuilder.model.io() == ((1, 8, 8), 2) and window.actionTrain.isEnabled()
    assert window.run_config().data.target == "size" and window.run_config().data.image_size == [8, 8]


def test_read_as_a_table_shows_the_listing_as_a_table_when_the_user_asks(window, qtbot, tmp_path):
    from PySide6.QtCore import Qt

    csv = write_table(tmp_path / "data")
    drop(window, csv)
    dp = window.datasetPanel
    qtbot.waitUntil(lambda: dp.images() is not None, timeout=20000)
    assert dp.readAsTableButton.isVisible()
    with qtbot.waitSignal(dp.dataset_loaded, timeout=20000):
        qtbot.mouseClick(dp.readAsTableButton, Qt.MouseButton.LeftButton)
    assert dp.images() is None and dp.dataframe() is not None and dp.dataframe().columns[1] == "file"
    assert dp.dataTabs.isVisible() and not dp.readAsTableButton.isVisible() and dp.target() == "species"
    assert window.run_config().data.image_column is None
    drop(window, csv)  # opened again on its own: images again
    qtbot.waitUntil(lambda: dp.images() is not None, timeout=20000)
