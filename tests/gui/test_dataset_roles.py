"""Column roles end to end in the real window: flagged columns start ignored with the reason shown, the
Columns tab changes a role, the input width follows, training leaves the column out of the checkpoint, and a
saved project reopens with the same roles. File → Open sample lists the real datasets."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QComboBox

from nnstudio.core.model.checkpoint import load_checkpoint
from nnstudio.gui.column_roles import ColumnRolesModel
from nnstudio.gui.main_window import MainWindow
from nnstudio.resources import SAMPLES


def make_window(qtbot, tmp_path, name):
    w = MainWindow(settings=QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat),
                   logdir=tmp_path / f"runs-{name}")
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.fixture
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, "main")
    yield w
    w.shutdown()


def write_customers(path, n=150):
    rng = np.random.default_rng(2)
    lines = ["customer_id,country,age,spend,churned"]
    for i in range(n):
        lines.append(f"C{5000 + i},{rng.choice(['NO', 'SE', 'DK'])},{rng.integers(18, 80)},"
                     f"{rng.normal(50, 9):.2f},{rng.choice(['yes', 'no'])}")
    path.write_text("\n".join(lines) + "\n")


def role_combo(panel, name) -> QComboBox:
    model = panel.rolesModel
    row = [model.name(r) for r in range(model.rowCount())].index(name)
    combo = panel.columnsTable.indexWidget(model.index(row, ColumnRolesModel.ROLE_COLUMN))
    assert isinstance(combo, QComboBox)
    return combo


def pick(combo: QComboBox, role: str) -> None:
    """What a user's pick in the combo does: the current item changes, then `activated` fires."""
    i = combo.findData(role)
    combo.setCurrentIndex(i)
    combo.activated.emit(i)


def test_roles_from_load_to_checkpoint_and_project(qtbot, window, tmp_path):
    path = tmp_path / "customers.csv"
    write_customers(path)
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        window.open_path(path)
    panel = window.datasetPanel
    assert panel.role("customer_id") == "ignore" and "identifier" in panel.flag("customer_id")
    model = panel.rolesModel
    row = [model.name(r) for r in range(model.rowCount())].index("customer_id")
    assert "identifier" in model.index(row, 4).data()
    assert "ignored" in panel.model.headerData(0, Qt.Orientation.Horizontal)
    assert "Ignored: customer_id" in panel.summaryLabel.text()
    # country one-hot 3 + age + spend: the true input width, in the status bar and the Model tab
    assert "5 inputs" in window.datasetStatus.text() and window.modelBuilder.model.io()[0] == 5

    panel.dataTabs.setCurrentWidget(panel.columnsTable)
    combo = role_combo(panel, "age")
    with qtbot.waitSignal(panel.choices_changed, timeout=5000):
        pick(combo, "ignore")
    assert panel.role("age") == "ignore" and panel.excluded() == ["customer_id", "age"]
    assert "4 inputs" in window.datasetStatus.text() and window.modelBuilder.model.io()[0] == 4

    window.trainingPanel.epochsSpin.setValue(1)
    with qtbot.waitSignal(window.training_finished, timeout=60000):
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    assert window.save_checkpoint(tmp_path / "model.pt")
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt.preprocessor.feature_names == ["country", "spend"]

    project = tmp_path / "customers.toml"
    assert window.save_project(project)
    assert 'exclude = [' in project.read_text() and '"age"' in project.read_text()
    other = make_window(qtbot, tmp_path, "other")
    try:
        with qtbot.waitSignal(other.datasetPanel.dataset_loaded, timeout=20000):
            other.open_path(project)
        qtbot.waitUntil(lambda: other.datasetPanel.excluded() == ["customer_id", "age"], timeout=5000)
        assert other.datasetPanel.role("age") == "ignore"
        assert role_combo(other.datasetPanel, "age").currentData() == "ignore"
        assert "4 inputs" in other.datasetStatus.text()
    finally:
        other.shutdown()


def test_a_flagged_column_can_be_made_a_feature_and_the_target_by_its_role(qtbot, window, tmp_path):
    path = tmp_path / "customers.csv"
    write_customers(path)
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        window.open_path(path)
    panel = window.datasetPanel
    pick(role_combo(panel, "country"), "target")
    assert panel.target() == "country" and panel.role("churned") == "feature"
    assert panel.targetCombo.currentText() == "country"
    pick(role_combo(panel, "customer_id"), "feature")
    assert panel.excluded() == [] and "customer_id" in panel.features()
    assert role_combo(panel, "churned").currentData() == "feature"


def test_open_sample_lists_the_real_datasets_and_opens_them(qtbot, window):
    actions = [a for a in window.samplesMenu.actions() if not a.isSeparator()]
    assert [a.data() for a in actions] == [name for name, _ in SAMPLES] + ["digits"] == ["penguins.csv", "iris.csv",
                                                                                        "digits"]
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        window.findChild(type(actions[1]), "sampleAction_iris").trigger()
    assert window.datasetPanel.path().endswith("iris.csv") and window.datasetPanel.target() == "species"
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        window.open_sample()  # what the window opens at start
    panel = window.datasetPanel
    assert panel.path().endswith("penguins.csv") and panel.target() == "species"
    assert panel.model.column_infos()[5].missing == 11  # sex: "NA" cells are missing values
    pick(role_combo(panel, "sex"), "target")
    assert panel.task() == "binary"  # male/female with gaps: two classes, not three
    assert "11 rows without a target: dropped before training" in panel.summaryLabel.text()
