"""The dataset panel: background loading, the preview model, choices, and the core prepare() behind them."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QProgressBar, QPushButton, QTableView

import nnstudio.gui.dataset_loader as dl
import nnstudio.gui.dataset_panel as dp
import nnstudio.gui.table_model as tm
from nnstudio.core.data import PreparedData, prepare, read_table, validate_split
from nnstudio.core.errors import DataError
from nnstudio.gui.dataset_panel import DataFrameModel, DatasetLoader, DatasetPanel, load_table

SAMPLES = [("flowers_csv", "species", "multiclass"), ("houses_csv", "price", "regression"),
           ("churn_csv", "churned", "binary")]


@pytest.fixture
def panel(qtbot):
    widget = DatasetPanel()
    widget.setObjectName("datasetPanel")
    qtbot.addWidget(widget)
    widget.resize(560, 640)
    yield widget
    widget.shutdown()


def open_and_wait(qtbot, panel, path):
    with qtbot.waitSignal(panel.dataset_loaded, timeout=10000) as blocker:
        panel.open_file(path)
    return blocker


def fail_and_wait(qtbot, panel, path):
    with qtbot.waitSignal(panel.load_failed, timeout=10000) as blocker:
        panel.open_file(path)
    return blocker


@pytest.fixture
def gate(monkeypatch):
    """Hold the loader thread inside load_table until the test opens the gate (no sleeps)."""
    event = threading.Event()
    real = dl.load_table

    def held(path):
        assert event.wait(timeout=30), "test never opened the gate"
        return real(path)

    monkeypatch.setattr(dl, "load_table", held)
    yield event
    event.set()


# ---------------------------------------------------------------------------------------------- loading

def test_load_table_is_a_plain_function(flowers_csv, tmp_path):
    assert load_table(flowers_csv).shape == read_table(flowers_csv).shape
    with pytest.raises(DataError, match="nothing.csv"):
        load_table(tmp_path / "nothing.csv")


@pytest.mark.parametrize("fixture, target, task", SAMPLES)
def test_open_sample(qtbot, panel, request, fixture, target, task):
    path = request.getfixturevalue(fixture)
    blocker = open_and_wait(qtbot, panel, path)
    expected = read_table(path)
    assert blocker.args == [str(path)]
    assert panel.path() == str(path)
    assert panel.pathLabel.text() == path.name
    assert panel.dataframe().shape == expected.shape
    assert panel.datasetTable.model().rowCount() == len(expected)
    assert panel.datasetTable.model().columnCount() == expected.shape[1]
    assert panel.targetCombo.currentText() == target == panel.target()
    assert [panel.targetCombo.itemText(i) for i in range(panel.targetCombo.count())] == list(expected.columns)
    assert panel.taskCombo.currentText() == f"auto ({task})"
    assert panel.task_choice() == "auto"
    assert panel.task() == task
    assert f"{len(expected):,} rows" in panel.summaryLabel.text()
    assert f"{expected.shape[1] - 1} features" in panel.summaryLabel.text()
    assert panel.errorLabel.isHidden()
    assert panel.targetCombo.isEnabled()


def test_summary_shows_classes_and_missing(qtbot, panel, flowers_csv):
    open_and_wait(qtbot, panel, flowers_csv)
    df = panel.dataframe()
    text = panel.summaryLabel.text()
    for name, count in df["species"].value_counts().iter_rows():
        assert f"{name} {count:,}" in text
    assert "3 classes" in text
    for name, count in df.null_count().row(0, named=True).items():
        if count:
            assert f"{name} {count}" in text


@pytest.mark.parametrize("name, content", [
    ("bad.csv", bytes(range(256)) * 8),
    ("table.xyz", b"a,b\n1,2\n"),
    ("missing.csv", None),
    ("one_column.csv", b"just\n1\n2\n"),
])
def test_bad_file_keeps_previous_dataset(qtbot, panel, flowers_csv, tmp_path, name, content):
    open_and_wait(qtbot, panel, flowers_csv)
    panel.set_choices(target="colour")
    before_df, before_model_df = panel.dataframe(), panel.model.dataframe()
    before_rows = panel.datasetTable.model().rowCount()
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    loaded = []
    panel.dataset_loaded.connect(loaded.append)

    blocker = fail_and_wait(qtbot, panel, bad)

    path, message = blocker.args
    assert path == str(bad)
    assert name in message
    assert not loaded
    assert panel.dataframe() is before_df
    assert panel.model.dataframe() is before_model_df
    assert panel.datasetTable.model().rowCount() == before_rows
    assert panel.target() == "colour"
    assert panel.path() == str(flowers_csv)
    assert panel.pathLabel.text() == "flowers.csv"
    assert panel.errorLabel.isVisibleTo(panel)
    assert name in panel.errorLabel.text()
    assert "flowers.csv stays loaded" in panel.errorLabel.text()
    assert not panel.is_busy()

    open_and_wait(qtbot, panel, flowers_csv)
    assert panel.errorLabel.isHidden()


def test_bad_file_with_nothing_loaded(qtbot, panel, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\xff" * 100)
    fail_and_wait(qtbot, panel, bad)
    assert panel.dataframe() is None
    assert panel.target() is None
    assert panel.task() is None
    assert "bad.csv" in panel.errorLabel.text()
    assert not panel.targetCombo.isEnabled()
    assert panel.summaryLabel.text() == dp.EMPTY_HINT
    with pytest.raises(DataError, match="no dataset"):
        panel.prepare()


def test_loading_indicator_while_busy(qtbot, panel, flowers_csv, gate):
    panel.show()
    qtbot.waitExposed(panel)
    busy = []
    panel.busy_changed.connect(busy.append)
    panel.open_file(flowers_csv)
    qtbot.waitUntil(lambda: panel.loadingBar.isVisible())
    assert panel.is_busy()
    assert panel.statusLabel.isVisible() and "flowers.csv" in panel.statusLabel.text()
    assert panel.loadingBar.minimum() == panel.loadingBar.maximum() == 0  # indeterminate
    assert busy == [True]

    with qtbot.waitSignal(panel.dataset_loaded, timeout=10000):
        gate.set()
    assert not panel.loadingBar.isVisible()
    assert not panel.statusLabel.isVisible()
    assert not panel.is_busy()
    assert busy == [True, False]


def test_latest_request_wins(qtbot, panel, flowers_csv, houses_csv, monkeypatch):
    held = threading.Event()
    real = dl.load_table

    def slow_for_flowers(path):
        if str(path) == str(flowers_csv):
            assert held.wait(timeout=30)
        return real(path)

    monkeypatch.setattr(dl, "load_table", slow_for_flowers)
    loaded = []
    panel.dataset_loaded.connect(loaded.append)
    panel.open_file(flowers_csv)
    with qtbot.waitSignal(panel.dataset_loaded, timeout=10000):
        panel.open_file(houses_csv)
    assert loaded == [str(houses_csv)]
    assert not panel.is_busy()
    held.set()
    qtbot.waitUntil(lambda: not dl._RUNNING, timeout=10000)
    qtbot.wait(0)
    assert loaded == [str(houses_csv)]
    assert panel.target() == "price"


def test_shutdown_waits_and_drops_result(qtbot, panel, flowers_csv, gate):
    loaded = []
    panel.dataset_loaded.connect(loaded.append)
    panel.open_file(flowers_csv)
    assert panel.is_busy()
    gate.set()
    with qtbot.waitSignal(panel.busy_changed, timeout=10000) as blocker:
        panel.shutdown()
    assert blocker.args == [False]
    assert not dl._RUNNING
    qtbot.wait(0)
    assert not loaded
    assert panel.dataframe() is None


def test_loader_on_its_own(qtbot, churn_csv, tmp_path):
    loader = DatasetLoader()
    with qtbot.waitSignal(loader.loaded, timeout=10000) as blocker:
        loader.load(churn_csv)
    path, frame, facts = blocker.args
    assert path == str(churn_csv) and isinstance(frame, pl.DataFrame) and len(frame) == 1000
    assert facts == dp.describe_table(frame)
    assert [c.name for c in facts.columns] == list(frame.columns)
    assert facts.summary["target"] == "churned" and facts.summary["task"] == "binary"
    with qtbot.waitSignal(loader.failed, timeout=10000) as blocker:
        loader.load(tmp_path / "absent.tsv")
    assert "absent.tsv" in blocker.args[1]
    assert not loader.is_busy()


def test_open_button_uses_file_dialog(qtbot, panel, houses_csv, monkeypatch):
    monkeypatch.setattr(dp.QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(houses_csv), "")))
    with qtbot.waitSignal(panel.dataset_loaded, timeout=10000):
        qtbot.mouseClick(panel.openButton, Qt.MouseButton.LeftButton)
    assert panel.target() == "price"
    monkeypatch.setattr(dp.QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    qtbot.mouseClick(panel.openButton, Qt.MouseButton.LeftButton)
    assert not panel.is_busy()


# ---------------------------------------------------------------------------------------------- widgets

def test_children_named_as_attributes(panel):
    expected = {"openButton": QPushButton, "pathLabel": QLabel, "datasetTable": QTableView,
                "targetCombo": QComboBox, "taskCombo": QComboBox, "trainSplitSpin": QDoubleSpinBox,
                "valSplitSpin": QDoubleSpinBox, "testSplitSpin": QDoubleSpinBox, "missingCombo": QComboBox,
                "summaryLabel": QLabel, "loadingBar": QProgressBar, "errorLabel": QLabel, "statusLabel": QLabel}
    for name, cls in expected.items():
        found = panel.findChild(cls, name)
        assert found is not None and found is getattr(panel, name), name
    assert isinstance(panel.datasetTable.model(), DataFrameModel)
    assert [panel.taskCombo.itemData(i) for i in range(panel.taskCombo.count())] == \
        ["auto", "regression", "binary", "multiclass"]
    assert panel.missing() == "impute"
    assert [panel.missingCombo.itemData(i) for i in range(panel.missingCombo.count())] == ["impute", "drop"]


def test_target_change_reresolves_task(qtbot, panel, flowers_csv):
    open_and_wait(qtbot, panel, flowers_csv)
    model = panel.model
    with qtbot.waitSignal(panel.choices_changed):
        panel.targetCombo.setCurrentText("sepal_length")
    assert panel.target() == "sepal_length"
    assert panel.task() == "regression"
    assert panel.taskCombo.currentText() == "auto (regression)"
    assert "target sepal_length (regression)" in panel.summaryLabel.text()
    assert model.target() == "sepal_length"
    assert model.data(model.index(0, 0), Qt.ItemDataRole.BackgroundRole) is not None
    assert model.data(model.index(0, 5), Qt.ItemDataRole.BackgroundRole) is None


def test_task_override_and_invalid_choice(qtbot, panel, flowers_csv):
    open_and_wait(qtbot, panel, flowers_csv)
    with qtbot.waitSignal(panel.choices_changed):
        panel.taskCombo.setCurrentIndex(panel.taskCombo.findData("regression"))
    assert panel.task_choice() == "regression"
    assert panel.errorLabel.isVisibleTo(panel)
    assert panel.errorLabel.text().startswith("Target 'species' is not numeric")
    with pytest.raises(DataError, match="species"):
        panel.task()
    with pytest.raises(DataError):
        panel.prepare()
    panel.taskCombo.setCurrentIndex(panel.taskCombo.findData("multiclass"))
    assert panel.task() == "multiclass"
    assert panel.errorLabel.isHidden()


def test_split_spins_stay_valid(qtbot, panel, flowers_csv):
    open_and_wait(qtbot, panel, flowers_csv)
    train, val, test = panel.trainSplitSpin, panel.valSplitSpin, panel.testSplitSpin
    assert panel.split() == pytest.approx((0.7, 0.15, 0.15))

    def check():
        fractions = panel.split()
        validate_split(fractions)
        assert train.value() + val.value() + test.value() == pytest.approx(100.0)
        assert min(train.value(), val.value(), test.value()) >= 0
        return fractions

    with qtbot.waitSignal(panel.choices_changed):
        train.setValue(80)
    assert check() == pytest.approx((0.8, 0.15, 0.05))
    train.setValue(95)
    assert check() == pytest.approx((0.95, 0.05, 0.0))
    test.setValue(20)  # train keeps its share: test can only take what validation gives up
    assert check() == pytest.approx((0.95, 0.0, 0.05))
    assert test.value() == 5.0
    train.setValue(70)
    assert check() == pytest.approx((0.7, 0.0, 0.3))
    test.setValue(10)
    assert check() == pytest.approx((0.7, 0.2, 0.1))
    val.setValue(50)
    assert check() == pytest.approx((0.7, 0.3, 0.0))
    train.setValue(100)
    assert check() == pytest.approx((1.0, 0.0, 0.0))
    train.setValue(0)  # clamped to the minimum: training needs rows
    assert check()[0] > 0

    panel.set_choices(split=(0.6, 0.2, 0.2))
    assert (train.value(), val.value(), test.value()) == (60.0, 20.0, 20.0)
    assert check() == pytest.approx((0.6, 0.2, 0.2))
    with pytest.raises(DataError, match="add up to 1"):
        panel.set_choices(split=(0.5, 0.6, 0.0))
    assert check() == pytest.approx((0.6, 0.2, 0.2))


def test_set_choices(qtbot, panel, churn_csv):
    open_and_wait(qtbot, panel, churn_csv)
    with qtbot.waitSignal(panel.choices_changed):
        panel.set_choices(target="plan", task="multiclass", split=(0.8, 0.1, 0.1), missing="drop")
    assert (panel.target(), panel.task_choice(), panel.task(), panel.missing()) == \
        ("plan", "multiclass", "multiclass", "drop")
    assert panel.split() == pytest.approx((0.8, 0.1, 0.1))
    assert panel.model.target() == "plan"

    for bad in (dict(target="nope"), dict(task="clustering"), dict(missing="zero"),
                dict(target="plan", task="regression"), dict(split=(0.0, 0.5, 0.5))):
        with pytest.raises(DataError):
            panel.set_choices(**bad)
        assert (panel.target(), panel.task_choice(), panel.missing()) == ("plan", "multiclass", "drop")
        assert panel.split() == pytest.approx((0.8, 0.1, 0.1))


def test_new_dataset_resets_target_and_task_keeps_split(qtbot, panel, churn_csv, flowers_csv):
    open_and_wait(qtbot, panel, churn_csv)
    panel.set_choices(target="plan", task="multiclass", split=(0.6, 0.2, 0.2), missing="drop")
    open_and_wait(qtbot, panel, flowers_csv)
    assert panel.target() == "species"
    assert panel.task_choice() == "auto"
    assert panel.split() == pytest.approx((0.6, 0.2, 0.2))
    assert panel.missing() == "drop"


@pytest.mark.parametrize("choices", [
    {},
    dict(target="colour", task="multiclass", split=(0.6, 0.2, 0.2), missing="drop"),
    dict(target="petal_width", split=(0.8, 0.2, 0.0)),
])
def test_prepare_matches_core(qtbot, panel, flowers_csv, choices):
    open_and_wait(qtbot, panel, flowers_csv)
    if choices:
        panel.set_choices(**choices)
    got = panel.prepare(seed=3)
    want = prepare(read_table(flowers_csv), choices.get("target", "species"), choices.get("task", "auto"),
                   choices.get("split", (0.7, 0.15, 0.15)), seed=3, missing=choices.get("missing", "impute"))
    assert isinstance(got, PreparedData)
    assert got.task == want.task == panel.task()
    assert (got.n_features, got.n_outputs) == (want.n_features, want.n_outputs)
    assert got.report == want.report
    assert got.preprocessor.to_dict() == want.preprocessor.to_dict()
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(got, part).X, getattr(want, part).X)
        assert torch.equal(getattr(got, part).y, getattr(want, part).y)


def test_set_dataframe_sync(qtbot, panel):
    df = pl.DataFrame({"0": [1.0, 2.0, 3.0, 4.0], "label": ["a", "b", "a", "b"]})
    with qtbot.waitSignal(panel.dataset_loaded) as blocker:
        panel.set_dataframe(df)
    assert blocker.args == [""]
    assert panel.dataframe() is df
    assert panel.target() == "label" and panel.task() == "binary"
    assert panel.pathLabel.text() == "(unsaved table)"
    same = pl.DataFrame({"x": [1, 2, 3], "y": [0.5, 1.5, 2.5]})
    panel.set_dataframe(same, "mem.csv")
    assert panel.dataframe() is same and panel.path() == "mem.csv"
    for bad in (pl.DataFrame({"x": [1, 2]}), pl.DataFrame({"x": [], "y": []}), [[1, 2], [3, 4]], {"x": [1], "y": [1, 2]},
                pd.DataFrame([[1, 2]], columns=["a", "a"]), pd.DataFrame({"x": [1, 2]})):
        with pytest.raises(DataError):
            panel.set_dataframe(bad)
        assert panel.dataframe() is same


def test_set_dataframe_turns_a_pandas_frame_into_polars(qtbot, panel):
    """A pandas frame (from user code) is shown as the polars table: names as text, NaN and None missing."""
    df = pd.DataFrame({0: [1.0, np.nan, 3.0, 4.0], "city": ["a", None, "b", "a"], "label": ["y", "n", "y", "n"]})
    panel.set_dataframe(df)
    table = panel.dataframe()
    assert isinstance(table, pl.DataFrame) and table.columns == ["0", "city", "label"]
    assert table.null_count().row(0) == (1, 1, 0)
    model = panel.model
    assert [model.data(model.index(r, 0)) for r in range(4)] == ["1", "—", "3", "4"]
    assert [model.data(model.index(r, 1)) for r in range(4)] == ["a", "—", "b", "a"]
    assert panel.target() == "label" and panel.task() == "binary"


def test_layout_fits_narrow_area(qtbot, panel, flowers_csv, tmp_path):
    open_and_wait(qtbot, panel, flowers_csv)
    assert panel.minimumSizeHint().width() <= 400
    panel.resize(400, 600)
    panel.show()
    qtbot.waitExposed(panel)
    image = panel.grab()
    assert not image.isNull() and image.width() == 400
    assert image.save(str(tmp_path / "dataset_panel.png"))
    table = panel.datasetTable
    assert table.height() > panel.summaryLabel.height()  # the table takes the room


# ---------------------------------------------------------------------------------------------- model

def mixed_frame() -> pl.DataFrame:
    return pl.DataFrame({
        "price": [1.5, None, 3.25, 1e6],
        "rooms": [1, 2, 3, 4],
        "district": ["a", None, "b", "a"],
        "garden": [True, False, True, True],
    })


def test_model_with_qtmodeltester(qtmodeltester):
    model = DataFrameModel(mixed_frame())
    model.set_target("price")
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(DataFrameModel(), force_py=True)
    model.set_dataframe(pl.DataFrame({"a": range(5), "b": list("vwxyz")}), "b")
    qtmodeltester.check(model, force_py=True)


def test_model_formatting():
    model = DataFrameModel(mixed_frame())
    model.set_target("district")
    display, fg = Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole
    assert model.data(model.index(0, 0)) == "1.5"
    assert model.data(model.index(1, 0)) == "—"
    assert model.data(model.index(1, 0), fg) is not None
    assert model.data(model.index(0, 0), fg) is None
    assert model.data(model.index(3, 0)) == "1000000"
    assert model.data(model.index(1, 2)) == "—"
    assert model.data(model.index(0, 3)) == "True"
    assert model.data(model.index(2, 1)) == "3"
    align = Qt.ItemDataRole.TextAlignmentRole
    assert model.data(model.index(0, 0), align) & int(Qt.AlignmentFlag.AlignRight)
    assert not model.data(model.index(0, 2), align) & int(Qt.AlignmentFlag.AlignRight)
    assert model.headerData(0, Qt.Orientation.Horizontal, display) == "price\nnumeric"
    assert model.headerData(2, Qt.Orientation.Horizontal, display) == "district\ncategorical"
    assert model.headerData(3, Qt.Orientation.Horizontal, display) == "garden\nboolean"
    tip = model.headerData(0, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert "missing values: 1" in tip and "unique values: 3" in tip
    assert model.headerData(2, Qt.Orientation.Horizontal, Qt.ItemDataRole.FontRole).bold()
    assert model.headerData(0, Qt.Orientation.Horizontal, Qt.ItemDataRole.FontRole) is None
    assert model.data(model.index(0, 2), Qt.ItemDataRole.BackgroundRole) is not None
    assert model.headerData(0, Qt.Orientation.Vertical, display) == "1"
    assert model.rowCount(model.index(0, 0)) == 0 and model.columnCount(model.index(0, 0)) == 0


def test_model_shows_each_polars_kind_and_its_missing_cells():
    import datetime

    frame = pl.DataFrame([
        pl.Series("f32", [0.1, None, float("nan"), 123456789.0], dtype=pl.Float32),
        pl.Series("f64", [0.1, 1 / 3, float("inf"), None], dtype=pl.Float64),
        pl.Series("n", [7, None, -2, 10**12], dtype=pl.Int64),
        pl.Series("cat", ["x", None, "y", "x"], dtype=pl.Categorical),
        pl.Series("flag", [True, None, False, True], dtype=pl.Boolean),
        pl.Series("day", [datetime.date(2024, 2, 29), None, datetime.date(2000, 1, 1), None], dtype=pl.Date),
    ])
    model = DataFrameModel(frame)
    shown = [[model.data(model.index(r, c)) for c in range(frame.width)] for r in range(frame.height)]
    assert shown == [["0.1", "0.1", "7", "x", "True", "2024-02-29"],
                     ["—", "0.3333333333", "—", "—", "—", "—"],
                     ["—", "inf", "-2", "y", "False", "2000-01-01"],
                     ["1.234568e+08", "—", "1000000000000", "x", "True", "—"]]
    fg, tip, align = Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.TextAlignmentRole
    for r in range(frame.height):
        for c in range(frame.width):
            missing = shown[r][c] == "—"
            assert (model.data(model.index(r, c), fg) is not None) == missing  # NaN in a float: missing too
            assert (model.data(model.index(r, c), tip) == "missing value") == missing
    right = [bool(model.data(model.index(0, c), align) & int(Qt.AlignmentFlag.AlignRight)) for c in range(frame.width)]
    assert right == [True, True, True, False, False, False]


def test_preview_of_a_csv_with_empty_cells(qtbot, panel, tmp_path):
    path = tmp_path / "blanks.csv"
    path.write_text("size,city,price\n1.5,,10\n,Oslo,\n2.25,Bergen,30\n", encoding="utf-8")
    open_and_wait(qtbot, panel, path)
    model = panel.model
    assert isinstance(model.dataframe(), pl.DataFrame)
    shown = [[model.data(model.index(r, c)) for c in range(3)] for r in range(3)]
    assert shown == [["1.5", "—", "10"], ["—", "Oslo", "—"], ["2.25", "Bergen", "30"]]
    assert [model.column_info(c).missing for c in range(3)] == [1, 1, 1]


class CountingModel(DataFrameModel):
    def __init__(self, *args, **kwargs):
        self.rows_asked: list[int] = []
        super().__init__(*args, **kwargs)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        self.rows_asked.append(index.row())
        return super().data(index, role)


def big_frame(n=1_000_000) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 9, n), "c": rng.normal(size=n),
                         "y": rng.normal(size=n)})


@pytest.mark.parametrize("described", [True, False], ids=["facts-given", "facts-lazy"])
def test_million_rows_formats_only_visible_cells(qtbot, described):
    frame = big_frame()
    columns = dp.describe_table(frame).columns if described else None  # the loader thread's work
    start = time.perf_counter()
    model = CountingModel(frame, columns=columns)
    view = QTableView()
    view.setModel(model)
    elapsed = time.perf_counter() - start
    qtbot.addWidget(view)
    assert model.rows_asked == []  # constructing costs nothing per row
    if described:
        assert elapsed < 0.5  # measured ~1 ms; generous for a loaded machine
    assert model.rowCount() == 1_000_000

    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: len(model.rows_asked) > 0)
    visible = view.viewport().height() // view.verticalHeader().defaultSectionSize() + 2
    assert max(model.rows_asked) <= visible
    assert len(set(model.rows_asked)) <= visible + 1

    model.rows_asked.clear()
    view.scrollToBottom()
    qtbot.waitUntil(lambda: len(model.rows_asked) > 0)
    assert min(model.rows_asked) >= 1_000_000 - visible - 1
    assert len(set(model.rows_asked)) <= visible + 1


def test_panel_with_million_rows_stays_lazy(qtbot, panel, monkeypatch):
    asked: list[int] = []
    original = DataFrameModel.data

    def counting(self, index, role=Qt.ItemDataRole.DisplayRole):
        asked.append(index.row())
        return original(self, index, role)

    frame = big_frame()
    facts = dp.describe_table(frame)  # done in the loader thread when a file is opened
    scans = []
    for module in (dp, tm, dl):  # the panel, its table model and its loader: none may scan the table again
        for name in ("describe_columns", "summarize", "resolve_task"):
            real = getattr(module, name, None)
            if real is not None:
                monkeypatch.setattr(module, name,
                                    lambda *a, _real=real, _name=name, **k: (scans.append(_name), _real(*a, **k))[1])
    monkeypatch.setattr(DataFrameModel, "data", counting)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_dataframe(frame, "big.csv", facts=facts)
    qtbot.waitUntil(lambda: len(asked) > 0)
    assert scans == []  # nothing on the GUI thread scans the million rows
    panel.datasetTable.viewport().repaint()
    assert max(asked) < 200
    assert len(set(asked)) < 200
    assert panel.task() == "regression"
    assert "1,000,000 rows" in panel.summaryLabel.text()


def test_model_index_out_of_range_is_harmless():
    model = DataFrameModel(mixed_frame())
    assert model.data(QModelIndex()) is None
    assert model.headerData(99, Qt.Orientation.Horizontal) is None
    assert model.headerData(99, Qt.Orientation.Vertical) is None


def test_set_dataframe_overrides_pending_load(qtbot, panel, flowers_csv, gate):
    loaded = []
    panel.dataset_loaded.connect(loaded.append)
    panel.open_file(flowers_csv)
    with qtbot.waitSignal(panel.busy_changed) as blocker:
        panel.set_dataframe(mixed_frame(), "mem.csv")
    assert blocker.args == [False]
    assert loaded == ["mem.csv"] and not panel.loadingBar.isVisibleTo(panel)
    gate.set()
    qtbot.waitUntil(lambda: all(job.thread.isFinished() for job in list(dl._RUNNING.values())), timeout=10000)
    qtbot.wait(0)
    assert loaded == ["mem.csv"] and panel.path() == "mem.csv"


def test_long_path_is_elided_not_widening(qtbot, panel, flowers_csv, tmp_path):
    long = tmp_path / ("a_really_long_file_name_" * 6 + ".csv")
    long.write_bytes(flowers_csv.read_bytes())
    open_and_wait(qtbot, panel, long)
    assert panel.pathLabel.text() == long.name and panel.pathLabel.toolTip() == str(long)
    assert panel.minimumSizeHint().width() <= 400
