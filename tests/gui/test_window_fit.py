"""The window fits common screens: sized to the available geometry, Train visible, plots usable, docks scroll."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, QSettings, QSize, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QProgressBar,
    QScrollArea,
    QWidget,
)

from nnstudio.gui import dock_layout
from nnstudio.gui.dock_layout import (
    MIN_PLOT_WIDTH,
    DockScrollArea,
    first_size,
    side_widths,
)
from nnstudio.gui.main_window import MainWindow


def _window(qtbot, tmp_path, monkeypatch, width: int, height: int, settings: QSettings | None = None) -> MainWindow:
    monkeypatch.setattr(dock_layout, "available_geometry", lambda window: QRect(0, 0, width, height))
    settings = settings or QSettings(str(tmp_path / f"fit-{width}.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, logdir=tmp_path / "runs")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()  # the layout requests posted by showing it
    return window


def _reopened_at_1024(qtbot, tmp_path, monkeypatch) -> MainWindow:
    """A window whose wide docks were saved at 1366x768, opened again on a 1024x768 screen."""
    from PySide6.QtCore import Qt

    settings = QSettings(str(tmp_path / "moved.ini"), QSettings.Format.IniFormat)
    wide = _window(qtbot, tmp_path, monkeypatch, 1366, 768, settings)
    wide.resizeDocks([wide.datasetDock, wide.trainingDock], [520, 420], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: wide.datasetDock.width() >= 480)
    wide.close()  # saves geometry and dock state
    wide.shutdown()
    return _window(qtbot, tmp_path, monkeypatch, 1024, 768, settings)


def _inside(widget: QWidget, window: QWidget) -> bool:
    top_left = widget.mapTo(window, widget.rect().topLeft())
    return window.rect().contains(QRect(top_left, widget.size()))


def _controls(panel: QWidget) -> list[QWidget]:
    kinds = (QAbstractButton, QAbstractSpinBox, QComboBox, QProgressBar)
    return [w for w in panel.findChildren(QWidget) if isinstance(w, kinds) and w.isVisibleTo(panel)
            and not isinstance(w.parent(), QScrollArea)]


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1280, 720)])
def test_every_training_control_is_on_screen_without_scrolling(qtbot, tmp_path, monkeypatch, width, height):
    window = _window(qtbot, tmp_path, monkeypatch, width, height)
    try:
        frame = window.frameGeometry()
        assert frame.width() <= width and frame.height() <= height
        assert window.size() == first_size(QSize(width, height))
        panel = window.trainingPanel
        controls = _controls(panel)
        assert panel.trainButton in controls and len(controls) >= 12
        viewport = panel._scroll.viewport()
        for control in controls:
            assert _inside(control, window), control.objectName()
            if viewport.isAncestorOf(control):
                top_left = control.mapTo(viewport, control.rect().topLeft())
                assert viewport.rect().contains(QRect(top_left, control.size())), control.objectName()
        assert not panel.trainButton.visibleRegion().isEmpty()
        # nothing hidden below the settings once the layout has settled in the event loop
        qtbot.waitUntil(lambda: panel._scroll.verticalScrollBar().maximum() == 0, timeout=2000)
        dock_scroll = window.trainingDock.widget()
        assert isinstance(dock_scroll, DockScrollArea)
        assert dock_scroll.verticalScrollBar().maximum() == 0 and dock_scroll.horizontalScrollBar().maximum() == 0
        assert window.centralWidget().width() >= MIN_PLOT_WIDTH
    finally:
        window.shutdown()


def test_plots_keep_their_width_at_1024_and_docks_scroll_instead_of_clipping(qtbot, tmp_path, monkeypatch):
    window = _window(qtbot, tmp_path, monkeypatch, 1024, 768)
    try:
        assert window.width() <= 1024
        assert window.lossPlot.width() >= MIN_PLOT_WIDTH and window.metricsPlot.width() >= MIN_PLOT_WIDTH
        assert not window.trainingPanel.trainButton.visibleRegion().isEmpty()
        window.resizeDocks([window.datasetDock, window.trainingDock], [120, 120],
                           dock_layout.Qt.Orientation.Horizontal)
        qtbot.waitUntil(lambda: window.trainingDock.width() < window.trainingPanel.minimumSizeHint().width())
        for dock in (window.datasetDock, window.trainingDock):
            scroll = dock.widget()
            panel = scroll.widget()
            assert panel.width() >= panel.minimumSizeHint().width(), dock.objectName()  # never squeezed
            assert scroll.horizontalScrollBar().maximum() > 0, dock.objectName()  # reachable by scrolling
        # The window itself shrinks no further than the plots' minimum and the docks' scrolling minimum.
        window.resize(700, 600)
        qtbot.waitUntil(lambda: window.centralWidget().width() >= MIN_PLOT_WIDTH and window.width() <= 720)
    finally:
        window.shutdown()


def test_narrow_plots_put_their_legend_below(qtbot, tmp_path, monkeypatch):
    window = _window(qtbot, tmp_path, monkeypatch, 1024, 768)
    try:
        qtbot.waitUntil(lambda: window.lossPlot._plot is not None)
        assert window.lossPlot._plot.legend_is_below()
        window.resize(1440, 860)
        window.resizeDocks([window.datasetDock, window.trainingDock], [300, 330],
                           dock_layout.Qt.Orientation.Horizontal)
        qtbot.waitUntil(lambda: not window.lossPlot._plot.legend_is_below())
    finally:
        window.shutdown()


def test_large_screens_get_the_preferred_size(qtbot, tmp_path, monkeypatch):
    window = _window(qtbot, tmp_path, monkeypatch, 1920, 1080)
    try:
        assert window.size() == dock_layout.PREFERRED_SIZE
        assert window.datasetDock.width() >= 400 and window.trainingDock.width() >= 300
    finally:
        window.shutdown()


def test_geometry_saved_on_a_larger_screen_is_fitted_to_this_one(qtbot, tmp_path, monkeypatch):
    settings = QSettings(str(tmp_path / "moved.ini"), QSettings.Format.IniFormat)
    big = _window(qtbot, tmp_path, monkeypatch, 1920, 1080, settings)
    big.resize(1800, 1000)
    big.close()  # saves the geometry
    big.shutdown()
    small = _window(qtbot, tmp_path, monkeypatch, 1366, 768, settings)
    try:
        assert small.size() == first_size(QSize(1366, 768))
    finally:
        small.shutdown()


@pytest.mark.parametrize("width", [800, 1024, 1280, 1366, 1920])
def test_side_widths_leave_the_plots_their_minimum(width):
    left, right = side_widths(width, 470, 340)
    assert width - left - right >= MIN_PLOT_WIDTH
    assert right == 340 or width < 1000


def test_title_names_the_dataset_then_the_project(qtbot, tmp_path, monkeypatch, houses_csv):
    window = _window(qtbot, tmp_path, monkeypatch, 1366, 768)
    try:
        assert window.windowTitle() == "nnstudio"
        with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
            window.open_path(houses_csv)
        assert window.windowTitle() == "houses.csv — nnstudio"
        project = tmp_path / "prices.toml"
        assert window.save_project(project)
        assert window.windowTitle() == "prices.toml — nnstudio"
        with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
            window.open_path(project)
        assert window.windowTitle() == "prices.toml — nnstudio"
    finally:
        window.shutdown()


def _digit_folder(root, n: int = 8):
    """Ten classes of 8×8 grey PNGs written with Pillow (the layout of the digits sample)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(10):
        (root / str(k)).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 60, (8, 8), dtype=np.uint8)
            a[:, k % 8] = 250
            Image.fromarray(a).save(root / str(k) / f"{k}_{i}.png")
    return root


def _per_row(listview) -> int:
    """How many thumbnails the first row of a grid shows (items laid out with the first one's top)."""
    top = listview.visualItemRect(listview.item(0)).top()
    return sum(1 for i in range(listview.count()) if listview.visualItemRect(listview.item(i)).top() == top)


def test_the_images_dock_shows_four_thumbnails_a_row_at_1366_and_reflows(qtbot, tmp_path, monkeypatch):
    folder = _digit_folder(tmp_path / "digits")
    window = _window(qtbot, tmp_path, monkeypatch, 1366, 768)
    try:
        assert window.open_image_folder(folder)
        grid = window.imagePreview.thumbnailList
        qtbot.waitUntil(lambda: grid.count() == 80 and grid.viewport().width() > 0)
        QApplication.processEvents()
        assert _per_row(grid) >= 4, (window.imagePreviewDock.width(), grid.gridSize())
        # each cell holds its thumbnail whole, and the caption (the class) under it
        rect = grid.visualItemRect(grid.item(0))
        assert rect.width() >= grid.iconSize().width() and rect.height() > grid.iconSize().height()
        dock_scroll = window.imagePreviewDock.widget()  # the list scrolls, not the dock around it
        assert isinstance(dock_scroll, DockScrollArea) and dock_scroll.verticalScrollBar().maximum() == 0
        assert grid.verticalScrollBar().maximum() > 0
        before = _per_row(grid)
        window.resizeDocks([window.imagePreviewDock], [window.imagePreviewDock.width() + 160],
                           Qt.Orientation.Horizontal)
        qtbot.waitUntil(lambda: _per_row(grid) > before, timeout=3000)  # a wider dock: more a row, not wider gaps
    finally:
        window.shutdown()


def _table_csv(path, n: int = 90, classes: int = 3):
    """A table written as CSV: two numeric features, one with empty cells, and a target of `classes` classes
    (0: a number, for regression)."""
    import numpy as np

    rng = np.random.default_rng(1)
    lines = ["width,height,kind"]
    for i in range(n):
        k = i % max(classes, 3)
        h = "" if i % 17 == 0 else f"{k * 2 + rng.normal(0, 0.3):.3f}"
        target = f"{k * 1.5 + rng.normal(0, 0.2):.3f}" if classes == 0 else "abc"[k % classes]
        lines.append(f"{k + rng.normal(0, 0.3):.3f},{h},{target}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _show_evaluation(qtbot, window, table=None) -> None:
    from tests.gui.test_image_window import train

    train(qtbot, window, epochs=1)
    tabs = window.centralTabs
    tabs.setCurrentIndex([tabs.tabText(i) for i in range(tabs.count())].index("Evaluation"))
    panel = window.evaluationPanel
    table = table or panel.perClassModel
    qtbot.waitUntil(lambda: table.rowCount() > 0 and panel._scroll.widget().width() > 0)
    for _ in range(3):  # the layout requests that showing the results posted
        QApplication.processEvents()


@pytest.mark.parametrize("width", [1366, 1024])
def test_the_evaluation_tab_never_scrolls_sideways(qtbot, tmp_path, monkeypatch, width):
    from tests.gui.test_image_window import small_cnn

    window = _window(qtbot, tmp_path, monkeypatch, width, 768)
    panel = window.evaluationPanel
    try:
        assert window.open_image_folder(_digit_folder(tmp_path / "digits", n=12))
        small_cnn(window)
        _show_evaluation(qtbot, window)
        assert panel.perClassModel.rowCount() == 10 and panel.misclassifiedBox.isVisible()
        bar = panel._scroll.horizontalScrollBar()
        assert bar.maximum() == 0 and not bar.isVisible(), (width, bar.maximum())
        table = panel.perClassTable  # every column whole, inside the tab
        assert table.horizontalHeader().length() <= table.viewport().width()
        assert panel.perClassTable.mapTo(panel, table.rect().topRight()).x() <= panel.width()

        # tables: multiclass, binary (ROC and precision-recall curves) and regression (scatter, residuals)
        for classes, task in ((3, "multiclass"), (2, "binary"), (0, "regression")):
            with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
                window.open_path(_table_csv(tmp_path / f"kinds{classes}.csv", classes=classes))
            combo = window.modelBuilder.presetCombo
            combo.setCurrentIndex(combo.findText("MLP 2×64 ReLU"))
            assert window.modelBuilder.is_valid(), window.modelBuilder.summary().errors
            _show_evaluation(qtbot, window, table=panel.largestErrorsModel if classes == 0 else None)
            assert panel.evaluation.task == task and not panel.misclassifiedBox.isVisible()
            assert bar.maximum() == 0 and not bar.isVisible(), (width, task, bar.maximum())
    finally:
        window.shutdown()
