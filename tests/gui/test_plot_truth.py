"""Plots that tell the truth: scores and errors on their own axes, sensible minimum spans, earlier runs
overlaid only when they share dataset, target and task."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt

from nnstudio.gui.main_window import MainWindow
from nnstudio.gui.plot_widgets import MIN_SCORE_SPAN
from nnstudio.gui.plots import LossPlot, MetricsPlot


@pytest.fixture
def metrics_plot(qtbot):
    plot = MetricsPlot()
    qtbot.addWidget(plot)
    plot.resize(900, 400)
    plot.show()
    qtbot.waitExposed(plot)
    return plot


def _y_range(view) -> tuple[float, float]:
    return tuple(view.viewRange()[1])


def test_r2_has_its_own_axis_apart_from_rmse_and_mae(metrics_plot):
    metrics_plot.add_epochs([1, 2, 3], [{"rmse": 15_000.0, "mae": 11_000.0, "r2": 0.31},
                                        {"rmse": 9_000.0, "mae": 7_000.0, "r2": 0.62},
                                        {"rmse": 6_000.0, "mae": 4_500.0, "r2": 0.81}])
    metrics_plot.redraw()
    main = metrics_plot.getPlotItem().vb
    errors = metrics_plot.error_view
    assert errors is not None and metrics_plot.error_axis.labelText == "error (target units)"
    assert metrics_plot.metric_curve("r2") in main.addedItems
    assert {metrics_plot.metric_curve("rmse"), metrics_plot.metric_curve("mae")} <= set(errors.addedItems)
    assert metrics_plot.metric_curve("rmse") not in main.addedItems
    lo, hi = _y_range(main)
    assert lo <= 0.31 and hi >= 0.81 and hi - lo < 2  # r2 fills its axis, not a flat line at 0
    lo, hi = _y_range(errors)
    assert lo <= 4_500 and hi >= 15_000
    np.testing.assert_allclose(metrics_plot.metric_curve("r2").getData()[1], [0.31, 0.62, 0.81])


def test_classification_scores_need_no_error_axis(metrics_plot):
    metrics_plot.add_epochs([1, 2], [{"accuracy": 0.7, "f1": 0.6, "auroc": 0.8}] * 2)
    metrics_plot.redraw()
    assert metrics_plot.error_view is None and metrics_plot.error_axis is None


def test_nearly_constant_accuracy_is_not_blown_up_into_float_noise(metrics_plot):
    values = [0.988886, 0.9888885, 0.988887, 0.9888862]
    metrics_plot.add_epochs([1, 2, 3, 4], [{"accuracy": v} for v in values])
    metrics_plot.set_live(False)
    metrics_plot.redraw()
    lo, hi = _y_range(metrics_plot.getPlotItem().vb)
    assert hi - lo >= MIN_SCORE_SPAN * 0.999
    assert lo <= min(values) and hi >= max(values)


def test_nearly_constant_error_keeps_a_span_of_its_size(metrics_plot):
    metrics_plot.add_epochs([1, 2, 3], [{"rmse": 15_000.0}, {"rmse": 15_000.002}, {"rmse": 15_000.001}])
    metrics_plot.redraw()
    lo, hi = _y_range(metrics_plot.error_view)
    assert hi - lo >= 0.01 * 15_000 * 0.999 and lo <= 15_000 <= hi


def test_earlier_runs_stay_only_while_dataset_target_and_task_match(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(900, 400)
    plot.show()
    qtbot.waitExposed(plot)
    flowers = ("/data/flowers.csv", "species", "multiclass")
    plot.start_run("a", context=flowers)
    plot.add_steps([1, 2, 3], [1.0, 0.8, 0.6])
    plot.start_run("b", context=flowers)
    plot.add_steps([1, 2, 3], [0.9, 0.7, 0.5])
    assert plot.earlier_run_names() == ["a"]
    plot.start_run("c", context=("/data/houses.csv", "price", "regression"))
    assert plot.earlier_run_names() == []
    plot.add_steps([1, 2], [5000.0, 4000.0])
    plot.redraw()
    labels = " ".join(plot.legend_labels())
    assert "a" not in plot.earlier_run_names() and "(a)" not in labels and "(b)" not in labels
    np.testing.assert_array_equal(plot.step_curve.getData()[1], [5000.0, 4000.0])
    # the same dataset and task again: kept
    plot.start_run("d", context=("/data/houses.csv", "price", "regression"))
    assert plot.earlier_run_names() == ["c"]


def test_metrics_of_another_task_leave_with_their_error_axis(metrics_plot):
    houses = ("/data/houses.csv", "price", "regression")
    metrics_plot.start_run("h", context=houses)
    metrics_plot.add_epochs([1, 2], [{"rmse": 9.0, "r2": 0.5}, {"rmse": 8.0, "r2": 0.6}])
    metrics_plot.redraw()
    assert metrics_plot.error_view is not None
    metrics_plot.start_run("f", context=("/data/flowers.csv", "species", "multiclass"))
    metrics_plot.add_epochs([1], [{"accuracy": 0.9}])
    metrics_plot.redraw()
    assert metrics_plot.error_view is None and metrics_plot.earlier_run_names() == []
    assert metrics_plot.metric_names() == ["accuracy"]


def test_window_overlays_only_runs_of_the_same_dataset(qtbot, tmp_path, flowers_csv, houses_csv):
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        logdir=tmp_path / "runs")
    qtbot.addWidget(window)
    window.show()
    try:
        def load(path):
            with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
                window.open_path(path)

        def train():
            window.trainingPanel.epochsSpin.setValue(2)
            with qtbot.waitSignal(window.training_finished, timeout=60000):
                qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)

        load(flowers_csv)
        train()
        train()
        assert len(window.lossPlot.earlier_run_names()) == 1
        assert len(window.metricsPlot.earlier_run_names()) == 1
        load(houses_csv)
        train()
        assert window.lossPlot.earlier_run_names() == [] and window.metricsPlot.earlier_run_names() == []
        assert window.metricsPlot.error_view is not None
        assert set(window.metricsPlot.metric_names()) == {"rmse", "mae", "r2"}
        assert window.windowTitle() == "houses.csv — nnstudio"
    finally:
        window.shutdown()
